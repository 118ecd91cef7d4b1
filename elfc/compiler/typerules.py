"""Type reasoning for the compiler: what can cross a process, and what fits where.

Every value that crosses a process is msgspec JSON validated against an annotation, so these
questions are asked at the JSON level, not at Python's: ``int`` may be passed as ``float``
(a JSON number), ``bool`` may not be passed as ``int`` (msgspec refuses ``true`` for an int),
and a NamedTuple is a JSON array, not an object.

The checks are conservative: a problem is reported only when validation would *certainly*
fail, so anything unknown (``Any``, ``object``, a TypeVar, an unresolved forward reference, a
``str`` into a ``Literal``) passes. A union *producer* is the exception that follows mypy: a
task declared to return ``X | None`` may return ``None``, so each of its members must fit.

Usage::

    crossing_problem(threading.Lock)          # "`threading.Lock` cannot cross a process: ..."
    compatibility_problem(list[int], dict[str, int])
    member_problem(Measurement, "wieght", "item")
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime
import decimal
import enum
import functools
import io
import sys
import threading
import types
import typing
import uuid
from collections.abc import Iterable
from typing import Any, ForwardRef, Literal, TypeVar, get_args, get_origin

import msgspec

from elfc.model.methods import attribute_names
from elfc.model.ops import BINARY_FUNCTIONS, COMPARE_FUNCTIONS

__all__ = [
    "attr_index",
    "compatibility_problem",
    "crossing_problem",
    "member_problem",
    "member_type",
    "operation_problem",
    "type_repr",
]

_NONE = type(None)
_STR_LIKE = (
    str,
    bytes,
    bytearray,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    decimal.Decimal,
)
_SCALARS: frozenset[Any] = frozenset({int, float, bool, *_STR_LIKE})
# The JSON kind a scalar encodes as, and the kinds its decoder accepts (msgspec, strict mode).
_KIND_OUT: dict[Any, str] = {int: "int", float: "float", bool: "bool"} | dict.fromkeys(
    _STR_LIKE, "str"
)
_KINDS_IN: dict[Any, frozenset[str]] = {
    int: frozenset({"int"}),
    float: frozenset({"int", "float"}),
    bool: frozenset({"bool"}),
    decimal.Decimal: frozenset({"str", "int", "float"}),
} | dict.fromkeys(_STR_LIKE[:-1], frozenset({"str"}))

_SEQUENCES: frozenset[Any] = frozenset({list, tuple, abc.Sequence, abc.MutableSequence})
_ARRAYS: frozenset[Any] = _SEQUENCES | {set, frozenset, abc.Set, abc.MutableSet}
_ARRAYS |= {abc.Collection, abc.Iterable}
_MAPPINGS: frozenset[Any] = frozenset({dict, abc.Mapping, abc.MutableMapping})
_NOT_CROSSING: dict[Any, str] = {  # in the order a subclass is matched
    typing.IO: "an open file (typing.IO)",
    io.IOBase: "an open file (typing.IO)",
    abc.Callable: "a Callable",
    types.FunctionType: "a function",
    types.BuiltinFunctionType: "a function",
    types.MethodType: "a method",
    functools.partial: "a Callable",
    type: "a class (type[...])",
    types.ModuleType: "a module",
    abc.Iterator: "an iterator",
    abc.Generator: "a generator",
    abc.AsyncIterator: "an async iterator",
    abc.AsyncIterable: "an async iterable",
    abc.AsyncGenerator: "an async generator",
    abc.Awaitable: "an awaitable",
    abc.Coroutine: "a coroutine",
}
_HINTS: dict[str, str] = {"an iterator": ": return a list", "a generator": ": return a list"}
_UNSUPPORTED = ": only JSON-encodable types can (see msgspec's supported types)"
_ALIASES: dict[Any, str] = {
    threading.Lock: "threading.Lock",
    type(threading.Lock()): "threading.Lock",
    threading.RLock: "threading.RLock",
    type(threading.RLock()): "threading.RLock",
}
_WRAPPERS = (typing.Annotated, typing.Required, typing.NotRequired, typing.Final, typing.ClassVar)
_PLAIN_MODULES = frozenset({"builtins", "typing", "typing_extensions", "collections.abc"})


# --- normalising ----------------------------------------------------------------------------


def _strip(tp: Any) -> Any:
    """``tp`` without wrappers that do not change its values (Annotated, NewType, aliases)."""
    while True:
        origin = get_origin(tp)
        if origin in _WRAPPERS:
            tp = get_args(tp)[0]
        elif isinstance(tp, typing.NewType):
            tp = tp.__supertype__
        elif type(tp).__name__ == "TypeAliasType":  # `type X = ...` (3.12+)
            tp = tp.__value__
        elif tp is _NONE:
            return None
        else:
            return tp


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (typing.Union, types.UnionType)


def _is_unknown(tp: Any) -> bool:
    """True when nothing certain can be said about values of ``tp``."""
    return tp is Any or tp is object or isinstance(tp, str | ForwardRef | TypeVar)


def _among(tp: Any, collection: abc.Container[Any]) -> bool:
    """``tp in collection``, False for unhashable annotations."""
    try:
        return tp in collection
    except TypeError:
        return False


def _class_of(tp: Any) -> type | None:
    """The class behind ``tp`` (``Box`` for ``Box[int]``), or None for special forms."""
    cls = get_origin(tp) or tp
    return cls if isinstance(cls, type) else None


def _subclass(tp: Any, base: type) -> bool:
    cls = _class_of(tp)
    return cls is not None and issubclass(cls, base)


# --- records: TypedDict, dataclass, NamedTuple, msgspec.Struct ------------------------------


@dataclasses.dataclass(frozen=True)
class _Record:
    """The fields of a structured type, as it crosses a process."""

    kind: str
    fields: dict[str, Any]
    """attribute name -> annotation, in encoding order"""
    required: frozenset[str]
    keys: dict[str, str]
    """attribute name -> JSON object key"""
    array_like: bool = False
    tagged: bool = False
    forbid_unknown: bool = False


_RECORDS: dict[type, _Record] = {}


def _record(tp: Any) -> _Record | None:
    """The fields of ``tp`` when it is a record type, resolved once per class."""
    cls = _class_of(tp)
    if cls is None:
        return None
    found = _RECORDS.get(cls)
    if found is None:
        try:
            found = _read_record(cls)
        except (NameError, TypeError, AttributeError):  # unresolvable annotations
            return None
        if found is not None:
            _RECORDS[cls] = found
    return found


def _is_record_class(cls: type) -> bool:
    return (
        typing.is_typeddict(cls)
        or dataclasses.is_dataclass(cls)
        or issubclass(cls, msgspec.Struct)
        or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def _read_record(cls: type) -> _Record | None:
    if typing.is_typeddict(cls):
        return _typeddict_record(cls)
    if issubclass(cls, msgspec.Struct):
        return _struct_record(cls)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        hints = typing.get_type_hints(cls)
        names: tuple[str, ...] = cls._fields
        fields = {name: hints.get(name, Any) for name in names}
        required = frozenset(names) - set(getattr(cls, "_field_defaults", ()))
        return _Record("NamedTuple", fields, required, _same_keys(fields), array_like=True)
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        fields = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}
        required = frozenset(
            f.name
            for f in dataclasses.fields(cls)
            if f.init
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        return _Record("dataclass", fields, required, _same_keys(fields))
    return None


def _typeddict_record(cls: type) -> _Record:
    # __required_keys__ misses Required/NotRequired written as strings (postponed
    # annotations), so the resolved markers decide first.
    hints = typing.get_type_hints(cls, include_extras=True)
    declared = frozenset(getattr(cls, "__required_keys__", hints))
    required = frozenset(
        name
        for name, hint in hints.items()
        if get_origin(hint) is typing.Required
        or (get_origin(hint) is not typing.NotRequired and name in declared)
    )
    fields = {name: _unmark(hint) for name, hint in hints.items()}
    return _Record("TypedDict", fields, required, _same_keys(fields))


def _unmark(hint: Any) -> Any:
    while get_origin(hint) in (typing.Required, typing.NotRequired):
        hint = get_args(hint)[0]
    return hint


def _struct_record(cls: type[msgspec.Struct]) -> _Record:
    infos = msgspec.structs.fields(cls)
    config = cls.__struct_config__
    return _Record(
        "msgspec Struct",
        {f.name: f.type for f in infos},
        frozenset(f.name for f in infos if f.required),
        {f.name: f.encode_name for f in infos},
        array_like=config.array_like,
        tagged=config.tag is not None,
        forbid_unknown=config.forbid_unknown_fields,
    )


def _same_keys(fields: Iterable[str]) -> dict[str, str]:
    return {name: name for name in fields}


# --- type_repr --------------------------------------------------------------------------------


def type_repr(tp: Any) -> str:
    """A readable name for an annotation: ``list[int]``, ``Measurement``, ``int | None``."""
    while get_origin(tp) in (typing.Annotated, typing.Required, typing.NotRequired):
        tp = get_args(tp)[0]
    if tp is None or tp is _NONE:
        return "None"
    if tp is Any:
        return "Any"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, str):
        return tp
    if isinstance(tp, ForwardRef):
        return tp.__forward_arg__
    if isinstance(tp, TypeVar | typing.NewType):
        return tp.__name__
    if isinstance(tp, list):  # the parameters of a Callable
        return f"[{', '.join(type_repr(a) for a in tp)}]"
    return _generic_repr(tp)


def _generic_repr(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if _is_union(tp):
        return " | ".join(type_repr(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is None:
        return _name(tp)
    if not args:
        empty_tuple = origin is tuple and getattr(tp, "__args__", None) == ()
        return f"{_name(origin)}[()]" if empty_tuple else _name(origin)
    return f"{_name(origin)}[{', '.join(type_repr(a) for a in args)}]"


def _name(obj: Any) -> str:
    """A class's name: bare for builtins, typing and user code, dotted for the stdlib."""
    alias = _ALIASES.get(obj) if _among(obj, _ALIASES) else None
    if alias is not None:
        return alias
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not isinstance(name, str):
        return repr(obj)
    module = getattr(obj, "__module__", None) or ""
    if module in _PLAIN_MODULES or module.split(".")[0] not in sys.stdlib_module_names:
        return name
    return f"{module.lstrip('_')}.{name}"


