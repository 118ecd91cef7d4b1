from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import threading
import uuid
from typing import Annotated, Any, Literal, NamedTuple, TypedDict

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from elfc.errors import ElfcError
from elfc.model.ops import BUILTINS, Op
from elfc.runtime import values
from elfc.runtime.values import (
    ExpressionError,
    ValueCrossingError,
    convert,
    decode,
    decode_as,
    encode,
    evaluate,
)

RESULTS: dict[str, Any] = {
    "region": b'{"list":[1,2]}',  # a region job's value: literal IR
    "m": {"species": "cat", "weight": 4},
    "nums": [3, 1, 2],
    "point": [1, 2],
    "n": 7,
    "s": "hello",
    "none": None,
    "zero": 0,
}


def ref(key: str) -> dict[str, str]:
    return {"ref": key}


# --- evaluate: one row per operation ------------------------------------------------------------

CASES: list[tuple[Any, Any]] = [
    (5, 5),
    ("text", "text"),
    (None, None),
    (True, True),
    ({"if": [{"ref": "n"}, "yes", {"ref": "missing"}]}, "yes"),  # the other arm is not read
    ({"if": [{"ref": "none"}, {"ref": "missing"}, "no"]}, "no"),
    ({"concat": [{"lit": [1]}, {"ref": "nums"}, {"list": []}]}, [1, 3, 1, 2]),
    ({"out": "region"}, [1, 2]),
    ({"out": ["region", 1]}, 2),
    ({"lit": [1, {"a": 2}]}, [1, {"a": 2}]),
    (ref("n"), 7),
    ({"list": [1, ref("n")]}, [1, 7]),
    ({"tuple": [1, ref("s")]}, (1, "hello")),
    ({"set": [1, 1, ref("n")]}, {1, 7}),
    ({"dict": [["k", ref("n")], [ref("s"), 1]]}, {"k": 7, "hello": 1}),
    ({"item": [ref("m"), "species"]}, "cat"),
    ({"item": [ref("nums"), -1]}, 2),
    ({"item": [ref("nums"), {"bin": ["-", ref("n"), 7]}]}, 3),
    ({"slice": [ref("nums"), 1, None, None]}, [1, 2]),
    ({"slice": [ref("s"), None, None, -1]}, "olleh"),
    ({"slice": [ref("nums"), 0, 3, 2]}, [3, 2]),
    ({"attr": [ref("m"), "weight"]}, 4),
    ({"attr": [ref("point"), "y", 1]}, 2),
    ({"unary": ["-", ref("n")]}, -7),
    ({"unary": ["+", ref("n")]}, 7),
    ({"unary": ["not", ref("n")]}, False),
    ({"unary": ["~", ref("n")]}, -8),
    ({"call": ["len", [ref("nums")], {}]}, 3),
    ({"call": ["len", [ref("s")]]}, 5),
    ({"fmt": ["w=", [ref("n"), None, None]]}, "w=7"),
    ({"meth": [ref("s"), "upper", [], {}]}, "HELLO"),
    ({"meth": [ref("m"), "get", ["colour", "grey"]]}, "grey"),
    ({"val": ["datetime:timedelta", "P3D"]}, datetime.timedelta(days=3)),
    ({"val": ["decimal:Decimal", "12.50"]}, decimal.Decimal("12.50")),
]

BINARY = [
    ("+", 7, 2, 9),
    ("-", 7, 2, 5),
    ("*", 7, 2, 14),
    ("/", 7, 2, 3.5),
    ("//", 7, 2, 3),
    ("%", 7, 2, 1),
    ("**", 7, 2, 49),
    ("&", 6, 3, 2),
    ("|", 6, 3, 7),
    ("^", 6, 3, 5),
    ("<<", 1, 3, 8),
    (">>", 8, 3, 1),
    ("+", "a", "b", "ab"),
    ("*", [1], 2, [1, 1]),
]

COMPARE = [
    ("==", 1, 1, True),
    ("!=", 1, 1, False),
    ("<", 1, 2, True),
    ("<=", 2, 2, True),
    (">", 1, 2, False),
    (">=", 2, 1, True),
    ("in", 1, {"lit": [1, 2]}, True),
    ("not in", 1, {"lit": [1, 2]}, False),
    ("is", None, None, True),
    ("is not", None, None, False),
]


