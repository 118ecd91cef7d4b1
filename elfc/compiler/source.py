"""A pipeline function's source, parsed once with libcst, with real file positions.

libcst's ``PositionProvider`` re-renders the whole tree to compute positions (several times
the cost of the parse itself). Instead, positions are taken from Python's own ``ast`` parse of
the same text (about a tenth of the libcst parse): libcst visits children in source order, so
the n-th libcst node of a kind (a call, a subscript, a name in expression context, a
statement, ...) is the n-th ``ast`` node of that kind in source order. The pairing is verified
on every name; if it ever disagrees, positions fall back to ``PositionProvider``.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator

import libcst as cst

from elfc.compiler.text import FunctionSource, char_offset, function_source
from elfc.errors import SourceUnavailable
from elfc.model.ir import Span

__all__ = ["FunctionSource", "Positions", "SourceUnavailable", "function_source", "parse_function"]

_PAIRS: dict[type[cst.CSTNode], tuple[type[ast.AST], ...]] = {
    cst.Call: (ast.Call,),
    cst.Attribute: (ast.Attribute,),
    cst.Subscript: (ast.Subscript,),
    cst.Name: (ast.Name,),
    cst.BinaryOperation: (ast.BinOp,),
    cst.UnaryOperation: (ast.UnaryOp,),
    cst.Comparison: (ast.Compare,),
    cst.IfExp: (ast.IfExp,),
    cst.Lambda: (ast.Lambda,),
    cst.ListComp: (ast.ListComp,),
    cst.SetComp: (ast.SetComp,),
    cst.DictComp: (ast.DictComp,),
    cst.GeneratorExp: (ast.GeneratorExp,),
    cst.Dict: (ast.Dict,),
    cst.Set: (ast.Set,),
    cst.Await: (ast.Await,),
    cst.Yield: (ast.Yield, ast.YieldFrom),
    cst.For: (ast.For, ast.AsyncFor),
    cst.While: (ast.While,),
    cst.If: (ast.If,),
    cst.Try: (ast.Try,),
    cst.TryStar: (ast.TryStar,),
    cst.With: (ast.With, ast.AsyncWith),
    cst.Return: (ast.Return,),
    cst.Assign: (ast.Assign,),
    cst.AugAssign: (ast.AugAssign,),
    cst.AnnAssign: (ast.AnnAssign,),
    cst.Del: (ast.Delete,),
    cst.Global: (ast.Global,),
    cst.Nonlocal: (ast.Nonlocal,),
    cst.Assert: (ast.Assert,),
    cst.Raise: (ast.Raise,),
    cst.FunctionDef: (ast.FunctionDef, ast.AsyncFunctionDef),
    cst.ClassDef: (ast.ClassDef,),
    cst.Expr: (ast.Expr,),
    cst.Match: (ast.Match,),
    cst.Import: (ast.Import,),
    cst.ImportFrom: (ast.ImportFrom,),
    cst.Param: (ast.arg,),
    cst.Integer: (),
    cst.Float: (),
    cst.Imaginary: (),
}
_AST_KEY: dict[type[ast.AST], type[cst.CSTNode]] = {
    a: c for c, asts in _PAIRS.items() for a in asts
}
# Numbers pair with the ast constants of their type (strings do not: "a" "b" is one constant).
_CONSTANT_NAMES = frozenset({"True", "False", "None"})
_CONSTANT_KEY: dict[type, type[cst.CSTNode]] = {
    int: cst.Integer,
    float: cst.Float,
    complex: cst.Imaginary,
}
_SKIP_SUBTREE = (cst.Import, cst.ImportFrom, cst.BaseParenthesizableWhitespace, cst.Comment)


def _not_expression_names(node: cst.CSTNode) -> tuple[cst.CSTNode | None, ...]:
    """Children of ``node`` that are names but not expressions (``ast`` keeps them as str)."""
    if isinstance(node, cst.Arg):
        return (node.keyword,)
    if isinstance(node, cst.Attribute):
        return (node.attr,)
    if isinstance(node, cst.FunctionDef | cst.ClassDef | cst.Param):
        return (node.name,)
    if isinstance(node, cst.NameItem):
        return (node.name,)
    if isinstance(node, cst.ExceptHandler | cst.ExceptStarHandler) and node.name is not None:
        return (node.name.name,)
    if isinstance(node, cst.MatchAs | cst.MatchStar):
        return (node.name,)
    if isinstance(node, cst.MatchMapping):
        return (node.rest,)
    if isinstance(node, cst.MatchKeywordElement):
        return (node.key,)
    return ()


_VISIT_FIELD = re.compile(r"visit_\w+\(\s*self,\s*[\"'](\w+)[\"']")
_FIELD_ORDER: dict[type, tuple[str, ...] | None] = {}
_TOKEN_FIELDS = re.compile(
    r"whitespace.*|lpar|rpar|lbracket|rbracket|lbrace|rbrace|comma|semicolon|colon|dot|equal"
    r"|operator|asynchronous|leading_lines|lines_after_decorators|header|footer|indent|newline"
    r"|trailing_whitespace|star_tok|arrow"
)


def _field_order(cls: type) -> tuple[str, ...] | None:
    """The fields of a libcst node class that may hold code, in the order libcst visits them
    (source order), read once from its ``_visit_and_replace_children``; None if unreadable."""
    if cls in _FIELD_ORDER:
        return _FIELD_ORDER[cls]
    order: tuple[str, ...] | None
    try:
        text = inspect.getsource(cls._visit_and_replace_children)  # type: ignore[attr-defined]
        names = dict.fromkeys(_VISIT_FIELD.findall(text))
        order = tuple(n for n in names if not _TOKEN_FIELDS.fullmatch(n))
    except (OSError, TypeError, AttributeError):
        order = None
    _FIELD_ORDER[cls] = order
    return order


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The children of ``node`` that may hold code, in source order.

    Like ``node.children`` without whitespace and punctuation, and much cheaper: libcst builds
    ``children`` by copying the node through a visitor.
    """
    order = _field_order(type(node))
    if order is None:
        return [c for c in node.children if not isinstance(c, _SKIP_SUBTREE)]
    out: list[cst.CSTNode] = []
    for name in order:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            out.append(value)
        elif isinstance(value, list | tuple):
            out.extend(v for v in value if isinstance(v, cst.CSTNode))
    return out


