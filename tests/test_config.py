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


def test_a_misspelt_setting_is_an_error_that_names_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.elfc]\nmycelum = 'sqlite:///m.db'\n")
    with pytest.raises(ElfcError, match=r"no setting 'mycelum': did you mean 'mycelium'\?"):
        elfc_table(path)
    path.write_text("[tool.elfc]\ncolour = 'red'\n")
    with pytest.raises(ElfcError, match="it knows mycelium, paths"):
        elfc_table(path)


def test_a_misspelt_setting_stops_a_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "pyproject.toml").write_text("[tool.elfc]\nmycelum = 'sqlite:///m.db'\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "ELFC_MYCELIUM"}
    done = subprocess.run(
        [sys.executable, "-m", "elfc", "runs"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "did you mean 'mycelium'" in done.stderr