# --- crossing ---------------------------------------------------------------------------------


def crossing_problem(tp: Any) -> str | None:
    """Why values annotated ``tp`` cannot cross a process as msgspec JSON, or None if they can.

    ``crossing_problem(list[Measurement])`` is None;
    ``crossing_problem(threading.Lock)`` names the lock and says what can cross instead.
    """
    walk = _Crossing()
    problem = walk.visit(tp, "")
    if problem is None and not walk.unresolved:
        problem = _msgspec_problem(tp)
    return problem


def _msgspec_problem(tp: Any) -> str | None:
    """Rules only msgspec knows (unions of two array types, enums of mixed values...)."""
    try:
        msgspec.json.Decoder(tp)
    except TypeError as exc:
        return f"`{type_repr(tp)}` cannot cross a process: {exc}"
    except Exception:  # an annotation msgspec cannot even resolve: nothing certain to say
        return None
    return None


class _Crossing:
    """One walk over an annotation, guarding against recursive types."""

    def __init__(self) -> None:
        self.seen: set[type] = set()
        self.unresolved = False

    def visit(self, tp: Any, where: str) -> str | None:
        tp = _strip(tp)
        if tp is None or _is_unknown(tp):
            self.unresolved |= not (tp is None or tp is Any or tp is object)
            return None
        if _among(tp, _SCALARS):
            return None
        if _is_union(tp):
            return self.first(get_args(tp), where)
        origin = get_origin(tp)
        if origin is Literal or _subclass(tp, enum.Enum):
            return None
        refused = _refused(tp, exact=True)
        if refused is None and _record(tp) is None:
            refused = _refused(tp, exact=False)
        if refused is not None:
            return f"{refused}{where} cannot cross a process{_HINTS.get(refused, '')}"
        if _among(origin, _MAPPINGS) or _among(tp, _MAPPINGS):
            return self.mapping(get_args(tp), where)
        if _among(origin, _ARRAYS) or _among(tp, _ARRAYS):
            return self.first([a for a in get_args(tp) if a is not Ellipsis], where)
        return self.other(tp, where)

    def first(self, members: Iterable[Any], where: str) -> str | None:
        for member in members:
            problem = self.visit(member, where)
            if problem is not None:
                return problem
        return None

    def mapping(self, args: tuple[Any, ...], where: str) -> str | None:
        if args:
            key = _strip(args[0])
            if _record(key) is not None or _among(get_origin(key), _ARRAYS | _MAPPINGS):
                return (
                    f"`{type_repr(args[0])}`{where} cannot cross a process as a dict key: "
                    "JSON object keys must be str, int, float, enum or literal values"
                )
        return self.first(args, where)

    def other(self, tp: Any, where: str) -> str | None:
        record = _record(tp)
        cls = _class_of(tp)
        if record is None and cls is not None and _is_record_class(cls):
            self.unresolved = True  # a record whose annotations do not resolve yet
            return None
        if cls is not None and hasattr(cls, "__attrs_attrs__"):
            return None  # attrs classes: msgspec supports them; their fields are not walked
        if record is None or cls is None:
            if not isinstance(tp, type) and not callable(tp):
                return f"`{tp!r}`{where} is not a type"
            return f"`{type_repr(tp)}`{where} cannot cross a process{_UNSUPPORTED}"
        if cls in self.seen:
            return None
        self.seen.add(cls)
        for name, field_tp in record.fields.items():
            problem = self.visit(field_tp, f" (field {name!r} of `{type_repr(cls)}`)")
            if problem is not None:
                return problem
        return None


