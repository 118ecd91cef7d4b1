"""The documentation holds together: every page is in mkdocs.yml's nav, every code block of the
pages this project writes is executed or checked (the Python files and console blocks by
tests/test_readme.py, configuration here), the documentation's Python passes mypy --strict and
pyright --strict, the check-code table lists every code, and the CLI reference is the parser's."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from elfc.cli.main import COMMANDS, build_parser
from elfc.compiler.diagnostics import KINDS
from elfc.config import elfc_table
from tests.test_readme import PAGES, ROOT, nav_pages, page_blocks, write_files

sys.path.insert(0, str(ROOT / "docs" / "hooks"))
import cli_reference

DOCS = ROOT / "docs"
OTHERS = {"docs/postgres.md", "docs/arango.md"}
"""Deployment guides whose shell, SQL and AQL snippets run against servers set up by hand."""

CHECKED = {"python", "console", "toml", "ini", "dockerfile", "text"}
"""python and console blocks run in tests/test_readme.py; toml, ini and dockerfile blocks are
checked below; text blocks are pictures (the layer diagram), not code."""


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav_pages()) == pages


def test_every_code_block_is_run_or_checked() -> None:
    for page in PAGES:
        if page in OTHERS:
            continue
        for lang, body in page_blocks(page):
            assert lang in CHECKED, f"{page}: a {lang} block nobody runs"
            if lang == "python":
                assert body.startswith("# file: "), f"{page}: a python block without `# file:`"
            if lang == "console" and page != "README.md":
                assert body.startswith("$ "), f"{page}: a console block without commands"


def blocks_of(lang: str) -> list[str]:
    return [b for page in PAGES if page not in OTHERS for k, b in page_blocks(page) if k == lang]


def test_toml_blocks_are_settings_elfc_accepts(tmp_path: Path) -> None:
    found = blocks_of("toml")
    assert found
    for body in found:
        (tmp_path / "pyproject.toml").write_text(body, encoding="utf-8")
        table = elfc_table(tmp_path / "pyproject.toml")
        assert table == tomllib.loads(body)["tool"]["elfc"] and table


def elfc_argv(command: list[str]) -> list[str]:
    """The arguments after the `elfc` program of a command line."""
    assert Path(command[0]).name == "elfc", command
    return command[1:]


def parses(argv: list[str]) -> None:
    parser = build_parser(COMMANDS.keys())
    args = parser.parse_args(argv)
    assert args.command in COMMANDS


def test_the_systemd_unit_starts_a_worker_elfc_accepts() -> None:
    [unit] = blocks_of("ini")
    [exec_start] = re.findall(r"^ExecStart=(.+)$", unit, re.M)
    argv = elfc_argv(shlex.split(exec_start.replace("%i", "store")))
    parses(argv)
    assert argv[argv.index("--elf") + 1] == "store" and "worker" in argv
    assert re.search(r"^KillSignal=SIGTERM$", unit, re.M)


def test_the_container_image_starts_a_worker_elfc_accepts() -> None:
    [image] = blocks_of("dockerfile")
    [cmd] = re.findall(r"^CMD (\[.+\])$", image, re.M)
    argv = elfc_argv(json.loads(cmd))
    parses(argv)
    assert "worker" in argv and re.search(r"^STOPSIGNAL SIGTERM$", image, re.M)


def test_the_check_code_table_lists_every_code() -> None:
    text = (DOCS / "check.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| (ELF\d+)", text, re.M)
    assert sorted(listed) == sorted(KINDS)
    assert len(listed) == len(set(listed))


def test_the_cli_reference_is_every_command_help() -> None:
    text = cli_reference.reference()
    parser = build_parser(COMMANDS.keys())
    assert re.findall(r"^## elfc (\S+)$", text, re.M) == list(COMMANDS)
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in COMMANDS:
        shown = [a for a in sub.choices[name]._actions if a.help != argparse.SUPPRESS]
        options = [o for a in shown for o in a.option_strings]
        section = text.split(f"## elfc {name}\n", 1)[1].split("\n## ", 1)[0]
        assert all(o in section for o in options), name
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert (
        cli_reference.on_page_markdown(page, None, None, None).count("```text") == len(COMMANDS) + 1
    )


@pytest.mark.slow
def test_the_documentation_code_and_the_examples_pass_mypy_and_pyright_strict(
    tmp_path: Path,
) -> None:
    write_files(tmp_path)
    # broken.py is `elfc check`'s example of mistakes: mypy finds the misspelt key too.
    names = sorted(p.name for p in tmp_path.glob("*.py") if p.name != "broken.py")
    assert len(names) >= 7
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert mypy.returncode == 0, mypy.stdout
    broken = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "broken.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    errors = [line for line in broken.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and errors[0].startswith("broken.py:15:"), broken.stdout
    pyright = Path(sys.executable).parent / "pyright"
    if not pyright.exists():
        pytest.skip("pyright is not installed (pip install -e '.[dev]')")
    try:
        version = subprocess.run([pyright, "--version"], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("pyright --version did not finish: its Node runtime could not be had here")
    if version.returncode != 0:
        pytest.skip(f"pyright cannot run here (no Node runtime?): {version.stderr[-500:]!r}")
    config = {"typeCheckingMode": "strict", "pythonVersion": "3.11", "extraPaths": ["."]}
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config), encoding="utf-8")
    checked = subprocess.run(
        [pyright, "--pythonpath", sys.executable, *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout
    # The examples, as pyproject.toml's [tool.pyright] says (strict).
    examples = subprocess.run(
        [pyright, "--pythonpath", sys.executable], cwd=ROOT, capture_output=True, text=True
    )
    assert examples.returncode == 0, examples.stdout
    assert (
        "examples"
        in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pyright"]["include"]
    )


@pytest.mark.slow
def test_the_site_builds_strict_with_every_public_name(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings", reason="the docs extra: pip install -e '.[docs]'")
    import elfc

    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr
    api = (tmp_path / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="(elfc\.[\w.]+)"', api))
    for name in elfc.__all__:
        assert f"elfc.{name}" in anchors or f"elfc.{name}.{name}" in anchors, name
    cli = (tmp_path / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert all(f"elfc {name}" in cli for name in COMMANDS)
    assert (tmp_path / "peers.png").exists() and not (tmp_path / "hooks").exists()