@pytest.mark.parametrize(("expr", "expected"), CASES)
def test_evaluate_operations(expr: Any, expected: Any) -> None:
    result = evaluate(expr, RESULTS)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(("op", "left", "right", "expected"), BINARY)
def test_binary_operators(op: str, left: Any, right: Any, expected: Any) -> None:
    lhs = {"lit": left} if isinstance(left, list) else left
    assert evaluate({"bin": [op, lhs, right]}, {}) == expected


@pytest.mark.parametrize(("op", "left", "right", "expected"), COMPARE)
def test_comparison_operators(op: str, left: Any, right: Any, expected: bool) -> None:
    assert evaluate({"cmp": [left, [op, right]]}, {}) is expected


def test_every_ir_operation_is_covered() -> None:
    covered = {next(iter(e)) for e, _ in CASES if isinstance(e, dict)}
    covered |= {"bin", "cmp", "and", "or", "slot", "unbound"}  # tested by their own functions
    assert covered == set(Op)


def test_an_unbound_variable_raises_where_it_is_read() -> None:
    with pytest.raises(ExpressionError, match=r"UnboundLocalError.*'total'"):
        evaluate({"unbound": "total"}, {})


def test_chained_comparison_is_python_semantics() -> None:
    assert evaluate({"cmp": [1, ["<", ref("n")], ["<", 10]]}, RESULTS) is True
    assert evaluate({"cmp": [1, ["<", ref("n")], [">", 10]]}, RESULTS) is False
    assert evaluate({"cmp": [1, ["<", 2], ["==", 2], ["in", {"lit": [2]}]]}, {}) is True


def test_chained_comparison_stops_at_first_false() -> None:
    # The third operand would fail (missing ref) if it were evaluated.
    assert evaluate({"cmp": [2, ["<", 1], ["<", ref("missing")]]}, {}) is False


def test_and_or_short_circuit_and_return_the_operand() -> None:
    assert evaluate({"and": [ref("n"), ref("s")]}, RESULTS) == "hello"
    assert evaluate({"and": [ref("zero"), ref("missing")]}, RESULTS) == 0
    assert evaluate({"or": [ref("zero"), ref("none"), ref("s")]}, RESULTS) == "hello"
    assert evaluate({"or": [ref("n"), ref("missing")]}, RESULTS) == 7
    assert evaluate({"or": [ref("zero"), ref("none")]}, RESULTS) is None


# --- builtins ---------------------------------------------------------------------------------

CALLS = [
    ("sum", [{"lit": [1, 2, 3]}], {}, 6),
    ("sum", [{"lit": [1, 2]}], {"start": 10}, 13),
    ("min", [{"lit": [3, 1]}], {}, 1),
    ("min", [{"lit": []}], {"default": 0}, 0),
    ("max", [3, 9, 4], {}, 9),
    ("sorted", [{"lit": [3, 1, 2]}], {"reverse": True}, [3, 2, 1]),
    ("abs", [-4], {}, 4),
    ("round", [3.14159, 2], {}, 3.14),
    ("round", [2.5], {}, 2),
    ("str", [12], {}, "12"),
    ("int", ["12"], {}, 12),
    ("int", ["ff"], {"base": 16}, 255),
    ("float", ["1.5"], {}, 1.5),
    ("bool", [0], {}, False),
    ("list", [{"lit": {"a": 1, "b": 2}}], {}, ["a", "b"]),
    ("tuple", [{"lit": [1, 2]}], {}, (1, 2)),
    ("dict", [{"lit": [["a", 1]]}], {"b": 2}, {"a": 1, "b": 2}),
    ("zip", [{"lit": [1, 2]}, {"lit": ["a", "b"]}], {}, [(1, "a"), (2, "b")]),
    ("enumerate", [{"lit": ["a", "b"]}], {"start": 1}, [(1, "a"), (2, "b")]),
    ("any", [{"lit": [0, 1]}], {}, True),
    ("all", [{"lit": [0, 1]}], {}, False),
    ("len", [{"lit": {"a": 1}}], {}, 1),
    ("set", [{"lit": [1, 1, 2]}], {}, {1, 2}),
    ("frozenset", [{"lit": [1, 1]}], {}, frozenset({1})),
    ("reversed", [{"lit": [1, 2, 3]}], {}, [3, 2, 1]),
    ("divmod", [7, 2], {}, (3, 1)),
    ("pow", [2, 10], {}, 1024),
    ("pow", [2, 10, 1000], {}, 24),
    ("repr", ["a"], {}, "'a'"),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "expected"), CALLS)