def _refused(tp: Any, *, exact: bool) -> str | None:
    """What ``tp`` is when it is a known kind of value that can never cross a process:
    by identity (``exact``), or as a subclass (an ``io.TextIOWrapper`` is an open file)."""
    origin = get_origin(tp) or tp
    if exact:
        return _NOT_CROSSING.get(origin) if _among(origin, _NOT_CROSSING) else None
    if isinstance(origin, type):
        for base, what in _NOT_CROSSING.items():
            if isinstance(base, type) and base is not type and issubclass(origin, base):
                return what
    return None


# --- compatibility ----------------------------------------------------------------------------


def compatibility_problem(producer: Any, consumer: Any) -> str | None:
    """Why a value declared ``producer`` certainly fails validation as ``consumer``, else None.

    ``compatibility_problem(list[int], dict[str, int])`` is
    "`list[int]` cannot be passed as `dict[str, int]`"; ``(int, float)`` is None (JSON
    numbers); ``(int | None, int)`` is a problem because the producer may return None.
    """
    return _compat(producer, consumer, set())


Seen = set[tuple[int, int]]


def _mismatch(producer: Any, consumer: Any, detail: str | None = None) -> str:
    head = f"`{type_repr(producer)}` cannot be passed as `{type_repr(consumer)}`"
    return f"{head}: {detail}" if detail else head


