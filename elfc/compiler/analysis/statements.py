"""Statements: assignments and their targets, control flow, loops and the regions they open."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import libcst as cst

from elfc.compiler import diagnostics as dg
from elfc.compiler.analysis.control import Control
from elfc.compiler.analysis.values import (
    BIN_OPS,
    MISSING,
    STATIC,
    C,
    D,
    Rewrite,
    S,
    Slot,
    Val,
    join,
    join_env,
    same_env,
)
from elfc.model.ir import (
    CallNode,
    Region,
)
from elfc.model.ops import Op

UNSUPPORTED_STATEMENTS: dict[type[cst.CSTNode], tuple[str, str]] = {
    cst.TryStar: ("try ... except*", "catch exception groups inside a @task; use `except`"),
    cst.With: ("with", "open resources inside a @task (or in the elf's __init__)"),
    cst.Global: ("global", "return values from the pipeline instead of setting globals"),
    cst.Nonlocal: ("nonlocal", "return values from the pipeline instead"),
    cst.Match: ("match", "use `if` on static values, or decide inside a @task"),
    cst.ClassDef: ("class", "define classes at module level"),
}
"""Statements outside DESIGN §3: the construct's name and what to do instead."""


class Statements(Control):
    def block(self, body: cst.BaseSuite | Sequence[cst.BaseStatement]) -> None:
        stmts: Sequence[Any]
        if isinstance(body, cst.IndentedBlock | cst.SimpleStatementSuite):
            stmts = body.body
        else:
            stmts = body  # type: ignore[assignment]
        for i, s in enumerate(stmts):
            if isinstance(s, cst.If) and self.carries(s):
                # A branch on a task result with a `continue`: the rest of the loop's body
                # runs in its region (what follows a taken `continue` never runs).
                self.dynamic_if(s, rest=list(stmts[i + 1 :]))
                return
            self.statement(s)

    def statement(self, s: cst.CSTNode) -> None:
        if isinstance(s, cst.SimpleStatementLine):
            for small in s.body:
                self.small(small)
            return
        handler = self.statement_handlers.get(type(s))
        if handler is not None:
            handler(self, s)
        else:
            self.small(s)

    def small(self, s: cst.CSTNode) -> None:
        handler = self.statement_handlers.get(type(s))
        if handler is not None:
            handler(self, s)
            return
        kind = UNSUPPORTED_STATEMENTS.get(type(s))
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
        if self._dynamic_test(s.test):
            self.dynamic_if(s)
            return
        self.materialize(s.test, self.expr(s.test))
        before, place = dict(self.env), self.place
        self.place = "nested"
        self.block(s.body)
        after_then = self.env
        self.env = dict(before)
        if isinstance(s.orelse, cst.If):
            self.st_If(s.orelse)
        elif isinstance(s.orelse, cst.Else):
            self.block(s.orelse.body)
        self.env = join_env(after_then, self.env)
        self.place = place

    def st_Try(self, s: cst.Try) -> None:
        if self.dynamic_body(s.body):
            self.dynamic_try(s)
            return
        # Nothing in the body exists only at run time: Python's own `try`, at submission.
        before, place = dict(self.env), self.place
        self.place = "nested"
        self.block(s.body)
        after_body = self.env
        ends = [after_body]
        for h in s.handlers:
            self.env = join_env(before, after_body)
            if h.type is not None:
                self.materialize(h.type, self.expr(h.type))
            if h.name is not None:
                self.assign(h.name.name, STATIC, h)
            self.block(h.body)
            ends.append(self.env)
        if s.orelse is not None:
            self.env = dict(after_body)
            self.block(s.orelse.body)
            ends[0] = self.env
        env = ends[0]
        for e in ends[1:]:
            env = join_env(env, e)
        self.env = env
        if s.finalbody is not None:
            self.block(s.finalbody.body)
        self.place = place

    def _dynamic_test(self, test: cst.BaseExpression) -> bool:
        """True when ``test`` depends on a task result (analysed without recording it)."""
        return self.probe(test).bt == D

    def st_Assert(self, s: cst.Assert) -> None:
        if self._dynamic_test(s.test):
            self.dynamic_assert(s)
            return
        self.materialize(s.test, self.expr(s.test))
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
        probe = self.probe(s.iter)
        if probe.bt == D:
            self.dynamic_for(s, probe)
            return
        it = self.iterable(s.iter, "for")
        if it is None:
            return
        header = f"for {self.code(s.target)} in {self.code(s.iter)}"
        rid = self.enter_region(s, header)
        self.out.rewrites[id(s.iter)] = Rewrite("loop", rid)
        element = self.element(it)

        place, self.place = self.place, "loop"

        def body() -> None:
            self.assign(s.target, element, s.iter, True)
            self.block(s.body)

        self.loop_body(body)
        self.place = place
        self.region = self.out.regions[rid].parent
        self.check_bounded(rid, s.iter, header, _endless_iterable(s.iter, self.static_callee))
        if s.orelse is not None:
            self.block(s.orelse.body)

    def st_While(self, s: cst.While) -> None:
        if self._dynamic_test(s.test) or self._becomes_dynamic(s):
            self.dynamic_while(s)
            return
        self.materialize(s.test, self.expr(s.test))
        rid = self.enter_region(s, f"while {self.code(s.test)}")
        self.out.rewrites[id(s.test)] = Rewrite("while", rid)
        place, self.place = self.place, "loop"

        def body() -> None:
            self.materialize(s.test, self.expr(s.test))
            self.block(s.body)

        self.loop_body(body)
        self.place = place
        self.region = self.out.regions[rid].parent
        if _constant_true(s.test):
            why = "it ends only at a `break` taken at submission"
            self.check_bounded(rid, s.test, f"while {self.code(s.test)}", why)
        if s.orelse is not None:
            self.block(s.orelse.body)

    def _becomes_dynamic(self, s: cst.While) -> bool:
        """True when an iteration of ``s`` makes its test depend on a task result (``done =
        False`` before the loop, ``done = shop.check()`` in it). The body is walked on a copy
        of the bindings; its records are made again by the walk that follows."""
        saved_env, saved_place = dict(self.env), self.place
        try:
            with self.dry():
                self.place = "loop"
                self.block(s.body)
                return self.expr(s.test).bt == D
        finally:
            self.env, self.place = saved_env, saved_place

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
            self.env = join_env(before, self.env)
            if same_env(before, self.env):
                break


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
