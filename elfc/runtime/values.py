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
import contextlib
import datetime
import decimal
import enum
import itertools
import math
import re
import uuid
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

import msgspec

from elfc.compiler.typerules import type_repr
from elfc.errors import ExpressionError, ValueCrossingError
from elfc.model.ir import IR
from elfc.model.methods import attribute_of, method_for
from elfc.model.ops import BINARY_FUNCTIONS, BUILTINS, COMPARE_FUNCTIONS, UNARY_FUNCTIONS, Op
from elfc.model.typeref import NONFINITE, TypeRef, finite_json, resolve

__all__ = [
    "ExpressionError",
    "Inputs",
    "ValueCrossingError",
    "convert",
    "decode",
    "decode_as",
    "encode",
    "evaluate",
]


# --- codec ------------------------------------------------------------------------------------


_VIEWS = (KeysView, ValuesView, ItemsView, Iterator)


def _enc_hook(value: Any) -> Any:
    # msgspec encodes sets natively (in iteration order) and never calls this hook for them.
    # A dict view or an iterator (``r.keys()``, ``reversed(r)``) crosses as the list of its
    # items, as ``list(...)`` would make it; anything else cannot be encoded at all.
    if isinstance(value, _VIEWS):
        return list(value)
    raise TypeError(f"a {type(value).__qualname__} cannot be encoded as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_TYPED: dict[Any, msgspec.json.Decoder[Any]] = {}
_LAX: dict[Any, msgspec.json.Decoder[Any]] = {}


def encode(value: Any) -> bytes:
    """``value`` as JSON bytes: ``encode({"a": [1, 2]}) == b'{"a":[1,2]}'``.

    NaN and the infinities, which JSON lacks, are written ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"`` (msgspec alone would write ``null``); a float annotation reads them back.
    Raises ValueCrossingError for values that JSON cannot carry (a lock, a file, a function).
    """
    try:
        data = _ENCODER.encode(value)
        if b"null" in data and _has_nonfinite(value):
            data = _ENCODER.encode(finite_json(msgspec.to_builtins(value, enc_hook=_enc_hook)))
        return data
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise ValueCrossingError(f"cannot encode a {type(value).__qualname__}: {exc}") from exc


_CANONICAL = msgspec.json.Encoder(enc_hook=_enc_hook, order="sorted")


def canonical(value: Any) -> bytes | None:
    """``value`` as canonical JSON (object keys and struct fields sorted), the form cache keys
    hash: equal JSON means equal values for the task that reads them. ``None`` when it has
    none: a value JSON cannot carry, or a NaN or infinity (which JSON would write as
    ``null``, the same as ``None``)."""
    try:
        data = _CANONICAL.encode(value)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return None
    if b"null" in data and _has_nonfinite(value):
        return None
    return data


def _has_nonfinite(value: Any) -> bool:
    """Whether a NaN or an infinity hides in ``value`` (called only when its JSON has a null)."""
    if type(value) is float:
        return not math.isfinite(value)
    if isinstance(value, str | bytes | int | None):
        return False
    try:
        builtins_value = msgspec.to_builtins(value, enc_hook=_enc_hook)
    except (TypeError, msgspec.EncodeError):
        return False
    stack = [builtins_value]
    while stack:
        v = stack.pop()
        if type(v) is float and not math.isfinite(v):
            return True
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return False


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
        if any(text in data for text in NONFINITE):
            # A NaN or an infinity spelled as JSON text: read it where a float is declared.
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                return _decoder(tp, lax=True).decode(data)
        subject = where or "value"
        raise ValueCrossingError(f"{subject} is not a valid `{type_repr(tp)}`: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ValueCrossingError(f"{where or 'value'}: invalid JSON: {exc}") from exc


def _decoder(tp: Any, lax: bool = False) -> msgspec.json.Decoder[Any]:
    cache = _LAX if lax else _TYPED
    try:
        cached = cache.get(tp)
    except TypeError:  # an unhashable annotation: build a decoder each time
        return _new_decoder(tp, lax)
    if cached is None:
        cached = cache[tp] = _new_decoder(tp, lax)
    return cached


def _new_decoder(tp: Any, lax: bool = False) -> msgspec.json.Decoder[Any]:
    try:
        return msgspec.json.Decoder(tp, strict=not lax)
    except TypeError as exc:
        raise ValueCrossingError(f"`{type_repr(tp)}` cannot cross a process: {exc}") from exc


def convert(value: Any, tp: Any, where: str | None = None) -> Any:
    """``value`` as it arrives in another process expecting annotation ``tp``.

    The one validation path for task arguments and results:
    ``convert({"x": 1}, Point)`` builds a ``Point``; ``convert("3", int)`` raises
    ValueCrossingError ("... is not a valid `int`: Expected `int`, got `str`").
    """
    try:
        data = encode(value)
    except ValueCrossingError as exc:
        subject = where or "value"
        raise ValueCrossingError(
            f"{subject} cannot cross a process as `{type_repr(tp)}`: {exc.__cause__ or exc}"
        ) from exc
    return decode_as(data, tp, where)


# --- inputs -----------------------------------------------------------------------------------

_RESOLVED: dict[Any, Any] = {}


def _frozen(ref: Any) -> Any:
    return tuple(_frozen(r) for r in ref) if isinstance(ref, list) else ref


def resolve_type(ref: TypeRef) -> Any:
    """The annotation a type reference names here (cached once it resolves)."""
    key = _frozen(ref)
    tp = _RESOLVED.get(key)
    if tp is None:
        tp = _RESOLVED[key] = resolve(ref)
    return tp


class Inputs:
    """The results a job reads, as stored (JSON bytes), decoded on first use and then kept.

    A typed ref decodes its JSON as the producer's declared return type, a plain one as JSON;
    a task parameter reading a ref as it stands decodes the bytes once, as its own annotation
    (:meth:`raw`). The same object serves a worker and the in-process runner, so both evaluate
    derives on the same values.
    """

    __slots__ = ("_outs", "_plain", "_raw", "_typed")

    def __init__(self, raw: Mapping[str, bytes]) -> None:
        self._raw = raw
        self._plain: dict[str, Any] = {}
        self._typed: dict[str, Any] = {}
        self._outs: dict[Any, Any] = {}

    def out(self, body: Any) -> Any:
        """The value of ``{"out": body}``: region job's result is literal IR, evaluated once
        (only its element ``i`` for ``[key, i]``)."""
        cache_key = body if type(body) is str else (body[0], body[1])
        try:
            return self._outs[cache_key]
        except KeyError:
            pass
        key = body if type(body) is str else body[0]
        value = self._outs[cache_key] = out_value(decode(self.raw(key)), body)
        return value

    def raw(self, key: str) -> bytes:
        """The stored JSON of job ``key``'s result."""
        try:
            return self._raw[key]
        except KeyError:
            raise ExpressionError(f"ref: no result for job {key!r}") from None

    def typed(self, key: str, ref: TypeRef) -> Any:
        """Job ``key``'s result as the Python value of its declared type (``ref``)."""
        try:
            return self._typed[key]
        except KeyError:
            pass
        tp = resolve_type(ref)
        value = self._typed[key] = decode_as(self.raw(key), tp, where=f"the result of {key}")
        return value

    def __getitem__(self, key: str) -> Any:
        """Job ``key``'s result as plain JSON values."""
        plain = self._plain
        if key in plain:
            return plain[key]
        try:
            data = self._raw[key]
        except KeyError:
            raise ExpressionError(f"ref: no result for job {key!r}") from None
        value = plain[key] = decode(data)
        return value


# --- evaluator --------------------------------------------------------------------------------

Results = Mapping[str, Any] | Inputs
_Op = Callable[[Any, Results], Any]


def evaluate(expr: IR, results: Results) -> Any:
    """The value of expression ``expr`` (see :mod:`elfc.model.ir`), with Python semantics.

    ``results`` is an :class:`Inputs` of stored results, or a mapping of job keys to values:
    ``evaluate({"bin": ["+", {"ref": "n1#0"}, 1]}, {"n1#0": 41}) == 42``.
    Raises ExpressionError naming the operation that failed.
    """
    if type(expr) is dict or isinstance(expr, dict):
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


def _ref(body: Any, results: Results) -> Any:
    inputs = type(results) is Inputs
    if type(body) is str:
        if inputs:
            plain = results._plain  # type: ignore[union-attr]  # the hot path, inlined
            return plain[body] if body in plain else results[body]
        key = body
    else:
        key, ref = body
        if inputs:
            return results.typed(key, ref)  # type: ignore[union-attr]
    try:
        return results[key]
    except KeyError:
        raise ExpressionError(f"ref: no result for job {key!r}") from None


_STATIC_VALUES: dict[Any, Any] = {}
_IMMUTABLE = frozenset(
    [int, float, str, bytes, bool, datetime.datetime, datetime.date, datetime.time,
     datetime.timedelta, decimal.Decimal, uuid.UUID]
)  # fmt: skip


def _val(body: list[Any], results: Results) -> Any:
    ref, data = body
    key = (_frozen(ref), data) if isinstance(data, str | int | float) else None
    if key is not None:
        found = _STATIC_VALUES.get(key, _STATIC_VALUES)
        if found is not _STATIC_VALUES:
            return found
    value = decode_as(encode(data), resolve_type(ref), where="a static value")
    # Kept only when no job could change it in place (a deadline, an Enum member, a Decimal).
    immutable = type(value) in _IMMUTABLE or isinstance(value, enum.Enum)
    if key is not None and immutable and len(_STATIC_VALUES) < 10_000:
        _STATIC_VALUES[key] = value
    return value


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
    if type(value) is not dict and type(value) is not list:
        # A typed value: a field of a record, an Enum's name or value, a datetime's year.
        try:
            return attribute_of(value, name)
        except KeyError:
            if not isinstance(value, dict | list | tuple):
                raise ExpressionError(
                    f"attr: a {type(value).__qualname__} has no readable attribute {name!r}"
                ) from None
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


# The model's operator table, with the operations that could build a huge value bounded.
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    **BINARY_FUNCTIONS,
    "+": _add,
    "*": _mul,
    "%": _mod,
    "**": _pow,
    "<<": _lshift,
}
_UNARY = UNARY_FUNCTIONS
_COMPARE = COMPARE_FUNCTIONS


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


def _if(body: list[IR], results: Results) -> Any:
    test, then, orelse = body
    return evaluate(then if evaluate(test, results) else orelse, results)


def _concat(body: list[IR], results: Results) -> Any:
    out: list[Any] = []
    for e in body:
        part = evaluate(e, results)
        if not isinstance(part, list):
            raise ExpressionError(f"concat: a part is a {type(part).__name__}, not a list")
        out.extend(part)
    return out


def _out(body: Any, results: Results) -> Any:
    if type(results) is Inputs:
        return results.out(body)
    key = body if type(body) is str else body[0]
    try:
        value = results[key]
    except KeyError:
        raise ExpressionError(f"out: no result for region job {key!r}") from None
    return out_value(decode(value) if isinstance(value, bytes) else value, body)


def out_value(stored: IR, body: Any) -> Any:
    """A region's stored value (literal IR), or element ``i`` of it for a body ``[key, i]``."""
    if type(body) is not str and body[1] is not None:
        if not (isinstance(stored, dict) and isinstance(stored.get("list"), list)):
            raise ExpressionError("out: a region's stored value is not a list of values")
        stored = stored["list"][body[1]]
    return evaluate(stored, _NO_RESULTS)


class UnboundValue(ExpressionError):
    """A variable no branch taken at run time assigned was read."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def _unbound(body: Any, results: Results) -> Any:
    raise UnboundValue(
        f"UnboundLocalError: cannot access local variable {body!r} where it is not associated "
        "with a value (no branch taken at run time assigned it)",
        str(body),
    )


_NO_RESULTS: Mapping[str, Any] = {}


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


def _reversed(sequence: Any) -> list[Any]:
    return list(reversed(sequence))


# zip, enumerate and reversed are materialised (as lists of what Python's iterators yield), so
# that their result can be read twice and cross to a task as the list(...) of it would; sum is
# bounded and linear on lists.
_REPLACED: dict[str, Callable[..., Any]] = {
    "zip": _zip,
    "enumerate": _enumerate,
    "reversed": _reversed,
    "sum": _sum,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(builtins, name) for name in BUILTINS - _REPLACED.keys()
} | _REPLACED
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


def _meth(body: list[Any], results: Results) -> Any:
    receiver = evaluate(body[0], results)
    name = body[1]
    method = method_for(receiver, name)
    if method is None:
        raise ExpressionError(
            f"meth: .{name}() is not a pure method of {type(receiver).__qualname__}"
        )
    args = [evaluate(e, results) for e in body[2]]
    kwargs = {k: evaluate(e, results) for k, e in (body[3] if len(body) > 3 else {}).items()}
    try:
        return method(receiver, *args, **kwargs)
    except Exception as exc:
        raise ExpressionError(
            f"meth: {type(receiver).__qualname__}.{name}() failed: {type(exc).__name__}: {exc}"
        ) from exc


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


_BY_OP: dict[Op, _Op] = {
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
    Op.METH: _meth,
    Op.FMT: _fmt,
    Op.VAL: _val,
    Op.IF: _if,
    Op.CONCAT: _concat,
    Op.OUT: _out,
    Op.UNBOUND: _unbound,
}
# Keyed by the plain strings: a lookup that hashes an Enum member runs Python code (5x slower).
_OPS: dict[str, _Op] = {op.value: run for op, run in _BY_OP.items()}
