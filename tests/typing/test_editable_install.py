"""README's `pip install -e .` must give type checkers the real package, from outside the checkout.

setuptools' default editable install is an import-hook finder that mypy and pyright cannot
follow ("Cannot find implementation or library stub for module named 'elfc'"); pyproject's
``package-dir = { "" = "." }`` makes it a plain ``.pth`` path entry instead. These tests make a
fresh venv, ``pip install -e <checkout>`` into it, write a user's project in a folder outside
the checkout (its own module plus a copy of ``fixtures/``) and type-check it there, with the
``# E:`` / ``# N:`` markers of ``test_typing.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.typing.test_typing import FIXTURE_FILES, MYPY_LINE, Message, checked, markers

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = '''\
"""A user's own pipeline, type-checked against an editable install of elfc."""

from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Counter:
    def __init__(self, start: int) -> None:
        self.start = start

    @task
    def add(self, n: int) -> int:
        return self.start + n


counter = named(Counter, "counter", 10)
bad_handle = named(Counter, "bad", start="ten")  # E: Argument "start" to "named" has incompatible type "str"; expected "int"


@pipeline
def tally(rounds: int = 3) -> list[int]:
    return [counter.add(i) for i in range(rounds)]


def use() -> None:
    counter.add("one")  # E: Argument 1 to "add" of "Counter" has incompatible type "str"; expected "int"
    tally(rounds="3")  # E: Argument "rounds" to "__call__" of "Pipeline" has incompatible type "str"; expected "int"
    total: int = tally()  # E: Incompatible types in assignment (expression has type "list[int]", variable has type "int")
    print(total)
'''


def run(
    args: list[str | Path], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site-packages) with elfc installed as README says, plus mypy."""
    where = tmp_path_factory.mktemp("editable-venv") / "venv"
    made = run([sys.executable, "-m", "venv", where], cwd=where.parent)
    assert made.returncode == 0, made.stderr
    python = where / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = run([*pip, "-e", ROOT], cwd=where.parent)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    tools = run([*pip, "mypy"], cwd=where.parent)
    assert tools.returncode == 0, tools.stdout + tools.stderr
    return where


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's project outside the checkout: one module of its own and the typing fixtures."""
    folder = tmp_path_factory.mktemp("user-project")
    assert not folder.resolve().is_relative_to(ROOT)
    (folder / "user_tally.py").write_text(USER_MODULE, encoding="utf-8")
    for fixture in FIXTURE_FILES:
        shutil.copy(fixture, folder / fixture.name)
    return folder


def project_files(project: Path) -> list[Path]:
    return sorted(project.glob("*.py"))


@pytest.mark.slow
def test_editable_install_is_a_plain_path_entry(venv: Path) -> None:
    (site,) = venv.glob("lib/python*/site-packages")
    finders = sorted(p.name for p in site.glob("__editable__*elfc*finder*"))
    assert not finders, f"setuptools installed an import-hook finder: {finders}"
    entries = [
        line.strip()
        for pth in site.glob("*elfc*.pth")
        for line in pth.read_text(encoding="utf-8").splitlines()
    ]
    assert str(ROOT) in [str(Path(e).resolve()) for e in entries if e], entries


@pytest.mark.slow
def test_mypy_strict_from_outside_the_checkout(venv: Path, project: Path) -> None:
    cache = project / ".mypy_cache"
    result = run(
        [
            venv / "bin" / "mypy",
            "--strict",
            "--cache-dir",
            cache,
            "--no-pretty",
            "--no-error-summary",
            "--no-color-output",
            "--hide-error-context",
            *(p.name for p in project_files(project)),
        ],
        cwd=project,
    )
    assert result.returncode in (0, 1), f"mypy crashed:\n{result.stderr}\n{result.stdout}"
    assert "Cannot find implementation" not in result.stdout, result.stdout
    reported: dict[str, list[Message]] = {}
    for raw in result.stdout.splitlines():
        match = MYPY_LINE.match(raw)
        assert match is not None, f"unexpected mypy output: {raw!r}"
        kind = "E" if match["kind"] == "error" else "N"
        message = Message(int(match["line"] or 0), kind, match["text"])
        reported.setdefault(Path(match["path"]).name, []).append(message)
    problems = []
    for path in project_files(project):
        expected = markers(path)
        actual = [m for m in reported.get(path.name, []) if checked(m)]
        for e in expected:
            if not any(a.line == e.line and a.kind == e.kind and e.text in a.text for a in actual):
                problems.append(f"{path.name}:{e.line}: expected {e.kind} containing {e.text!r}")
        for a in actual:
            if not any(
                a.line == e.line and a.kind == e.kind and e.text in a.text for e in expected
            ):
                problems.append(f"{path.name}:{a.line}: unmarked {a.kind}: {a.text}")
    assert not problems, "\n".join([*problems, "mypy said:", result.stdout])


@pytest.mark.slow
def test_pyright_basic_agrees_with_mypy(venv: Path, project: Path) -> None:
    """pyright (basic mode) flags exactly the lines that carry an ``# E:`` marker."""
    python = venv / "bin" / "python"
    pyright = venv / "bin" / "pyright"
    if not pyright.exists():
        got = run(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "pyright"],
            cwd=project,
        )
        if got.returncode != 0:
            pytest.skip(f"pyright could not be installed from PyPI here: {got.stderr[-500:]}")
    try:
        version = run([pyright, "--version"], cwd=project, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("pyright --version did not finish: its Node runtime could not be had here")
    if version.returncode != 0:
        pytest.skip(f"pyright cannot run here (no Node runtime?): {version.stderr[-500:]}")
    (project / "pyrightconfig.json").write_text(
        json.dumps({"typeCheckingMode": "basic", "pythonVersion": "3.11"}), encoding="utf-8"
    )
    result = run(
        [pyright, "--outputjson", "--pythonpath", python, *project_files(project)], cwd=project
    )
    assert result.returncode in (0, 1), f"pyright failed:\n{result.stderr}\n{result.stdout}"
    diagnostics = json.loads(result.stdout)["generalDiagnostics"]
    unresolved = [d for d in diagnostics if d.get("rule") == "reportMissingImports"]
    assert not unresolved, unresolved
    flagged = {
        (Path(d["file"]).name, d["range"]["start"]["line"] + 1)
        for d in diagnostics
        if d["severity"] == "error"
    }
    marked = {(p.name, m.line) for p in project_files(project) for m in markers(p) if m.kind == "E"}
    assert flagged == marked, (
        f"pyright flagged but unmarked: {sorted(flagged - marked)}\n"
        f"marked but not flagged by pyright: {sorted(marked - flagged)}"
    )
