"""Regions: the parts of a builder that run when a task result they decide on exists.

The rewriter marks each statement whose decision is a task result: an ``if``'s test becomes
``__elfc__.decide(rid, test)`` (an ``assert`` too), a ``for``'s iterable
``__elfc__.each(rid, iterable)``, a ``while``'s test ``__elfc__.poll(rid, test)``, and so does
the first iterable of a comprehension. This pass (on Python's ``ast`` of the rewritten
function, so every statement keeps its own line) turns each marked statement into a function
of its own, the *region function* ``__elfc_<rid>(__elfc__, __elfc_d, __elfc_i, *names)``:
``__elfc_d`` is the decision's value, ``__elfc_i`` the iteration a ``while`` starts at, and
``names`` the variables of the pipeline the region reads or writes, passed in and (unless the
region ends the pipeline) handed back. The statement is replaced by a call of
``__elfc__.region``, which runs the function at once when the decision is known (at
submission: a static value; in an expansion: an element of the loop being expanded) and
otherwise makes an expansion job and hands back placeholders for the region's values.

A region function has no free variables, so the process that expands it finds it by name in
the builder's code and builds it with the pipeline's globals: nothing of it is stored.

A region that contains a ``return`` ends the pipeline: the statements after it move into it
(into both arms of a branch), so that what follows a taken ``return`` never runs; such a
region's value is the pipeline's. A branch holding a ``continue`` of the loop around it takes
the rest of that loop's body in the same way. The analysis refuses the cases this cannot
express (see ``statements.py``).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator

from elfc.compiler.lower import BUILDER

MARKERS = {"decide": "if", "each": "for", "poll": "while", "apply": "call"}
DECISION, ITERATION, COUNTER = "__elfc_d", "__elfc_i", "__elfc_n"
CAUGHT, THROWN = "__elfc_e", "__elfc_x"
SYNTHETIC = frozenset([BUILDER, DECISION, ITERATION, COUNTER, CAUGHT, THROWN])


def region_function_name(rid: str) -> str:
    return f"__elfc_{rid}"


def extract(fn: ast.FunctionDef, tries: dict[int, str] | None = None) -> None:
    """Turn every marked statement and comprehension of builder ``fn`` into a region;
    ``tries``: the first line of each ``try`` around task calls -> its region id."""
    names = _local_names(fn)
    fn.body = _Pass(names, tries or {}).block(fn.body, top=True, loop=False)
    ast.fix_missing_locations(fn)


class _Pass:
    def __init__(self, local_names: set[str], tries: dict[int, str]) -> None:
        self.local_names = local_names
        self.tries = tries

    # -- blocks ------------------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt], top: bool, loop: bool) -> list[ast.stmt]:
        """``stmts`` with their regions extracted; ``top``: a ``return`` here ends the
        pipeline's code (nothing follows the block); ``loop``: the block is a loop's body."""
        out: list[ast.stmt] = []
        for i, s in enumerate(stmts):
            out.extend(self.comprehensions(s))
            if isinstance(s, ast.Try) and s.lineno in self.tries:
                tail = _returns(s)
                rest = stmts[i + 1 :] if tail else []
                out.extend(self.try_region(s, self.tries[s.lineno], rest, tail))
                if rest:
                    break
                continue
            marked = _marker(s)
            if marked is None:
                self.inner_blocks(s, top=False)
                out.append(s)
                continue
            kind, rid, decision = marked
            tail = _returns(s)
            carry = kind == "if" and _continues(s)
            rest = stmts[i + 1 :] if tail or carry else []
            out.extend(self.region(s, kind, rid, decision, rest, tail, carry, loop))
            if rest:
                break
        return out

    def inner_blocks(self, s: ast.stmt, top: bool) -> None:
        is_loop = isinstance(s, ast.For | ast.AsyncFor | ast.While)
        for attr in ("body", "orelse", "finalbody"):
            sub = getattr(s, attr, None)
            if isinstance(sub, list) and sub and isinstance(sub[0], ast.stmt):
                setattr(s, attr, self.block(sub, top, is_loop and attr == "body"))
        for handler in getattr(s, "handlers", ()) or ():
            handler.body = self.block(handler.body, top, False)

    # -- one region --------------------------------------------------------------------------
    def region(
        self,
        s: ast.stmt,
        kind: str,
        rid: str,
        decision: Decision,
        rest: list[ast.stmt],
        tail: bool,
        carry: bool,
        loop: bool,
    ) -> list[ast.stmt]:
        fname = region_function_name(rid)
        if isinstance(s, ast.If):
            then = _followed(s.body, rest)
            orelse = _followed(s.orelse, rest)
            stmt = ast.If(test=decision.in_region(), body=then, orelse=orelse)
            stmt.body = self.block(stmt.body, top=tail, loop=False)
            stmt.orelse = self.block(stmt.orelse, top=tail, loop=False) if stmt.orelse else []
            if carry:
                # After the nested regions are functions of their own: their `continue`s are
                # theirs, and what is left ends this region.
                _ContinueToReturn().visit(stmt)
            inner: list[ast.stmt] = [stmt]
        elif isinstance(s, ast.Assert):
            raise_ = ast.Raise(
                exc=ast.Call(_name("AssertionError"), [s.msg] if s.msg else [], []), cause=None
            )
            inner = [
                ast.If(test=ast.UnaryOp(ast.Not(), decision.in_region()), body=[raise_], orelse=[])
            ]
        elif isinstance(s, ast.For):
            header = ast.For(
                target=s.target,
                iter=_builder_call(
                    "loop",
                    ast.Constant(rid),
                    _builder_call("elements", ast.Constant(rid), decision.in_region()),
                ),
                body=self.block(s.body, top=False, loop=True),
                orelse=self.block(s.orelse, top=False, loop=False) if s.orelse else [],
            )
            inner = [header, *self.block(rest, top=True, loop=False)]
        elif isinstance(s, ast.While):
            inner = self.while_body(s, rid, decision, rest, tail)
        else:  # pragma: no cover - the rewriter marks nothing else
            raise AssertionError(type(s).__name__)
        return self.finish(s, rid, fname, kind, decision, inner, tail)

    def while_body(
        self, s: ast.While, rid: str, decision: Decision, rest: list[ast.stmt], tail: bool
    ) -> list[ast.stmt]:
        # The first test is the decision; later ones are evaluated here, and one that is a
        # task result not yet known ends this expansion with the next one.
        again = ast.If(
            test=ast.Compare(_name(COUNTER), [ast.Gt()], [_name(ITERATION)]),
            body=[
                ast.Assign([_name(DECISION, ast.Store())], copy.deepcopy(decision.at_call())),
                ast.If(
                    test=_builder_call("deferred", _name(DECISION)),
                    body=[ast.Return(value=_REGION_CALL_PLACEHOLDER(rid))],  # filled in finish
                    orelse=[],
                ),
            ],
            orelse=[],
        )
        loop = ast.While(
            test=ast.Constant(True),
            body=[
                again,
                ast.Assign(
                    [_name(COUNTER, ast.Store())],
                    _builder_call("tick", ast.Constant(rid), _name(COUNTER)),
                ),
                ast.If(
                    test=ast.UnaryOp(ast.Not(), decision.in_region()), body=[ast.Break()], orelse=[]
                ),
                *self.block(s.body, top=False, loop=True),
            ],
            orelse=[],
        )
        start = ast.Assign([_name(COUNTER, ast.Store())], _name(ITERATION))
        return [start, loop, *self.block(rest, top=True, loop=False)]

    def finish(
        self,
        s: ast.stmt,
        rid: str,
        fname: str,
        kind: str,
        decision: Decision,
        inner: list[ast.stmt],
        tail: bool,
    ) -> list[ast.stmt]:
        body = inner
        used = _used_names(body) & self.local_names
        outs = () if tail else tuple(sorted((_stored_names(body) & self.local_names) - SYNTHETIC))
        # A list the region only appends to starts empty in it; the caller splices what it
        # appended onto its own list (so later elements never wait for earlier ones' lists).
        growing = tuple(o for o in outs if appended_only(body, o))
        params = tuple(sorted(used - SYNTHETIC - set(growing)))
        count = -1 if tail else len(outs)
        for node in _walk_all(body):
            if isinstance(node, ast.Return) and isinstance(node.value, _RegionCallPlaceholder):
                node.value = _region_call(rid, None, _name(DECISION), params, count, COUNTER)
            if isinstance(node, ast.Return) and isinstance(node.value, _OutsPlaceholder):
                node.value = _outs(outs)
        if not tail:
            body = [*body, ast.Return(value=_outs(outs))]
        unbind = _unbind(params)
        fresh = [ast.Assign([_name(g, ast.Store())], ast.List([], ast.Load())) for g in growing]
        fdef = _region_def(fname, params, [*unbind, *fresh, *body] or [ast.Pass()])
        call = _region_call(rid, _name(fname), decision.at_call(), params, count, None)
        site = _site(call, outs, growing, tail)
        _fill_locations(fdef, s)
        for node in site:
            _fill_locations(node, s)
        return [fdef, *site]

    # -- try ---------------------------------------------------------------------------------
    def try_region(self, s: ast.Try, rid: str, rest: list[ast.stmt], tail: bool) -> list[ast.stmt]:
        """``try`` around task calls. Its body runs here, each job it makes recorded (with the
        variables as they are before it) by ``__elfc__.trying``; an exception of the body's
        static code too (``__elfc__.thrown``). Its handlers, ``else`` and ``finally`` become
        the region function: given the first failure in the body's order (or None), it runs
        them as Python would. ``__elfc__.catch`` calls it now when the body made no job,
        else makes the ``@catch`` job that calls it once the body's jobs have settled."""
        body_names = _bound_names(s.body) & self.local_names
        stepped: list[ast.stmt] = []
        for stmt in self.block(s.body, top=False, loop=False):
            stepped.extend([stmt, _stmt(_builder_call("step", ast.Constant(rid)), stmt)])
        guarded = ast.Try(
            body=stepped,
            handlers=[
                ast.ExceptHandler(
                    type=_name("BaseException"),
                    name=THROWN,
                    body=[ast.Expr(_builder_call("thrown", ast.Constant(rid), _name(THROWN)))],
                )
            ],
            orelse=[],
            finalbody=[],
        )
        otherwise: list[ast.stmt] = [ast.Raise(exc=_name(CAUGHT), cause=None)]
        for h in reversed(s.handlers):
            arm = _Reraise().block(self.block(h.body, top=tail, loop=False))
            if h.name:
                ends = bool(arm) and isinstance(arm[-1], ast.Return | ast.Raise)
                arm = [
                    ast.Assign([_name(h.name, ast.Store())], _name(CAUGHT)),
                    *arm,
                    *([] if ends else [ast.Delete([_name(h.name, ast.Del())])]),
                ]
            test: ast.expr = (
                ast.Constant(True)
                if h.type is None
                else _builder_call("matches", _name(CAUGHT), h.type)
            )
            otherwise = [ast.If(test=test, body=arm or [ast.Pass()], orelse=otherwise)]
        orelse = self.block(s.orelse, top=tail, loop=False) if s.orelse else []
        dispatch: ast.stmt = ast.If(
            test=ast.Compare(_name(CAUGHT), [ast.Is()], [ast.Constant(None)]),
            body=orelse or [ast.Pass()],
            orelse=otherwise,
        )
        if s.finalbody:
            dispatch = ast.Try(
                body=[dispatch], handlers=[], orelse=[],
                finalbody=self.block(s.finalbody, top=False, loop=False),
            )  # fmt: skip
        caught = ast.Assign(
            [_name(CAUGHT, ast.Store())],
            ast.Subscript(_name(DECISION), ast.Constant(0), ast.Load()),
        )
        inner = [caught, dispatch, *self.block(rest, top=True, loop=False)]
        used = (_used_names(inner) & self.local_names) | body_names
        outs = (
            ()
            if tail
            else tuple(sorted(((_stored_names(inner) & self.local_names) | body_names) - SYNTHETIC))
        )
        params = tuple(sorted(used - SYNTHETIC))
        unbind = _unbind(params)
        body = [*unbind, *inner, *([] if tail else [ast.Return(value=_outs(outs))])]
        fname = region_function_name(rid)
        fdef = _region_def(fname, params, body)
        call = _builder_call(
            "catch",
            ast.Constant(rid),
            _name(fname),
            _names_tuple(params),
            ast.Constant(-1 if tail else len(outs)),
        )
        site = _site(call, outs, (), tail)
        start = ast.Expr(_builder_call("trying", ast.Constant(rid), _names_tuple(params)))
        for node in (start, guarded, fdef, *site):
            _fill_locations(node, s)
        return [start, guarded, fdef, *site]

    # -- comprehensions ----------------------------------------------------------------------
    def comprehensions(self, s: ast.stmt) -> list[ast.stmt]:
        """Region functions for the marked comprehensions in ``s``'s own expressions (not in
        its nested blocks), each replaced by its region call; the functions go before ``s``."""
        found: list[ast.stmt] = []
        for holder, field, comp in _marked_comprehensions(s):
            if isinstance(comp, ast.IfExp):
                found.append(self.conditional(holder, field, comp))
                continue
            if isinstance(comp, ast.Call):
                found.append(self.applied(holder, field, comp))
                continue
            assert isinstance(comp, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp)
            first = comp.generators[0]
            marked = _marker_call(first.iter)
            assert marked is not None
            _, rid, decision = marked
            fname = region_function_name(rid)
            first.iter = _builder_call(
                "loop",
                ast.Constant(rid),
                _builder_call("elements", ast.Constant(rid), decision.in_region()),
            )
            value: ast.expr = comp
            if isinstance(comp, ast.GeneratorExp):
                value = ast.ListComp(elt=comp.elt, generators=comp.generators)
            body: list[ast.stmt] = [ast.Return(value=value)]
            params = tuple(sorted((_used_names(body) & self.local_names) - SYNTHETIC))
            fdef = _region_def(fname, params, body)
            _fill_locations(fdef, comp)
            call = _region_call(rid, _name(fname), decision.at_call(), params, -1, None)
            _fill_locations(call, comp)
            _replace(holder, field, comp, call)
            found.append(fdef)
        return found

    def applied(self, holder: ast.AST, field: str, node: ast.Call) -> ast.stmt:
        """``f(result)``: a region returning the call's value (the call is its decision:
        the task calls in its arguments are made before it, the rest runs in it)."""
        marked = _marker_call(node)
        assert marked is not None
        _, rid, decision = marked
        body: list[ast.stmt] = [ast.Return(value=decision.in_region())]
        params = tuple(sorted((_used_names(body) & self.local_names) - SYNTHETIC))
        fdef = _region_def(region_function_name(rid), params, body)
        _fill_locations(fdef, node)
        call = _region_call(rid, None, decision.at_call(), params, -1, None, call=True)
        _fill_locations(call, node)
        _replace(holder, field, node, call)
        return fdef

    def conditional(self, holder: ast.AST, field: str, node: ast.IfExp) -> ast.stmt:
        """``a if test else b`` on a task result: a region returning the arm taken."""
        marked = _marker_call(node.test)
        assert marked is not None
        _, rid, decision = marked
        value = ast.IfExp(test=decision.in_region(), body=node.body, orelse=node.orelse)
        body: list[ast.stmt] = [ast.Return(value=value)]
        params = tuple(sorted((_used_names(body) & self.local_names) - SYNTHETIC))
        fdef = _region_def(region_function_name(rid), params, body)
        _fill_locations(fdef, node)
        call = _region_call(
            rid, _name(region_function_name(rid)), decision.at_call(), params, -1, None
        )
        _fill_locations(call, node)
        _replace(holder, field, node, call)
        return fdef


