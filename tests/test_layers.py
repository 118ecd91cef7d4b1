"""The layers of elfc, pinned: imports point down only, and no module imports itself back.

Every import statement of every module under ``elfc/`` counts — at module level, inside a
function, or under ``if TYPE_CHECKING:`` — because each of them is a dependency a reader has to
hold in mind, and a lazy import that points up is a cycle in hiding. A module may import
modules of a lower layer, or of its own package in the same layer; nothing else. There is no
allow-list: a new exception is a design change, made here and in the design notes (docs/design.md).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "elfc"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("elfc.errors",),
    ("elfc.model", "elfc._version", "elfc.config"),
    ("elfc.decorators",),
    ("elfc.compiler", "elfc.mycelium", "elfc.render"),
    ("elfc.runtime",),
    ("elfc.pipeline",),
    ("elfc.targets",),
    ("elfc.checker", "elfc.views"),
    ("elfc.cli", "elfc.commands", "elfc.ui"),
    ("elfc", "elfc.__main__"),
)
"""Lowest first. Within one layer, each tuple item is a separate group: ``compiler`` and
``mycelium`` share a layer but may not import each other."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def group_of(module: str) -> tuple[int, str]:
    """(layer index, group prefix) of an elfc module: the longest matching prefix wins."""
    best: tuple[int, str] | None = None
    for index, groups in enumerate(LAYERS):
        for group in groups:
            if (module == group or module.startswith(group + ".")) and (
                best is None or len(group) > len(best[1])
            ):
                best = (index, group)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Each elfc module that ``module`` imports, with the line of the import."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _resolve(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield from _resolve(base, tuple(a.name for a in node.names), node.lineno)


def _resolve(base: str, names: tuple[str, ...], line: int) -> Iterator[tuple[str, int]]:
    if base != "elfc" and not base.startswith("elfc."):
        return
    submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
    if submodules:
        yield from ((m, line) for m in submodules)
        if len(submodules) == len(names):
            return
    # `from elfc.x import name`: the module `elfc.x` itself (or the closest existing parent).
    while base not in MODULES and "." in base:
        base = base.rpartition(".")[0]
    yield base, line


GRAPH = {m: sorted(set(imported(m, p))) for m, p in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        group_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    layer, group = group_of(module)
    wrong = []
    for target, line in GRAPH[module]:
        if target == module:
            continue
        t_layer, t_group = group_of(target)
        if t_layer < layer or (t_layer == layer and t_group == group):
            continue
        wrong.append(f"{MODULES[module].name}:{line} imports {target} (layer {t_layer}, {t_group})")
    assert not wrong, (
        f"{module} (layer {layer}, {group}) imports upward or sideways:\n" + "\n".join(wrong)
    )


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over every import: each must be one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w, _ in GRAPH.get(v, ()):
            if w == v or w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """The walk counts imports inside functions and under TYPE_CHECKING (not only the top)."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from elfc.runtime.run import Run\n"
        "def f():\n    from elfc.pipeline import Pipeline\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    found = {m for m, _ in imported("elfc.model.probe", probe)}
    assert found == {"elfc.runtime.run", "elfc.pipeline"}
