"""Binding-time analysis of a pipeline body, over its libcst tree.

Every expression is *static* (known at submission: arguments, literals, globals, plain calls
on static values), a *static structure* (a container built at submission whose elements may be
task results, e.g. ``parts`` after ``parts.append(elf.task(i))``), or *dynamic* (depends on a
task result). One walk over the function collects, per libcst node, what the builder must do
with it (a task call, a derive, an inlined pipeline, a loop region) and reports every
construct outside DESIGN §3 as a diagnostic. Loop bodies are walked until the bindings they
produce are stable.
"""

from __future__ import annotations

import builtins
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import libcst as cst

from elfc.compiler import diagnostics as dg
from elfc.compiler.elves import TaskInfo, elf_info
from elfc.compiler.source import FunctionSource, Positions
from elfc.decorators import Handle, is_elf, pipeline_function, pipeline_name, task_names
from elfc.model.ir import (
    CallNode,
    DeriveNode,
    Edge,
    InlineNode,
    InputNode,
    Node,
    OutputNode,
    Region,
    Span,
)
from elfc.model.methods import PURE_METHOD_NAMES, methods_of
from elfc.model.ops import BUILTINS, Op

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
    )


def _join_env(a: dict[str, Val], b: dict[str, Val]) -> dict[str, Val]:
    out = dict(a)
    for k, v in b.items():
        out[k] = join(out[k], v) if k in out else v
    return out


def _same_env(a: dict[str, Val], b: dict[str, Val]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].bt == b[k].bt and a[k].deps.keys() == b[k].deps.keys() for k in a
    )