def _unbind(params: tuple[str, ...]) -> list[ast.stmt]:
    """At a region function's start: a parameter that came in unbound is deleted (reading it
    raises as in Python)."""
    return [
        ast.If(
            test=ast.Compare(_name(p), [ast.Is()], [_builder_attr("UNBOUND")]),
            body=[ast.Delete([_name(p, ast.Del())])],
            orelse=[],
        )
        for p in params
    ]


def _site(
    call: ast.expr, outs: tuple[str, ...], growing: tuple[str, ...], tail: bool
) -> list[ast.stmt]:
    """Where a region is called: its value returned (``tail``), or its values assigned back to
    the variables ``outs`` (deleted where unbound; a ``growing`` list gets what the region
    appended spliced on)."""
    if tail:
        return [ast.Return(value=call)]
    if not outs:
        return [ast.Expr(call)]
    temp = {o: f"__elfc_o_{o}" if o in growing else o for o in outs}
    return [
        ast.Assign([ast.Tuple([_name(temp[o], ast.Store()) for o in outs], ast.Store())], call),
        *(
            ast.If(
                test=ast.Compare(_name(o), [ast.Is()], [_builder_attr("UNBOUND")]),
                body=[ast.Delete([_name(o, ast.Del())])],
                orelse=[],
            )
            for o in outs
            if o not in growing
        ),
        *(
            ast.Assign([_name(g, ast.Store())], _builder_call("splice", _name(g), _name(temp[g])))
            for g in growing
        ),
    ]


