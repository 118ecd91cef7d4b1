"""The public names are exactly the intended ones, and `import elfc` stays light."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import elfc

PUBLIC = [
    "BuildError",
    "CompileError",
    "ElfConflict",
    "ElfcError",
    "HandleMisuse",
    "JobFailure",
    "Mycelium",
    "MyceliumError",
    "Pipeline",
    "Run",
    "RunCancelled",
    "RunFailed",
    "Serving",
    "ValueCrossingError",
    "connect",
    "elf",
    "named",
    "pipeline",
    "serve",
    "task",
]


def test_all_is_curated_and_sorted() -> None:
    assert elfc.__all__ == PUBLIC
    assert sorted(elfc.__all__) == elfc.__all__


def test_every_public_name_exists_and_no_other_public_module_attribute_leaks() -> None:
    for name in PUBLIC:
        assert getattr(elfc, name) is not None
    exported = {n for n in vars(elfc) if not n.startswith("_")}
    # Submodules appear as attributes once imported; everything else public is in __all__.
    modules = {n for n in exported if type(getattr(elfc, n)).__name__ == "module"}
    assert exported - modules == set(PUBLIC)


def test_exceptions_share_one_root() -> None:
    exceptions = [getattr(elfc, n) for n in PUBLIC if n.endswith(("Error", "Failed", "Conflict"))]
    exceptions += [elfc.HandleMisuse, elfc.RunCancelled]
    assert len(exceptions) == 9
    for exc in exceptions:
        assert issubclass(exc, elfc.ElfcError), exc


def test_a_mycelium_is_a_context_manager(tmp_path: Path) -> None:
    with elfc.connect(f"sqlite:///{tmp_path}/m.db") as m:
        assert m.store.list_runs() == []
    with pytest.raises(elfc.MyceliumError, match="closed"):
        m.store.list_runs()


def test_the_wheel_ships_the_license_and_the_type_marker(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("elfc-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        license_text = z.read(next(n for n in names if n.endswith("/LICENSE"))).decode()
    assert "elfc/py.typed" in names and "elfc/mycelium/sqlite/schema.sql" in names
    assert "License-Expression: MIT" in metadata and "Classifier: Typing :: Typed" in metadata
    assert license_text.startswith("MIT License")


def test_import_elfc_needs_neither_libcst_nor_arango() -> None:
    code = "import sys, elfc; print(sorted(m for m in ('libcst', 'arango') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