class Analyzer:
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
        self.returns: list[tuple[cst.Return, Val]] = []
        self.muted: frozenset[str] = frozenset()

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
        if kind.code in self.muted:
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
        out: list[str] = []
        r = self.region
        while r is not None:
            out.append(r)
            r = self.out.regions[r].parent
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

    # ------------------------------------------------------------------ statements
    def block(self, body: cst.BaseSuite | Sequence[cst.BaseStatement]) -> None:
        stmts: Sequence[Any]
        if isinstance(body, cst.IndentedBlock | cst.SimpleStatementSuite):
            stmts = body.body
        else:
            stmts = body  # type: ignore[assignment]
        for s in stmts:
            self.statement(s)

    def statement(self, s: cst.CSTNode) -> None:
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                self.small(small)
            return
        handler = getattr(self, f"st_{type(s).__name__}", None)
        if handler is not None:
            handler(s)
        else:
            self.small(s)

    def small(self, s: cst.CSTNode) -> None:
        handler = getattr(self, f"st_{type(s).__name__}", None)
        if handler is not None:
            handler(s)
            return
        names = {
            cst.Try: ("try", "catch failures inside a @task; a failed job fails the run"),
            cst.TryStar: ("try", "catch failures inside a @task; a failed job fails the run"),
            cst.With: ("with", "open resources inside a @task (or in the elf's __init__)"),
            cst.Global: ("global", "return values from the pipeline instead of setting globals"),
            cst.Nonlocal: ("nonlocal", "return values from the pipeline instead"),
            cst.Match: ("match", "use `if` on static values, or decide inside a @task"),
            cst.ClassDef: ("class", "define classes at module level"),
        }
        kind = names.get(type(s))
        if kind is not None:
            self.report(dg.UNSUPPORTED_STATEMENT, s, construct=kind[0], fix=kind[1])

    def st_Pass(self, s: cst.Pass) -> None:
        pass

    st_Break = st_Continue = st_Pass

    def st_Import(self, s: cst.Import) -> None:
        for alias in s.names:
            name = alias.asname.name if alias.asname else alias.name
            if isinstance(name, cst.Name):
                self.env[name.value] = STATIC
            elif isinstance(name, cst.Attribute):
                root: cst.BaseExpression = name
                while isinstance(root, cst.Attribute):
                    root = root.value
                if isinstance(root, cst.Name):
                    self.env[root.value] = STATIC

    def st_ImportFrom(self, s: cst.ImportFrom) -> None:
        if isinstance(s.names, cst.ImportStar):
            return
        for alias in s.names:
            name = alias.asname.name if alias.asname else alias.name
            if isinstance(name, cst.Name):
                self.env[name.value] = STATIC

    def st_Expr(self, s: cst.Expr) -> None:
        val = self.expr(s.value)
        self.materialize(s.value, val)
        if isinstance(s.value, cst.Call) and self.out.rewrites.get(id(s.value), None):
            rw = self.out.rewrites[id(s.value)]
            if rw.kind == "task":
                node = self.out.nodes[rw.id]
                assert isinstance(node, CallNode)
                info = self._task_infos(node)
                ret = info[0].hints.get("return", MISSING) if info else MISSING
                if ret is not MISSING and ret is not None and ret is not type(None):
                    self.report(dg.UNUSED_RESULT, s.value, call=node.source)

    def st_Assign(self, s: cst.Assign) -> None:
        pairs = _parallel(s)
        if pairs is not None:
            # `x, y = a(), b()`: each name gets its own value (Python evaluates all first).
            vals = [self.materialize(v, self.expr(v)) for _, v in pairs]
            for (target, value), val in zip(pairs, vals, strict=True):
                self.assign(target, val, value)
            return
        val = self.materialize(s.value, self.expr(s.value))
        for t in s.targets:
            self.assign(t.target, val, s.value)

    def st_AnnAssign(self, s: cst.AnnAssign) -> None:
        if s.value is None:
            return
        val = self.materialize(s.value, self.expr(s.value))
        self.assign(s.target, val, s.value)

    def st_AugAssign(self, s: cst.AugAssign) -> None:
        target = s.target
        container = (
            self.expr(target.value) if isinstance(target, cst.Subscript | cst.Attribute) else None
        )
        tval = self.expr(target)
        vval = self.expr(s.value)
        if (container is not None and container.bt == D) or (tval.bt == D and _mutable(tval.tp)):
            # `m["k"] += 1` or `items += [x]` on a task result changes it in place.
            self.report(
                dg.MUTATES_DYNAMIC, s, construct="augmented assignment",
                what=f"`{self.code(target)}`",
            )  # fmt: skip
            self.materialize(s.value, vval)
            return
        if tval.bt < D and (vval.bt == S or tval.bt == C):
            self.materialize(s.value, vval)
            if isinstance(target, cst.Name) and vval.bt > S:
                self.env[target.value] = join(tval, replace(vval, bt=max(C, tval.bt)))
            return
        # `total += x` with a task result on either side rebinds: `total = total + x`.
        op = _aug_op(s.operator)
        ir = {Op.BIN: [op, Slot(target), self.ir_of(s.value, vval)]}
        val = Val(
            D, deps={**tval.deps, **vval.deps}, ir=ir, what=tval.what if tval.bt else vval.what
        )
        nid = self.derive(s, val, slot_root=s)
        if isinstance(target, cst.Name):
            self.env[target.value] = Val(D, deps={nid: target.value}, what=f"`{target.value}`")
        elif isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            name = target.value.value
            self.env[name] = join(self.env.get(name, STATIC), Val(C, deps={nid: name}))
        else:
            self.report(
                dg.DYNAMIC_MISPLACED, s, what=val.what, where="stored in an attribute",
                fix="keep task results in local variables and containers",
            )  # fmt: skip

    def assign(
        self, target: cst.BaseExpression, val: Val, value: cst.CSTNode, native: bool = False
    ) -> None:
        """Bind ``target``; ``native``: Python unpacks (loop targets over static structures)."""
        if isinstance(target, cst.Name):
            deps = {k: target.value for k in val.deps} if val.bt > S or val.deps else {}
            self.env[target.value] = replace(
                val,
                deps=deps or val.deps,
                what=f"`{target.value}`" if val.bt else val.what,
                ir=None,
            )
            return
        if isinstance(target, cst.Tuple | cst.List):
            if val.bt == D and not native:
                n = len(target.elements)
                if any(isinstance(e, cst.StarredElement) for e in target.elements):
                    self.report(
                        dg.DYNAMIC_MISPLACED, target, what=val.what, where="starred unpacking",
                        fix="unpack a fixed number of names, or index the value",
                    )  # fmt: skip
                    return
                self.out.unpacks[id(value)] = n
                for i, e in enumerate(target.elements):
                    tp = _element_type(val.tp, i)
                    self.assign(e.value, replace(val, tp=tp, ir=None), value)
                return
            positions = self.positions(value) if native else None
            if positions is not None and len(positions) != len(target.elements):
                positions = None
            for i, e in enumerate(target.elements):
                ev = replace(val, ir=None) if val.bt else STATIC
                if positions is not None:
                    ev = positions[i]
                self.assign(e.value, ev, value, native)
            return
        if isinstance(target, cst.Subscript | cst.Attribute):
            base = self.expr(target.value)
            if base.bt == D:
                self.report(
                    dg.MUTATES_DYNAMIC, target,
                    construct="item assignment" if isinstance(target, cst.Subscript)
                    else "attribute assignment",
                    what=f"`{self.code(target.value)}`",
                )  # fmt: skip
                return
            if isinstance(target, cst.Subscript):
                for el in target.slice:
                    for part in _slice_parts(el.slice):
                        self.materialize(part, self.expr(part))
            if val.bt > S:
                if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
                    name = target.value.value
                    self.env[name] = join(self.env.get(name, STATIC), replace(val, bt=C, ir=None))
                else:
                    self.report(
                        dg.DYNAMIC_MISPLACED, target, what=val.what,
                        where="stored in an attribute or a non-local container",
                        fix="keep task results in local variables and containers",
                    )  # fmt: skip
            return
        if isinstance(target, cst.StarredElement):
            self.assign(target.value, val, value, native)

    def positions(self, iterable: cst.CSTNode) -> list[Val] | None:
        """Per position, the elements of ``zip(a, b)`` / ``enumerate(a)`` in a loop header: a
        static list zipped with a list of task results keeps its own elements static."""
        if not isinstance(iterable, cst.Call) or any(a.star for a in iterable.args):
            return None
        func = iterable.func
        if isinstance(func, cst.Attribute) and func.attr.value == "items" and not iterable.args:
            recv = self.expr(func.value)
            if recv.bt == S and recv.mapping:  # `for name, handle in HANDLES.items()`
                return [Val(S, deps=recv.deps), Val(S, deps=recv.deps, handles=recv.members)]
        fn = self.static_callee(iterable)
        args = [a.value for a in iterable.args if a.keyword is None]
        if fn is zip and all(isinstance(a, cst.Name) for a in args):
            return [self.element(self.expr(a)) for a in args]
        if fn is enumerate and len(args) == 1 and isinstance(args[0], cst.Name):
            return [STATIC, self.element(self.expr(args[0]))]
        if fn is enumerate:
            return None if len(args) != 1 else [STATIC, self.element(Val(D))]
        return None

    @staticmethod
    def element(it: Val) -> Val:
        """An element of what a static loop iterates over."""
        if it.bt == C:
            return replace(it, bt=D, ir=None)
        return Val(S, deps=it.deps, handles=() if it.mapping else it.members)

    def st_Return(self, s: cst.Return) -> None:
        val = STATIC if s.value is None else self.materialize(s.value, self.expr(s.value))
        if s.value is not None:
            self.not_an_iterator(s.value, "a pipeline's result")
            if val.bt == D and val.tp is not Any:
                self.check_return(s.value, val)
        self.returns.append((s, val))

    def check_return(self, node: cst.BaseExpression, val: Val) -> None:
        """ELF123 when what the body returns certainly fails the return annotation."""
        try:
            declared = typing.get_type_hints(self.fn).get("return", Any)
        except Exception:  # unresolvable annotations: nothing to compare
            return
        if declared is Any:
            return
        from elfc.compiler import typerules as tys

        problem = tys.compatibility_problem(val.tp, declared)
        if problem:
            self.report(
                dg.RETURN_MISMATCH, node, problem=problem, name=self.fn.__name__,
                producer=val.producer or val.what,
            )  # fmt: skip

    def st_If(self, s: cst.If) -> None:
        test = self.materialize(s.test, self.expr(s.test))
        if test.bt == D:
            self.report(dg.BRANCH_ON_DYNAMIC, s.test, construct="if", what=test.what)
        before = dict(self.env)
        self.block(s.body)
        after_then = self.env
        self.env = dict(before)
        if isinstance(s.orelse, cst.If):
            self.st_If(s.orelse)
        elif isinstance(s.orelse, cst.Else):
            self.block(s.orelse.body)
        self.env = _join_env(after_then, self.env)

    def st_Assert(self, s: cst.Assert) -> None:
        test = self.materialize(s.test, self.expr(s.test))
        if test.bt == D:
            self.report(dg.BRANCH_ON_DYNAMIC, s.test, construct="assert", what=test.what)
        if s.msg is not None:
            self.materialize(s.msg, self.expr(s.msg))

    def st_Raise(self, s: cst.Raise) -> None:
        if s.exc is not None:
            # `raise ValueError(result)`: one problem, the raise, rather than also a call's.
            muted, self.muted = self.muted, frozenset({dg.CALL_WITH_DYNAMIC.code})
            val = self.expr(s.exc)
            self.muted = muted
            if val.bt > S:
                self.report(
                    dg.DYNAMIC_MISPLACED, s.exc, what=val.what, where="raise",
                    fix="raise inside a @task; a task exception fails its job",
                )  # fmt: skip

    def st_Del(self, s: cst.Del) -> None:
        self.report(
            dg.UNSUPPORTED_STATEMENT, s, construct="del",
            fix="rebind the name instead; values in a pipeline are never deleted",
        )  # fmt: skip

    def st_FunctionDef(self, s: cst.FunctionDef) -> None:
        self.captures(s, f"nested function `{s.name.value}`")
        self.env[s.name.value] = STATIC

    def st_For(self, s: cst.For) -> None:
        if s.asynchronous is not None:
            self.report(dg.UNSUPPORTED_STATEMENT, s, construct="async for", fix="use a plain `for`")
        it = self.iterable(s.iter, "for")
        if it is None:
            return
        header = f"for {self.code(s.target)} in {self.code(s.iter)}"
        rid = self.enter_region(s, header)
        self.out.rewrites[id(s.iter)] = Rewrite("loop", rid)
        element = self.element(it)

        def body() -> None:
            self.assign(s.target, element, s.iter, True)
            self.block(s.body)

        self.loop_body(body)
        self.region = self.out.regions[rid].parent
        self.check_bounded(rid, s.iter, header, _endless_iterable(s.iter, self.static_callee))
        if s.orelse is not None:
            self.block(s.orelse.body)

    def st_While(self, s: cst.While) -> None:
        test = self.materialize(s.test, self.expr(s.test))
        if test.bt == D:
            self.report(dg.BRANCH_ON_DYNAMIC, s.test, construct="while", what=test.what)
            return
        rid = self.enter_region(s, f"while {self.code(s.test)}")
        self.out.rewrites[id(s.test)] = Rewrite("while", rid)

        def body() -> None:
            t = self.materialize(s.test, self.expr(s.test))
            if t.bt == D:
                self.report(dg.BRANCH_ON_DYNAMIC, s.test, construct="while", what=t.what)
            self.block(s.body)

        self.loop_body(body)
        self.region = self.out.regions[rid].parent
        if _constant_true(s.test):
            why = "it ends only at a `break` taken at submission"
            self.check_bounded(rid, s.test, f"while {self.code(s.test)}", why)
        if s.orelse is not None:
            self.block(s.orelse.body)

    def iterable(self, node: cst.BaseExpression, construct: str) -> Val | None:
        """The value a loop iterates over; None (reported) when it is a task result."""
        if (
            isinstance(node, cst.Call)
            and self.static_callee(node) in (range, reversed)
            and not any(a.star for a in node.args)
        ):
            # `range(task result)`: one problem, the loop's, rather than also a call's.
            for a in node.args:
                v = self.materialize(a.value, self.expr(a.value))
                if v.bt == D:
                    self.report(dg.LOOP_OVER_DYNAMIC, node, construct=construct, what=v.what)
                    return None
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in ("items", "keys", "values")
            and not node.args
        ):
            recv = self.expr(node.func.value)
            if recv.bt == D:  # `for k, v in result.items()`: one problem, the loop's
                self.report(dg.LOOP_OVER_DYNAMIC, node, construct=construct, what=recv.what)
                return None
        it = self.materialize(node, self.expr(node))
        if it.bt == D:
            self.report(dg.LOOP_OVER_DYNAMIC, node, construct=construct, what=it.what)
            return None
        return it

    def not_an_iterator(self, node: cst.BaseExpression, target: str) -> None:
        """ELF121 when ``node`` makes an iterator (a generator, ``zip(...)``...): values cross
        into tasks and derives as JSON data, which an iterator is not."""
        lazy = isinstance(node, cst.GeneratorExp)
        if isinstance(node, cst.Call) and not lazy:
            func = node.func
            lazy = self.static_callee(node) in _ITERATOR_BUILTINS or (
                isinstance(func, cst.Attribute)
                and func.attr.value in ("keys", "values", "items")
                and not node.args
                and self.expr(func.value).bt != D
            )
        if lazy:
            self.report(dg.LAZY_ITERABLE, node, construct=self.code(node), target=target)

    def static_callee(self, call: cst.Call) -> Any:
        """The object a call's function names, when it is a static global (else MISSING)."""
        func = call.func
        if isinstance(func, cst.Name) and func.value not in self.env:
            return self.lookup_global(func.value)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            if func.value.value in self.env:
                return MISSING
            base = self.lookup_global(func.value.value)
            if isinstance(base, types.ModuleType):
                return getattr(base, func.attr.value, MISSING)
        return MISSING

    def check_bounded(self, rid: str, node: cst.CSTNode, header: str, why: str | None) -> None:
        """ELF203 when a loop that makes jobs has no bound known before submission."""
        if why is None:
            return
        if any(rid in self.out.chains.get(n, ()) for n in self.out.nodes):
            self.report(dg.UNBOUNDED_LOOP, node, construct=header, why=why)

    def enter_region(self, node: cst.CSTNode, header: str) -> str:
        rid = self.node_id(node, "L")
        self.out.regions[rid] = Region(
            id=rid, span=self.span(node), header=header, parent=self.region
        )
        self.region = rid
        return rid

    def loop_body(self, body: Any) -> None:
        for _ in range(4):
            before = dict(self.env)
            body()
            self.env = _join_env(before, self.env)
            if _same_env(before, self.env):
                break

    # ------------------------------------------------------------------ expressions
    def expr(self, node: cst.BaseExpression) -> Val:
        handler = getattr(self, f"ex_{type(node).__name__}", None)
        if handler is None:
            for child in node.children:
                if isinstance(child, cst.BaseExpression):
                    self.materialize(child, self.expr(child))
            return STATIC
        val: Val = handler(node)
        return val

    def ir_of(self, node: cst.BaseExpression, val: Val) -> Any:
        if val.derivable:
            return val.ir
        literal = _json_literal(node) if val.bt == S else MISSING
        return Slot(node) if literal is MISSING else literal

    def materialize(self, node: cst.BaseExpression, val: Val) -> Val:
        """Make a derivable expression a derive node of its own (its consumer is not IR)."""
        if not val.derivable:
            return val
        nid = self.derive(node, val)
        label = self.code(node)
        return replace(val, ir=None, deps={nid: label if len(label) <= 40 else label[:37] + "..."})

    def derive(self, node: cst.CSTNode, val: Val, slot_root: cst.CSTNode | None = None) -> str:
        nid = self.node_id(node)
        slots: list[cst.CSTNode] = []
        expr = _number_slots(val.ir, slots)
        self.add_node(
            DeriveNode(
                id=nid, expr=expr, span=self.span(node), region=self.region, source=self.code(node)
            )
        )
        self.out.rewrites[id(slot_root or node)] = Rewrite("derive", nid, tuple(slots))
        self.edges_into(nid, val)
        return nid

    def derived(self, ir: Any, *parts: Val, tp: Any = Any) -> Val:
        deps: dict[str, str] = {}
        for p in parts:
            deps.update(p.deps)
        what = next((p.what for p in parts if p.bt > S), "a task result")
        return Val(D, deps=deps, ir=ir, tp=tp, what=what)

    def ex_Name(self, node: cst.Name) -> Val:
        local = self.env.get(node.value)
        if local is not None:
            return local
        return self.global_value(self.lookup_global(node.value))

    def global_value(self, value: Any, deps: dict[str, str] | None = None) -> Val:
        """A module-level value: a handle, a collection of handles, or anything else."""
        deps = deps or {}
        if isinstance(value, Handle):
            self.out.handles[value.name] = value
            return Val(S, handles=(value,), static=value, deps=deps)
        mapping = isinstance(value, dict)
        items = value.values() if mapping else value
        if isinstance(value, list | tuple | set | frozenset | dict) and items:
            handles = list(items)
            if all(isinstance(h, Handle) for h in handles):
                for h in handles:
                    self.out.handles[h.name] = h
                members = tuple(dict.fromkeys(handles))
                return Val(S, static=value, deps=deps, members=members, mapping=mapping)
        return Val(S, static=value, deps=deps)

    def ex_Integer(self, node: cst.CSTNode) -> Val:
        return STATIC

    ex_Float = ex_Imaginary = ex_SimpleString = ex_Ellipsis = ex_Integer

    def ex_ConcatenatedString(self, node: cst.ConcatenatedString) -> Val:
        left = self.expr(node.left)
        right = self.expr(node.right)
        if left.bt == S and right.bt == S:
            return STATIC
        return self.derived(
            {Op.BIN: ["+", self.ir_of(node.left, left), self.ir_of(node.right, right)]}, left, right
        )

    def ex_FormattedString(self, node: cst.FormattedString) -> Val:
        parts: list[Any] = []
        vals: list[Val] = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append(_unescape(part.value))
                continue
            assert isinstance(part, cst.FormattedStringExpression)
            v = self.expr(part.expression)
            vals.append(v)
            spec: Any = None
            if part.format_spec:
                spec_node = cst.FormattedString(parts=part.format_spec)
                sv = self.expr(spec_node)
                vals.append(sv)
                spec = sv.ir if sv.derivable else _static_fmt_text(part.format_spec)
            parts.append([self.ir_of(part.expression, v), part.conversion, spec])
        if all(v.bt == S for v in vals):
            return STATIC
        return self.derived({Op.FMT: parts}, *vals, tp=str)

    def ex_Attribute(self, node: cst.Attribute) -> Val:
        base = self.expr(node.value)
        name = node.attr.value
        if base.bt == S:
            static = MISSING
            if base.static is not MISSING and isinstance(base.static, types.ModuleType):
                static = getattr(base.static, name, MISSING)
            return self.global_value(static, base.deps)
        if base.bt == C:
            return self.derived({Op.ATTR: [self.ir_of(node.value, base), name]}, base)
        from elfc.compiler import typerules as tys

        problem = tys.member_problem(base.tp, name, "attr") if base.tp is not Any else None
        if problem:
            self.report(dg.UNKNOWN_MEMBER, node.attr, problem=problem, producer=base.producer)
        # A typed result is a Python object when the derive reads it: the field is read by
        # its Python name. The position serves an untyped result (a JSON array).
        index = tys.attr_index(base.tp, name) if base.tp is not Any else None
        ir: list[Any] = [self.ir_of(node.value, base), name]
        if index is not None:
            ir.append(index)
        tp = tys.member_type(base.tp, name, "attr") if base.tp is not Any else Any
        return replace(self.derived({Op.ATTR: ir}, base, tp=tp), producer=base.producer)

    def ex_Subscript(self, node: cst.Subscript) -> Val:
        base = self.expr(node.value)
        keys: list[tuple[Any, Val]] = []
        for el in node.slice:
            sl = el.slice
            if isinstance(sl, cst.Index):
                v = self.expr(sl.value)
                keys.append((self.ir_of(sl.value, v), v))
            elif isinstance(sl, cst.Slice):
                bounds: list[Any] = []
                vs: list[Val] = []
                for b in (sl.lower, sl.upper, sl.step):
                    if b is None:
                        bounds.append(None)
                        continue
                    bv = self.expr(b)
                    vs.append(bv)
                    bounds.append(self.ir_of(b, bv))
                merged = vs[0] if vs else STATIC
                for extra in vs[1:]:
                    merged = join(merged, extra)
                keys.append((("slice", bounds), merged))
        kvals = [v for _, v in keys]
        if base.bt == S and all(v.bt == S for v in kvals):
            return Val(S, deps=base.deps, handles=base.members)
        if base.bt == C and all(v.bt == S for v in kvals):
            # An element of a static structure: Python picks it at submission.
            for el in node.slice:
                if isinstance(el.slice, cst.Index):
                    self.materialize(el.slice.value, self.expr(el.slice.value))
            sliced = any(isinstance(el.slice, cst.Slice) for el in node.slice)
            return replace(base, bt=C if sliced else D, ir=None, handles=(), static=MISSING)
        if len(keys) != 1:
            key_ir: Any = {Op.TUPLE: [k for k, _ in keys]}
        else:
            key_ir = keys[0][0]
        if isinstance(key_ir, tuple):
            lower, upper, step = key_ir[1]
            return self.derived(
                {Op.SLICE: [self.ir_of(node.value, base), lower, upper, step]}, base, *kvals,
                tp=base.tp,
            )  # fmt: skip
        tp: Any = Any
        if base.bt == D and base.tp is not Any:
            from elfc.compiler import typerules as tys

            literal = _literal_key(node)
            if literal is not MISSING:
                problem = tys.member_problem(base.tp, literal, "item")
                if problem:
                    self.report(dg.UNKNOWN_MEMBER, node, problem=problem, producer=base.producer)
                tp = tys.member_type(base.tp, literal, "item")
        val = self.derived({Op.ITEM: [self.ir_of(node.value, base), key_ir]}, base, *kvals, tp=tp)
        return replace(val, producer=base.producer)

    def ex_BinaryOperation(self, node: cst.BinaryOperation) -> Val:
        left = self.expr(node.left)
        right = self.expr(node.right)
        op = BIN_OPS[type(node.operator)]
        if left.bt == S and right.bt == S:
            return Val(S, deps={**left.deps, **right.deps})
        if op in "+*" and max(left.bt, right.bt) == C and D not in (left.bt, right.bt):
            self.materialize(node.left, left)
            self.materialize(node.right, right)
            return join(left, right)
        tp = left.tp if left.tp == right.tp and op in "+-*%" else Any
        operand_types = (
            left.tp if left.bt == D else _literal_type(node.left),
            right.tp if right.bt == D else _literal_type(node.right),
        )
        if Any not in operand_types:
            from elfc.compiler import typerules as tys

            problem, tp = tys.operation_problem(op, *operand_types)
            if problem:
                producer = left.producer if left.bt == D else right.producer
                self.report(
                    dg.BAD_OPERATION, node, expr=self.code(node), problem=problem,
                    producer=producer or "the task",
                )  # fmt: skip
        return self.derived(
            {Op.BIN: [op, self.ir_of(node.left, left), self.ir_of(node.right, right)]},
            left, right, tp=tp,
        )  # fmt: skip

    def ex_UnaryOperation(self, node: cst.UnaryOperation) -> Val:
        v = self.expr(node.expression)
        op = UNARY_OPS[type(node.operator)]
        if v.bt == S or (v.bt == C and op == "not"):
            return Val(S, deps=v.deps)
        return self.derived({Op.UNARY: [op, self.ir_of(node.expression, v)]}, v, tp=v.tp)

    def ex_BooleanOperation(self, node: cst.BooleanOperation) -> Val:
        op = "and" if isinstance(node.operator, cst.And) else "or"
        operands: list[cst.BaseExpression] = []

        def flatten(n: cst.BaseExpression) -> None:
            if (
                isinstance(n, cst.BooleanOperation)
                and isinstance(n.operator, type(node.operator))
                and not n.lpar
            ):
                flatten(n.left)
                flatten(n.right)
                return
            operands.append(n)

        flatten(node)
        vals = [self.expr(o) for o in operands]
        if all(v.bt == S for v in vals):
            return STATIC
        return self.derived(
            {op: [self.ir_of(o, v) for o, v in zip(operands, vals, strict=True)]}, *vals
        )

    def ex_Comparison(self, node: cst.Comparison) -> Val:
        left = self.expr(node.left)
        parts: list[Any] = [self.ir_of(node.left, left)]
        vals = [left]
        for target in node.comparisons:
            v = self.expr(target.comparator)
            vals.append(v)
            parts.append([CMP_OPS[type(target.operator)], self.ir_of(target.comparator, v)])
        if all(v.bt == S for v in vals):
            return STATIC
        return self.derived({Op.CMP: parts}, *vals, tp=bool)

    def ex_IfExp(self, node: cst.IfExp) -> Val:
        test = self.materialize(node.test, self.expr(node.test))
        if test.bt == D:
            self.report(
                dg.BRANCH_ON_DYNAMIC, node.test, construct="... if ... else ...", what=test.what
            )
        body = self.materialize(node.body, self.expr(node.body))
        orelse = self.materialize(node.orelse, self.expr(node.orelse))
        out = join(body, orelse)
        if body.handles and orelse.handles:
            out = replace(out, handles=tuple(dict.fromkeys(body.handles + orelse.handles)))
        return out

    def ex_NamedExpr(self, node: cst.NamedExpr) -> Val:
        val = self.materialize(node.value, self.expr(node.value))
        self.assign(node.target, val, node.value)
        return val

    def _display(self, elements: Sequence[cst.BaseElement]) -> Val:
        out = STATIC
        values = []
        for e in elements:
            v = self.materialize(e.value, self.expr(e.value))
            values.append(v)
            if isinstance(e, cst.StarredElement) and v.bt == D:
                self.report(
                    dg.DYNAMIC_MISPLACED, e, what=v.what, where="unpacked with *",
                    fix="add the task result as one element, or unpack it inside a @task",
                )  # fmt: skip
            if v.bt > S:
                out = join(out, replace(v, bt=C, ir=None))
        return self.collected(out, values, mapping=False)

    def collected(self, out: Val, values: list[Val], mapping: bool) -> Val:
        """``out``, knowing the handles a display of handles holds (``[left, right]``)."""
        if out.bt != S or not values or not all(v.handles for v in values):
            return out
        members = tuple(dict.fromkeys(h for v in values for h in v.handles))
        return replace(out, members=members, mapping=mapping)

    def ex_List(self, node: cst.List) -> Val:
        return self._display(node.elements)

    ex_Tuple = ex_Set = ex_List

    def ex_Dict(self, node: cst.Dict) -> Val:
        out = STATIC
        values = []
        for e in node.elements:
            if isinstance(e, cst.DictElement):
                k = self.materialize(e.key, self.expr(e.key))
                if k.bt > S:
                    self.report(
                        dg.DYNAMIC_MISPLACED, e.key, what=k.what, where="a dict key",
                        fix="use static keys in a pipeline; build dynamic keys inside a @task",
                    )  # fmt: skip
                v = self.materialize(e.value, self.expr(e.value))
                values.append(v)
            else:
                v = self.materialize(e.value, self.expr(e.value))
                values.append(replace(v, handles=v.members if v.mapping else ()))
                if v.bt == D:
                    self.report(
                        dg.DYNAMIC_MISPLACED, e, what=v.what, where="unpacked with **",
                        fix="add the task result as one value, or merge dicts inside a @task",
                    )  # fmt: skip
            if v.bt > S:
                out = join(out, replace(v, bt=C, ir=None))
        return self.collected(out, values, mapping=True)

    def _comprehension(self, node: Any, parts: Sequence[cst.BaseExpression]) -> Val:
        saved_env, saved_region = dict(self.env), self.region
        comp: cst.CompFor | None = node.for_in
        while comp is not None:
            it = self.iterable(comp.iter, "comprehension")
            if it is None:
                self.env, self.region = saved_env, saved_region
                return Val(D, what="a task result")
            header = f"for {self.code(comp.target)} in {self.code(comp.iter)}"
            rid = self.enter_region(comp, header)
            self.out.rewrites[id(comp.iter)] = Rewrite("loop", rid)
            element = self.element(it)
            self.assign(comp.target, element, comp.iter, True)
            for cond in comp.ifs:
                c = self.materialize(cond.test, self.expr(cond.test))
                if c.bt == D:
                    self.report(dg.BRANCH_ON_DYNAMIC, cond.test, construct="if", what=c.what)
            comp = comp.inner_for_in
        out = STATIC
        for p in parts:
            v = self.materialize(p, self.expr(p))
            if v.bt > S:
                out = join(out, replace(v, bt=C, ir=None))
        self.env, self.region = saved_env, saved_region
        return out

    def ex_ListComp(self, node: cst.ListComp) -> Val:
        return self._comprehension(node, [node.elt])

    ex_SetComp = ex_GeneratorExp = ex_ListComp

    def ex_DictComp(self, node: cst.DictComp) -> Val:
        return self._comprehension(node, [node.key, node.value])

    def ex_Lambda(self, node: cst.Lambda) -> Val:
        self.captures(node, "a lambda")
        return STATIC

    def ex_Await(self, node: cst.Await) -> Val:
        self.report(
            dg.UNSUPPORTED_STATEMENT, node, construct="await",
            fix="pipelines are synchronous; task calls already run concurrently as jobs",
        )  # fmt: skip
        return STATIC

    def ex_Yield(self, node: cst.Yield) -> Val:
        self.report(
            dg.UNSUPPORTED_STATEMENT, node, construct="yield",
            fix="return a list of values instead of yielding them",
        )  # fmt: skip
        return STATIC

    def captures(self, node: cst.CSTNode, construct: str) -> None:
        bound: set[str] = set()
        if isinstance(node, cst.Lambda | cst.FunctionDef):
            params = node.params
            for p in (*params.posonly_params, *params.params, *params.kwonly_params):
                bound.add(p.name.value)
        for n in _walk(node):
            if isinstance(n, cst.Name) and n.value not in bound:
                v = self.env.get(n.value)
                if v is not None and v.bt > S:
                    self.report(dg.CAPTURES_DYNAMIC, n, construct=construct, what=f"`{n.value}`")

    # ------------------------------------------------------------------ calls
    def ex_Call(self, node: cst.Call) -> Val:
        func = node.func
        if isinstance(func, cst.Attribute):
            recv = self.expr(func.value)
            return self.method_call(node, func, recv)
        fval = self.expr(func)
        if fval.bt > S:
            self.report(dg.CALL_WITH_DYNAMIC, node, func=self.code(func), what=fval.what)
            return Val(D, deps=fval.deps)
        target = fval.static
        inner = pipeline_function(target)
        if inner is not None:
            return self.inline_call(node, inner)
        args = [(a, self.expr(a.value)) for a in node.args]
        if _is_helper(target) and (
            _refers_to_handles(target) or any(v.handles or v.members for _, v in args)
        ):
            # A plain function of the user's that calls tasks: compiled like a pipeline, and
            # inlined (its static code runs at submission, its task calls become jobs).
            return self.inline_call(node, target)
        if is_elf(target):
            self._static_args(node, args, self.code(func))
            return Val(S, elf_class=target)
        name = func.value if isinstance(func, cst.Name) else ""
        is_builtin = name in BUILTINS and target is getattr(builtins, name, None)
        if all(v.bt == S for _, v in args):
            return Val(S, deps=_merged_deps(v for _, v in args))
        if name in STRUCTURAL_BUILTINS and target is getattr(builtins, name, None):
            keywords = {a.keyword.value for a, _ in args if a.keyword is not None}
            if all(v.bt < D for _, v in args) and keywords <= {"strict", "start"}:
                for a, v in args:
                    self.materialize(a.value, v)
                if name == "len":
                    return STATIC
                out = STATIC
                for _, v in args:
                    if v.bt > S:
                        out = join(out, replace(v, bt=C, ir=None))
                return out
        if is_builtin:
            return self.builtin_call(node, name, args)
        what = next(v.what for _, v in args if v.bt > S)
        self.report(dg.CALL_WITH_DYNAMIC, node, func=self.code(func), what=what)
        for a, v in args:
            self.materialize(a.value, v)
        return Val(D, deps=_merged_deps(v for _, v in args))

    def _static_args(self, node: cst.Call, args: list[tuple[cst.Arg, Val]], func: str) -> None:
        for a, v in args:
            self.materialize(a.value, v)
            if v.bt > S:
                self.report(dg.CALL_WITH_DYNAMIC, a, func=func, what=v.what)

    def builtin_call(self, node: cst.Call, name: str, args: list[tuple[cst.Arg, Val]]) -> Val:
        pos: list[Any] = []
        kws: dict[str, Any] = {}
        for a, v in args:
            if v.bt == C:  # a static iterator over task results is never made into data
                self.not_an_iterator(a.value, f"`{name}()` in a pipeline")
            if a.star:
                self.report(
                    dg.DYNAMIC_MISPLACED, a, what=v.what, where=f"*-unpacked into {name}()",
                    fix="pass the value itself",
                )  # fmt: skip
                continue
            if a.keyword is not None:
                if a.keyword.value == "key":
                    self.report(
                        dg.CALL_WITH_DYNAMIC, a, func=f"{name}(key=...)", what="a function",
                        help="a key function cannot travel as data; sort inside a @task",
                    )  # fmt: skip
                kws[a.keyword.value] = self.ir_of(a.value, v)
            else:
                pos.append(self.ir_of(a.value, v))
        call: list[Any] = [name, pos]
        if kws:
            call.append(kws)
        tp = {"len": int, "str": str, "int": int, "float": float, "bool": bool}.get(name, Any)
        return self.derived({Op.CALL: call}, *(v for _, v in args), tp=tp)

    def method_call(self, node: cst.Call, func: cst.Attribute, recv: Val) -> Val:
        method = func.attr.value
        if recv.handles:
            return self.task_call(node, func, recv)
        if recv.bt == S and recv.mapping and method in ("values", "get", "__getitem__"):
            for a in node.args:
                self.materialize(a.value, self.expr(a.value))
            if method == "values":
                return Val(S, deps=recv.deps, members=recv.members)
            return Val(S, deps=recv.deps, handles=recv.members)
        if recv.elf_class is not None or (recv.static is not MISSING and is_elf(recv.static)):
            cls = recv.elf_class or recv.static
            if method in task_names(cls):
                what = (
                    f"the class `{cls.__qualname__}` itself"
                    if recv.elf_class is None
                    else f"`{self.code(func.value)}`, an instance built in the pipeline"
                )
                self.report(
                    dg.TASK_ON_LOCAL_ELF, node, method=method, what=what, cls=cls.__qualname__
                )
                for a in node.args:
                    self.materialize(a.value, self.expr(a.value))
                return Val(D, what=f"`{self.code(node)}`")
        args = [(a, self.materialize(a.value, self.expr(a.value))) for a in node.args]
        if recv.bt != C and (recv.bt == D or any(v.bt > S for _, v in args)):
            pure = self.pure_method(node, func, recv, args)
            if pure is not None:
                return pure
        if recv.bt == D:
            kind = dg.MUTATES_DYNAMIC if method in MUTATORS else dg.METHOD_ON_DYNAMIC
            self.report(
                kind, node, method=method, what=f"`{self.code(func.value)}`",
                construct=f"`.{method}()`",
            )  # fmt: skip
            for a, v in args:
                self.materialize(a.value, v)
            return Val(D, deps=recv.deps, what=recv.what)
        dynamic_args = [v for _, v in args if v.bt > S]
        if recv.bt == C:
            for a, v in args:
                self.materialize(a.value, v)
            if method in STRUCTURE_MUTATORS:
                self._grow(func.value, dynamic_args)
                return STATIC
            if method in STRUCTURE_READERS:
                return replace(recv, bt=C if method != "get" else D, ir=None)
            self.report(
                dg.METHOD_ON_DYNAMIC, node, method=method, what=f"`{self.code(func.value)}`"
            )
            return Val(D, deps=recv.deps)
        if not dynamic_args:
            for a, v in args:
                self.materialize(a.value, v)
            return Val(S, deps=_merged_deps([recv, *(v for _, v in args)]))
        if method in STRUCTURE_MUTATORS and isinstance(func.value, cst.Name | cst.Subscript):
            for a, v in args:
                self.materialize(a.value, v)
            self._grow(func.value, dynamic_args)
            return STATIC
        self.report(dg.CALL_WITH_DYNAMIC, node, func=self.code(func), what=dynamic_args[0].what)
        return Val(D)

    def pure_method(
        self, node: cst.Call, func: cst.Attribute, recv: Val, args: list[tuple[cst.Arg, Val]]
    ) -> Val | None:
        """``recv.method(args)`` as a derive when it is a pure method of the receiver's type."""
        method = func.attr.value
        receiver_type = recv.tp if recv.bt == D else _literal_type(func.value)
        if isinstance(receiver_type, type) and receiver_type not in (object, Any):
            if method not in methods_of(receiver_type):
                return None
        elif method not in PURE_METHOD_NAMES:
            return None
        if any(a.star for a, _ in args):
            return None
        pos = [self.ir_of(a.value, v) for a, v in args if a.keyword is None]
        kws = {a.keyword.value: self.ir_of(a.value, v) for a, v in args if a.keyword is not None}
        body: list[Any] = [self.ir_of(func.value, recv), method, pos]
        if kws:
            body.append(kws)
        return self.derived({Op.METH: body}, recv, *(v for _, v in args))

    def _grow(self, container: cst.BaseExpression, added: list[Val]) -> None:
        """A local container received task results: it is now a static structure."""
        root = container
        while isinstance(root, cst.Subscript):
            root = root.value
        if not isinstance(root, cst.Name) or not added:
            return
        grown = self.env.get(root.value, STATIC)
        for v in added:
            grown = join(grown, replace(v, bt=C, ir=None))
        self.env[root.value] = replace(
            grown, bt=max(C, grown.bt), deps={k: root.value for k in grown.deps}
        )

    def inline_call(self, node: cst.Call, fn: Callable[..., Any]) -> Val:
        deps: dict[str, str] = {}
        for a in node.args:
            v = self.materialize(a.value, self.expr(a.value))
            deps.update(v.deps)
        nid = self.node_id(node)
        name = pipeline_name(fn)
        self.out.inlined[name] = fn
        self.add_node(
            InlineNode(
                id=nid, pipeline=name, revision="", span=self.span(node),
                region=self.region, source=self.code(node),
            )
        )  # fmt: skip
        self.out.rewrites[id(node)] = Rewrite("inline", nid)
        self.edges_into(nid, Val(S, deps=deps))
        return Val(D, deps={nid: fn.__name__}, what=f"`{self.code(node)}`")

    def task_call(self, node: cst.Call, func: cst.Attribute, recv: Val) -> Val:
        method = func.attr.value
        handles = recv.handles
        for h in handles:
            self.out.handles[h.name] = h
        missing = [h for h in handles if method not in elf_info(h.cls).tasks]
        if missing:
            h = missing[0]
            self.report(
                dg.NOT_A_TASK, func.attr, handle=h.name, method=method, cls=h.cls.__qualname__,
                tasks=", ".join(task_names(h.cls)) or "(it has none)",
            )  # fmt: skip
            for a in node.args:
                self.materialize(a.value, self.expr(a.value))
            return Val(D, what=f"`{self.code(node)}`")
        infos = [elf_info(h.cls).tasks[method] for h in handles]
        args = [(a, self.materialize(a.value, self.expr(a.value))) for a in node.args]
        for a, v in args:
            if a.star and v.bt == D:
                self.report(
                    dg.DYNAMIC_MISPLACED, a, what=v.what, where=f"unpacked with {a.star}",
                    fix="pass the task result as one argument, or index it",
                )  # fmt: skip
            elif not a.star:
                self.not_an_iterator(a.value, "a task")
        nid = self.node_id(node)
        self.bind_check(node, infos[0], args)
        deps: dict[str, str] = {}
        for _, v in args:
            deps.update(v.deps)
        source = self.code(node)
        for h, info in zip(handles, infos, strict=True):
            self.out.tasks[(h.name, method)] = info.revision
        self.add_node(
            CallNode(
                id=nid,
                handles=tuple(h.name for h in handles),
                task=method,
                revisions=tuple(i.revision for i in infos),
                args=(),
                kwargs={},
                span=self.span(node),
                region=self.region,
                source=source,
            )
        )
        self.out.rewrites[id(node)] = Rewrite("task", nid)
        self.edges_into(nid, Val(S, deps=deps))
        ret = infos[0].hints.get("return", Any) if len(infos) == 1 else Any
        label = f"{handles[0].name}.{method}" if len(handles) == 1 else method
        return Val(D, deps={nid: label}, tp=ret, what=f"`{source}`", producer=f"`{label}`")

    def bind_check(self, node: cst.Call, info: TaskInfo, args: list[tuple[cst.Arg, Val]]) -> None:
        if any(a.star for a, _ in args):
            return
        positional = [(a, v) for a, v in args if a.keyword is None]
        keywords = {a.keyword.value: (a, v) for a, v in args if a.keyword is not None}
        try:
            bound = info.signature.bind(None, *positional, **keywords)
        except TypeError as exc:
            problem, where = _binding_problem(info, [a for a, _ in args]) or (str(exc), None)
            self.report(
                dg.BAD_TASK_ARGUMENTS, where or node, call=f"`{self.code(node.func)}`",
                problem=problem, signature=f"{info.name}{_sig_text(info)}",
            )  # fmt: skip
            return
        from elfc.compiler import typerules as tys

        for pname, pair in bound.arguments.items():
            if not isinstance(pair, tuple) or pname not in info.hints:
                continue
            arg, v = pair
            tp = v.tp if v.bt == D else _literal_type(arg.value)
            if tp is Any:
                continue
            mismatch = tys.compatibility_problem(tp, info.hints[pname])
            if mismatch:
                self.report(
                    dg.TYPE_MISMATCH, arg, problem=mismatch, param=pname,
                    consumer=f"`{info.qualname}`",
                    producer=(v.producer or v.what) if v.bt == D else "a literal",
                )  # fmt: skip

    def _task_infos(self, node: CallNode) -> list[TaskInfo]:
        out = []
        for name in node.handles:
            h = self.out.handles.get(name)
            if h is not None:
                out.append(elf_info(h.cls).tasks[node.task])
        return out


