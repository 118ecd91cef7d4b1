"""Expressions: names, literals, operators, displays and comprehensions; derives and their IR."""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import libcst as cst

from elfc.compiler import diagnostics as dg
from elfc.compiler.analysis.calls import literal_type
from elfc.compiler.analysis.core import Core
from elfc.compiler.analysis.values import (
    BIN_OPS,
    CMP_OPS,
    MISSING,
    STATIC,
    UNARY_OPS,
    C,
    D,
    Rewrite,
    S,
    Slot,
    Val,
    join,
)
from elfc.decorators import Handle
from elfc.model.ir import (
    DeriveNode,
)
from elfc.model.ops import Op


class Expressions(Core):
    def expr(self, node: cst.BaseExpression) -> Val:
        handler = self.expression_handlers.get(type(node))
        if handler is None:
            for child in node.children:
                if isinstance(child, cst.BaseExpression):
                    self.materialize(child, self.expr(child))
            return STATIC
        val: Val = handler(self, node)
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
            left.tp if left.bt == D else literal_type(node.left),
            right.tp if right.bt == D else literal_type(node.right),
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
        test = self.expr(node.test)
        if test.bt == D:
            calls = [n for part in (node.body, node.orelse) for n in _walk(part)]
            if any(isinstance(n, cst.Await | cst.Yield) for n in calls):
                self.report(
                    dg.BRANCH_ON_DYNAMIC, node.test, construct="... if ... else ...",
                    what=test.what, help="write it as an `if` statement",
                )  # fmt: skip
                return Val(D, what=test.what)
            if any(isinstance(n, cst.Call) for n in calls):
                # Calls in the arms run only in the arm taken: a branch region.
                return self.dynamic_conditional(node)
            # Only the arm taken is evaluated, as in Python: one derive over both.
            body, orelse = self.expr(node.body), self.expr(node.orelse)
            tp = body.tp if body.tp == orelse.tp else Any
            ir = {Op.IF: [self.ir_of(node.test, test), self.ir_of(node.body, body),
                          self.ir_of(node.orelse, orelse)]}  # fmt: skip
            return self.derived(ir, test, body, orelse, tp=tp)
        test = self.materialize(node.test, test)
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
        first = node.for_in
        probe = self.probe(first.iter)
        if probe.bt == D:
            return self.dynamic_comprehension(node, first, probe, list(parts))
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
