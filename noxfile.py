"""Checks for elfc: `nox` runs tests, typecheck, lint and examples."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "examples"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole pytest suite (examples included)."""
    session.install("-e", ".[dev,arango,postgres,ui]")
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
