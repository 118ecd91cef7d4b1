from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import io
import threading
import typing
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import (
    IO,
    Annotated,
    Any,
    Literal,
    NamedTuple,
    NewType,
    NotRequired,
    Optional,
    TextIO,
    TypedDict,
    TypeVar,
    Union,
)

import msgspec
import pytest

from elfc.compiler import typerules as types_module
from elfc.compiler.typerules import (
    attr_index,
    compatibility_problem,
    crossing_problem,
    member_problem,
    member_type,
    operation_problem,
    type_repr,
)

T = TypeVar("T")


class Measurement(TypedDict):
    species: str
    weight: int


class Reading(TypedDict):
    species: str
    weight: float
    unit: str


class Partial(TypedDict):
    species: str
    note: NotRequired[str]


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0

    @property
    def norm(self) -> float:
        return float(abs(self.x) + abs(self.y))


@dataclasses.dataclass
class Labelled:
    x: int
    label: str


@dataclasses.dataclass
class Config:
    name: str
    lock: threading.Lock


@dataclasses.dataclass
class Tree:
    value: int
    children: list[Tree]


@dataclasses.dataclass
class Handlers:
    on_done: Callable[[int], None]


@dataclasses.dataclass
class Forest:
    value: int
    children: list[Forest]


@dataclasses.dataclass
class Dangling:
    other: Undefined  # noqa: F821 (never resolves: nothing certain to say)


@dataclasses.dataclass
class Box(typing.Generic[T]):
    item: T


class Pair(NamedTuple):
    left: str
    right: int


class Triple(NamedTuple):
    a: int
    b: int
    c: int = 0


class Sample(msgspec.Struct):
    species: str
    weight: int


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    species: str


class Row(msgspec.Struct, array_like=True):
    key: str
    count: int


class TaggedRow(msgspec.Struct, array_like=True, tag=True):
    key: str
    count: int


class Camel(msgspec.Struct, rename="camel"):
    unit_name: str


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mixed(enum.Enum):
    A = 1
    B = "b"


class Plain:
    pass


UserId = NewType("UserId", int)
Weights = dict[str, list[int]]  # a type alias


# --- type_repr --------------------------------------------------------------------------------

REPRS: list[tuple[Any, str]] = [
    (int, "int"),
    (None, "None"),
    (type(None), "None"),
    (Any, "Any"),
    (list[int], "list[int]"),
    (typing.List[int], "list[int]"),  # noqa: UP006
    (dict[str, list[int]], "dict[str, list[int]]"),
    (tuple[int, ...], "tuple[int, ...]"),
    (tuple[()], "tuple[()]"),
    (int | None, "int | None"),
    (Optional[int], "int | None"),  # noqa: UP045
    (Union[int, str], "int | str"),  # noqa: UP007
    (Literal["a", 1], "Literal['a', 1]"),
    (Measurement, "Measurement"),
    (list[Measurement] | None, "list[Measurement] | None"),
    (Callable[[int], str], "Callable[[int], str]"),
    (Callable[..., str], "Callable[..., str]"),
    (Annotated[int, "meta"], "int"),
    (UserId, "UserId"),
    (T, "T"),
    ("Later", "Later"),
    (threading.Lock, "threading.Lock"),
    (datetime.datetime, "datetime.datetime"),
    (uuid.UUID, "uuid.UUID"),
    (io.TextIOWrapper, "io.TextIOWrapper"),
    (Sequence[int], "Sequence[int]"),
    (IO[str], "IO[str]"),
]


@pytest.mark.parametrize(("tp", "expected"), REPRS)
def test_type_repr(tp: Any, expected: str) -> None:
    assert type_repr(tp) == expected


# --- crossing_problem -------------------------------------------------------------------------

CROSSES: list[Any] = [
    int,
    float,
    str,
    bool,
    None,
    type(None),
    bytes,
    Any,
    object,
    list[int],
    list,
    dict[str, float],
    dict[int, str],
    tuple[int, str],
    tuple[int, ...],
    set[str],
    frozenset[int],
    Sequence[int],
    Mapping[str, int],
    int | None,
    Optional[list[str]],  # noqa: UP045
    Union[int, str],  # noqa: UP007
    Literal["a", "b"],
    Measurement,
    Partial,
    Point,
    Pair,
    Sample,
    Row,
    TaggedRow,
    Color,
    Level,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    decimal.Decimal,
    Tree,  # recursive
    Dangling,
    Box[int],
    Box[Tree],
    list[Tree] | None,
    UserId,
    Weights,
    Annotated[int, msgspec.Meta(ge=0)],
    T,
    "NotYetDefined",
]


