"""The graph template, the expression IR, and the jobs a submission makes.

Expression IR
-------------
A dynamic expression is stored as JSON data, never as code. An expression is either a JSON
scalar (``null``, a boolean, a number, a string: that literal value) or an object with exactly
one key naming the operation::

    {"lit": <any JSON>}                       a literal list / object (scalars need no wrapper)
    {"ref": "<job key>"}                      the result of a job of the same run
    {"slot": <int>}                           template only: filled at submission
    {"list": [e, ...]}  {"tuple": [e, ...]}  {"set": [e, ...]}
    {"dict": [[k, v], ...]}
    {"item": [e, key]}                        e[key]
    {"slice": [e, lower, upper, step]}        e[lower:upper:step] (each may be null)
    {"attr": [e, "name"]}                     e.name: a key of a JSON object (dataclass, TypedDict,
    {"attr": [e, "name", index]}              Struct); with an index, a position of a JSON array
                                              (NamedTuple, array-like Struct)
    {"bin": [op, a, b]}                       op in + - * / // % ** & | ^ << >>
    {"unary": [op, e]}                        op in - + not ~
    {"cmp": [a, [op, b], [op, c], ...]}       chained comparison; op in == != < <= > >= in
                                              "not in" is "is not"
    {"and": [e, ...]}  {"or": [e, ...]}       short-circuit, Python semantics
    {"call": [name, [arg, ...], {kw: e}]}     a whitelisted pure builtin (BUILTINS)
    {"fmt": [part, ...]}                      f-string; part is a string, or
                                              [e, conversion ("r"|"s"|"a"|null), spec e|null]

Reserved for later regions: ``{"guard": ...}`` / ``{"phi": ...}`` (branching on a dynamic value)
and ``{"map": ...}`` (a loop over a dynamic iterable). An evaluator meeting an unknown operation
raises rather than guessing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

IR = Any
"""A JSON value in the expression IR (see the module docstring)."""

BUILTINS: frozenset[str] = frozenset(
    [
        "len",
        "sum",
        "min",
        "max",
        "sorted",
        "abs",
        "round",
        "str",
        "int",
        "float",
        "bool",
        "list",
        "tuple",
        "dict",
        "zip",
        "enumerate",
        "any",
        "all",
    ]
)
BINARY_OPS: frozenset[str] = frozenset(
    ["+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "<<", ">>"]
)
UNARY_OPS: frozenset[str] = frozenset(["-", "+", "not", "~"])
COMPARE_OPS: frozenset[str] = frozenset(
    ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"]
)
OPERATIONS: frozenset[str] = frozenset(
    [
        "lit",
        "ref",
        "slot",
        "list",
        "tuple",
        "set",
        "dict",
        "item",
        "slice",
        "attr",
        "bin",
        "unary",
        "cmp",
        "and",
        "or",
        "call",
        "fmt",
    ]
)


def children(expr: IR) -> list[IR]:
    """The direct sub-expressions of an operation (none for literals, refs and slots)."""
    if not isinstance(expr, dict):
        return []
    ((op, body),) = expr.items()
    if op in ("lit", "ref", "slot"):
        return []
    if op in ("list", "tuple", "set", "and", "or"):
        return list(body)
    if op == "dict":
        return [e for pair in body for e in pair]
    if op in ("item", "attr"):
        return [body[0]] if op == "attr" else list(body)
    if op == "slice":
        return list(body)
    if op == "bin":
        return [body[1], body[2]]
    if op == "unary":
        return [body[1]]
    if op == "cmp":
        return [body[0], *(b for _, b in body[1:])]
    if op == "call":
        return [*body[1], *(body[2].values() if len(body) > 2 else ())]
    if op == "fmt":
        out: list[IR] = []
        for part in body:
            if isinstance(part, list):
                out.append(part[0])
                if part[2] is not None:
                    out.append(part[2])
        return out
    raise ValueError(f"unknown IR operation {op!r}")


def walk(expr: IR) -> Iterator[IR]:
    """Yield ``expr`` and every sub-expression that is an operation object."""
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, dict):
            yield e
            stack.extend(children(e))


def refs(expr: IR) -> set[str]:
    """The job keys an expression reads."""
    return {e["ref"] for e in walk(expr) if "ref" in e}


def revision_of(*parts: str | bytes) -> str:
    """A content hash: 16 hex digits of BLAKE2b over the parts."""
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.hexdigest()


class Span(msgspec.Struct, frozen=True):
    """Where a node comes from: a file and a 1-based line/column range."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int


class Region(msgspec.Struct, frozen=True, tag="loop"):
    """A static loop: its body runs once per element at submission."""

    id: str
    span: Span
    header: str
    """Source of the loop header, e.g. ``for _ in range(rounds)``: the trip count expression."""
    parent: str | None = None


class InputNode(msgspec.Struct, frozen=True, tag="input"):
    id: str
    name: str
    annotation: str
    default: str | None
    span: Span


class CallNode(msgspec.Struct, frozen=True, tag="call"):
    """A task call site: makes one job each time it executes at submission."""

    id: str
    handles: tuple[str, ...]
    """Names of the handles the receiver can be (one, or several for a static choice)."""
    task: str
    revisions: tuple[str, ...]
    """The task's revision for each handle (same order)."""
    args: tuple[IR, ...]
    kwargs: dict[str, IR]
    span: Span
    region: str | None
    source: str
    """The call's source text, for diagnostics and graphs."""


class DeriveNode(msgspec.Struct, frozen=True, tag="derive"):
    """A dynamic expression stored as IR, inlined into its consumers at submission."""

    id: str
    expr: IR
    span: Span
    region: str | None
    source: str


class InlineNode(msgspec.Struct, frozen=True, tag="inline"):
    """A call to another pipeline: its graph is inlined at submission."""

    id: str
    pipeline: str
    revision: str
    span: Span
    region: str | None
    source: str


class OutputNode(msgspec.Struct, frozen=True, tag="output"):
    id: str
    span: Span
    source: str


Node = InputNode | CallNode | DeriveNode | InlineNode | OutputNode


class Edge(msgspec.Struct, frozen=True):
    """``source`` feeds ``target`` through the variable ``label``."""

    source: str
    target: str
    label: str


class Template(msgspec.Struct, frozen=True):
    """A compiled pipeline: what it calls, where, and what flows where. JSON round-trips."""

    pipeline: str
    """Qualified name ``module:function``."""
    revision: str
    source_revision: str
    path: str
    line: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    regions: tuple[Region, ...]
    format: Literal[1] = 1

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @staticmethod
    def from_json(data: bytes | str) -> Template:
        return msgspec.json.decode(data, type=Template)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)


class JobSpec(msgspec.Struct, frozen=True):
    """One job of a run, as a submission makes it.

    ``key`` is unique within the run and deterministic: the node id, then ``#`` and the
    iteration path of the static loops around the call (``n2#0.3``), prefixed by the inlining
    node ids of nested pipelines (``n4/n2#1``). ``deps`` are the keys of the jobs whose results
    ``args``/``kwargs`` read. Jobs are listed in creation order, which is a topological order.
    """

    key: str
    node: str
    elf: str
    """The handle name: the elf instance that runs the job."""
    task: str
    revision: str
    args: tuple[IR, ...]
    kwargs: dict[str, IR]
    deps: tuple[str, ...]
    seq: int


class BuiltRun(msgspec.Struct, frozen=True):
    """A template instantiated with concrete arguments."""

    pipeline: str
    revision: str
    arguments: dict[str, Any]
    jobs: tuple[JobSpec, ...]
    output: IR
