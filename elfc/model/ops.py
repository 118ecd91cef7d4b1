"""The one table of expression-IR operations: their names, and the sub-expressions of each.

An expression is a JSON scalar (that literal value) or an object with exactly one key, an
:class:`Op`, whose body is laid out as below. The compiler emits these objects, the runtime's
interpreter (``elfc.runtime.values``) evaluates them through a table keyed by the same
:class:`Op` members, and ``elfc.model.ir.children`` walks them through :data:`CHILDREN`; a test
checks that both tables cover every operation, so an operation cannot be added to one and
forgotten in another::

    {"lit": <any JSON>}                       a literal list / object (scalars need no wrapper)
    {"ref": "<job key>"}                      the result of a job of the same run, as JSON
    {"ref": ["<job key>", typeref]}           ... decoded as the producer's return type
                                              (a type reference: elfc.model.typeref)
    {"val": [typeref, <json>]}                a static value JSON cannot carry (a datetime,
                                              an Enum member, a Decimal): json decoded as it
    {"slot": <int>}                           template only: filled at submission
    {"list": [e, ...]}  {"tuple": [e, ...]}  {"set": [e, ...]}
    {"dict": [[k, v], ...]}
    {"item": [e, key]}                        e[key]
    {"slice": [e, lower, upper, step]}        e[lower:upper:step] (each may be null)
    {"attr": [e, "name"]}                     e.name: a key of a JSON object (dataclass, TypedDict,
    {"attr": [e, "name", index]}              Struct); with an index, a position of a JSON array
                                              (NamedTuple, array-like Struct)
    {"bin": [op, a, b]}                       op in BINARY_OPS
    {"unary": [op, e]}                        op in UNARY_OPS
    {"cmp": [a, [op, b], [op, c], ...]}       chained comparison; op in COMPARE_OPS
    {"and": [e, ...]}  {"or": [e, ...]}       short-circuit, Python semantics
    {"call": [name, [arg, ...], {kw: e}]}     a whitelisted pure builtin (BUILTINS)
    {"meth": [e, name, [arg, ...], {kw: e}]}  a pure method of e's class, from the table of
                                              pure methods (elfc.model.methods)
    {"fmt": [part, ...]}                      f-string; part is a string, or
                                              [e, conversion ("r"|"s"|"a"|null), spec e|null]
    {"if": [test, body, orelse]}              body if test else orelse (only one evaluated)
    {"concat": [e, ...]}                      the lists e, one after the other (a list the
                                              pipeline appended to, parts of it decided later)
    {"out": "<job key>"}                      the value of a region job (an expansion, then
    {"out": ["<job key>", i]}                 its join), whose result is itself literal IR;
                                              with i, element i of its list
    {"unbound": "<name>"}                     a variable a region left unassigned: reading
                                              it raises, as Python's UnboundLocalError

An evaluator meeting an unknown operation raises rather than guessing.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "BINARY_FUNCTIONS",
    "BINARY_OPS",
    "BUILTINS",
    "CHILDREN",
    "COMPARE_FUNCTIONS",
    "COMPARE_OPS",
    "UNARY_FUNCTIONS",
    "UNARY_OPS",
    "Op",
]


class Op(enum.StrEnum):
    """The name of an IR operation: the single key of an operation object."""

    LIT = "lit"
    REF = "ref"
    SLOT = "slot"
    LIST = "list"
    TUPLE = "tuple"
    SET = "set"
    DICT = "dict"
    ITEM = "item"
    SLICE = "slice"
    ATTR = "attr"
    BIN = "bin"
    UNARY = "unary"
    CMP = "cmp"
    AND = "and"
    OR = "or"
    CALL = "call"
    METH = "meth"
    FMT = "fmt"
    VAL = "val"
    IF = "if"
    CONCAT = "concat"
    OUT = "out"
    UNBOUND = "unbound"


BUILTINS: Final[frozenset[str]] = frozenset(
    [
        "len",
        "sum",
        "min",
        "max",
        "sorted",
        "abs",
        "round",
        "str",
        "int",
        "float",
        "bool",
        "list",
        "tuple",
        "dict",
        "zip",
        "enumerate",
        "any",
        "all",
        "set",
        "frozenset",
        "reversed",
        "divmod",
        "pow",
        "repr",
    ]
)
"""The pure builtins a ``call`` operation may name."""

BINARY_OPS: Final[frozenset[str]] = frozenset(
    ["+", "-", "*", "/", "//", "%", "**", "&", "|", "^", "<<", ">>"]
)
UNARY_OPS: Final[frozenset[str]] = frozenset(["-", "+", "not", "~"])
COMPARE_OPS: Final[frozenset[str]] = frozenset(
    ["==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not"]
)


BINARY_FUNCTIONS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "<<": operator.lshift,
    ">>": operator.rshift,
}
UNARY_FUNCTIONS: Final[dict[str, Callable[[Any], Any]]] = {
    "-": operator.neg,
    "+": operator.pos,
    "not": operator.not_,
    "~": operator.invert,
}
COMPARE_FUNCTIONS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
    "is": operator.is_,
    "is not": operator.is_not,
}
"""What each operator symbol does: the interpreter applies these, the checker tries them."""


def _none(body: Any) -> list[Any]:
    return []


def _all(body: Any) -> list[Any]:
    return list(body)


def _pairs(body: Any) -> list[Any]:
    return [e for pair in body for e in pair]


def _first(body: Any) -> list[Any]:
    return [body[0]]


def _operands(body: Any) -> list[Any]:
    return list(body[1:])


def _comparands(body: Any) -> list[Any]:
    return [body[0], *(b for _, b in body[1:])]


def _call_args(body: Any) -> list[Any]:
    return [*body[1], *(body[2].values() if len(body) > 2 else ())]


def _meth_args(body: Any) -> list[Any]:
    return [body[0], *body[2], *(body[3].values() if len(body) > 3 else ())]


def _fmt_parts(body: Any) -> list[Any]:
    out: list[Any] = []
    for part in body:
        if isinstance(part, list):
            out.append(part[0])
            if part[2] is not None:
                out.append(part[2])
    return out


CHILDREN: Final[dict[Op, Callable[[Any], list[Any]]]] = {
    Op.LIT: _none,
    Op.REF: _none,
    Op.SLOT: _none,
    Op.LIST: _all,
    Op.TUPLE: _all,
    Op.SET: _all,
    Op.DICT: _pairs,
    Op.ITEM: _all,
    Op.SLICE: _all,
    Op.ATTR: _first,
    Op.BIN: _operands,
    Op.UNARY: _operands,
    Op.CMP: _comparands,
    Op.AND: _all,
    Op.OR: _all,
    Op.CALL: _call_args,
    Op.METH: _meth_args,
    Op.FMT: _fmt_parts,
    Op.VAL: _none,
    Op.IF: _all,
    Op.CONCAT: _all,
    Op.OUT: _none,
    Op.UNBOUND: _none,
}
"""For each operation, its direct sub-expressions given its body."""
