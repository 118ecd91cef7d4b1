"""README's examples run as written: its files are written out, its console commands executed,
and every output line it shows is compared with what the command prints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == kind]


def test_readme_opens_with_the_two_setup_commands() -> None:
    first = blocks("console")[0].strip().splitlines()
    assert len(first) == 2
    assert "elfc run examples/" in first[0]
    assert first[1].endswith("nox")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert first[1] in ci.splitlines()


def steps(block: str) -> list[tuple[str, int, list[str]]]:
    """(command, expected exit status, expected stdout lines) for each `$ ` line of a console
    block; a command ending in `  # exit N` is expected to exit with N."""
    out: list[tuple[str, int, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            command, _, status = line[2:].partition("  # exit ")
            out.append((command, int(status or 0), []))
        elif out and line.strip():
            out[-1][2].append(line.rstrip())
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    for body in blocks("python"):
        m = re.match(r"# file: (\S+)\n", body)
        if m:
            (d / m.group(1)).write_text(body[m.end() :], encoding="utf-8")
    shutil.copytree(ROOT / "examples", d / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return d


CONSOLE = [b for b in blocks("console")[1:] if "$ " in b and "$ elfc ui" not in b]
"""The console blocks run here; the dashboard's, whose server runs until stopped, runs in
tests/ui/test_readme_dashboard.py."""


@pytest.mark.slow
@pytest.mark.parametrize("block", CONSOLE, ids=[f"block{i}" for i in range(len(CONSOLE))])
def test_readme_console_block(block: str, workdir: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["ELFC_MYCELIUM"] = f"sqlite:///{workdir}/readme.db"
    env["ELFC_EXAMPLE_DIR"] = str(workdir)
    env["PYTHONPATH"] = str(workdir)
    for command, status, expected in steps(block):
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == status, f"{command}\n{proc.stdout}\n{proc.stderr}"
        if expected:
            printed = [line.rstrip() for line in proc.stdout.splitlines() if line.strip()]
            assert printed == expected, command
