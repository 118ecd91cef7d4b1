"""Imports point one way: cli -> views -> runtime -> {mycelium, compiler} -> ... -> errors.

Read from the source (every import, at any depth, lazy ones included), so a cycle cannot hide
in a function body. This pins the layers this layout introduced: the command line on top, the
read model under it, and no display code below them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import elfc

PACKAGE = Path(elfc.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, as written (``from a import b`` gives ``a``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    root = PACKAGE / folder
    return sorted(root.rglob("*.py")) if root.is_dir() else [root]


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", modules("runtime"), ids=lambda p: p.name)
def test_the_runtime_neither_draws_nor_reaches_up(path: Path) -> None:
    upward = {m for m in imports_of(path) if under(m, "elfc.cli", "elfc.views", "rich")}
    assert upward == set(), f"{path.name} imports {sorted(upward)}"


def test_the_read_model_neither_draws_nor_knows_the_command_line() -> None:
    upward = {m for m in imports_of(PACKAGE / "views.py") if under(m, "elfc.cli", "rich")}
    assert upward == set()


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(PACKAGE.rglob("*.py")) if "cli" not in p.relative_to(PACKAGE).parts],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_command_line_imports_the_command_line(path: Path) -> None:
    if path.name == "__main__.py":
        return  # `python -m elfc` is the command line's own entry point
    assert {m for m in imports_of(path) if under(m, "elfc.cli")} == set()