def _compat(producer: Any, consumer: Any, seen: Seen) -> str | None:
    p, c = _as_literal(_strip(producer)), _as_literal(_strip(consumer))
    if _is_unknown(p) or _is_unknown(c) or _same(p, c):
        return None
    if _is_union(p):
        for member in get_args(p):
            problem = _compat(member, c, seen)
            if problem is not None:
                why = "it may be None" if _strip(member) is None else problem
                return _mismatch(producer, consumer, why)
        return None
    if _is_union(c):
        if any(_compat(p, member, seen) is None for member in get_args(c)):
            return None
        return _mismatch(producer, consumer)
    detail = _shape_problem(p, c, seen)
    if detail is None:
        return None
    return _mismatch(producer, consumer, detail or None)


def _same(p: Any, c: Any) -> bool:
    try:
        return bool(p == c)
    except Exception:
        return False


def _as_literal(tp: Any) -> Any:
    """An Enum as the Literal of the JSON values it encodes to."""
    if _subclass(tp, enum.Enum):
        values = tuple(member.value for member in tp)
        return Literal[values] if values else tp
    return tp


def _literal_values(tp: Any) -> tuple[Any, ...]:
    return tuple(v.value if isinstance(v, enum.Enum) else v for v in get_args(tp))


def _shape_problem(p: Any, c: Any, seen: Seen) -> str | None:
    """None when ``p`` fits ``c``; else a detail ("" when the headline says it all)."""
    if get_origin(p) is Literal:
        return _literal_problem(p, c, seen)
    if get_origin(c) is Literal:
        accepted = tuple({type(v) for v in _literal_values(c)})
        return None if _compat(p, typing.Union[accepted], seen) is None else ""  # noqa: UP007
    ps, cs = _shape(p), _shape(c)
    if ps[0] == "unknown" or cs[0] == "unknown":
        return None
    check = _SHAPE_CHECKS.get((ps[0], cs[0]))
    return "" if check is None else check(ps, cs, seen)


