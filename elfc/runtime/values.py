"""Values crossing a process: the msgspec JSON codec, validation, and the IR evaluator.

Every task argument and result goes through :func:`convert` (encode, then decode against the
annotation), in-process and distributed alike, so a pipeline run locally fails exactly where a
distributed one would. Derive expressions are evaluated by :func:`evaluate` from data (the IR
in :mod:`elfc.model.ir`), never with ``exec`` or ``eval``.

The evaluator reads IR from the database, which anyone who can write to it controls, so it
bounds what one operation may build before building it: a sequence or string of at most
:data:`MAX_ITEMS` items, an integer of at most :data:`MAX_INT_BITS` bits, a format width or
precision of at most :data:`MAX_WIDTH`. Past them it raises :class:`ExpressionError` at once;
none of them is a legitimate derive's (large values are built inside tasks).

Usage::

    weight = convert(evaluate({"item": [{"ref": "n1#0"}, "weight"]}, results), int,
                     where="argument 'weight' of store.save")
"""

from __future__ import annotations

import builtins
import itertools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from elfc.compiler.typerules import type_repr
from elfc.errors import ExpressionError, ValueCrossingError
from elfc.model.ir import IR
from elfc.model.ops import BUILTINS, Op

__all__ = [
    "ExpressionError",
    "ValueCrossingError",
    "convert",
    "decode",
    "decode_as",
    "encode",
    "evaluate",
]


# --- codec ------------------------------------------------------------------------------------