def _region_def(name: str, params: tuple[str, ...], body: list[ast.stmt]) -> ast.FunctionDef:
    return ast.FunctionDef(
        name=name,
        args=ast.arguments(
            posonlyargs=[],
            args=[ast.arg(n) for n in (BUILDER, DECISION, ITERATION, *params)],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=None,
            defaults=[],
        ),
        body=body,
        decorator_list=[],
        returns=None,
    )


# -- recognising markers -----------------------------------------------------------------------


class Decision:
    """A marked decision: the test or iterable, and the variables it decides on.

    The task calls in it (outermost ``__elfc__.task(...)(...)`` and ``__elfc__.inline(...)(...)``
    calls) are made where the region is called, in order; the region evaluates the rest on
    their values, as ``__elfc_d[k]``, and on the variables (which it gets known).
    """

    def __init__(self, expr: ast.expr, names: tuple[str, ...]) -> None:
        self.names = names
        self.calls: list[ast.expr] = []
        hoisted = _Hoist(self.calls).visit(copy.deepcopy(expr))
        assert isinstance(hoisted, ast.expr)
        self.expr: ast.expr = hoisted

    def at_call(self) -> ast.expr:
        """What the region call passes as the decision: a list of values."""
        bound = _builder_call("bound", ast.Call(_name("locals"), [], []), _names_tuple(self.names))
        return ast.List([*copy.deepcopy(self.calls), ast.Starred(bound, ast.Load())], ast.Load())

    def in_region(self) -> ast.expr:
        """The test or iterable, as the region function evaluates it."""
        return copy.deepcopy(self.expr)