def test_builtins(name: str, args: list[Any], kwargs: dict[str, Any], expected: Any) -> None:
    result = evaluate({"call": [name, args, kwargs]}, {})
    assert result == expected
    assert type(result) is type(expected)


def test_every_whitelisted_builtin_is_tested() -> None:
    assert {name for name, *_ in CALLS} == BUILTINS


def test_builtin_results_are_json_able() -> None:
    pairs = evaluate({"call": ["zip", [{"lit": [1]}, {"lit": [2]}], {}]}, {})
    assert decode(encode(pairs)) == [[1, 2]]


@pytest.mark.parametrize("name", ["print", "open", "eval", "exec", "getattr", "__import__"])
def test_non_whitelisted_names_are_refused(name: str) -> None:
    with pytest.raises(ExpressionError, match=rf"'{name}' is not a whitelisted builtin"):
        evaluate({"call": [name, ["x"], {}]}, {})


@pytest.mark.parametrize("name", ["sorted", "min", "max"])
def test_key_functions_are_refused(name: str) -> None:
    with pytest.raises(ExpressionError, match="key="):
        evaluate({"call": [name, [{"lit": [1, 2]}], {"key": "len"}]}, {})


def test_failing_builtin_names_the_call_and_chains() -> None:
    with pytest.raises(ExpressionError, match=r"int\(\) failed: ValueError") as info:
        evaluate({"call": ["int", ["abc"], {}]}, {})
    assert isinstance(info.value.__cause__, ValueError)


# --- f-strings --------------------------------------------------------------------------------

FORMATS = [
    (["n=", [7, None, None], "!"], "n=7!"),
    ([[3.14159, None, ".2f"]], "3.14"),
    ([[42, None, ">5"]], "   42"),
    ([[42, None, "05d"]], "00042"),
    ([[1234567, None, ","]], "1,234,567"),
    ([["hi", "r", None]], "'hi'"),
    ([["hi", "s", None]], "hi"),
    ([["é", "a", None]], "'\\xe9'"),
    ([["hi", "r", ">6"]], "  'hi'"),
    ([[3.14159, None, {"fmt": [".", [2, None, None], "f"]}]], "3.14"),
    ([[{"ref": "s"}, None, None], " ", [{"ref": "n"}, None, "x"]], "hello 7"),
]


@pytest.mark.parametrize(("parts", "expected"), FORMATS)
def test_fstrings(parts: list[Any], expected: str) -> None:
    assert evaluate({"fmt": parts}, RESULTS) == expected


def test_fstring_bad_spec_names_fmt() -> None:
    with pytest.raises(ExpressionError, match="fmt: cannot format 'x'"):
        evaluate({"fmt": [["x", None, "d"]]}, {})


# --- errors -----------------------------------------------------------------------------------

