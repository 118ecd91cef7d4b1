"""Targets: `file.py:name` and `package.module:name`, found from the current directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from elfc.errors import TargetError
from elfc.targets import load_target

PKG = """
from elfc import elf, named, pipeline, task

@elf
class Greeter:
    @task
    def greet(self, name: str) -> str:
        return "hi " + name

greeter = named(Greeter, "greeter")

@pipeline
def hello(name: str = "you") -> str:
    return greeter.greet(name)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    pkg = tmp_path / "shop"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "flows.py").write_text(PKG)
    (pkg / "broken.py").write_text("import no_such_dependency_here\n")
    return tmp_path


def test_module_target_is_found_from_the_current_directory(project: Path) -> None:
    proc = subprocess.run(
        [Path(sys.executable).parent / "elfc", "run", "shop.flows:hello", "-a", "name=ann",
         "--mycelium", f"sqlite:///{project}/m.db"],
        cwd=project, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '"hi ann"'


def test_missing_module_and_missing_dependency_say_different_things(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    with pytest.raises(TargetError, match=r"no module named 'shop\.nothing'"):
        load_target("shop.nothing:hello")
    with pytest.raises(
        TargetError, match=r"importing shop\.broken failed: .*no_such_dependency_here"
    ):
        load_target("shop.broken:hello")
    with pytest.raises(TargetError, match="has no 'nope'"):
        load_target("shop.flows:nope")
    with pytest.raises(TargetError, match="must be"):
        load_target("shop.flows")