class _Hoist(ast.NodeTransformer):
    def __init__(self, calls: list[ast.expr]) -> None:
        self.calls = calls

    def visit_Call(self, node: ast.Call) -> ast.AST:
        inner = node.func
        if (
            isinstance(inner, ast.Call)
            and isinstance(inner.func, ast.Attribute)
            and isinstance(inner.func.value, ast.Name)
            and inner.func.value.id == BUILDER
            and inner.func.attr in ("task", "inline")
        ):
            self.calls.append(node)
            index = ast.Constant(len(self.calls) - 1)
            return ast.copy_location(ast.Subscript(_name(DECISION), index, ast.Load()), node)
        self.generic_visit(node)
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node


def _marker_call(node: ast.AST | None) -> tuple[str, str, Decision] | None:
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == BUILDER
        and node.func.attr in MARKERS
        and len(node.args) == 3
        and isinstance(node.args[0], ast.Constant)
    ):
        return None
    names_node = node.args[2]
    names: tuple[str, ...] = ()
    if isinstance(names_node, ast.Tuple):
        names = tuple(str(e.value) for e in names_node.elts if isinstance(e, ast.Constant))
    return MARKERS[node.func.attr], str(node.args[0].value), Decision(node.args[1], names)


def _marker(s: ast.stmt) -> tuple[str, str, Decision] | None:
    if isinstance(s, ast.If | ast.While | ast.Assert):
        return _marker_call(s.test)
    if isinstance(s, ast.For):
        return _marker_call(s.iter)
    return None