def _literal_problem(p: Any, c: Any, seen: Seen) -> str | None:
    values = _literal_values(p)
    if get_origin(c) is Literal:
        accepted = {(type(v), v) for v in _literal_values(c)}
        missing = [v for v in values if (type(v), v) not in accepted]
        return f"{missing[0]!r} is not one of its values" if missing else None
    for value in values:
        value_tp = None if value is None else type(value)
        if _compat(value_tp, c, seen) is not None:
            return ""
    return None


Shape = tuple[Any, ...]


def _shape(tp: Any) -> Shape:
    """A type's JSON shape: ("none",), ("scalar", type), ("array", item type),
    ("fixed", item types, min length, max length), ("map", value type),
    ("record", record, class) or ("unknown",)."""
    if tp is None:
        return ("none",)
    if _among(tp, _KIND_OUT):
        return ("scalar", tp)
    origin, args = get_origin(tp), get_args(tp)
    if _among(origin, _ARRAYS) or _among(tp, _ARRAYS):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return ("fixed", args, len(args), len(args))
        return ("array", args[0] if args else Any)
    if _among(origin, _MAPPINGS) or _among(tp, _MAPPINGS):
        return ("map", args[1] if len(args) == 2 else Any)
    record = _record(tp)
    if record is None or record.tagged:
        return ("unknown",)
    if record.array_like:
        items = tuple(record.fields.values())
        return ("fixed", items, len(record.required), len(items))
    return ("record", record, _class_of(tp))


def _scalars(ps: Shape, cs: Shape, seen: Seen) -> str | None:
    kind = _KIND_OUT[ps[1]]
    return None if kind in _KINDS_IN.get(cs[1], frozenset({kind})) else ""


def _items_into_array(ps: Shape, cs: Shape, seen: Seen) -> str | None:
    items = ps[1] if ps[0] == "fixed" else (ps[1],)
    for item in items:
        problem = _compat(item, cs[1], seen)
        if problem is not None:
            return f"its items: {problem}"
    return None


