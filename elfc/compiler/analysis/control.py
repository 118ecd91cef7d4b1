"""Control flow on task results: the regions of branches, loops and ``while`` polls.

A statement whose decision (an ``if``/``while``/``assert`` test, a loop's or comprehension's
iterable) is a task result opens a *dynamic region*: its body runs in an expansion, once the
values the decision reads exist (``regions.py`` lowers it, ``runtime/expand.py`` runs it).

The decision: the task results it reads (by variable) and the results of the task calls in it (made
before the region, as Python evaluates the test first) are the decision, and the test or
iterable itself runs in the expansion, as plain Python on their values. In the region's body
those variables are then static: ``for row in rows: if row["ok"]: ...`` branches in Python,
not in the graph.

Variables the region assigns or changes in place are task results after it (merged over the
paths through it, as Python's variables are).

What a region cannot express is refused here, at its line: a ``return`` in a region that is
not at the pipeline's top level (or in such regions' arms), a ``break`` out of a branch on a
task result (only a region's own loop may break), a ``continue`` in a branch that is not
directly in its loop's body, a loop's ``else``, and a ``while`` whose test a region cannot
re-evaluate.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import types
import typing
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, get_args, get_origin

import libcst as cst

from elfc.compiler import diagnostics as dg
from elfc.compiler.analysis.core import Core
from elfc.compiler.analysis.values import STATIC, C, D, S, Val, join_env
from elfc.compiler.elves import normalized_revision
from elfc.model.ir import DeriveNode, Region, RegionKind
from elfc.model.ops import Op

MARKER = {
    "if": "decide",
    "assert": "decide",
    "for": "each",
    "comp": "each",
    "while": "poll",
    "call": "apply",
}


class Control(Core):
    place: str = "top"
    """Where the statement being analysed is: ``top`` (the pipeline's own body, or the arms of
    a branch region there), ``loop`` (directly in a loop's body) or ``nested``."""

    # -- deciding ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def dry(self) -> Iterator[None]:
        """Analyse without keeping what is recorded (nodes, rewrites, diagnostics)."""
        out = self.out
        tables: list[dict[Any, Any]] = [
            out.nodes, out.rewrites, out.chains, out.regions, out.marks, out.unpacks,
            out.diagnostics, out.tries,
        ]  # fmt: skip
        keys = [set(t) for t in tables]
        kept = [dict(t) for t in tables]
        edges = set(out.edges)
        muted, self.muted = self.muted, frozenset(["*"])
        try:
            yield
        finally:
            self.muted = muted
            for table, before, old in zip(tables, keys, kept, strict=True):
                for k in [k for k in table if k not in before]:
                    del table[k]
                table.update(old)
            out.edges.intersection_update(edges)

    def probe(self, node: cst.BaseExpression) -> Val:
        """What ``node``'s value is, nothing recorded."""
        with self.dry():
            return self.expr(node)

    hoist: dict[str, Val] | None = None
    """While a region's decision is analysed: the values its decided-on variables have
    outside it (a task call in the decision is made before the region, on those values)."""

    def deciding_names(self, node: cst.CSTNode) -> list[str]:
        """The variables holding task results (or structures of them) that ``node`` reads."""
        names: list[str] = []
        for sub in _walk(node):
            if isinstance(sub, cst.Name):
                v = self.env.get(sub.value)
                if v is not None and v.bt > S and sub.value not in names:
                    names.append(sub.value)
        return names

    @contextlib.contextmanager
    def hoisted_arguments(self) -> Iterator[None]:
        """The arguments of a task call in a decision are evaluated before the region."""
        hoist = self.hoist
        if hoist is None:
            yield
            return
        inside = {n: self.env[n] for n in hoist if n in self.env}
        self.env.update(hoist)
        self.hoist = None
        try:
            yield
        finally:
            self.hoist = hoist
            self.env.update(inside)

    def decision(self, node: cst.BaseExpression) -> tuple[list[str], dict[str, Val], Val]:
        """Analyse a region's decision: its task calls are made before the region and its
        variables are known inside it. The names, their outside values, and the value."""
        names = self.deciding_names(node)
        saved = self.concretize(names)
        self.hoist = saved
        try:
            val = self.expr(node)
        finally:
            self.hoist = None
        return names, saved, val

    def concretize(self, names: list[str]) -> dict[str, Val]:
        """Make ``names`` static (their values exist where the region runs); the old values."""
        saved = {n: self.env[n] for n in names}
        for n in names:
            v = saved[n]
            self.env[n] = Val(S, tp=v.tp, deps=v.deps, what=v.what, producer=v.producer)
        return saved

    # -- opening a region --------------------------------------------------------------------
    def open_region(self, node: cst.CSTNode, kind: RegionKind, header: str) -> str:
        rid = self.node_id(node, "r")
        self.out.regions[rid] = Region(
            id=rid, span=self.span(node), header=header, parent=self.region, kind=kind
        )
        # The region's expansion job is keyed like a node in the loops around it.
        self.out.chains[rid] = self.chain()
        return rid

    def arm(self, node: cst.CSTNode, rid: str, kind: RegionKind) -> str:
        """An arm of branch region ``rid``: a region of its own, for drawing."""
        aid = self.node_id(node, "a")
        self.out.regions[aid] = Region(
            id=aid, span=self.span(node), header=kind, parent=rid, kind=kind
        )
        return aid

    def mark(self, node: cst.CSTNode, kind: str, rid: str, names: list[str]) -> None:
        self.out.marks[id(node)] = (MARKER[kind], rid, tuple(names))

    def touched_after(
        self,
        node: cst.CSTNode,
        before: dict[str, Val],
        rid: str,
        rest: list[cst.BaseStatement] | tuple[()] = (),
    ) -> None:
        """After region ``rid`` (``node``, and the statements ``rest`` it took): what it
        assigns or changes is a task result (a list it only appends to stays one the
        pipeline may append to)."""
        parts = [node, *rest]
        names: set[str] = set()
        for part in parts:
            names |= _touched(part)
        for name in sorted(names):
            if name not in self.env and name not in before:
                continue
            v = self.env.get(name) or before[name]
            if v.bt == S and v.static is not None and name not in before and v.handles:
                continue  # a handle bound in the region: still a handle
            growing = name in before and (before[name].growing or _appended_only_in(parts, name))
            self.env[name] = Val(
                D, deps=dict(v.deps) or {rid: name}, tp=v.tp, what=f"`{name}`",
                producer=v.producer, growing=growing,
            )  # fmt: skip

    def check_exits(self, node: cst.CSTNode, construct: str) -> bool:
        """Report what a region at this place cannot express; True when nothing was."""
        if isinstance(node, cst.For | cst.While) and node.orelse is not None:
            self.report(
                dg.REGION_UNSUPPORTED, node, construct=construct + ": ... else",
                problem="and has an `else`",
                fix="move the `else` body after the loop (set a flag where you `break`)",
            )  # fmt: skip
            return False
        ok = True
        if _has_return(node) and self.place != "top":
            self.report(
                dg.REGION_UNSUPPORTED, node, construct=construct,
                problem="and holds a `return`, below the pipeline's top level",
                fix="assign the value to a variable and return it after the loop or branch, "
                "or move the branch to the pipeline's top level",
            )  # fmt: skip
            ok = False
        exits = list(_loop_exits(node)) if construct.startswith(("if", "assert")) else []
        if any(isinstance(e, cst.Break) for e in exits):
            self.report(
                dg.REGION_UNSUPPORTED, node, construct=construct,
                problem="and breaks out of the loop around it (the next elements would wait "
                "for it)",
                fix="decide in a task which elements to keep and loop over its result, or "
                "collect every element and filter afterwards",
            )  # fmt: skip
            ok = False
        elif exits and self.place != "loop":
            self.report(
                dg.REGION_UNSUPPORTED, node, construct=construct,
                problem="and holds a `continue` of a loop it is not directly in",
                fix="put the branch directly in the loop's body",
            )  # fmt: skip
            ok = False
        return ok

    # -- the statements ----------------------------------------------------------------------
    def carries(self, s: cst.If) -> bool:
        """True for a branch on a task result holding a ``continue`` of its loop."""
        exits = _loop_exits(s)
        return (
            self.place == "loop"
            and any(isinstance(e, cst.Continue) for e in exits)
            and not any(isinstance(e, cst.Break) for e in exits)
            and self.probe(s.test).bt == D
        )

    def dynamic_if(self, s: cst.If, rest: list[cst.BaseStatement] | None = None) -> None:
        header = f"if {self.code(s.test)}"
        if not self.check_exits(s, header):
            return
        before = dict(self.env)
        names, saved, _ = self.decision(s.test)
        rid = self.open_region(s, "if", header)
        self.mark(s, "if", rid, names)
        concrete = {n: self.env[n] for n in saved}
        outer_region, outer_place = self.region, self.place
        self.region = self.arm(s.body, rid, "then")
        self.block(s.body)
        after_then = self.env
        self.env = {**before, **concrete}
        if s.orelse is not None:
            self.region = self.arm(s.orelse, rid, "else")
        if isinstance(s.orelse, cst.If):
            self.statement(s.orelse)
        elif isinstance(s.orelse, cst.Else):
            self.block(s.orelse.body)
        self.region = rid
        self.env = join_env(after_then, self.env)
        touched = _touched(s)
        for stmt in rest or ():
            self.statement(stmt)
            touched |= _touched(stmt)
        for n, v in saved.items():
            if n not in touched:
                self.env[n] = v
        self.region, self.place = outer_region, outer_place
        self.touched_after(s, before, rid, rest or ())

    def dynamic_conditional(self, node: cst.IfExp) -> Val:
        """``a if test else b`` on a task result, with calls in its arms: a branch region
        whose value is the arm taken."""
        header = f"{self.code(node.body)} if {self.code(node.test)} else ..."
        before = dict(self.env)
        names, _, _ = self.decision(node.test)
        rid = self.open_region(node, "if", header[:80])
        self.mark(node, "if", rid, names)
        outer = self.region
        self.region = rid
        body = self.materialize(node.body, self.expr(node.body))
        orelse = self.materialize(node.orelse, self.expr(node.orelse))
        self.region = outer
        self.env = before
        tp = body.tp if body.tp == orelse.tp else Any
        return Val(D, deps={rid: header[:40]}, tp=tp, what=f"`{self.code(node)}`")

    def dynamic_assert(self, s: cst.Assert) -> None:
        names, saved, _ = self.decision(s.test)
        if s.msg is not None:
            self.expr(s.msg)
        self.env.update(saved)
        rid = self.open_region(s, "if", f"assert {self.code(s.test)}")
        self.mark(s, "assert", rid, names)

    def dynamic_for(self, s: cst.For, it: Val) -> None:
        header = f"for {self.code(s.target)} in {self.code(s.iter)}"
        if not self.check_exits(s, header):
            return
        before = dict(self.env)
        names, saved, iterated = self.decision(s.iter)
        rid = self.open_region(s, "for", header)
        self.mark(s, "for", rid, names)
        outer_region, outer_place = self.region, self.place
        self.region = rid
        element = Val(S, tp=_element_type(iterated.tp if iterated.tp is not Any else it.tp, s.iter))

        def body() -> None:
            self.assign(s.target, element, s.iter, True)
            self.place = "loop"
            self.block(s.body)

        self.loop_body(body)
        for n, v in saved.items():
            if n not in _touched(s):
                self.env[n] = v
        self.region, self.place = outer_region, outer_place
        self.touched_after(s, before, rid)

    def dynamic_while(self, s: cst.While) -> None:
        header = f"while {self.code(s.test)}"
        if not self.check_exits(s, header):
            return
        # Every variable the test reads: one that is static now may hold a task result after
        # an iteration (``done = False`` ... ``done = shop.check()``).
        names = [n for n in _names_read(s.test) if n in self.env]
        before = dict(self.env)
        rid = self.open_region(s, "while", header)
        self.mark(s, "while", rid, names)
        outer_region, outer_place = self.region, self.place
        self.region = rid

        def body() -> None:
            _, saved, _ = self.decision(s.test)
            self.place = "loop"
            self.block(s.body)
            for n, v in saved.items():
                if self.env.get(n) is not None and self.env[n].bt == S and n not in _touched(s):
                    self.env[n] = v

        self.loop_body(body)
        self.region, self.place = outer_region, outer_place
        self.touched_after(s, before, rid)
        read = set(_names_read(s.test))
        calls = any(isinstance(n, cst.Call) for n in _walk(s.test))
        breaks = any(isinstance(n, cst.Break) for n in _loop_exits_of_body(s))
        if not calls and not breaks and not (read & _touched(s.body)):
            self.report(
                dg.UNBOUNDED_LOOP, s, construct=header,
                why="its body never changes what its test reads, so once entered it runs "
                "until its bound (1,000 iterations) fails the run",
            )  # fmt: skip

    def dynamic_body(self, body: cst.BaseSuite) -> bool:
        """True when ``body`` calls a task or computes on a task result (nothing recorded)."""
        env, returns = dict(self.env), list(self.returns)
        region, place = self.region, self.place
        with self.dry():
            made = len(self.out.nodes)
            self.block(body)
            dynamic = len(self.out.nodes) > made or any(
                v.bt > S and env.get(k) is not v for k, v in self.env.items()
            )
        self.env, self.returns, self.region, self.place = env, returns, region, place
        return dynamic

    def dynamic_try(self, s: cst.Try) -> None:
        """``try`` around task calls: its body's jobs run in order, and its handlers (or its
        ``else``) and its ``finally`` run in an expansion once they have settled."""
        header = "try"
        refused = self._try_refusals(s)
        if refused:
            self.report(
                dg.REGION_UNSUPPORTED, s, construct=header, problem=refused[0], fix=refused[1]
            )
            return
        before = dict(self.env)
        rid = self.open_region(s, "try", header)
        self.out.tries[self.span(s).line] = rid
        outer_region, outer_place = self.region, self.place
        self.place = "nested"
        marks = self._region_marks()
        self.block(s.body)
        if self._region_marks() > marks:
            self.report(
                dg.REGION_UNSUPPORTED, s, construct=header,
                problem="and its body branches or loops on a task result",
                fix="put the `try` inside the branch or loop, around the task calls",
            )  # fmt: skip
        after_body = self.env
        self.place = outer_place if outer_place == "top" else "nested"
        ends: list[dict[str, Val]] = []
        for h in s.handlers:
            self.region = self.arm(h, rid, "except")
            self.env = join_env(before, after_body)
            if h.type is not None:
                kind = self.expr(h.type)
                if kind.bt > S:
                    self.report(
                        dg.DYNAMIC_MISPLACED, h.type, what=kind.what,
                        where="the class an `except` names",
                        fix="name the exception class itself (it must be known at submission)",
                    )  # fmt: skip
            if h.name is not None:
                self.assign(h.name.name, STATIC, h)
            self.block(h.body)
            ends.append(self.env)
        self.region = rid
        self.env = dict(after_body)
        if s.orelse is not None:
            self.block(s.orelse.body)
        for end in ends:
            self.env = join_env(self.env, end)
        if s.finalbody is not None:
            self.block(s.finalbody.body)
        self.region, self.place = outer_region, outer_place
        self.touched_after(s, before, rid)

    def _region_marks(self) -> int:
        """How many branches and loops on task results are marked (calls not counted: a call
        region is one job, which a ``try`` body runs in its order)."""
        return sum(1 for m in self.out.marks.values() if m[0] != "apply")

    # -- calls of plain functions ------------------------------------------------------------
    def apply_region(self, node: cst.Call, target: Any) -> Val:
        """``f(rows)``: a function of the user's code (or ``print``, a logger's method,
        ``math``, ``statistics``, ``sorted(key=...)``...) called with task results. A region
        whose value is the call's: it runs once, where the values exist, in a process that
        imported the pipeline (the function's source revision is part of the pipeline's)."""
        header = self.code(node)
        header = header if len(header) <= 60 else header[:57] + "..."
        inputs = [self.probe(a.value) for a in node.args]
        what = next((v.what for v in inputs if v.bt > S), "a task result")
        local = [n for n in _names_read(node.func) if n in self.env and n in self._functions]
        if local:
            self.report(
                dg.CALL_WITH_DYNAMIC, node, func=self.code(node.func), what=what,
                help=f"`{local[0]}` is a variable of the pipeline, and the call runs where the "
                "result exists, in another process that cannot be handed it: define the "
                "function at module level (a lambda written in the call itself is fine)",
            )  # fmt: skip
            return Val(D, what=f"`{header}`")
        if getattr(target, "__module__", None) == "__main__":
            self.report(
                dg.CALL_WITH_DYNAMIC, node, func=self.code(node.func), what=what,
                help="the call runs where the result exists, in a worker, which cannot import "
                "a function defined in `__main__` (a script or a notebook cell): define it in "
                "a module the workers import, such as the pipeline's",
            )  # fmt: skip
            return Val(D, what=f"`{header}`")
        # Its arguments were analysed as the pipeline's own code before it was known to be a
        # call region: a branch or loop they opened runs in the region instead.
        inside = {id(n) for n in _walk(node)} - {id(node)}
        for key in [k for k in self.out.marks if k in inside]:
            rid = self.out.marks.pop(key)[1]
            self.out.regions.pop(rid, None)
            self.out.chains.pop(rid, None)
        self.applying.add(id(node))
        try:
            names, saved, _ = self.decision(node)
        finally:
            self.applying.discard(id(node))
        self.env.update(saved)
        rid = self.open_region(node, "call", header)
        self.mark(node, "call", rid, names)
        # Drawn as a node of its own, fed by what its arguments read.
        self.add_node(
            DeriveNode(
                id=rid, expr={Op.OUT.value: rid}, span=self.span(node), region=self.region,
                source=header,
            )
        )  # fmt: skip
        for v in inputs:
            self.edges_into(rid, v)
        revision = _helper_revision(target)
        if revision is not None:
            self.out.helpers[f"{target.__module__}:{target.__qualname__}"] = revision
        return Val(D, deps={rid: header[:40]}, tp=_returns(target), what=f"`{header}`")

    @functools.cached_property
    def _functions(self) -> set[str]:
        """The names the pipeline binds to functions it defines (``def``, ``lambda``): no
        other process can be handed one."""
        found: set[str] = set()
        nodes = _scoped(self.fndef.body)
        nodes += [c for n in nodes for c in n.children if isinstance(c, cst.FunctionDef)]
        for n in nodes:
            if isinstance(n, cst.FunctionDef):
                found.add(n.name.value)
            elif isinstance(n, cst.Assign) and isinstance(n.value, cst.Lambda | cst.Name):
                for t in n.targets:  # `f = helper`: an alias of a function is one too
                    _bound(t.target, found)
        return found

    def _try_refusals(self, s: cst.Try) -> tuple[str, str] | None:
        """Why a ``try`` around task calls cannot be a region here (problem, fix), if so."""
        if _has_return(s.body):
            return (
                "and its body holds a `return`",
                "assign the value in the body and return it after the `try` statement",
            )
        if _loop_exits(s):
            return (
                "and holds a `break` or `continue` of the loop around it",
                "set a flag in the `try` statement and `break` after it",
            )
        returns = any(_has_return(h) for h in s.handlers) or (s.orelse and _has_return(s.orelse))
        if returns and self.place != "top":
            return (
                "and holds a `return`, below the pipeline's top level",
                "assign the value to a variable and return it after the `try` statement",
            )
        if s.finalbody is not None:
            if _has_return(s.finalbody):
                return ("and its `finally` holds a `return`", "return after the `try` statement")
            if self.dynamic_body(s.finalbody.body):
                return (
                    "and its `finally` calls tasks or reads their results",
                    "call those tasks after the `try` statement, or in its body and handlers",
                )
        return None

    def dynamic_comprehension(self, node: Any, comp: cst.CompFor, it: Val, parts: list[Any]) -> Val:
        """``[f(x) for x in result]``: a region whose value is the collection."""
        header = f"for {self.code(comp.target)} in {self.code(comp.iter)}"
        saved_env, saved_region = dict(self.env), self.region
        names, _, iterated = self.decision(comp.iter)
        rid = self.open_region(comp, "comp", header)
        self.mark(comp, "comp", rid, names)
        self.region = rid
        el_tp = _element_type(iterated.tp if iterated.tp is not Any else it.tp, comp.iter)
        self.assign(comp.target, Val(S, tp=el_tp), comp.iter, True)
        inner: cst.CompFor | None = comp
        while inner is not None:
            if inner is not comp:
                inner_it = self.iterable(inner.iter, "comprehension")
                if inner_it is None:
                    break
                self.assign(inner.target, self.element(inner_it), inner.iter, True)
            for cond in inner.ifs:
                c = self.materialize(cond.test, self.expr(cond.test))
                if c.bt == D:
                    self.report(dg.BRANCH_ON_DYNAMIC, cond.test, construct="if", what=c.what)
            inner = inner.inner_for_in
        tp: Any = Any
        for p in parts:
            v = self.materialize(p, self.expr(p))
            tp = v.tp if len(parts) == 1 else Any
        self.env, self.region = saved_env, saved_region
        containers: dict[type, type] = {
            cst.ListComp: list,
            cst.SetComp: set,
            cst.GeneratorExp: list,
        }
        container = containers.get(type(node))
        out_tp: Any = Any
        if container is not None:
            out_tp = container[tp] if tp is not Any else container  # type: ignore[index]
        elif isinstance(node, cst.DictComp):
            out_tp = dict
        return Val(D, tp=out_tp, what=f"`{self.code(node)}`", deps={rid: self.code(node)[:40]})


# -- helpers -------------------------------------------------------------------------------------


def _returns(target: Any) -> Any:
    """What calling ``target`` gives, by its annotation (a class: an instance), else Any."""
    if isinstance(target, type):
        return target
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # no annotations, or ones that do not resolve here
        return Any
    tp = hints.get("return", Any)
    return Any if tp is type(None) else tp


def _helper_revision(target: Any) -> str | None:
    """The source revision of a function of the user's code (not the standard library's,
    not a builtin, not elfc's), or None."""
    if not isinstance(target, types.FunctionType):
        return None
    module = target.__module__ or ""
    if module.split(".")[0] in sys.stdlib_module_names or module.startswith("elfc"):
        return None
    try:
        return normalized_revision(inspect.getsource(target))
    except (OSError, TypeError):
        return None


def _walk(node: cst.CSTNode) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        if isinstance(n, cst.Lambda):
            continue
        if isinstance(n, cst.Attribute):
            stack.append(n.value)  # the attribute's own name is not a variable
            continue
        if isinstance(n, cst.Arg):
            stack.append(n.value)  # nor is a keyword's
            continue
        stack.extend(n.children)
    return out


def _appended_only(node: cst.CSTNode, name: str) -> bool:
    """True when ``node`` uses variable ``name`` only in ``name.append(x)`` and
    ``name.extend(xs)`` statements (the lowering's ``regions.appended_only`` agrees)."""
    seen = allowed = 0
    for n in _scoped(node):
        if isinstance(n, cst.Name) and n.value == name:
            seen += 1
        if (
            isinstance(n, cst.Expr)
            and isinstance(n.value, cst.Call)
            and isinstance(n.value.func, cst.Attribute)
            and n.value.func.attr.value in ("append", "extend")
            and isinstance(n.value.func.value, cst.Name)
            and n.value.func.value.value == name
            and not any(
                isinstance(m, cst.Name) and m.value == name
                for a in n.value.args
                for m in _scoped(a)
            )
        ):
            allowed += 1
    return seen > 0 and seen == allowed


def _appended_only_in(parts: list[cst.CSTNode], name: str) -> bool:
    used = [
        p for p in parts if any(isinstance(n, cst.Name) and n.value == name for n in _scoped(p))
    ]
    return bool(used) and all(_appended_only(p, name) for p in used)


def _names_read(node: cst.CSTNode) -> list[str]:
    return list(dict.fromkeys(n.value for n in _walk(node) if isinstance(n, cst.Name)))


def _has_return(node: cst.CSTNode) -> bool:
    return any(isinstance(n, cst.Return) for n in _scoped(node))


def _scoped(node: cst.CSTNode) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        for child in n.children:
            if isinstance(child, cst.FunctionDef | cst.Lambda | cst.ClassDef):
                continue
            stack.append(child)
    return out


def _loop_exits(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The ``break``/``continue`` statements in ``node`` that leave a loop around it."""
    out: list[cst.CSTNode] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Break | cst.Continue):
            out.append(n)
        for child in n.children:
            if isinstance(child, cst.For | cst.While | cst.FunctionDef | cst.Lambda | cst.ClassDef):
                continue
            stack.append(child)
    return out


def _loop_exits_of_body(loop: cst.While | cst.For) -> list[cst.CSTNode]:
    """The ``break``/``continue`` statements of ``loop`` itself (not of loops inside it)."""
    return [e for stmt in loop.body.body for e in _loop_exits(stmt)]


def _touched(node: cst.CSTNode) -> set[str]:
    """The variables ``node`` binds or changes in place (outside nested scopes)."""
    out: set[str] = set()
    for n in _scoped(node):
        if isinstance(n, cst.AssignTarget | cst.AugAssign | cst.AnnAssign):
            target = n.target
            _bound(target, out)
        elif isinstance(n, cst.For | cst.NamedExpr):
            _bound(n.target, out)
        elif isinstance(n, cst.WithItem) and n.asname is not None:
            _bound(n.asname.name, out)
        elif isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute):
            if isinstance(n.func.value, cst.Name):
                out.add(n.func.value.value)
        elif isinstance(n, cst.FunctionDef):
            out.add(n.name.value)
        elif isinstance(n, cst.ImportAlias):
            name = n.asname.name if n.asname else n.name
            if isinstance(name, cst.Name):
                out.add(name.value)
    return out


def _bound(target: cst.CSTNode, out: set[str]) -> None:
    if isinstance(target, cst.Name):
        out.add(target.value)
    elif isinstance(target, cst.Tuple | cst.List):
        for e in target.elements:
            _bound(e.value, out)
    elif isinstance(target, cst.StarredElement):
        _bound(target.value, out)
    elif isinstance(target, cst.Subscript | cst.Attribute):
        base: cst.BaseExpression = target.value
        while isinstance(base, cst.Subscript | cst.Attribute):
            base = base.value
        if isinstance(base, cst.Name):
            out.add(base.value)


def _element_type(tp: Any, iterable: cst.BaseExpression) -> Any:
    """The type of an element of ``tp`` (a loop directly over a result), else Any."""
    if not isinstance(iterable, cst.Name | cst.Subscript | cst.Attribute):
        return Any
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (list, set, frozenset) and args:
        return args[0]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    if origin is dict and args:
        return args[0]
    return Any


__all__ = ["C", "Control", "replace"]