@pytest.mark.parametrize("tp", CROSSES, ids=type_repr)
def test_crossing_allowed(tp: Any) -> None:
    assert crossing_problem(tp) is None


NOT_CROSSING: list[tuple[Any, str]] = [
    (threading.Lock, "`threading.Lock` cannot cross a process: only JSON-encodable types"),
    (type(threading.Lock()), "`threading.Lock` cannot cross a process: only JSON-encodable"),
    (Plain, "`Plain` cannot cross a process: only JSON-encodable types can"),
    (list[Plain], "`Plain` cannot cross a process"),
    (dict[str, threading.Lock] | None, "`threading.Lock` cannot cross a process"),
    (Config, "`threading.Lock` (field 'lock' of `Config`) cannot cross a process"),
    (list[Config], "(field 'lock' of `Config`)"),
    (Callable[[int], str], "a Callable cannot cross a process"),
    (Callable, "a Callable cannot cross a process"),
    (Handlers, "a Callable (field 'on_done' of `Handlers`) cannot cross a process"),
    (IO[str], "an open file (typing.IO) cannot cross a process"),
    (TextIO, "an open file (typing.IO) cannot cross a process"),
    (io.TextIOWrapper, "an open file (typing.IO) cannot cross a process"),
    (Iterator[int], "an iterator cannot cross a process: return a list"),
    (Generator[int, None, None], "a generator cannot cross a process: return a list"),
    (type[int], "a class (type[...]) cannot cross a process"),
    (dict[tuple[int, int], str], "`tuple[int, int]` cannot cross a process as a dict key"),
    (list[int] | tuple[int, ...], "more than one array-like"),
    (Mixed, "Enums must contain either all str or all int values"),
    (3, "`3` is not a type"),
]


@pytest.mark.parametrize(("tp", "reason"), NOT_CROSSING, ids=lambda v: str(v)[:40])
def test_crossing_refused(tp: Any, reason: str) -> None:
    problem = crossing_problem(tp)
    assert problem is not None
    assert reason in problem


# --- compatibility_problem --------------------------------------------------------------------

COMPATIBLE: list[tuple[Any, Any]] = [
    (int, int),
    (int, float),  # both JSON numbers
    (Literal[1], float),
    (int, int | None),
    (int, Optional[float]),  # noqa: UP045
    (None, int | None),
    (int | str, int | str),
    (int | str, str | int | None),
    (list[int], list[float]),
    (list[int], Sequence[int]),
    (tuple[int, str], tuple[int, str]),
    (tuple[int, ...], tuple[int, int]),  # length unknown at compile time
    (list[int], tuple[int, ...]),
    (set[int], list[int]),
    (dict[str, int], dict[str, float]),
    (dict[str, int], Mapping[str, int]),
    (Any, int),
    (int, Any),
    (list[Any], list[str]),
    (object, int),
    (T, int),
    ("Later", int),
    (Literal["a"], str),
    (str, Literal["a"]),
    (Literal["a"], Literal["a", "b"]),
    (Color, Color),
    (Color, str),
    (str, Color),
    (Literal["red"], Color),
    (Level, int),
    (int, Level),
    (datetime.datetime, str),
    (str, datetime.datetime),
    (uuid.UUID, str),
    (bytes, str),
    (decimal.Decimal, str),
    (int, decimal.Decimal),
    (UserId, int),
    (int, UserId),
    (Annotated[int, "meta"], int),
    (Measurement, Measurement),
    (Measurement, Sample),  # same fields, another kind of record
    (Sample, Measurement),
    (Measurement, Reading | Sample | None),
    (Measurement, Partial),
    (Partial, Measurement | Partial),
    (Labelled, Point),  # extra field is ignored; y has a default
    (Point, dict[str, int]),
    (Measurement, dict[str, Any]),
    (dict[str, str], Partial),
    (dict[str, Any], Measurement),
    (Pair, tuple[str, int]),
    (Pair, list[str | int]),
    (tuple[str, int], Pair),
    (tuple[int, int], Triple),  # the default of c fills in
    (Row, tuple[str, int]),
    (Tree, Tree),
    (Tree, Forest),  # recursive, structurally equal
    (Box[int], Box[str]),  # type parameters are not substituted: unknown
    (Dangling, Point),
    (list[Tree], list[Tree]),
    (Sample, Strict | Sample),
    (Plain, int),  # not a JSON type: crossing_problem reports it, not this
    (TaggedRow, Row),  # tagged structs are not judged
]