def _binding_problem(info: TaskInfo, args: list[cst.Arg]) -> tuple[str, cst.CSTNode] | None:
    """For arguments that do not bind: an unknown keyword (with the name it was probably meant
    to be) or one positional argument too many, and the argument to point at; None when the
    problem is another (``inspect``'s message says it best)."""
    import difflib

    params = info.params
    kinds = {p.kind for p in params}
    by_name = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        for a in args:
            if a.keyword is not None and a.keyword.value not in by_name:
                close = difflib.get_close_matches(a.keyword.value, list(by_name), 1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                return f"unexpected keyword argument `{a.keyword.value}`{hint}", a
    slots = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    positional = [a for a in args if a.keyword is None]
    if len(positional) > len(slots) and inspect.Parameter.VAR_POSITIONAL not in kinds:
        given = len(positional)
        return (
            f"too many positional arguments: it takes {len(slots)}, {given} given",
            positional[len(slots)],
        )
    return None


def _literal_type(node: cst.BaseExpression) -> Any:
    """The type of a literal argument (``3``, ``"x"``, ``True``, ``None``), else ``Any``."""
    if isinstance(node, cst.Integer):
        return int
    if isinstance(node, cst.Float):
        return float
    if isinstance(node, cst.SimpleString):
        return bytes if "b" in node.prefix.lower() else str
    if isinstance(node, cst.FormattedString):
        return str
    if isinstance(node, cst.Name) and node.value in ("True", "False"):
        return bool
    if isinstance(node, cst.Name) and node.value == "None":
        return None
    return Any


def _sig_text(info: TaskInfo) -> str:
    params = list(info.signature.parameters.values())[1:]
    return str(info.signature.replace(parameters=params))


def _json_literal(node: cst.BaseExpression) -> Any:
    """The value of a JSON scalar literal (``3``, ``"cat"``, ``True``, ``None``), else MISSING:
    such literals go into a derive's IR as themselves rather than as slots."""
    if isinstance(node, cst.Integer | cst.Float) and not node.lpar:
        return node.evaluated_value
    if isinstance(node, cst.SimpleString) and not node.lpar and "b" not in node.prefix.lower():
        text = node.evaluated_value
        return text if isinstance(text, str) else MISSING
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    return MISSING


def _merged_deps(vals: Iterable[Val]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in vals:
        out.update(v.deps)
    return out


def _slice_parts(sl: cst.BaseSlice) -> list[cst.BaseExpression]:
    if isinstance(sl, cst.Index):
        return [sl.value]
    if isinstance(sl, cst.Slice):
        return [b for b in (sl.lower, sl.upper, sl.step) if b is not None]
    return []


_ITERATOR_BUILTINS = (zip, enumerate, reversed, map, filter, iter, range)


def _constant_true(test: cst.BaseExpression) -> bool:
    """``while True:``, ``while 1:``: a loop that only a ``break`` ends."""
    if isinstance(test, cst.Name):
        return test.value == "True"
    if isinstance(test, cst.Integer | cst.SimpleString):
        return bool(test.evaluated_value)
    return False


def _endless_iterable(node: cst.BaseExpression, callee: Any) -> str | None:
    """Why iterating ``node`` never ends by itself (``itertools.count()``...), else None."""
    if not isinstance(node, cst.Call):
        return None
    import itertools

    fn = callee(node)
    positional = [a for a in node.args if a.keyword is None and not a.star]
    keywords = {a.keyword.value for a in node.args if a.keyword is not None}
    if fn is itertools.count or fn is itertools.cycle:
        return f"`itertools.{fn.__name__}()` never ends; only a `break` stops the loop"
    if fn is itertools.repeat and len(positional) < 2 and "times" not in keywords:
        return "`itertools.repeat()` without `times` never ends; only a `break` stops the loop"
    if fn is iter and len(positional) == 2:
        return "`iter(function, sentinel)` runs until the function returns the sentinel"
    return None


def _mutable(tp: Any) -> bool:
    """True when values of ``tp`` are changed in place by augmented assignment or methods."""
    import dataclasses
    import typing

    import msgspec

    cls = typing.get_origin(tp) or tp
    if not isinstance(cls, type):
        return False
    if issubclass(cls, list | dict | set | bytearray) or typing.is_typeddict(cls):
        return True
    if dataclasses.is_dataclass(cls):
        params = getattr(cls, "__dataclass_params__", None)
        return not getattr(params, "frozen", False)
    if issubclass(cls, msgspec.Struct):
        return not cls.__struct_config__.frozen
    return False


def _aug_op(op: cst.BaseAugOp) -> str:
    name = type(op).__name__.removesuffix("Assign")
    for k, v in BIN_OPS.items():
        if k.__name__ == name:
            return v
    raise KeyError(name)


def _element_type(tp: Any, i: int) -> Any:
    args = getattr(tp, "__args__", None)
    origin = getattr(tp, "__origin__", None)
    if origin is tuple and args and i < len(args) and args[-1] is not Ellipsis:
        return args[i]
    return Any


def _is_call_to(node: cst.CSTNode, name: str) -> bool:
    return (
        isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == name
    )


def _literal_key(node: cst.Subscript) -> Any:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return MISSING
    v = node.slice[0].slice.value
    if isinstance(v, cst.SimpleString):
        return v.evaluated_value
    if isinstance(v, cst.Integer):
        return v.evaluated_value
    return MISSING


def _number_slots(ir: Any, slots: list[cst.CSTNode]) -> Any:
    if isinstance(ir, Slot):
        slots.append(ir.node)
        return {Op.SLOT: len(slots) - 1}
    if isinstance(ir, dict):
        return {k: _number_slots(v, slots) for k, v in ir.items()}
    if isinstance(ir, list):
        return [_number_slots(v, slots) for v in ir]
    return ir


def _unescape(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}")


def _static_fmt_text(parts: Sequence[cst.BaseFormattedStringContent]) -> str:
    return "".join(_unescape(p.value) for p in parts if isinstance(p, cst.FormattedStringText))


def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children)


def _is_helper(target: Any) -> bool:
    """A plain ``def`` of the user's code (not elfc's, not a builtin, not a class)."""
    return (
        isinstance(target, types.FunctionType)
        and not target.__module__.startswith("elfc.")
        and target.__code__.co_flags & inspect.CO_GENERATOR == 0
    )


def _refers_to_handles(fn: types.FunctionType) -> bool:
    """Whether ``fn``'s code reads a global that is an elf handle or a pipeline."""
    scope = fn.__globals__
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        for name in code.co_names:
            value = scope.get(name)
            if isinstance(value, Handle) or pipeline_function(value) is not None:
                return True
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return False


def _parallel(s: cst.Assign) -> list[tuple[cst.BaseExpression, cst.BaseExpression]] | None:
    """The (target, value) pairs of ``x, y = a, b`` (one target, displays of equal length)."""
    if len(s.targets) != 1:
        return None
    target, value = s.targets[0].target, s.value
    if not isinstance(target, cst.Tuple | cst.List) or not isinstance(value, cst.Tuple | cst.List):
        return None
    if len(target.elements) != len(value.elements):
        return None
    elements = [*target.elements, *value.elements]
    if any(isinstance(e, cst.StarredElement) for e in elements):
        return None
    return [(t.value, v.value) for t, v in zip(target.elements, value.elements, strict=True)]