def _own_expressions(s: ast.stmt) -> Iterator[ast.AST]:
    """The nodes of ``s`` outside its nested statement blocks and nested scopes."""
    stack: list[ast.AST] = [s]
    while stack:
        node = stack.pop()
        yield node
        for name, value in ast.iter_fields(node):
            if name in ("body", "orelse", "finalbody", "handlers") and isinstance(node, ast.stmt):
                continue
            children = value if isinstance(value, list) else [value]
            for child in children:
                if isinstance(child, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if isinstance(child, ast.AST):
                    stack.append(child)


def _marked_comprehensions(s: ast.stmt) -> list[tuple[ast.AST, str, ast.expr]]:
    out: list[tuple[ast.AST, str, ast.expr]] = []
    for node in _own_expressions(s):
        for name, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            for child in children:
                if (
                    isinstance(child, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp)
                    and _marker_call(child.generators[0].iter) is not None
                ) or (
                    (isinstance(child, ast.IfExp) and _marker_call(child.test) is not None)
                    or (_marker_call(child) or ("",))[0] == "call"
                ):
                    out.append((node, name, child))
    # Innermost first: a marked comprehension inside another one's first iterable is replaced
    # before the outer one captures it.
    return out[::-1]


def _replace(holder: ast.AST, field: str, old: ast.expr, new: ast.expr) -> None:
    value = getattr(holder, field)
    if isinstance(value, list):
        value[value.index(old)] = new
    else:
        setattr(holder, field, new)


# -- what a region contains --------------------------------------------------------------------


def _scoped_walk(nodes: list[ast.stmt] | ast.AST) -> Iterator[ast.AST]:
    """Every node, without entering nested functions, lambdas, classes or comprehensions."""
    stack: list[ast.AST] = list(nodes) if isinstance(nodes, list) else [nodes]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _SCOPES):
                continue
            stack.append(child)