ERRORS: list[tuple[Any, str, type[BaseException] | None]] = [
    ({"slot": 0}, "slot 0: slots belong to templates", None),
    ({"guard": [1]}, "unknown operation 'guard'", None),
    ({"lit": 1, "ref": "n"}, "exactly one key", None),
    ([1, 2], "bare JSON array", None),
    ((1, 2), "bare JSON array", None),
    ({"ref": "missing"}, "ref: no result for job 'missing'", None),
    (
        {"item": [ref("m"), "wieght"]},
        "item: no key 'wieght'; the keys are: species, weight",
        KeyError,
    ),
    ({"item": [ref("nums"), 10]}, "item: index 10 out of range for 3 items", IndexError),
    ({"item": [ref("nums"), "a"]}, "item: a list cannot be indexed by 'a'", TypeError),
    ({"item": [ref("n"), 0]}, "item: a int cannot be indexed by 0", TypeError),
    ({"attr": [ref("m"), "wieght"]}, "attr: no field 'wieght'; the fields are: species", None),
    ({"attr": [ref("nums"), "real"]}, "attr: cannot read 'real' of a list", None),
    ({"attr": [ref("n"), "nope"]}, "attr: a int has no readable attribute 'nope'", None),
    ({"attr": [ref("point"), "z", 5]}, "attr: no position 5 for field 'z'", None),
    ({"bin": ["+", 1, "a"]}, "bin: int and str \\+ failed: TypeError", TypeError),
    ({"bin": ["/", 1, 0]}, "bin: int and int / failed: ZeroDivisionError", ZeroDivisionError),
    ({"bin": ["@", 1, 2]}, "bin: unknown operator '@'", None),
    ({"unary": ["!", 1]}, "unary: unknown operator '!'", None),
    ({"unary": ["-", "a"]}, "unary: TypeError", TypeError),
    ({"cmp": [1, ["<", "a"]]}, "cmp: TypeError", TypeError),
    ({"cmp": [1, ["<>", 2]]}, "cmp: unknown operator '<>'", None),
    ({"cmp": [1]}, "cmp: needs a left operand", None),
    ({"and": []}, "and: needs at least one operand", None),
    ({"or": []}, "or: needs at least one operand", None),
    ({"set": [{"lit": [1]}]}, "set: TypeError: unhashable type", TypeError),
    ({"slice": [ref("n"), 0, 1, None]}, "slice: TypeError", TypeError),
    ({"fmt": [[1, "x", None]]}, "fmt: unknown conversion 'x'", None),
    ({"item": 5}, "item: TypeError", TypeError),
]


@pytest.mark.parametrize(("expr", "message", "cause"), ERRORS)
def test_errors_name_the_operation(
    expr: Any, message: str, cause: type[BaseException] | None
) -> None:
    with pytest.raises(ExpressionError, match=message) as info:
        evaluate(expr, RESULTS)
    if cause is not None:
        assert isinstance(info.value.__cause__, cause)


def test_nested_error_is_reported_once_at_the_failing_operation() -> None:
    expr = {"list": [{"bin": ["+", 1, {"item": [ref("m"), "nope"]}]}]}
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, RESULTS)
    assert str(info.value).startswith("item: no key 'nope'")


def test_error_hierarchy() -> None:
    assert issubclass(ExpressionError, ElfcError)
    assert issubclass(ValueCrossingError, ElfcError)


def test_evaluator_never_executes_code() -> None:
    source = inspect.getsource(values)
    assert "eval(" not in source.replace("evaluate(", "")
    assert "exec(" not in source


def test_evaluate_does_not_mutate_results() -> None:
    results = {"a": [3, 1, 2]}
    evaluate({"call": ["sorted", [ref("a")], {}]}, results)
    evaluate({"list": [ref("a")]}, results)
    assert results == {"a": [3, 1, 2]}


# --- codec and convert ------------------------------------------------------------------------


class Measurement(TypedDict):
    species: str
    weight: int


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


class Pair(NamedTuple):
    left: str
    right: float


class Reading(msgspec.Struct, frozen=True):
    value: float
    unit: str = "kg"


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


STAMP = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")

CONVERSIONS: list[tuple[Any, Any, Any]] = [
    ({"species": "cat", "weight": 4}, Measurement, {"species": "cat", "weight": 4}),
    (Point(1, 2), Point, Point(1, 2)),
    ({"x": 3}, Point, Point(3, 0)),
    (Pair("a", 1.5), Pair, Pair("a", 1.5)),
    (["a", 2], Pair, Pair("a", 2.0)),
    ({"value": 2.5}, Reading, Reading(2.5, "kg")),
    (Reading(1.0, "g"), Reading, Reading(1.0, "g")),
    ("red", Color, Color.RED),
    (Color.BLUE, Color, Color.BLUE),
    (2, Level, Level.HIGH),
    (STAMP, datetime.datetime, STAMP),
    ("2024-05-01T12:30:00Z", datetime.datetime, STAMP),
    (datetime.date(2024, 5, 1), datetime.date, datetime.date(2024, 5, 1)),
    (datetime.timedelta(hours=1), datetime.timedelta, datetime.timedelta(hours=1)),
    (ID, uuid.UUID, ID),
    (str(ID), uuid.UUID, ID),
    (decimal.Decimal("1.10"), decimal.Decimal, decimal.Decimal("1.10")),
    (b"\x00\xff", bytes, b"\x00\xff"),
    (None, int | None, None),
    (3, int | None, 3),
    ("a", Literal["a", "b"], "a"),
    (3, float, 3.0),
    ((1, 2), list[int], [1, 2]),
    ([1, 2], tuple[int, ...], (1, 2)),
    ({3, 1, 2}, set[int], {1, 2, 3}),
    ({"a": [Point(1)]}, dict[str, list[Point]], {"a": [Point(1, 0)]}),
    ([1, "a"], Any, [1, "a"]),
]


