"""The pure methods and attributes a derive may use on a task result, by the result's class.

The compiler checks a method call on a task result against the declared type's entry here, and
the interpreter calls the function it finds here — never ``getattr`` with a name read from the
mycelium. A method is listed when it neither mutates its receiver nor depends on anything but
its arguments (``str.upper``, ``dict.get``, ``datetime.isoformat``); ``list.append`` or
``datetime.now`` never are.

Usage::

    method_for("abc", "upper")       # str.upper
    attribute_of(timedelta(3), "days") == 3
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "METHODS",
    "PURE_METHOD_NAMES",
    "attribute_names",
    "attribute_of",
    "method_for",
    "methods_of",
    "record_fields",
]


def _names(cls: type, names: str) -> dict[str, Callable[..., Any]]:
    return {n: getattr(cls, n) for n in names.split()}


_STR = (
    "capitalize casefold center count encode endswith expandtabs find index isalnum "
    "isalpha isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace "
    "istitle isupper join ljust lower lstrip partition removeprefix removesuffix replace rfind "
    "rindex rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title "
    "upper zfill"
)
_BYTES = (
    "capitalize center count decode endswith expandtabs find hex index isalnum isalpha isascii "
    "isdigit islower isspace istitle isupper join ljust lower lstrip partition removeprefix "
    "removesuffix replace rfind rindex rjust rpartition rsplit rstrip split splitlines "
    "startswith strip swapcase title upper zfill"
)
_SET = "copy difference intersection isdisjoint issubset issuperset symmetric_difference union"

METHODS: Final[dict[type, dict[str, Callable[..., Any]]]] = {
    str: _names(str, _STR),
    bytes: _names(bytes, _BYTES),
    list: _names(list, "copy count index"),
    tuple: _names(tuple, "count index"),
    dict: _names(dict, "copy get items keys values"),
    set: _names(set, _SET),
    frozenset: _names(frozenset, _SET.replace("copy ", "")),
    int: _names(int, "as_integer_ratio bit_count bit_length conjugate"),
    float: _names(float, "as_integer_ratio conjugate hex is_integer"),
    dt.datetime: _names(
        dt.datetime,
        "astimezone ctime date dst isocalendar isoformat isoweekday replace strftime time "
        "timestamp timetuple timetz toordinal tzname utcoffset weekday",
    ),
    dt.date: _names(
        dt.date, "ctime isocalendar isoformat isoweekday replace strftime toordinal weekday"
    ),
    dt.time: _names(dt.time, "dst isoformat replace strftime tzname utcoffset"),
    dt.timedelta: _names(dt.timedelta, "total_seconds"),
    decimal.Decimal: _names(
        decimal.Decimal,
        "adjusted as_integer_ratio as_tuple compare copy_abs copy_negate copy_sign exp "
        "is_finite is_infinite is_nan is_signed is_zero ln log10 normalize quantize sqrt "
        "to_eng_string to_integral_value",
    ),
    uuid.UUID: {},
}
"""For each class, its pure methods by name (the functions themselves, taken from the class)."""

PURE_METHOD_NAMES: Final[frozenset[str]] = frozenset(n for t in METHODS.values() for n in t)
"""Every listed name: what a receiver of unknown type may call (checked again at run time)."""

_ATTRIBUTES: Final[dict[type, frozenset[str]]] = {
    dt.datetime: frozenset(
        ["year", "month", "day", "hour", "minute", "second", "microsecond", "tzinfo", "fold"]
    ),
    dt.date: frozenset(["year", "month", "day"]),
    dt.time: frozenset(["hour", "minute", "second", "microsecond", "tzinfo", "fold"]),
    dt.timedelta: frozenset(["days", "seconds", "microseconds"]),
    uuid.UUID: frozenset(["hex", "int", "version", "variant", "urn", "bytes"]),
    int: frozenset(["real", "imag", "numerator", "denominator"]),
    float: frozenset(["real", "imag"]),
    decimal.Decimal: frozenset(["real", "imag"]),
}


def _table_class(value_type: type, table: dict[type, Any]) -> type | None:
    # The most derived listed class: a datetime is also a date, an IntEnum also an int.
    for cls in value_type.__mro__:
        if cls in table:
            return cls
    return None


def methods_of(value_type: type) -> dict[str, Callable[..., Any]]:
    """The pure methods of ``value_type`` by name (empty for a class with none listed)."""
    if issubclass(value_type, enum.Enum):
        return {}
    cls = _table_class(value_type, METHODS)
    return {} if cls is None else METHODS[cls]


def method_for(value: Any, name: str) -> Callable[..., Any] | None:
    """The pure method ``name`` of ``value``'s class, or None when it is not a pure method."""
    return methods_of(type(value)).get(name)


def attribute_names(value_type: type) -> frozenset[str] | None:
    """The readable attributes of a class that is not a record (None when there is no entry).

    Records (dataclasses, msgspec Structs, NamedTuples) expose their fields; an Enum member
    its ``name`` and ``value``.
    """
    if issubclass(value_type, enum.Enum):
        return frozenset(("name", "value"))
    fields = record_fields(value_type)
    if fields is not None:
        return fields
    cls = _table_class(value_type, _ATTRIBUTES)
    return None if cls is None else _ATTRIBUTES[cls]


def record_fields(value_type: type) -> frozenset[str] | None:
    """The field names of a dataclass, msgspec Struct or NamedTuple class; None otherwise."""
    if dataclasses.is_dataclass(value_type):
        return frozenset(f.name for f in dataclasses.fields(value_type))
    struct_fields = getattr(value_type, "__struct_fields__", None)
    if isinstance(struct_fields, tuple):
        return frozenset(struct_fields)
    if issubclass(value_type, tuple):
        named = getattr(value_type, "_fields", None)
        if isinstance(named, tuple):
            return frozenset(named)
    return None


_MISSING = object()


def attribute_of(value: Any, name: str) -> Any:
    """``value.name`` when ``name`` is a listed attribute or field of its class; else KeyError."""
    names = attribute_names(type(value))
    if names is None or name not in names:
        raise KeyError(name)
    found = getattr(value, name, _MISSING)
    if found is _MISSING:
        raise KeyError(name)
    return found
