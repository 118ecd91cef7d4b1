"""Checks for elfc: `nox` runs lint, typecheck, tests, examples and docs."""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "examples", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole pytest suite (examples included)."""
    session.install("-e", ".[dev,arango,postgres,ui,docs]")
    session.run("pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package and on the examples."""
    session.install("-e", ".[dev,arango,postgres,ui]")
    session.run("mypy", "--strict", "elfc")
    session.run("mypy", "--strict", "examples")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def examples(session: nox.Session) -> None:
    """Every example, end to end, as the README runs them."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-q", "tests/examples", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """elfc against Huey, Celery, Ray and Dask, side by side in one run (not in the default set).

    Needs Debian's redis-server for Celery (the harness starts it on 127.0.0.1 and stops it).
    """
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/peers.py", *session.posargs)


@nox.session(python=PYTHON)
def bench_pg(session: nox.Session) -> None:
    """elfc's PostgreSQL mycelium against Procrastinate and DBOS on one throw-away server
    (not in the default set). Needs PostgreSQL's binaries (Debian's postgresql)."""
    session.install("-e", ".[dev,postgres,bench-pg]")
    session.run("python", "benchmarks/pg_peers.py", *session.posargs)


@nox.session(python=PYTHON)
def chaos(session: nox.Session) -> None:
    """The chaos suite's long version (on demand: the short one runs with the tests)."""
    session.install("-e", ".[dev,arango]")
    session.run("pytest", "-q", "-s", "tests/chaos", *session.posargs, env={"ELFC_CHAOS": "long"})


NEWER = ["3.12", "3.13"]
"""Pythons past the lowest supported one, tested on demand (`nox -s tests_newer`, `smoke`)."""


def _let_pyenv_shims_find_every_version() -> None:
    """pyenv's shims answer only for its selected versions (`python3.12: command not found`
    otherwise): select the global one first, then every other installed version, so that nox
    finds python3.12 and python3.13 where pyenv installed them. Without pyenv, or with
    `$PYENV_VERSION` set, nothing changes."""
    if "PYENV_VERSION" in os.environ or shutil.which("pyenv") is None:
        return
    listed = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True)
    chosen = subprocess.run(["pyenv", "global"], capture_output=True, text=True)
    if listed.returncode != 0 or chosen.returncode != 0:
        return
    first = chosen.stdout.split()
    rest = [v for v in listed.stdout.split() if v not in first and "/" not in v]
    os.environ["PYENV_VERSION"] = ":".join(first + rest)


_let_pyenv_shims_find_every_version()

SMOKE = [
    "tests/compiler",
    "tests/runtime/test_values.py",
    "tests/test_public_api.py",
    "tests/examples",
]
"""A fast subset that imports everything and runs the compiler, the interpreter of derives and
each example end to end."""


@nox.session(python=NEWER)
def tests_newer(session: nox.Session) -> None:
    """The whole pytest suite on each newer Python (on demand: about 9 minutes each)."""
    tests(session)


@nox.session(python=NEWER)
def smoke(session: nox.Session) -> None:
    """The smoke subset on each newer Python."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-q", *(session.posargs or SMOKE))


LOWEST = ["libcst==1.5.0", "msgspec==0.18.6", "rich==13.0.0"]
"""The lower bounds of pyproject's dependencies, pinned: what `lowest` installs."""


@nox.session(python=PYTHON)
def lowest(session: nox.Session) -> None:
    """The smoke subset against the lowest supported libcst, msgspec and rich."""
    session.install("-e", ".[dev]", *LOWEST)
    session.run("python", "-c", "import libcst, msgspec, rich; print(libcst.__name__, 'ok')")
    session.run("pip", "list", "--format=freeze", silent=False)
    session.run("pytest", "-q", *(session.posargs or SMOKE))


@nox.session(python=PYTHON)
def pyright(session: nox.Session) -> None:
    """pyright --strict on the examples and on the README's and documentation's code."""
    session.install("-e", ".[dev]")
    session.run("pyright")
    session.run("pytest", "-q", "tests/test_docs.py", "-k", "pyright")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site, warnings as errors, into site/."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