_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def _walk_all(nodes: list[ast.stmt]) -> Iterator[ast.AST]:
    for n in nodes:
        yield from ast.walk(n)


GROWERS = frozenset(["append", "extend"])


def appended_only(body: list[ast.stmt], name: str) -> bool:
    """True when ``body`` uses variable ``name`` only to append to it: ``name.append(x)``,
    ``name.extend(xs)`` statements, or a nested region's splice ``name = splice(name, ...)``."""
    allowed: set[int] = set()
    seen = 0
    for node in _scoped_walk(body):
        if isinstance(node, ast.Name) and node.id == name:
            seen += 1
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr in GROWERS
            and isinstance(node.value.func.value, ast.Name)
            and node.value.func.value.id == name
            and not any(_mentions(a, name) for a in node.value.args)
        ):
            allowed.add(id(node.value.func.value))
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "splice"
            and isinstance(node.value.args[0], ast.Name)
            and node.value.args[0].id == name
        ):
            allowed.update((id(node.targets[0]), id(node.value.args[0])))
    return seen > 0 and seen == len(allowed)


def _mentions(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _followed(arm: list[ast.stmt], rest: list[ast.stmt]) -> list[ast.stmt]:
    """An arm of a branch that takes the statements after it (a copy of them), unless it
    never reaches its end."""
    if arm and isinstance(arm[-1], ast.Return | ast.Raise | ast.Continue | ast.Break):
        return arm
    return [*arm, *copy.deepcopy(rest)]


def _returns(s: ast.stmt) -> bool:
    return any(isinstance(n, ast.Return) for n in _scoped_walk(s))


def _continues(s: ast.stmt) -> bool:
    """True when ``s`` holds a ``continue`` of a loop around it."""
    return any(isinstance(n, ast.Continue) for n in _loop_controls(s))


def _loop_controls(s: ast.AST) -> Iterator[ast.stmt]:
    """The ``break``/``continue`` statements in ``s`` that leave a loop around ``s``."""
    stack: list[ast.AST] = [s]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Break | ast.Continue):
            yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(
                child,
                ast.For
                | ast.AsyncFor
                | ast.While
                | ast.FunctionDef
                | ast.AsyncFunctionDef
                | ast.Lambda
                | ast.ClassDef,
            ):
                # A loop's own body: its break/continue are its own (its orelse is not, but
                # a branch on a task result never sits in one: the analysis says so).
                continue
            stack.append(child)


class _Reraise(ast.NodeTransformer):
    """A bare ``raise`` in a handler re-raises the failure it took."""

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        return [self.visit(s) for s in stmts]

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        if node.exc is None:
            return ast.copy_location(ast.Raise(exc=_name(CAUGHT), cause=None), node)
        return node

    def _skip(self, node: ast.AST) -> ast.AST:
        return node

    # A bare `raise` in a handler of a `try` inside the handler is that handler's own.
    visit_ExceptHandler = visit_FunctionDef = visit_AsyncFunctionDef = _skip
    visit_Lambda = visit_ClassDef = _skip


def _stmt(call: ast.expr, like: ast.stmt) -> ast.stmt:
    node = ast.Expr(call)
    _fill_locations(node, like)
    return node


class _ContinueToReturn(ast.NodeTransformer):
    """``continue`` of the loop around a branch region: the region ends there."""

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        return ast.copy_location(ast.Return(value=_OutsPlaceholder()), node)

    def _skip(self, node: ast.AST) -> ast.AST:
        return node

    visit_For = visit_While = visit_AsyncFor = _skip
    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _skip


