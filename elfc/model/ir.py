"""The graph template, the expression IR, and the jobs a submission makes.

The expression IR's operations are listed once, in :mod:`elfc.model.ops`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Literal

import msgspec

from elfc.errors import MyceliumError
from elfc.model.ops import CHILDREN

IR = Any
"""A JSON value in the expression IR (see the module docstring)."""


def children(expr: IR) -> list[IR]:
    """The direct sub-expressions of an operation (none for literals, refs and slots)."""
    if not isinstance(expr, dict):
        return []
    ((op, body),) = expr.items()
    try:
        return CHILDREN[op](body)
    except KeyError:
        raise ValueError(f"unknown IR operation {op!r}") from None


def walk(expr: IR) -> Iterator[IR]:
    """Yield ``expr`` and every sub-expression that is an operation object."""
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, dict):
            yield e
            stack.extend(children(e))


def ref_key(body: Any) -> str:
    """The job key of a ref's body: ``"n1"`` or, typed, ``["n1", typeref]``."""
    return body if isinstance(body, str) else str(body[0])


def refs(expr: IR) -> set[str]:
    """The job keys an expression reads (its refs, and the region jobs whose value it uses)."""
    out = set()
    for e in walk(expr):
        if "ref" in e:
            out.add(ref_key(e["ref"]))
        elif "out" in e:
            out.add(ref_key(e["out"]))
    return out


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


RegionKind = Literal["loop", "if", "for", "while", "comp", "then", "else", "try", "except", "call"]


class Region(msgspec.Struct, frozen=True, tag="loop"):
    """A part of the body that runs once per element, or when a decision is known.

    ``kind``: ``loop``, a static loop (its body runs once per element at submission); the
    others depend on a task result and run when it exists, as an expansion job (see
    :data:`EXPAND`): ``if`` (a branch, also an ``assert``), ``for`` (a loop over a result),
    ``while`` (one expansion per iteration), ``comp`` (a comprehension over a result);
    ``try`` (a ``try`` statement around task calls: its handlers, ``else`` and ``finally``
    run when the jobs of its body have settled, see :data:`CATCH`), ``call`` (a call of a
    plain function with task results, run once when they exist); ``then`` and ``else``
    are the arms of an ``if`` region, ``except`` a handler of a ``try`` (drawn as such,
    nothing more).
    """

    id: str
    span: Span
    header: str
    """Source of the region's header, e.g. ``for _ in range(rounds)`` or ``if total > 10``."""
    parent: str | None = None
    kind: RegionKind = "loop"

    @property
    def dynamic(self) -> bool:
        """True for a region that runs when a task result exists (not a static loop, not an
        arm of a branch)."""
        return self.kind in ("if", "for", "while", "comp", "try", "call")

    @property
    def indexed(self) -> bool:
        """True when the region's jobs are told apart by an element index in their keys."""
        return self.kind in ("loop", "for", "comp")


EXPAND = "@expand"
"""The task name of an expansion job: when the values a region's decision reads exist, a
worker of the run (in a process that imported the pipeline's code itself) runs the region's
code and adds the jobs it makes to the run; the job then becomes its region's join."""
JOIN = "@join"
"""The task name of a region's join: when the jobs the region's values read have succeeded,
their values are evaluated into the job's result (literal IR, read through ``{"out": key}``)."""
CATCH = "@catch"
"""The task name of a ``try`` statement's expansion job. Unlike every other job it waits for
its dependencies (the jobs of the ``try`` body) to *settle*, not to succeed: a failed or
skipped dependency neither skips it nor keeps it waiting. Its worker then runs the statement's
handler that matches the first failure in the body's order (or its ``else``) like an
expansion, and the failures a handler took become ``handled``."""
SYSTEM_TASKS = frozenset([EXPAND, JOIN, CATCH])


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
        """The template ``to_json`` wrote; :class:`MyceliumError` when ``data`` (read from a
        mycelium) is not one."""
        try:
            return msgspec.json.decode(data, type=Template)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise MyceliumError(f"a stored graph template is damaged ({exc})") from None

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
    reuse: bool = False
    """Every job of the run reuses results as the jobs of ``@task(cache=True)`` tasks do
    (``elfc run --reuse``): it takes the result of an earlier such job of the same task
    revision, elf and argument values, and records its own for later ones."""