@pytest.mark.parametrize(("value", "tp", "expected"), CONVERSIONS)
def test_convert(value: Any, tp: Any, expected: Any) -> None:
    result = convert(value, tp)
    assert result == expected
    assert type(result) is type(expected)


REFUSALS: list[tuple[Any, Any, str]] = [
    ("3", int, r"is not a valid `int`: Expected `int`, got `str`"),
    (True, int, r"Expected `int`, got `bool`"),
    (1.5, int, r"Expected `int`, got `float`"),
    ({"species": "cat"}, Measurement, r"missing required field `weight`"),
    ({"species": "cat", "weight": "4"}, Measurement, r"at `\$.weight`"),
    ("green", Color, r"Invalid enum value 'green'"),
    ("c", Literal["a", "b"], r"Invalid enum value 'c'"),
    (None, int, r"Expected `int`, got `null`"),
    ("soon", datetime.datetime, r"Invalid RFC3339"),
    ([1, 2, 3], Pair, r"`Pair`"),
]


@pytest.mark.parametrize(("value", "tp", "message"), REFUSALS)
def test_convert_refuses(value: Any, tp: Any, message: str) -> None:
    with pytest.raises(ValueCrossingError, match=message) as info:
        convert(value, tp)
    assert isinstance(info.value.__cause__, msgspec.ValidationError)


def test_convert_error_names_where_and_expected_type() -> None:
    with pytest.raises(ValueCrossingError) as info:
        convert("heavy", int, where="argument 'weight' of store.save")
    assert str(info.value) == (
        "argument 'weight' of store.save is not a valid `int`: Expected `int`, got `str`"
    )


def test_convert_refuses_values_json_cannot_carry() -> None:
    with pytest.raises(ValueCrossingError, match=r"result of a.b cannot cross a process as `Any`"):
        convert(threading.Lock(), Any, where="result of a.b")


def test_encode_refuses_unencodable_values() -> None:
    with pytest.raises(
        ValueCrossingError, match="cannot encode a function: a function cannot be encoded as JSON"
    ):
        encode(lambda: 1)


def test_decode_refuses_invalid_json() -> None:
    with pytest.raises(ValueCrossingError, match="invalid JSON"):
        decode(b"{nope")
    with pytest.raises(ValueCrossingError, match="invalid JSON"):
        decode_as(b"[1,", list[int])


def test_decode_as_refuses_types_msgspec_cannot_decode() -> None:
    with pytest.raises(ValueCrossingError, match="cannot cross a process"):
        decode_as(b"[1]", list[int] | tuple[int])


def test_decoders_are_cached_per_type() -> None:
    decode_as(b"[1]", list[int])
    assert values._decoder(list[int]) is values._decoder(list[int])


def test_unhashable_annotation_still_decodes() -> None:
    tp = Annotated[int, [1]]  # metadata that cannot be hashed: no cache entry
    with pytest.raises(TypeError):
        hash(tp)
    assert decode_as(b"5", tp) == 5
    with pytest.raises(ValueCrossingError, match="Expected `int`"):
        decode_as(b'"5"', tp)


def test_encode_sets_and_tuples_as_arrays() -> None:
    assert decode(encode({1, 2})) in ([1, 2], [2, 1])
    assert encode((1, "a")) == b'[1,"a"]'
    assert decode(encode({"k": Point(1, 2)})) == {"k": {"x": 1, "y": 2}}


# --- properties -------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(json_values)
def test_literal_evaluates_to_itself(value: Any) -> None:
    assert evaluate({"lit": value}, {}) == value


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    assert decode(encode(value)) == value


@given(json_values)
def test_convert_to_any_is_identity_for_json_values(value: Any) -> None:
    assert convert(value, Any) == value