def _used_names(body: list[ast.stmt]) -> set[str]:
    """Every name read, written or deleted in ``body``, nested scopes included (a nested
    function or comprehension reading a variable of the region needs it too)."""
    return {n.id for n in _walk_all(body) if isinstance(n, ast.Name)}


def _stored_names(body: list[ast.stmt]) -> set[str]:
    """The variables a region may change: names it binds, and names it changes in place
    (``xs.append(...)``, ``d[k] = v``), outside nested scopes."""
    out = _bound_names(body)
    for node in _scoped_walk(body):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if isinstance(node.func.value, ast.Name):
                out.add(node.func.value.id)
        elif isinstance(node, ast.Subscript | ast.Attribute) and isinstance(
            node.ctx, ast.Store | ast.Del
        ):
            base = node.value
            while isinstance(base, ast.Subscript | ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name):
                out.add(base.id)
    return out


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """The names ``body`` binds (assigns, deletes, defines, imports), outside nested scopes."""
    out: set[str] = set()
    for node in _scoped_walk(body):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            out.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(node.name)
        elif isinstance(node, ast.alias):
            out.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
    # Comprehension targets bind in the comprehension; a walrus inside one binds here.
    for node in _walk_all(body):
        if isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return out


def _local_names(fn: ast.FunctionDef) -> set[str]:
    """The pipeline function's local variables: its parameters and every name it binds."""
    args = fn.args
    names = {
        a.arg
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        if a is not None
    }
    return (names | _bound_names(fn.body)) - {BUILDER}


# -- building nodes ----------------------------------------------------------------------------


class _RegionCallPlaceholder(ast.expr):
    """Where a ``while`` region calls itself for its next iteration (filled in ``finish``)."""

    def __init__(self, rid: str) -> None:
        super().__init__()
        self.rid = rid


_REGION_CALL_PLACEHOLDER = _RegionCallPlaceholder


class _OutsPlaceholder(ast.expr):
    """Where a branch region ends at a ``continue`` (filled in ``finish``)."""


def _name(name: str, ctx: ast.expr_context | None = None) -> ast.Name:
    return ast.Name(id=name, ctx=ctx or ast.Load())


def _builder_attr(attr: str) -> ast.Attribute:
    return ast.Attribute(value=_name(BUILDER), attr=attr, ctx=ast.Load())


def _builder_call(method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_builder_attr(method), args=list(args), keywords=[])


def _names_tuple(names: tuple[str, ...]) -> ast.Tuple:
    return ast.Tuple([ast.Constant(n) for n in names], ast.Load())


def _outs(outs: tuple[str, ...]) -> ast.expr:
    return _builder_call("outs", ast.Call(_name("locals"), [], []), _names_tuple(outs))


def _region_call(
    rid: str,
    fn: ast.expr | None,
    decision: ast.expr,
    params: tuple[str, ...],
    outs: int,
    iteration: str | None,
    call: bool = False,
) -> ast.Call:
    node = _builder_call(
        "region",
        ast.Constant(rid),
        fn if fn is not None else ast.Constant(None),
        decision,
        _builder_call("bound", ast.Call(_name("locals"), [], []), _names_tuple(params)),
        _names_tuple(params),
        ast.Constant(outs),
        _name(iteration) if iteration else ast.Constant(0),
    )
    if call:
        node.keywords = [ast.keyword(arg="call", value=ast.Constant(True))]
    return node


def _fill_locations(node: ast.AST, like: ast.AST) -> None:
    """Give every node of ``node`` lacking a position the position of ``like``."""
    line = getattr(like, "lineno", 1)
    col = getattr(like, "col_offset", 0)
    end_line = getattr(like, "end_lineno", line)
    end_col = getattr(like, "end_col_offset", col)
    for sub in ast.walk(node):
        if "lineno" in sub._attributes and not hasattr(sub, "lineno"):
            setattr(sub, "lineno", line)  # noqa: B010 - ast.AST declares no positions
            setattr(sub, "col_offset", col)  # noqa: B010
            setattr(sub, "end_lineno", end_line)  # noqa: B010
            setattr(sub, "end_col_offset", end_col)  # noqa: B010