@pytest.mark.parametrize(("producer", "consumer"), COMPATIBLE, ids=str)
def test_compatible(producer: Any, consumer: Any) -> None:
    assert compatibility_problem(producer, consumer) is None


INCOMPATIBLE: list[tuple[Any, Any, str]] = [
    (int, str, "`int` cannot be passed as `str`"),
    (str, int, "`str` cannot be passed as `int`"),
    (float, int, "`float` cannot be passed as `int`"),
    (bool, int, "`bool` cannot be passed as `int`"),
    (int, bool, "`int` cannot be passed as `bool`"),
    (None, int, "`None` cannot be passed as `int`"),
    (int, None, "`int` cannot be passed as `None`"),
    (list[int], dict[str, int], "`list[int]` cannot be passed as `dict[str, int]`"),
    (dict[str, int], list[int], "`dict[str, int]` cannot be passed as `list[int]`"),
    (
        list[int],
        list[str],
        "`list[int]` cannot be passed as `list[str]`: its items: `int` cannot be passed as `str`",
    ),
    (list[list[int]], list[list[str]], "its items: `list[int]` cannot be passed as"),
    (int, list[int], "`int` cannot be passed as `list[int]`"),
    (tuple[int, str], tuple[int, int], "position 1: `str` cannot be passed as `int`"),
    (tuple[int, str], tuple[int, str, int], "it has 2 items, 3 expected"),
    (tuple[int, int, int, int], Triple, "it has 4 items, 2 to 3 expected"),
    (tuple[int, ...], tuple[str, str], "position 0: `int` cannot be passed as `str`"),
    (tuple[int, str], list[int], "its items: `str` cannot be passed as `int`"),
    (Optional[int], int, "`int | None` cannot be passed as `int`: it may be None"),  # noqa: UP045
    (int | None, str | None, "`int` cannot be passed as `str | None`"),
    (int | str, int, "`int | str` cannot be passed as `int`: `str` cannot be passed as `int`"),
    (str, int | float, "`str` cannot be passed as `int | float`"),
    (dict[str, str], dict[str, int], "its values: `str` cannot be passed as `int`"),
    (int, Literal["a"], "`int` cannot be passed as `Literal['a']`"),
    (Literal["c"], Literal["a", "b"], "'c' is not one of its values"),
    (Literal["a", 1], str, "`Literal['a', 1]` cannot be passed as `str`"),
    (int, Color, "`int` cannot be passed as `Color`"),
    (Color, int, "`Color` cannot be passed as `int`"),
    (Level, str, "`Level` cannot be passed as `str`"),
    (Literal["green"], Color, "'green' is not one of its values"),
    (datetime.datetime, int, "`datetime.datetime` cannot be passed as `int`"),
    (decimal.Decimal, float, "`decimal.Decimal` cannot be passed as `float`"),
    (UserId, str, "`UserId` cannot be passed as `str`"),
    (Measurement, Reading, "`Measurement` cannot be passed as `Reading`: it has no field 'unit'"),
    (
        Reading,
        Measurement,
        "`Reading` cannot be passed as `Measurement`: field 'weight': `float` cannot be passed",
    ),
    (Partial, Measurement, "it has no field 'weight'"),
    (Point, Labelled, "it has no field 'label'"),
    (Sample, Strict, "`Strict` forbids unknown fields, such as 'weight'"),
    (Measurement, dict[str, int], "its values: `str` cannot be passed as `int`"),
    (dict[str, int], Measurement, "required field 'species': `int` cannot be passed as `str`"),
    (Measurement, list[str], "`Measurement` cannot be passed as `list[str]`"),
    (Pair, Measurement, "`Pair` cannot be passed as `Measurement`"),
    (Measurement, Pair, "`Measurement` cannot be passed as `Pair`"),
    (Pair, tuple[str, str], "position 1: `int` cannot be passed as `str`"),
    (Row, Sample, "`Row` cannot be passed as `Sample`"),
    (Tree, Point, "it has no field 'x'"),
    (list[Measurement], list[Reading], "its items: `Measurement` cannot be passed as `Reading`"),
    (dict[str, Measurement] | None, dict[str, Measurement], "it may be None"),
    (
        dict[str, Measurement] | None,
        dict[str, Reading],
        "its values: `Measurement` cannot be passed as `Reading`: it has no field 'unit'",
    ),
    (Reading, Measurement | Sample | None, "`Reading` cannot be passed as `Measurement | Sample"),
]