# Fields holding a Name that ``ast`` keeps as a plain string (so it pairs with nothing).
_NAME_FIELDS: dict[type[cst.CSTNode], frozenset[str]] = {
    cst.Arg: frozenset({"keyword"}),
    cst.Attribute: frozenset({"attr"}),
    cst.FunctionDef: frozenset({"name"}),
    cst.ClassDef: frozenset({"name"}),
    cst.Param: frozenset({"name"}),
    cst.NameItem: frozenset({"name"}),
    cst.ExceptHandler: frozenset({"name"}),
    cst.ExceptStarHandler: frozenset({"name"}),
    cst.MatchAs: frozenset({"name"}),
    cst.MatchStar: frozenset({"name"}),
    cst.MatchMapping: frozenset({"rest"}),
    cst.MatchKeywordElement: frozenset({"key"}),
}
_WALK_FIELDS: dict[type, tuple[str, ...] | None] = {cst.Import: (), cst.ImportFrom: ()}


def _walk_fields(cls: type) -> tuple[str, ...] | None:
    fields = _WALK_FIELDS.get(cls, ())
    if cls not in _WALK_FIELDS:
        order = _field_order(cls)
        skip = _NAME_FIELDS.get(cls, frozenset())
        fields = _WALK_FIELDS[cls] = (
            None if order is None else tuple(f for f in order if f not in skip)
        )
    return fields


