"""The mycelium package's shape: it imports only the layers below it, a function-level import
is only ever python-arango's, the store module re-exports nothing, the SQLite schema ships as
package data, and each backend names the environment variable its password comes from."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from elfc.mycelium import store
from elfc.mycelium.arango import ArangoStore
from elfc.mycelium.sqlite import SQLiteStore

PACKAGE = Path(__file__).resolve().parents[2] / "elfc" / "mycelium"
BELOW = ("elfc.errors", "elfc.model", "elfc.config", "elfc.mycelium")
"""What the mycelium may import of elfc: never compiler, runtime, decorators or commands."""


def _imports(tree: ast.AST) -> Iterator[tuple[ast.stmt, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node, node.module


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(PACKAGE)), ast.parse(path.read_text(encoding="utf-8"))


def test_the_mycelium_imports_only_lower_layers() -> None:
    for name, tree in _modules():
        for node, module in _imports(tree):
            if module == "elfc" or module.startswith("elfc."):
                assert module.startswith(BELOW), f"{name}:{node.lineno} imports {module}"


def test_function_level_imports_are_only_for_python_arango() -> None:
    for name, tree in _modules():
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node, module in _imports(function):
                # python-arango, and the HTTP stack it brings (the ArangoDB backend classifies
                # that stack's connection errors): never imported by `import elfc`
                top = module.split(".")[0]
                assert top in ("arango", "requests", "urllib3"), f"{name}:{node.lineno} {module}"


def test_the_store_module_exports_only_the_protocol() -> None:
    assert store.__all__ == ["Store"]


def test_the_sqlite_schema_ships_as_package_data() -> None:
    schema = resources.files("elfc.mycelium.sqlite").joinpath("schema.sql")
    assert "CREATE TABLE jobs" in schema.read_text(encoding="utf-8")


def test_each_backend_names_its_password_variable() -> None:
    assert SQLiteStore.password_env is None
    assert ArangoStore.password_env == "ELFC_ARANGO_PASSWORD"