@pytest.mark.parametrize(("producer", "consumer", "reason"), INCOMPATIBLE, ids=str)
def test_incompatible(producer: Any, consumer: Any, reason: str) -> None:
    problem = compatibility_problem(producer, consumer)
    assert problem is not None
    assert reason in problem
    assert "\n" not in problem


# --- member_problem / member_type -------------------------------------------------------------

MEMBERS: list[tuple[Any, str | int, Literal["item", "attr"], Any]] = [
    (Measurement, "weight", "item", int),
    (Measurement, "species", "item", str),
    (Partial, "note", "item", str),
    (dict[str, float], "anything", "item", float),
    (dict[Literal["a", "b"], int], "a", "item", int),
    (Mapping[str, bool], "k", "item", bool),
    (dict, "k", "item", Any),
    (list[str], 0, "item", str),
    (list[str], -1, "item", str),
    (Sequence[int], 2, "item", int),
    (tuple[int, ...], 5, "item", int),
    (tuple[int, str], 1, "item", str),
    (tuple[int, str], -2, "item", int),
    (str, 0, "item", str),
    (bytes, 0, "item", int),
    (Pair, 1, "item", int),
    (Pair, "left", "attr", str),
    (Triple, "c", "attr", int),
    (Point, "y", "attr", int),
    (Sample, "weight", "attr", int),
    (Row, "count", "attr", int),
    (Camel, "unit_name", "attr", str),
    (Tree, "children", "attr", list[Tree]),
    (Annotated[Measurement, "x"], "weight", "item", int),
    (Box[int], "item", "attr", T),
]

UNKNOWN_MEMBERS: list[tuple[Any, str | int, Literal["item", "attr"]]] = [
    (Any, "whatever", "item"),
    (Any, "whatever", "attr"),
    (object, "whatever", "attr"),
    (T, 0, "item"),
    ("Later", "x", "attr"),
    (Plain, "x", "attr"),  # unknown classes are not judged here
    (Color, 0, "item"),
]


@pytest.mark.parametrize(("tp", "name", "kind", "expected"), MEMBERS, ids=str)
def test_valid_members(
    tp: Any, name: str | int, kind: Literal["item", "attr"], expected: Any
) -> None:
    assert member_problem(tp, name, kind) is None
    assert member_type(tp, name, kind) == expected


@pytest.mark.parametrize(("tp", "name", "kind"), UNKNOWN_MEMBERS, ids=str)
def test_unknown_members_pass_as_any(
    tp: Any, name: str | int, kind: Literal["item", "attr"]
) -> None:
    assert member_problem(tp, name, kind) is None
    assert member_type(tp, name, kind) is Any


def test_union_member_type_is_the_union_of_member_types() -> None:
    assert member_type(dict[str, int] | Measurement, "weight", "item") is int
    assert member_type(Measurement | Reading, "weight", "item") == int | float


