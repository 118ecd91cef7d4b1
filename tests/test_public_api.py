"""The public names are exactly the intended ones, and `import elfc` stays light."""

from __future__ import annotations

import subprocess
import sys

import elfc

PUBLIC = [
    "CompileError",
    "ElfcError",
    "Mycelium",
    "MyceliumError",
    "Pipeline",
    "Run",
    "RunFailed",
    "Serving",
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
    for exc in (elfc.CompileError, elfc.RunFailed, elfc.MyceliumError):
        assert issubclass(exc, elfc.ElfcError)


def test_import_elfc_needs_neither_libcst_nor_arango() -> None:
    code = "import sys, elfc; print(sorted(m for m in ('libcst', 'arango') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
