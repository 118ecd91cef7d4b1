"""What the analysis knows about a value (its binding time, where it comes from, its IR) and
what it hands to the builder: ``Val``, ``join``, ``Rewrite``, ``Analysis``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from elfc.compiler import diagnostics as dg
from elfc.decorators import Handle
from elfc.model.ir import (
    Edge,
    Node,
    Region,
)

S, C, D = 0, 1, 2
"""Binding times: static, static structure holding dynamic values, dynamic."""

MISSING: Any = object()
MUTATORS = frozenset(
    [
        "append",
        "extend",
        "insert",
        "add",
        "update",
        "setdefault",
        "pop",
        "remove",
        "clear",
        "sort",
        "reverse",
        "discard",
        "popitem",
    ]
)
STRUCTURE_MUTATORS = frozenset(["append", "extend", "insert", "add", "update", "setdefault"])
STRUCTURE_READERS = frozenset(["copy", "keys", "values", "items", "get"])
STRUCTURAL_BUILTINS = frozenset(["len", "list", "tuple", "enumerate", "zip", "reversed", "range"])
BIN_OPS = {
    cst.Add: "+", cst.Subtract: "-", cst.Multiply: "*", cst.Divide: "/", cst.FloorDivide: "//",
    cst.Modulo: "%", cst.Power: "**", cst.BitAnd: "&", cst.BitOr: "|", cst.BitXor: "^",
    cst.LeftShift: "<<", cst.RightShift: ">>",
}  # fmt: skip
UNARY_OPS = {cst.Minus: "-", cst.Plus: "+", cst.Not: "not", cst.BitInvert: "~"}
CMP_OPS = {
    cst.Equal: "==", cst.NotEqual: "!=", cst.LessThan: "<", cst.LessThanEqual: "<=",
    cst.GreaterThan: ">", cst.GreaterThanEqual: ">=", cst.In: "in", cst.NotIn: "not in",
    cst.Is: "is", cst.IsNot: "is not",
}  # fmt: skip


class Slot:
    """A hole in a derive's IR: the value of ``node`` evaluated at submission."""

    __slots__ = ("node",)

    def __init__(self, node: cst.CSTNode) -> None:
        self.node = node


# Never mutated after construction, but not frozen: frozen dataclasses construct (and
# `replace`) several times slower, and the analysis makes thousands of these.
@dataclass(slots=True, eq=False)
class Val:
    """What the analysis knows about an expression's value."""

    bt: int
    deps: dict[str, str] = field(default_factory=dict)
    """Graph nodes the value comes from, with the variable that carries it."""
    ir: Any = None
    """For a derivable expression: its IR, with ``Slot`` holes."""
    handles: tuple[Handle, ...] = ()
    static: Any = MISSING
    elf_class: type | None = None
    tp: Any = Any
    what: str = "a task result"
    producer: str = ""
    members: tuple[Handle, ...] = ()
    """For a static collection of handles (``[left, right]``, ``{"a": left}``): the handles its
    elements (or, for a dict, its values) can be."""
    mapping: bool = False
    growing: bool = False
    """A list the pipeline made and appended to in a region on task results: a task result
    it may still append to (``append``/``extend``), and read as a whole."""

    @property
    def derivable(self) -> bool:
        return self.ir is not None


STATIC = Val(S)


@dataclass(frozen=True)
class Rewrite:
    """What the builder does with a node: ``kind`` in task, inline, derive, loop, while, unpack."""

    kind: str
    id: str
    slots: tuple[cst.CSTNode, ...] = ()
    count: int = 0


@dataclass
class Analysis:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)
    regions: dict[str, Region] = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rewrites: dict[int, Rewrite] = field(default_factory=dict)
    diagnostics: dict[tuple[str, int, int], dg.Diagnostic] = field(default_factory=dict)
    tasks: dict[tuple[str, str], str] = field(default_factory=dict)
    """(handle name, task) -> task revision, for every task the pipeline calls."""
    unpacks: dict[int, int] = field(default_factory=dict)
    """id(value node) -> how many names a task result is unpacked into."""
    inlined: dict[str, Callable[..., Any]] = field(default_factory=dict)
    """The function of each pipeline this one inlines, by its name."""
    handles: dict[str, Handle] = field(default_factory=dict)
    marks: dict[int, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    """id(statement or comprehension) -> (marker, region id, deciding names) of each region
    whose decision is a task result (see ``regions.py``): marker in decide, each, poll; the
    names of the variables decided on."""
    helpers: dict[str, str] = field(default_factory=dict)
    """``module:qualname`` -> source revision of each function of the user's code a call
    region calls (part of the pipeline's revision: a process whose copy differs refuses it)."""
    tries: dict[int, str] = field(default_factory=dict)
    """First line of each ``try`` statement around task calls -> its region id (the builder
    pass finds the statement by its line, see ``regions.py``)."""


def join(a: Val, b: Val) -> Val:
    if a is b:
        return a
    return Val(
        bt=max(a.bt, b.bt),
        deps={**a.deps, **b.deps},
        handles=tuple(dict.fromkeys(a.handles + b.handles)) if a.handles and b.handles else (),
        static=a.static if a.static is b.static else MISSING,
        elf_class=a.elf_class if a.elf_class is b.elf_class else None,
        tp=a.tp if a.tp == b.tp else Any,
        what=a.what if a.bt >= b.bt else b.what,
        producer=a.producer or b.producer,
        members=tuple(dict.fromkeys(a.members + b.members)) if a.members and b.members else (),
        mapping=a.mapping and b.mapping,
        growing=(a.growing or b.growing) and (a.growing or a.bt < D) and (b.growing or b.bt < D),
    )


def join_env(a: dict[str, Val], b: dict[str, Val]) -> dict[str, Val]:
    out = dict(a)
    for k, v in b.items():
        out[k] = join(out[k], v) if k in out else v
    return out


def same_env(a: dict[str, Val], b: dict[str, Val]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].bt == b[k].bt and a[k].deps.keys() == b[k].deps.keys() for k in a
    )