BAD_MEMBERS: list[tuple[Any, str | int, Literal["item", "attr"], str]] = [
    (
        Measurement,
        "wieght",
        "item",
        "`Measurement` has no key 'wieght'; its keys are: species, weight",
    ),
    (Measurement, 0, "item", "`Measurement` has no key 0"),
    (Measurement, "weight", "attr", "`Measurement` is a TypedDict: read its keys as items"),
    (Point, "x", "item", "`Point` is a dataclass: read its fields as attributes"),
    (Sample, "weight", "item", "`Sample` is a msgspec Struct: read its fields as attributes"),
    (Point, "z", "attr", "`Point` has no field 'z'; its fields are: x, y"),
    (Point, "norm", "attr", "`Point`.norm is not a field: only fields cross a process"),
    (Pair, "middle", "attr", "`Pair` has no field 'middle'; its fields are: left, right"),
    (Pair, 2, "item", "`Pair` has no position 2; it has 2"),
    (tuple[int, str], 2, "item", "`tuple[int, str]` has no position 2; it has 2"),
    (tuple[int, str], -3, "item", "has no position -3"),
    (list[int], "a", "item", "`list[int]` indices must be integers, not 'a'"),
    (str, "a", "item", "`str` indices must be integers"),
    (set[int], 0, "item", "`set[int]` is not subscriptable"),
    (int, 0, "item", "`int` is not subscriptable"),
    (None, 0, "item", "`None` is not subscriptable"),
    (datetime.datetime, 0, "item", "`datetime.datetime` is not subscriptable"),
    (dict[int, str], 1, "item", "keys of `dict[int, str]` become strings"),
    (dict[str, int], 1, "item", "`dict[str, int]` has str keys, not 1"),
    (dict[str, int], "keys", "attr", "`dict[str, int]` has no attribute 'keys'"),
    (list[int], "count", "attr", "`list[int]` has no attribute 'count'"),
    (
        Measurement | None,
        "weight",
        "item",
        "`None` is not subscriptable (the value is `Measurement | None`)",
    ),
    (Measurement | Sample, "weight", "item", "`Sample` is a msgspec Struct"),
]


@pytest.mark.parametrize(("tp", "name", "kind", "reason"), BAD_MEMBERS, ids=str)
def test_invalid_members(
    tp: Any, name: str | int, kind: Literal["item", "attr"], reason: str
) -> None:
    problem = member_problem(tp, name, kind)
    assert problem is not None
    assert reason in problem
    assert member_type(tp, name, kind) is Any


# --- attr_index --------------------------------------------------------------------

INDICES: list[tuple[Any, str, int | None]] = [
    (Pair, "left", 0),
    (Pair, "right", 1),
    (Triple, "c", 2),
    (Row, "count", 1),
    (TaggedRow, "key", 1),  # the tag comes first
    (Pair | None, "left", None),
    (Annotated[Pair, "x"], "right", 1),
    (Pair, "missing", None),
    (Point, "x", None),
    (Sample, "weight", None),
    (Measurement, "weight", None),
    (Any, "x", None),
]


@pytest.mark.parametrize(("tp", "name", "expected"), INDICES, ids=str)
def test_attr_index(tp: Any, name: str, expected: int | None) -> None:
    assert attr_index(tp, name) == expected


def test_attr_index_matches_the_encoding() -> None:
    assert (
        msgspec.json.decode(msgspec.json.encode(TaggedRow("k", 3)))[attr_index(TaggedRow, "count")]
        == 3
    )
    assert msgspec.json.decode(msgspec.json.encode(Pair("a", 2)))[attr_index(Pair, "right")] == 2


def test_public_names() -> None:
    assert sorted(types_module.__all__) == [
        "attr_index",
        "compatibility_problem",
        "crossing_problem",
        "member_problem",
        "member_type",
        "operation_problem",
        "type_repr",
    ]


def test_operations_python_rejects_are_found_on_sample_values() -> None:
    assert operation_problem("+", datetime.datetime, datetime.timedelta) == (
        None,
        datetime.datetime,
    )
    assert operation_problem("-", datetime.datetime, datetime.datetime)[1] is datetime.timedelta
    problem, tp = operation_problem("+", datetime.datetime, int)
    assert problem is not None and "unsupported operand" in problem and tp is Any
    assert operation_problem("<", datetime.date, str)[0] is not None
    assert operation_problem("*", decimal.Decimal, int) == (None, decimal.Decimal)
    assert operation_problem("*", decimal.Decimal, float)[0] is not None  # as Python says
    assert operation_problem("%", str, int) == (None, str)  # formatting: value-dependent
    assert operation_problem("==", datetime.date, int) == (None, Any)  # == never raises
    assert operation_problem("+", list[int], list[int]) == (None, list[int])
    assert operation_problem("+", int | None, int) == (None, Any)  # unions: no verdict