def _items_into_fixed(ps: Shape, cs: Shape, seen: Seen) -> str | None:
    # A fixed producer (tuple, NamedTuple) always encodes all of its items.
    if ps[0] == "fixed" and not cs[2] <= ps[3] <= cs[3]:
        expected = str(cs[2]) if cs[2] == cs[3] else f"{cs[2]} to {cs[3]}"
        return f"it has {ps[3]} items, {expected} expected"
    for index, item in enumerate(cs[1]):
        if ps[0] == "fixed" and index >= ps[3]:
            break
        source = ps[1][index] if ps[0] == "fixed" else ps[1]
        problem = _compat(source, item, seen)
        if problem is not None:
            return f"position {index}: {problem}"
    return None


def _into_map(ps: Shape, cs: Shape, seen: Seen) -> str | None:
    values = ps[1].fields.values() if ps[0] == "record" else (ps[1],)
    for value in values:
        problem = _compat(value, cs[1], seen)
        if problem is not None:
            return f"its values: {problem}"
    return None


def _map_into_record(ps: Shape, cs: Shape, seen: Seen) -> str | None:
    record: _Record = cs[1]
    for name in sorted(record.required):
        problem = _compat(ps[1], record.fields[name], seen)
        if problem is not None:
            return f"required field {record.keys[name]!r}: {problem}"
    return None


def _records(ps: Shape, cs: Shape, seen: Seen) -> str | None:
    pair = (id(ps[2]), id(cs[2]))
    if pair in seen:  # a recursive type: assume the cycle fits
        return None
    seen.add(pair)
    produced: _Record = ps[1]
    wanted: _Record = cs[1]
    by_key = {produced.keys[name]: tp for name, tp in produced.fields.items()}
    for name, tp in wanted.fields.items():
        key = wanted.keys[name]
        if key not in by_key:
            if name in wanted.required:
                return f"it has no field {key!r}"
            continue
        problem = _compat(by_key[key], tp, seen)
        if problem is not None:
            return f"field {key!r}: {problem}"
    extra = sorted(set(by_key) - set(wanted.keys.values()))
    if wanted.forbid_unknown and extra:
        return f"`{type_repr(cs[2])}` forbids unknown fields, such as {extra[0]!r}"
    return None


_Check = abc.Callable[[Shape, Shape, Seen], str | None]
_SHAPE_CHECKS: dict[tuple[str, str], _Check] = {
    ("scalar", "scalar"): _scalars,
    ("array", "array"): _items_into_array,
    ("fixed", "array"): _items_into_array,
    ("array", "fixed"): _items_into_fixed,
    ("fixed", "fixed"): _items_into_fixed,
    ("map", "map"): _into_map,
    ("record", "map"): _into_map,
    ("map", "record"): _map_into_record,
    ("record", "record"): _records,
}


# --- members: value[name] and value.name ------------------------------------------------------


def member_problem(tp: Any, name: str | int, kind: Literal["item", "attr"]) -> str | None:
    """Why ``value[name]`` (kind "item") or ``value.name`` ("attr") is invalid for a value of
    declared type ``tp`` once it crossed a process, or None when it is valid or unknowable.

    ``member_problem(Measurement, "wieght", "item")`` is
    "`Measurement` has no key 'wieght'; its keys are: species, weight".
    """
    return _member(tp, name, kind)[0]


def member_type(tp: Any, name: str | int, kind: Literal["item", "attr"]) -> Any:
    """The declared type of ``value[name]`` / ``value.name``: ``Any`` when unknown or invalid.

    ``member_type(Measurement, "weight", "item")`` is ``int``.
    """
    return _member(tp, name, kind)[1]


Member = tuple[str | None, Any]


def _member(tp: Any, name: str | int, kind: str) -> Member:
    stripped = _strip(tp)
    if _is_unknown(stripped):
        return None, Any
    if _is_union(stripped):
        return _union_member(stripped, name, kind)
    if kind == "item":
        return _item(stripped, name)
    return _attr(stripped, name)