def _cst_preorder(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node that may pair with an ``ast`` node, in source order."""
    stack: list[cst.CSTNode] = [root]
    while stack:
        node = stack.pop()
        yield node
        fields = _walk_fields(type(node))
        if fields is None:  # libcst's own (slow) children, filtered as before
            kids = [c for c in node.children if not isinstance(c, _SKIP_SUBTREE)]
            skip = _not_expression_names(node)
            kids = [c for c in kids if not any(c is s for s in skip)]
            stack.extend(reversed(kids))
            continue
        for name in reversed(fields):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                stack.append(value)
            elif isinstance(value, list | tuple):
                stack.extend(v for v in reversed(value) if isinstance(v, cst.CSTNode))


class Positions:
    """File spans of libcst nodes of one parsed function."""

    def __init__(self, source: FunctionSource, module: cst.Module) -> None:
        self.source = source
        self.module = module
        self._spans: dict[int, Span] | None = None
        self.tree: ast.Module | None = None
        """The ``ast`` parse of the same text, once positions are computed (reusable)."""
        self._lines = source.text.splitlines()
        self._ascii = source.text.isascii()

    def _chars(self, line: int, byte_offset: int) -> int:
        """A column in characters: ``ast`` counts UTF-8 bytes."""
        if self._ascii:
            return byte_offset
        return char_offset(
            self._lines[line - 1] if 0 < line <= len(self._lines) else "", byte_offset
        )

    def text(self, node: cst.CSTNode) -> str | None:
        """The source text of a node that pairs with an ``ast`` node (without its enclosing
        parentheses), else None."""
        span = self._table().get(id(node))
        if span is None:
            return None
        first, indent = self.source.first_line, self.source.indent + 1
        lines = self._lines[span.line - first : span.end_line - first + 1]
        if not lines:
            return None
        if len(lines) == 1:
            return lines[0][span.column - indent : span.end_column - indent]
        lines[0] = lines[0][span.column - indent :]
        lines[-1] = lines[-1][: span.end_column - indent]
        return "\n".join(lines)

    def span(self, node: cst.CSTNode) -> Span:
        spans = self._table()
        found = spans.get(id(node))
        if found is not None:
            return found
        return self._derived(node, spans)

    def _derived(self, node: cst.CSTNode, spans: dict[int, Span]) -> Span:
        # A node of an unpaired kind (a boolean operation, a constant, ...): from the first and
        # last paired nodes inside it; else from the smallest paired node around it.
        inside = [spans[id(n)] for n in _cst_preorder(node) if id(n) in spans]
        if inside:
            start = min(inside, key=lambda s: (s.line, s.column))
            end = max(inside, key=lambda s: (s.end_line, s.end_column))
            return Span(start.path, start.line, start.column, end.end_line, end.end_column)
        return self._fallback().get(id(node)) or Span(
            self.source.path, self.source.first_line, 1, self.source.first_line, 1
        )

    def _table(self) -> dict[int, Span]:
        if self._spans is None:
            self._spans = self._paired() or self._fallback()
        return self._spans

    def _paired(self) -> dict[int, Span] | None:
        by_kind: dict[type[cst.CSTNode], list[ast.AST]] = {}
        self.tree = ast.parse(self.source.text)
        for a in _ast_nodes(self.tree):
            kind = _AST_KEY.get(type(a))
            if kind is None and type(a) is ast.Constant:
                kind = _CONSTANT_KEY.get(type(a.value))
            if kind is not None:
                by_kind.setdefault(kind, []).append(a)
        for nodes in by_kind.values():
            nodes.sort(key=_ast_order)
        cursor: dict[type[cst.CSTNode], int] = {}
        spans: dict[int, Span] = {}
        for node in _cst_preorder(self.module):
            kind = type(node)
            if kind not in _PAIRS:
                continue
            if kind is cst.Name and node.value in _CONSTANT_NAMES:  # type: ignore[attr-defined]
                continue  # ast has them as constants
            i = cursor.get(kind, 0)
            cursor[kind] = i + 1
            pool = by_kind.get(kind, [])
            if i >= len(pool):
                return None
            a = pool[i]
            if isinstance(node, cst.Name) and getattr(a, "id", None) != node.value:
                return None
            line: int = a.lineno  # type: ignore[attr-defined]
            end_line: int = a.end_lineno or line  # type: ignore[attr-defined]
            spans[id(node)] = self.source.span(
                line,
                self._chars(line, a.col_offset),  # type: ignore[attr-defined]
                end_line,
                self._chars(end_line, a.end_col_offset or 0),  # type: ignore[attr-defined]
            )
        if any(cursor.get(k, 0) != len(v) for k, v in by_kind.items()):
            return None
        return spans

    def _fallback(self) -> dict[int, Span]:
        from libcst.metadata import MetadataWrapper, PositionProvider

        wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
        found = wrapper.resolve(PositionProvider)
        return {
            id(n): self.source.span(r.start.line, r.start.column, r.end.line, r.end.column)
            for n, r in found.items()
        }


def _ast_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` (in no particular order), faster than ``ast.walk``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast.AST))
            elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
                stack.append(value)


def _ast_order(a: ast.AST) -> tuple[int, int, int, int]:
    return (
        a.lineno,  # type: ignore[attr-defined]
        a.col_offset,  # type: ignore[attr-defined]
        -(a.end_lineno or 0),  # type: ignore[attr-defined]
        -(a.end_col_offset or 0),  # type: ignore[attr-defined]
    )


def parse_function(source: FunctionSource) -> tuple[cst.Module, cst.FunctionDef]:
    """Parse the function text with libcst; raises ``cst.ParserSyntaxError``."""
    module = cst.parse_module(source.text)
    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef):
            return module, stmt
    raise SourceUnavailable("the source does not hold a function definition")
