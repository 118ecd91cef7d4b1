"""Calls: of builtins, of methods (mutators of static structures), of tasks (bound and
type-checked against the elf), of elf classes and of pipelines, which are inlined."""

from __future__ import annotations

import builtins
import inspect
import types
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import libcst as cst

from elfc.compiler import diagnostics as dg
from elfc.compiler.analysis.core import Core
from elfc.compiler.analysis.values import (
    MISSING,
    MUTATORS,
    STATIC,
    STRUCTURAL_BUILTINS,
    STRUCTURE_MUTATORS,
    STRUCTURE_READERS,
    C,
    D,
    Rewrite,
    S,
    Val,
    join,
)
from elfc.compiler.elves import TaskInfo, elf_info
from elfc.decorators import Handle, is_elf, pipeline_function, pipeline_name, task_names
from elfc.model.ir import (
    CallNode,
    InlineNode,
)
from elfc.model.methods import PURE_METHOD_NAMES, methods_of
from elfc.model.ops import BUILTINS, Op

KEYED = frozenset(["sorted", "min", "max"])
"""Builtins that take a ``key`` function: with one, a call region (the function is code)."""


class Calls(Core):
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
        if is_builtin and not (name in KEYED and any(a.keyword for a, _ in args)):
            return self.builtin_call(node, name, args)
        if id(node) in self.applying:  # analysed as its own region: it runs there
            return Val(S)
        if (callable(target) or target is MISSING) and all(v.bt != C for _, v in args):
            # MISSING: a callable the pipeline itself binds (apply_region says if it can run)
            return self.apply_region(node, None if target is MISSING else target)
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
        if recv.bt == D and recv.growing and method in ("append", "extend"):
            for a, v in args:
                self.materialize(a.value, v)
            return STATIC
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
        if id(node) in self.applying:
            return Val(S)
        # A method of a static object: a module's function, a logger's, one the pipeline
        # made itself (its value is known only when the pipeline runs).
        target = getattr(recv.static, method, None) if recv.static is not MISSING else None
        if (
            recv.bt == S
            and (target is None or callable(target))
            and all(v.bt != C for v in dynamic_args)
        ):
            # `log.info("%s rows", n)`, `math.floor(x)`, `statistics.mean(xs)`: a call region.
            return self.apply_region(node, target)
        self.report(dg.CALL_WITH_DYNAMIC, node, func=self.code(func), what=dynamic_args[0].what)
        return Val(D)

    def pure_method(
        self, node: cst.Call, func: cst.Attribute, recv: Val, args: list[tuple[cst.Arg, Val]]
    ) -> Val | None:
        """``recv.method(args)`` as a derive when it is a pure method of the receiver's type."""
        method = func.attr.value
        receiver_type = recv.tp if recv.bt == D else literal_type(func.value)
        if recv.bt == S and recv.static is not MISSING and receiver_type in (None, Any, object):
            receiver_type = type(recv.static)  # a module, a logger: its methods are not pure
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
        with self.hoisted_arguments():
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
        bt = S if self.hoist is not None else D
        return Val(bt, deps={nid: fn.__name__}, what=f"`{self.code(node)}`")

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
        with self.hoisted_arguments():
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
        # In a region's decision the call is made before the region, which sees its value.
        bt = S if self.hoist is not None else D
        return Val(bt, deps={nid: label}, tp=ret, what=f"`{source}`", producer=f"`{label}`")

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
            tp = v.tp if v.bt == D else literal_type(arg.value)
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


def literal_type(node: cst.BaseExpression) -> Any:
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


def _merged_deps(vals: Iterable[Val]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in vals:
        out.update(v.deps)
    return out


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