def _enc_hook(value: Any) -> Any:
    # msgspec encodes sets natively (in iteration order) and never calls this hook for them;
    # what reaches it is a type msgspec cannot encode at all.
    raise TypeError(f"a {type(value).__qualname__} cannot be encoded as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_TYPED: dict[Any, msgspec.json.Decoder[Any]] = {}


def encode(value: Any) -> bytes:
    """``value`` as JSON bytes: ``encode({"a": [1, 2]}) == b'{"a":[1,2]}'``.

    Raises ValueCrossingError for values that JSON cannot carry (a lock, a file, a function).
    """
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueCrossingError(f"cannot encode a {type(value).__qualname__}: {exc}") from exc


def decode(data: bytes) -> Any:
    """JSON bytes as plain values (dict, list, str, int, float, bool, None)."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueCrossingError(f"invalid JSON: {exc}") from exc


def decode_as(data: bytes, tp: Any, where: str | None = None) -> Any:
    """JSON bytes validated and built as annotation ``tp``: ``decode_as(b"[1]", list[int])``.

    Raises ValueCrossingError naming ``where`` (e.g. ``"argument 'weight' of store.save"``),
    the expected type and msgspec's reason.
    """
    try:
        return _decoder(tp).decode(data)
    except msgspec.ValidationError as exc:
        subject = where or "value"
        raise ValueCrossingError(f"{subject} is not a valid `{type_repr(tp)}`: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ValueCrossingError(f"{where or 'value'}: invalid JSON: {exc}") from exc


def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    try:
        cached = _TYPED.get(tp)
    except TypeError:  # an unhashable annotation: build a decoder each time
        return _new_decoder(tp)
    if cached is None:
        cached = _TYPED[tp] = _new_decoder(tp)
    return cached


def _new_decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    try:
        return msgspec.json.Decoder(tp)
    except TypeError as exc:
        raise ValueCrossingError(f"`{type_repr(tp)}` cannot cross a process: {exc}") from exc


def convert(value: Any, tp: Any, where: str | None = None) -> Any:
    """``value`` as it arrives in another process expecting annotation ``tp``.

    The one validation path for task arguments and results:
    ``convert({"x": 1}, Point)`` builds a ``Point``; ``convert("3", int)`` raises
    ValueCrossingError ("... is not a valid `int`: Expected `int`, got `str`").
    """
    try:
        data = _ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        subject = where or "value"
        raise ValueCrossingError(
            f"{subject} cannot cross a process as `{type_repr(tp)}`: {exc}"
        ) from exc
    return decode_as(data, tp, where)


# --- evaluator --------------------------------------------------------------------------------

Results = Mapping[str, Any]
_Op = Callable[[Any, Results], Any]


def evaluate(expr: IR, results: Results) -> Any:
    """The value of expression ``expr`` (see :mod:`elfc.model.ir`), with Python semantics.

    ``results`` maps job keys to their decoded JSON results:
    ``evaluate({"bin": ["+", {"ref": "n1#0"}, 1]}, {"n1#0": 41}) == 42``.
    Raises ExpressionError naming the operation that failed.
    """
    if isinstance(expr, dict):
        if len(expr) != 1:
            raise ExpressionError(f"an operation has exactly one key, got {sorted(expr)}")
        ((op, body),) = expr.items()
        run = _OPS.get(op)
        if run is None:
            raise ExpressionError(f"unknown operation {op!r}")
        try:
            return run(body, results)
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(f"{op}: {type(exc).__name__}: {exc}") from exc
    if isinstance(expr, list | tuple):  # a tuple too: in-process IR must act like its JSON
        raise ExpressionError('a bare JSON array is not an expression: use {"lit": [...]}')
    return expr


def _lit(body: Any, results: Results) -> Any:
    return body


def _ref(key: str, results: Results) -> Any:
    try:
        return results[key]
    except KeyError:
        raise ExpressionError(f"ref: no result for job {key!r}") from None


def _slot(body: Any, results: Results) -> Any:
    raise ExpressionError(f"slot {body!r}: slots belong to templates and are filled at submission")


def _list(body: list[IR], results: Results) -> Any:
    return [evaluate(e, results) for e in body]


def _tuple(body: list[IR], results: Results) -> Any:
    return tuple(evaluate(e, results) for e in body)


def _set(body: list[IR], results: Results) -> Any:
    return {evaluate(e, results) for e in body}


def _dict(body: list[list[IR]], results: Results) -> Any:
    return {evaluate(k, results): evaluate(v, results) for k, v in body}


def _item(body: list[IR], results: Results) -> Any:
    value, key = evaluate(body[0], results), evaluate(body[1], results)
    try:
        return value[key]
    except KeyError as exc:
        keys = ", ".join(map(str, value)) if isinstance(value, dict) else ""
        raise ExpressionError(f"item: no key {key!r}; the keys are: {keys}") from exc
    except IndexError as exc:
        raise ExpressionError(f"item: index {key!r} out of range for {len(value)} items") from exc
    except TypeError as exc:
        raise ExpressionError(
            f"item: a {type(value).__name__} cannot be indexed by {key!r} ({exc})"
        ) from exc


def _slice(body: list[IR], results: Results) -> Any:
    value, lower, upper, step = (evaluate(e, results) for e in body)
    return value[lower:upper:step]


def _attr(body: list[Any], results: Results) -> Any:
    value, name = evaluate(body[0], results), body[1]
    if isinstance(value, dict):
        if name not in value:
            fields = ", ".join(map(str, value))
            raise ExpressionError(f"attr: no field {name!r}; the fields are: {fields}")
        return value[name]
    if isinstance(value, list | tuple) and len(body) > 2:
        index = body[2]
        if not -len(value) <= index < len(value):
            raise ExpressionError(f"attr: no position {index} for field {name!r}")
        return value[index]
    raise ExpressionError(
        f"attr: cannot read {name!r} of a {type(value).__name__}: only fields of JSON objects, "
        "or positions of JSON arrays, can be read"
    )


MAX_ITEMS = 10_000_000
"""The longest string, list or tuple an operation may build (characters or items)."""
MAX_INT_BITS = 1_000_000
"""The largest integer an operation may build, in bits (about 300,000 decimal digits)."""
MAX_WIDTH = 10_000
"""The largest width or precision a format (f-string spec or ``%``) may ask for."""


def _too_big(what: str, size: int, limit: int, unit: str) -> ExpressionError:
    return ExpressionError(
        f"{what} would build {size:,} {unit}, more than the {limit:,} a derive may: "
        "build large values inside a task"
    )


def _too_wide(what: str, width: int) -> ExpressionError:
    return ExpressionError(
        f"{what}: a width or precision of {width:,} is more than the {MAX_WIDTH:,} a derive "
        "may use: format large values inside a task"
    )


def _sized(value: Any) -> int:
    """Items in a string, list or tuple; bits of an int; 0 for anything else."""
    if isinstance(value, str | list | tuple | bytes):
        return len(value)
    if isinstance(value, int):
        return abs(value).bit_length()
    return 0


def _is_seq(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _add(a: Any, b: Any) -> Any:
    if _is_seq(a) and _is_seq(b) and len(a) + len(b) > MAX_ITEMS:
        raise _too_big("+", len(a) + len(b), MAX_ITEMS, "items")
    return a + b


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if _is_seq(seq) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_ITEMS:
            raise _too_big("*", len(seq) * n, MAX_ITEMS, "items")
    if _is_int(a) and _is_int(b) and _sized(a) + _sized(b) > MAX_INT_BITS:
        raise _too_big("*", _sized(a) + _sized(b), MAX_INT_BITS, "bits")
    return a * b


def _pow(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1:
        bits = (_sized(a) - 1) * b  # at least this many: a ** b >= 2 ** ((bits(a) - 1) * b)
        if bits > MAX_INT_BITS:
            raise _too_big("**", bits, MAX_INT_BITS, "bits")
    return a**b


def _lshift(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b) and a != 0 and _sized(a) + b > MAX_INT_BITS:
        raise _too_big("<<", _sized(a) + b, MAX_INT_BITS, "bits")
    return a << b


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[a-zA-Z%]")


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str):  # printf-style formatting: its widths are bounded like format's
        for width, precision in _PERCENT_SPEC.findall(a):
            for number in (width, precision):
                if number == "*":
                    raise ExpressionError("%: a '*' width or precision is not supported")
                if number and int(number) > MAX_WIDTH:
                    raise _too_wide("%", int(number))
    return a % b


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": operator.sub,
    "*": _mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": _mod,
    "**": _pow,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
    "<<": _lshift,
    ">>": operator.rshift,
}
_UNARY: dict[str, Callable[[Any], Any]] = {
    "-": operator.neg,
    "+": operator.pos,
    "not": operator.not_,
    "~": operator.invert,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
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


def _operator(table: Mapping[str, Any], kind: str, op: str) -> Any:
    found = table.get(op)
    if found is None:
        raise ExpressionError(f"{kind}: unknown operator {op!r}")
    return found


def _bin(body: list[Any], results: Results) -> Any:
    function = _operator(_BINARY, "bin", body[0])
    left, right = evaluate(body[1], results), evaluate(body[2], results)
    try:
        return function(left, right)
    except ExpressionError:
        raise
    except Exception as exc:
        raise ExpressionError(
            f"bin: {_kinds(left, right)} {body[0]} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _unary(body: list[Any], results: Results) -> Any:
    function = _operator(_UNARY, "unary", body[0])
    return function(evaluate(body[1], results))


def _cmp(body: list[Any], results: Results) -> Any:
    if len(body) < 2:
        raise ExpressionError("cmp: needs a left operand and at least one comparison")
    left = evaluate(body[0], results)
    outcome: Any = True
    for op, right_expr in body[1:]:
        function = _operator(_COMPARE, "cmp", op)
        right = evaluate(right_expr, results)
        outcome = function(left, right)
        if not outcome:
            return outcome
        left = right
    return outcome


def _and(body: list[IR], results: Results) -> Any:
    if not body:
        raise ExpressionError("and: needs at least one operand")
    value: Any = None
    for e in body:
        value = evaluate(e, results)
        if not value:
            return value
    return value


def _or(body: list[IR], results: Results) -> Any:
    if not body:
        raise ExpressionError("or: needs at least one operand")
    value: Any = None
    for e in body:
        value = evaluate(e, results)
        if value:
            return value
    return value


def _kinds(*values: Any) -> str:
    return " and ".join(type(v).__name__ for v in values)


def _zip(*iterables: Any, strict: bool = False) -> list[tuple[Any, ...]]:
    return list(zip(*iterables, strict=strict))


def _enumerate(iterable: Any, start: int = 0) -> list[tuple[int, Any]]:
    return list(enumerate(iterable, start))


def _sum(iterable: Any, /, start: Any = 0) -> Any:
    """``sum``, but lists and tuples are joined in linear time (``sum(lists, [])`` copies the
    total again for each item) and to a bounded length."""
    if not isinstance(start, list | tuple):
        return builtins.sum(iterable, start)
    items = list(iterable)
    for item in items:
        if type(item) is not type(start):
            kinds = f"{type(item).__name__!r} and {type(start).__name__!r}"
            raise TypeError(f"can only concatenate {kinds} alike")
    total = len(start) + builtins.sum(len(item) for item in items)
    if total > MAX_ITEMS:
        raise _too_big("sum", total, MAX_ITEMS, "items")
    return type(start)(itertools.chain(start, *items))


# Results must stay JSON-able: zip and enumerate are materialised as lists of tuples.
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(builtins, name) for name in BUILTINS - {"zip", "enumerate", "sum"}
} | {"zip": _zip, "enumerate": _enumerate, "sum": _sum}
_TAKE_KEY = frozenset({"sorted", "min", "max"})


def _call(body: list[Any], results: Results) -> Any:
    name = body[0]
    function = _FUNCTIONS.get(name)
    if function is None:
        raise ExpressionError(f"call: {name!r} is not a whitelisted builtin")
    kwargs_ir: dict[str, IR] = body[2] if len(body) > 2 else {}
    if name in _TAKE_KEY and "key" in kwargs_ir:
        raise ExpressionError(f"call: {name}(key=...) needs a function, which IR cannot carry")
    args = [evaluate(e, results) for e in body[1]]
    kwargs = {k: evaluate(e, results) for k, e in kwargs_ir.items()}
    try:
        return function(*args, **kwargs)
    except ExpressionError:
        raise
    except Exception as exc:
        raise ExpressionError(f"call: {name}() failed: {type(exc).__name__}: {exc}") from exc


_CONVERSIONS: dict[str, Callable[[Any], str]] = {"r": repr, "s": str, "a": ascii}


def _fmt(body: list[Any], results: Results) -> Any:
    out = []
    for part in body:
        if isinstance(part, str):
            out.append(part)
            continue
        expr, conversion, spec = part
        value = evaluate(expr, results)
        if conversion is not None:
            if conversion not in _CONVERSIONS:
                raise ExpressionError(f"fmt: unknown conversion {conversion!r}")
            value = _CONVERSIONS[conversion](value)
        spec_text = "" if spec is None else evaluate(spec, results)
        _check_spec(spec_text)
        try:
            out.append(format(value, spec_text))
        except (TypeError, ValueError) as exc:
            raise ExpressionError(
                f"fmt: cannot format {value!r} with {spec_text!r}: {exc}"
            ) from exc
    return "".join(out)


_SPEC_NUMBERS = re.compile(r"\d+")


def _check_spec(spec: Any) -> None:
    """Refuse a format spec whose width or precision exceeds :data:`MAX_WIDTH` (its digits
    are the only numbers a spec holds, apart from a fill character)."""
    if not isinstance(spec, str):
        raise ExpressionError(f"fmt: a format spec is a string, not a {type(spec).__name__}")
    if len(spec) > 100:
        raise ExpressionError(f"fmt: a format spec of {len(spec)} characters is not one")
    for number in _SPEC_NUMBERS.findall(spec[1:] if len(spec) > 1 and spec[1] in "<>=^" else spec):
        if int(number) > MAX_WIDTH:
            raise _too_wide("fmt", int(number))


_OPS: dict[str, _Op] = {
    Op.LIT: _lit,
    Op.REF: _ref,
    Op.SLOT: _slot,
    Op.LIST: _list,
    Op.TUPLE: _tuple,
    Op.SET: _set,
    Op.DICT: _dict,
    Op.ITEM: _item,
    Op.SLICE: _slice,
    Op.ATTR: _attr,
    Op.BIN: _bin,
    Op.UNARY: _unary,
    Op.CMP: _cmp,
    Op.AND: _and,
    Op.OR: _or,
    Op.CALL: _call,
    Op.FMT: _fmt,
}