def _union_member(tp: Any, name: str | int, kind: str) -> Member:
    found = []
    for member in get_args(tp):
        problem, member_tp = _member(member, name, kind)
        if problem is not None:
            return f"{problem} (the value is `{type_repr(tp)}`)", Any
        found.append(member_tp)
    return None, typing.Union[tuple(found)]  # noqa: UP007


def _item(tp: Any, name: str | int) -> Member:
    record = _record(tp)
    if record is not None and record.kind == "TypedDict":
        return _typeddict_item(tp, record, name)
    if record is not None and record.kind != "NamedTuple":
        return f"`{type_repr(tp)}` is a {record.kind}: read its fields as attributes", Any
    shape = _shape(tp)
    if shape[0] == "fixed":
        return _position(tp, shape[1], name)
    if shape[0] == "array":
        if not (_among(get_origin(tp), _SEQUENCES) or _among(tp, _SEQUENCES)):
            return f"`{type_repr(tp)}` is not subscriptable", Any
        return _index(tp, name, shape[1])
    if shape[0] == "map":
        return _map_item(tp, name, shape[1])
    if tp in (str, bytes, bytearray):
        return _index(tp, name, str if tp is str else int)
    if shape[0] in ("none", "scalar") or get_origin(tp) is Literal:
        return f"`{type_repr(tp)}` is not subscriptable", Any
    return None, Any


def _typeddict_item(tp: Any, record: _Record, name: str | int) -> Member:
    if isinstance(name, str) and name in record.fields:
        return None, record.fields[name]
    keys = ", ".join(record.fields)
    return f"`{type_repr(tp)}` has no key {name!r}; its keys are: {keys}", Any


def _index(tp: Any, name: str | int, item: Any) -> Member:
    if isinstance(name, int):
        return None, item
    return f"`{type_repr(tp)}` indices must be integers, not {name!r}", Any


def _position(tp: Any, items: tuple[Any, ...], name: str | int) -> Member:
    if not isinstance(name, int):
        return _index(tp, name, Any)
    if -len(items) <= name < len(items):
        return None, items[name]
    return f"`{type_repr(tp)}` has no position {name}; it has {len(items)}", Any


def _map_item(tp: Any, name: str | int, value: Any) -> Member:
    args = get_args(tp)
    key = _strip(args[0]) if args else Any
    if not (_is_unknown(key) or key is str or _all_str(key)):
        return (
            f"keys of `{type_repr(tp)}` become strings when it crosses a process, "
            "so they cannot be looked up: use a dict with str keys",
            Any,
        )
    if not isinstance(name, str):
        return f"`{type_repr(tp)}` has str keys, not {name!r}", Any
    return None, value


def _all_str(tp: Any) -> bool:
    literal = _as_literal(tp)
    if get_origin(literal) is Literal:
        return all(isinstance(v, str) for v in _literal_values(literal))
    return False


def _attr(tp: Any, name: str | int) -> Member:
    record = _record(tp)
    if record is None:
        cls = tp if isinstance(tp, type) else None
        readable = attribute_names(cls) if cls is not None else None
        if readable is not None and isinstance(name, str):
            if name in readable:
                return None, _ATTRIBUTE_TYPES.get(name, Any)
            names = ", ".join(sorted(readable))
            return f"`{type_repr(tp)}` has no attribute {name!r}; it has: {names}", Any
        shape = _shape(tp)[0]
        if shape == "unknown" and get_origin(tp) is not Literal:
            return None, Any
        if shape == "map":
            return f"`{type_repr(tp)}` has no attribute {name!r}: read its keys as items", Any
        return f"`{type_repr(tp)}` has no attribute {name!r} that a task result can carry", Any
    if record.kind == "TypedDict":
        return f"`{type_repr(tp)}` is a TypedDict: read its keys as items (value[{name!r}])", Any
    if isinstance(name, str) and name in record.fields:
        return None, record.fields[name]
    fields = ", ".join(record.fields)
    cls = _class_of(tp)
    if isinstance(name, str) and cls is not None and hasattr(cls, name):
        return (
            f"`{type_repr(tp)}`.{name} is not a field: only fields cross a process; "
            f"its fields are: {fields}",
            Any,
        )
    return f"`{type_repr(tp)}` has no field {name!r}; its fields are: {fields}", Any


