"""Running one job: resolve its arguments, call the task, encode its result or its failure.

Shared by the in-process runner and the workers, so a pipeline run in a test fails exactly
where a distributed run would.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elfc.compiler.elves import TaskInfo
from elfc.model.ir import IR, ref_key
from elfc.model.ops import Op
from elfc.runtime.values import Inputs, convert, decode_as, encode, evaluate


@dataclass(frozen=True)
class Failure:
    """What a failed attempt leaves: the exception's type, message and traceback text."""

    error_type: str
    message: str
    traceback: str


def resolve_arguments(
    info: TaskInfo,
    elf: str,
    args: tuple[IR, ...] | list[IR],
    kwargs: Mapping[str, IR],
    results: Mapping[str, Any],
) -> tuple[list[Any], dict[str, Any]]:
    """Evaluate the job's argument expressions and validate each against its annotation."""
    params = info.params
    out_args = []
    for i, expr in enumerate(args):
        name = params[i].name if i < len(params) else f"#{i}"
        out_args.append(_argument(info, elf, name, expr, results))
    out_kwargs = {k: _argument(info, elf, k, expr, results) for k, expr in kwargs.items()}
    return out_args, out_kwargs


def _argument(info: TaskInfo, elf: str, name: str, expr: IR, results: Mapping[str, Any]) -> Any:
    hint = info.hints.get(name)
    if type(expr) is dict and isinstance(results, Inputs):
        body = expr.get(Op.REF)
        if body is not None and len(expr) == 1:
            # A result handed over as it stands: decode its JSON once, as this parameter's
            # annotation, or else as the producer's declared type.
            key = ref_key(body)
            where = f"argument {name!r} of {elf}.{info.name}"
            if hint is not None:
                return decode_as(results.raw(key), hint, where=where)
            return evaluate(expr, results)
    value = evaluate(expr, results) if isinstance(expr, dict) else expr
    if hint is None:
        return value
    return convert(value, hint, where=f"argument {name!r} of {elf}.{info.name}")


def encode_result(info: TaskInfo, elf: str, value: Any) -> bytes:
    """The task's return value as JSON, validated against its return annotation."""
    ret = info.hints.get("return")
    if ret is None:
        return encode(value)
    data = encode(value)
    decode_as(data, ret, where=f"the result of {elf}.{info.name}")
    return data


def failure_of(exc: BaseException, skip_frames: int = 1) -> Failure:
    """Describe an exception; ``skip_frames`` drops elfc's own frames above the task."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return Failure(type(exc).__qualname__, str(exc), text)
