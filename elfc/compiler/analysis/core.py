"""The analyzer's shared state and bookkeeping, and its dispatch tables.

``Core`` holds what every part of the walk reads and writes (the environment of local names,
the current loop region, node ids, the ``Analysis`` being built, diagnostics) and the entry
point ``run``. The statement, expression and call mixins derive from it; each handler is a
method named after the libcst node type it handles (``st_For``, ``ex_Call``), and the tables
mapping node type -> handler are built once per class, when it is created.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from elfc.compiler import diagnostics as dg
from elfc.compiler.analysis.values import (
    MISSING,
    Analysis,
    S,
    Val,
)
from elfc.compiler.elves import TaskInfo
from elfc.compiler.source import FunctionSource, Positions
from elfc.model.ir import (
    CallNode,
    Edge,
    InputNode,
    Node,
    OutputNode,
    Span,
)

Handler = Callable[[Any, Any], Any]
"""An unbound ``st_*`` or ``ex_*`` method: ``handler(analyzer, node)``."""


def handlers(cls: type, prefix: str) -> dict[type[cst.CSTNode], Handler]:
    """``{cst.For: cls.st_For, ...}`` for every method of ``cls`` named ``prefix`` + a node type."""
    table: dict[type[cst.CSTNode], Handler] = {}
    for name in dir(cls):
        if name.startswith(prefix):
            type_name = name.removeprefix(prefix)
            node_type = getattr(cst, type_name, None)
            if not (isinstance(node_type, type) and issubclass(node_type, cst.CSTNode)):
                raise TypeError(
                    f"{cls.__qualname__}.{name}: libcst has no node type {type_name!r}; "
                    f"name the handler {prefix}<libcst node class>"
                )
            table[node_type] = getattr(cls, name)
    return table


class Core:
    statement_handlers: ClassVar[dict[type[cst.CSTNode], Handler]] = {}
    expression_handlers: ClassVar[dict[type[cst.CSTNode], Handler]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.statement_handlers = handlers(cls, "st_")
        cls.expression_handlers = handlers(cls, "ex_")

    def __init__(
        self,
        fn: Any,
        source: FunctionSource,
        module: cst.Module,
        fndef: cst.FunctionDef,
        positions: Positions,
    ) -> None:
        self.fn = fn
        self.source = source
        self.module = module
        self.fndef = fndef
        self.pos = positions
        self.globals: dict[str, Any] = fn.__globals__
        self.closure: dict[str, Any] = {}
        code = fn.__code__
        for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
            try:
                self.closure[name] = cell.cell_contents
            except ValueError:
                self.closure[name] = MISSING
        self.out = Analysis()
        self.ids: dict[int, str] = {}
        self.counts: dict[str, int] = {}
        self.env: dict[str, Val] = {}
        self.region: str | None = None
        self.place = "top"
        self.returns: list[tuple[cst.Return, Val]] = []
        self.muted: frozenset[str] = frozenset()
        self.applying: set[int] = set()
        """The calls being analysed as their own call regions (their arguments known)."""

    if TYPE_CHECKING:
        # What one concern calls in another: defined by the mixins Analyzer combines.
        def block(self, body: cst.BaseSuite | Sequence[cst.BaseStatement]) -> None: ...
        def assign(
            self, target: cst.BaseExpression, val: Val, value: cst.CSTNode, native: bool = False
        ) -> None: ...
        def iterable(self, node: cst.BaseExpression, construct: str) -> Val | None: ...
        def not_an_iterator(self, node: cst.BaseExpression, target: str) -> None: ...
        def enter_region(self, node: cst.CSTNode, header: str) -> str: ...
        @staticmethod
        def element(it: Val) -> Val: ...
        def expr(self, node: cst.BaseExpression) -> Val: ...
        def ir_of(self, node: cst.BaseExpression, val: Val) -> Any: ...
        def materialize(self, node: cst.BaseExpression, val: Val) -> Val: ...
        def derive(
            self, node: cst.CSTNode, val: Val, slot_root: cst.CSTNode | None = None
        ) -> str: ...
        def derived(self, ir: Any, *parts: Val, tp: Any = Any) -> Val: ...
        def captures(self, node: cst.CSTNode, construct: str) -> None: ...
        def probe(self, node: cst.BaseExpression) -> Val: ...
        def dynamic_conditional(self, node: cst.IfExp) -> Val: ...
        def apply_region(self, node: cst.Call, target: Any) -> Val: ...
        def deciding_names(self, node: cst.CSTNode) -> list[str]: ...
        def hoisted_arguments(self) -> contextlib.AbstractContextManager[None]: ...
        def statement(self, s: cst.CSTNode) -> None: ...
        def loop_body(self, body: Any) -> None: ...

        hoist: dict[str, Val] | None

        def dynamic_comprehension(
            self, node: Any, comp: cst.CompFor, it: Val, parts: list[Any]
        ) -> Val: ...
        def _task_infos(self, node: CallNode) -> list[TaskInfo]: ...

    # ------------------------------------------------------------------ helpers
    def span(self, node: cst.CSTNode) -> Span:
        if isinstance(node, cst.Arg):
            return self._arg_span(node)
        return self.pos.span(node)

    def _arg_span(self, arg: cst.Arg) -> Span:
        """``key=value`` and ``*value`` whole (positions only know the value)."""
        value = self.pos.span(arg.value)
        width = 0
        if arg.keyword is not None and isinstance(arg.equal, cst.AssignEqual):
            width = len(arg.keyword.value) + len(self.module.code_for_node(arg.equal))
        elif arg.star:
            width = len(arg.star) + len(self.module.code_for_node(arg.whitespace_after_star))
        if width == 0 or width >= value.column:
            return value
        return Span(value.path, value.line, value.column - width, value.end_line, value.end_column)

    def code(self, node: cst.CSTNode) -> str:
        raw = self.pos.text(node)
        if raw is None:
            raw = self.module.code_for_node(node)
        text = " ".join(raw.split())
        return text if len(text) <= 80 else text[:77] + "..."

    def report(self, kind: dg.Kind, node: cst.CSTNode, help: str | None = None, **f: Any) -> None:
        if kind.code in self.muted or "*" in self.muted:
            return
        d = kind.at(self.span(node), help=help, **f)
        self.out.diagnostics.setdefault((d.code, d.line, d.column), d)

    def node_id(self, node: cst.CSTNode, prefix: str = "n") -> str:
        nid = self.ids.get(id(node))
        if nid is None:
            count = self.counts[prefix] = self.counts.get(prefix, 0) + 1
            nid = self.ids[id(node)] = f"{prefix}{count}"
        return nid

    def chain(self) -> tuple[str, ...]:
        """The loops around the current place whose index tells its jobs apart."""
        out: list[str] = []
        r = self.region
        while r is not None:
            region = self.out.regions[r]
            if region.indexed:
                out.append(r)
            r = region.parent
        return tuple(reversed(out))

    def add_node(self, node: Node) -> None:
        self.out.nodes[node.id] = node
        if not isinstance(node, InputNode | OutputNode):
            self.out.chains[node.id] = self.chain()

    def edges_into(self, target: str, val: Val) -> None:
        for src, label in val.deps.items():
            self.out.edges.add(Edge(src, target, label))

    def lookup_global(self, name: str) -> Any:
        if name in self.closure:
            return self.closure[name]
        if name in self.globals:
            return self.globals[name]
        return getattr(builtins, name, MISSING)

    # ------------------------------------------------------------------ entry
    def run(self) -> Analysis:
        if self.fndef.asynchronous is not None:
            self.report(dg.ASYNC_PIPELINE, self.fndef, name=self.fndef.name.value)
        self.inputs()
        self.block(self.fndef.body)
        self.output()
        return self.out

    def inputs(self) -> None:
        for p in self._params():
            nid = f"in:{p.name.value}"
            self.add_node(
                InputNode(
                    id=nid,
                    name=p.name.value,
                    annotation=self.code(p.annotation.annotation) if p.annotation else "",
                    default=self.code(p.default) if p.default is not None else None,
                    span=self._param_span(p),
                )
            )
            self.env[p.name.value] = Val(S, deps={nid: p.name.value}, what=f"`{p.name.value}`")

    def _params(self) -> Iterator[cst.Param]:
        ps = self.fndef.params
        yield from ps.posonly_params
        yield from ps.params
        if isinstance(ps.star_arg, cst.Param):
            yield ps.star_arg
        yield from ps.kwonly_params
        if ps.star_kwarg is not None:
            yield ps.star_kwarg

    def _param_span(self, p: cst.Param) -> Span:
        inner = [x for x in (p.annotation and p.annotation.annotation, p.default) if x is not None]
        base = self.span(self.fndef)
        if inner:
            s = self.span(inner[0])
            return Span(s.path, s.line, max(1, s.column - len(p.name.value) - 2), s.line, s.column)
        return Span(base.path, base.line, base.column, base.line, base.column + 3)

    def output(self) -> None:
        if not self.returns:
            return
        node, _ = self.returns[0]
        deps: dict[str, str] = {}
        for _, v in self.returns:
            deps.update(v.deps)
        self.add_node(OutputNode(id="out", span=self.span(node), source=self.code(node)))
        self.edges_into("out", Val(S, deps=deps))
