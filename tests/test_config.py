"""``elfc.config``: the nearest pyproject.toml and its ``[tool.elfc]`` table."""

from __future__ import annotations

from pathlib import Path

import pytest

from elfc.config import elfc_table, find_pyproject
from elfc.errors import ElfcError


def test_the_nearest_pyproject_is_found_from_below(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    found = find_pyproject(tmp_path / "a" / "b")
    assert found is None or tmp_path.resolve() not in found.parents  # none of ours yet
    (tmp_path / "a" / "pyproject.toml").write_text("[tool.elfc]\nmycelium = 'sqlite:///m.db'\n")
    assert find_pyproject(tmp_path / "a" / "b") == (tmp_path / "a" / "pyproject.toml").resolve()


def test_the_elfc_table_is_empty_when_missing_and_unreadable_files_are_named(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.elfc]\npaths = ['examples']\n")
    assert elfc_table(path) == {"paths": ["examples"]}
    path.write_text("[project]\nname = 'x'\n")
    assert elfc_table(path) == {}
    path.write_text("[tool.elfc\n")
    with pytest.raises(ElfcError, match="cannot read"):
        elfc_table(path)
