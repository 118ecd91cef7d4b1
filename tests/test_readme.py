"""README's and the documentation's examples run as written: their files are written out, their
console commands executed, and every output line they show is compared with what the command
prints. The pages are read in the order of mkdocs.yml's nav, after README: one working folder
and one mycelium serve them all, so a page may use a file another page wrote."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def nav_pages() -> list[str]:
    """The documentation's pages, as mkdocs.yml's nav lists them (`- Title: page.md`)."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8").partition("\nnav:\n")[2]
    return re.findall(r":\s+(\S+\.md)\s*$", nav, re.M)


PAGES = ["README.md", *(f"docs/{page}" for page in nav_pages())]
TEXTS = {page: (ROOT / page).read_text(encoding="utf-8") for page in PAGES}
README = TEXTS["README.md"]


def page_blocks(page: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block of a page, in order."""
    return [(lang, body) for lang, body in BLOCK.findall(TEXTS[page])]


def blocks(kind: str, pages: list[str] = PAGES) -> list[str]:
    return [body for page in pages for lang, body in page_blocks(page) if lang == kind]


def test_readme_opens_with_the_two_setup_commands() -> None:
    first = blocks("console", ["README.md"])[0].strip().splitlines()
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


def files() -> dict[str, str]:
    """Every `# file: NAME` block of README and the pages: NAME -> its text."""
    out: dict[str, str] = {}
    for body in blocks("python"):
        m = re.match(r"# file: (\S+)\n", body)
        if m:
            assert m.group(1) not in out, f"two blocks write {m.group(1)}"
            out[m.group(1)] = body[m.end() :]
    return out


def write_files(d: Path) -> None:
    for name, text in files().items():
        (d / name).write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("readme")
    write_files(d)
    shutil.copytree(ROOT / "examples", d / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return d


def console_blocks() -> list[tuple[str, str]]:
    """(page-N, block) of every console block run here: all but README's set-up commands and
    the dashboard's, whose server runs until stopped (tests/ui/test_readme_dashboard.py)."""
    out: list[tuple[str, str]] = []
    for page in PAGES:
        found = [b for b in blocks("console", [page]) if "$ " in b and "$ elfc ui" not in b]
        out += [(f"{Path(page).stem}-{i}", b) for i, b in enumerate(found)]
    return out


CONSOLE = console_blocks()


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for _, b in CONSOLE], ids=[i for i, _ in CONSOLE])
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
