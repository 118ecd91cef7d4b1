"""Type references: an annotation written as JSON, so an expression can say how to decode a value.

A task's result crosses the mycelium as JSON. To evaluate a derive on the Python value the task
declared (a ``datetime``, an ``Enum`` member, a ``tuple``), the IR names the producer's return
type with a type reference, and the evaluator decodes the JSON as that type::

    typeref(datetime)                 == "datetime:datetime"
    typeref(list[tuple[int, str]])    == ["list", ["tuple", "builtins:int", "builtins:str"]]
    typeref(Status)                   == "shop.models:Status"
    resolve(["list", "datetime:datetime"]) == list[datetime]

A class is written ``"module:qualname"``. :func:`resolve` only looks a class up in a module
this process has **already imported** (``sys.modules``); it never imports, and it accepts only
classes, so a reference read from a database cannot run code or reach a function. A reference
it cannot resolve raises :class:`~elfc.errors.ExpressionError`.

:func:`is_plain` says when a type decodes to the same value as untyped JSON (``int``, ``str``,
``list[dict[str, float]]``): its references are left out, so the common case costs nothing.
"""

from __future__ import annotations

import enum
import math
import sys
import types
import typing
from typing import Any, Final

from elfc.errors import ExpressionError
from elfc.model.modules import importable_name

__all__ = [
    "NONFINITE",
    "TypeRef",
    "finite_json",
    "is_plain",
    "nonfinite_text",
    "resolve",
    "typeref",
]

NONFINITE: Final[frozenset[bytes]] = frozenset([b'"NaN"', b'"Infinity"', b'"-Infinity"'])
"""How NaN and the infinities are spelled in the JSON elfc writes (JSON has no such numbers)."""


def finite_json(data: Any) -> Any:
    """JSON builtins with NaN and the infinities spelled as :func:`nonfinite_text` spells them."""
    if type(data) is float and not math.isfinite(data):
        return nonfinite_text(data)
    if isinstance(data, list):
        return [finite_json(v) for v in data]
    if isinstance(data, dict):
        return {k: finite_json(v) for k, v in data.items()}
    return data


def nonfinite_text(x: float) -> str:
    """``"NaN"``, ``"Infinity"`` or ``"-Infinity"``: what msgspec reads back as that float."""
    if x != x:
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


TypeRef = str | list[Any]
"""A JSON type reference: ``"module:qualname"`` or ``[constructor, argument, ...]``."""

_GENERIC: Final[dict[Any, str]] = {
    list: "list",
    tuple: "tuple",
    dict: "dict",
    set: "set",
    frozenset: "frozenset",
    typing.Union: "union",
    types.UnionType: "union",
    typing.Literal: "literal",
}
_CONSTRUCTORS: Final[dict[str, Any]] = {
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "set": set,
    "frozenset": frozenset,
}
_PLAIN_SCALARS: Final[frozenset[Any]] = frozenset([int, str, bool, type(None), Any, object])


def typeref(tp: Any) -> TypeRef | None:
    """``tp`` as a JSON type reference, or None when it cannot be written as one.

    None for what no other process could look up: a class defined inside a function, a
    ``TypeVar``, a forward reference left as a string.
    """
    if tp is Any or tp is object:
        return "any"
    if tp is None or tp is type(None):
        return "none"
    if tp is Ellipsis:
        return "..."
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return typeref(typing.get_args(tp)[0])
    if origin is not None:
        name = _GENERIC.get(origin)
        if name is None:
            return typeref(origin) if isinstance(origin, type) else None
        args = typing.get_args(tp)
        if name == "literal":
            if all(type(a) in (int, str, bool) or a is None for a in args):
                return ["literal", *args]
            return None
        out: list[Any] = [name]
        for a in args:
            r = typeref(a)
            if r is None:
                return None
            out.append(r)
        return out
    if isinstance(tp, type):
        if tp in _CONSTRUCTORS.values():
            return _CONSTRUCTOR_NAMES[tp]
        qualname = tp.__qualname__
        if "<locals>" in qualname:
            return None
        return f"{importable_name(tp.__module__)}:{qualname}"
    return None


_CONSTRUCTOR_NAMES: Final[dict[Any, str]] = {v: k for k, v in _CONSTRUCTORS.items()}


def resolve(ref: TypeRef) -> Any:
    """The annotation a type reference names, from modules already imported here."""
    if isinstance(ref, str):
        if ref == "any":
            return Any
        if ref == "none":
            return type(None)
        if ref == "...":
            return Ellipsis
        if ref in _CONSTRUCTORS:
            return _CONSTRUCTORS[ref]
        return _lookup(ref)
    if not isinstance(ref, list) or not ref or not isinstance(ref[0], str):
        raise ExpressionError(f"not a type reference: {ref!r}")
    head, rest = ref[0], ref[1:]
    if head == "literal":
        if not all(type(a) in (int, str, bool) or a is None for a in rest):
            raise ExpressionError(f"a Literal type reference holds scalars only: {ref!r}")
        return typing.Literal[tuple(rest)]
    args = tuple(resolve(r) for r in rest)
    if head == "union":
        return typing.Union[args]  # noqa: UP007 - built from a tuple at run time
    constructor = _CONSTRUCTORS.get(head)
    if constructor is None:
        raise ExpressionError(f"unknown type constructor {head!r} in {ref!r}")
    if not args:
        return constructor
    return constructor[args if len(args) > 1 else args[0]]


def _lookup(ref: str) -> type[Any]:
    module_name, sep, qualname = ref.partition(":")
    if not sep or not qualname:
        raise ExpressionError(f"not a type reference: {ref!r} (expected 'module:qualname')")
    module = sys.modules.get(module_name)
    if module is None and importable_name("__main__") == module_name:
        module = sys.modules.get("__main__")  # this process runs that file as a script
    if module is None:
        raise ExpressionError(
            f"the type {qualname} of module {module_name} is not known in this process: "
            f"import {module_name} in the worker (e.g. from the module that defines the elf)"
        )
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise ExpressionError(f"module {module_name} has no class {qualname}")
    if not isinstance(found, type):
        raise ExpressionError(f"{ref} is not a class")
    return found


def is_plain(tp: Any) -> bool:
    """True when untyped JSON decodes to exactly the value ``tp`` would (no reference needed)."""
    if tp in _PLAIN_SCALARS or tp is None:
        return True
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return False
    origin = typing.get_origin(tp)
    if origin is list:
        return all(is_plain(a) for a in typing.get_args(tp))
    if origin is dict:
        args = typing.get_args(tp)
        return not args or (args[0] is str and is_plain(args[1]))
    if origin in (typing.Union, types.UnionType):
        return all(is_plain(a) for a in typing.get_args(tp))
    if origin is typing.Literal:
        return True
    if typing.is_typeddict(tp):
        try:
            hints = typing.get_type_hints(tp)
        except Exception:  # unresolvable annotations: decode it as declared
            return False
        return all(is_plain(h) for h in hints.values())
    return tp is list or tp is dict
