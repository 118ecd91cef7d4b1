"""Rewriting a pipeline function into its builder (see ``lower.py`` for what runs).

A task call becomes ``__elfc__.task(id, handle, name)(...)``, a dynamic expression
``__elfc__.derive(id, [slots])``, a static loop's iterable ``__elfc__.loop(id, it)``; the result
is compiled with the pipeline's own file name and line numbers.
"""

from __future__ import annotations

import ast
from typing import Any

import libcst as cst

from elfc.compiler.analysis import Analysis, Rewrite
from elfc.compiler.lower import BUILDER


def _attr_call(method: str, *args: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(cst.Name(BUILDER), cst.Name(method)),
        args=[cst.Arg(a) for a in args],
    )


def _str(value: str) -> cst.SimpleString:
    return cst.SimpleString(repr(value))


class _Rewriter(cst.CSTTransformer):
    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.rewrites = analysis.rewrites
        self.unpacks = analysis.unpacks
        self.marks = analysis.marks
        self.updated: dict[int, cst.CSTNode] = {}
        self.blank = cst.Module([])

    def on_leave(self, original: Any, updated: Any) -> Any:
        rw = self.rewrites.get(id(original))
        new = self._apply(rw, original, updated) if rw is not None else updated
        mark = self.marks.get(id(original))
        if mark is not None:
            new = _mark(new, *mark)
        n = self.unpacks.get(id(original))
        if n is not None:
            new = _attr_call("unpack", new, cst.Integer(str(n)))
        self.updated[id(original)] = new
        return new

    def _apply(self, rw: Rewrite, original: Any, updated: Any) -> Any:
        if rw.kind == "task":
            func = _attr_call(
                "task", _str(rw.id), updated.func.value, _str(updated.func.attr.value)
            )
            return updated.with_changes(func=func)
        if rw.kind == "inline":
            return updated.with_changes(func=_attr_call("inline", _str(rw.id), updated.func))
        if rw.kind == "loop":
            return _attr_call("loop", _str(rw.id), updated)
        if rw.kind == "while":
            return _attr_call("again", _str(rw.id), updated)
        if rw.kind == "derive":
            return self._derive(rw, original, updated)
        raise AssertionError(rw.kind)

    def _derive(self, rw: Rewrite, original: Any, updated: Any) -> Any:
        slots = [cst.Element(_parenthesized(self.updated.get(id(s), s))) for s in rw.slots]
        lines = self.blank.code_for_node(original).count("\n")
        bracket = cst.RightSquareBracket()
        if lines:
            bracket = cst.RightSquareBracket(
                whitespace_before=cst.ParenthesizedWhitespace(
                    empty_lines=[cst.EmptyLine(indent=False)] * (lines - 1),
                    indent=False,
                )
            )
        call = _attr_call("derive", _str(rw.id), cst.List(slots, rbracket=bracket))
        if isinstance(original, cst.AugAssign):
            return cst.Assign(targets=[cst.AssignTarget(updated.target)], value=call)
        return call.with_changes(lpar=updated.lpar, rpar=updated.rpar) if updated.lpar else call


def _parenthesized(node: Any) -> Any:
    """A generator expression that shared its call's parentheses gets its own."""
    if isinstance(node, cst.GeneratorExp) and not node.lpar:
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def _mark(node: Any, kind: str, rid: str, names: tuple[str, ...]) -> Any:
    """Wrap the decision of a region's statement (see ``regions.py``) in its marker."""
    deciding = cst.Tuple(
        [cst.Element(_str(n), comma=cst.Comma()) for n in names],
        lpar=[cst.LeftParen()],
        rpar=[cst.RightParen()],
    )
    if isinstance(node, cst.Call):
        return _attr_call(kind, _str(rid), node, deciding)
    if isinstance(node, cst.IfExp):
        test = _attr_call(kind, _str(rid), node.test, deciding)
        return node.with_changes(
            test=test,
            whitespace_before_if=cst.SimpleWhitespace(" "),
            whitespace_after_if=cst.SimpleWhitespace(" "),
        )
    if isinstance(node, cst.For | cst.CompFor):
        return node.with_changes(iter=_attr_call(kind, _str(rid), node.iter, deciding))
    if isinstance(node, cst.If | cst.While | cst.Assert):
        if isinstance(node, cst.If) and not node.whitespace_before_test.value:
            node = node.with_changes(whitespace_before_test=cst.SimpleWhitespace(" "))
        if isinstance(node, cst.While) and not node.whitespace_after_while.value:
            node = node.with_changes(whitespace_after_while=cst.SimpleWhitespace(" "))
        if isinstance(node, cst.Assert) and not node.whitespace_after_assert.value:
            node = node.with_changes(whitespace_after_assert=cst.SimpleWhitespace(" "))
        return node.with_changes(test=_attr_call(kind, _str(rid), node.test, deciding))
    raise AssertionError(type(node).__name__)


def builder_code(fndef: cst.FunctionDef, analysis: Analysis, path: str, def_line: int) -> Any:
    """Compile the rewritten pipeline function; returns its code object."""
    rewritten = fndef.visit(_Rewriter(analysis))
    assert isinstance(rewritten, cst.FunctionDef)
    params = rewritten.params
    extra = cst.Param(cst.Name(BUILDER))
    rewritten = rewritten.with_changes(
        decorators=[],
        leading_lines=[],
        lines_after_decorators=[],
        params=params.with_changes(
            kwonly_params=[*params.kwonly_params, extra],
            star_arg=params.star_arg
            if params.star_arg is not cst.MaybeSentinel.DEFAULT or params.kwonly_params
            else cst.ParamStar(),
        ),
    )
    text = cst.Module(body=[rewritten]).code
    tree = ast.parse(text, filename=path)
    ast.increment_lineno(tree, def_line - 1)
    if analysis.marks or analysis.tries:
        from elfc.compiler.regions import extract

        fn = tree.body[0]
        assert isinstance(fn, ast.FunctionDef)
        extract(fn, analysis.tries)
    module_code = compile(tree, path, "exec")
    for const in module_code.co_consts:
        if hasattr(const, "co_name") and const.co_name == fndef.name.value:
            return const
    raise AssertionError("rewritten function not found")