_ATTRIBUTE_TYPES: dict[str, Any] = {
    **dict.fromkeys(
        [
            "year",
            "month",
            "day",
            "hour",
            "minute",
            "second",
            "microsecond",
            "fold",
            "days",
            "seconds",
            "microseconds",
        ],
        int,
    ),
    "name": str,
    "hex": str,
    "urn": str,
}
"""The types of the attributes :mod:`elfc.model.methods` lists (others are ``Any``)."""


def _samples() -> dict[type, Any]:
    return {
        bool: True,
        int: 3,
        float: 1.5,
        str: "a",
        bytes: b"a",
        datetime.datetime: datetime.datetime(2000, 1, 2, 3, 4, 5),
        datetime.date: datetime.date(2000, 1, 2),
        datetime.time: datetime.time(3, 4, 5),
        datetime.timedelta: datetime.timedelta(days=1),
        decimal.Decimal: decimal.Decimal("1.5"),
        uuid.UUID: uuid.UUID(int=1),
        list: [1],
        tuple: (1,),
        set: {1},
        frozenset: frozenset({1}),
        dict: {"a": 1},
        type(None): None,
    }


_SAMPLES: dict[type, Any] = _samples()


def _sample_class(tp: Any) -> type | None:
    """The class a sample stands for: ``list[int]`` is a list; a union or an Enum has none."""
    cls = get_origin(tp) or tp
    if tp is None:
        return type(None)
    if isinstance(cls, type) and cls in _SAMPLES:
        return cls
    return None


def operation_problem(symbol: str, left: Any, right: Any) -> tuple[str | None, Any]:
    """Whether Python rejects ``left <symbol> right`` on values of these declared types.

    Both must be types elfc has a sample value of (builtins, datetime, Decimal...): the
    operation is tried on the samples, so the verdict is Python's own.
    ``operation_problem("+", datetime, int)`` is ("unsupported operand type(s)
    for +: 'datetime.datetime' and 'int'", Any); with ``timedelta`` it is (None, datetime).
    """
    op = BINARY_FUNCTIONS.get(symbol) or COMPARE_FUNCTIONS.get(symbol)
    lc, rc = _sample_class(left), _sample_class(right)
    if lc is None or rc is None or op is None or symbol in ("==", "!=", "is", "is not"):
        return None, Any
    if symbol == "%" and lc in (str, bytes):
        return None, lc  # printf-style formatting: its verdict depends on the values
    try:
        result = op(_SAMPLES[lc], _SAMPLES[rc])
    except TypeError as exc:
        return f"{exc} (`{type_repr(left)}` {symbol} `{type_repr(right)}`)", Any
    except Exception:  # a value-dependent failure (a shift by a negative count): no verdict
        return None, Any
    out = type(result)
    if out is lc and get_origin(left) is not None and left == right:
        return None, left  # list[int] + list[int] is a list[int]
    return None, out if out in _SAMPLES and get_origin(out) is None else Any


def attr_index(tp: Any, name: str) -> int | None:
    """The JSON array position of field ``name`` for types that encode as arrays (NamedTuple,
    ``array_like`` msgspec Struct, counting the tag if tagged), else None.

    ``attr_index(Point, "y")`` is 1 for ``class Point(NamedTuple): x: int; y: int``.
    """
    record = _record(_strip(tp))
    if record is None or not record.array_like or name not in record.fields:
        return None
    return list(record.fields).index(name) + int(record.tagged)
