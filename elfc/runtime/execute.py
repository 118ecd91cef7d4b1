"""Running one job: resolve its arguments, call the task, encode its result or its failure.

Shared by the in-process runner and the workers, so a pipeline run in a test fails exactly
where a distributed run would.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from elfc.compiler.elves import TaskInfo
from elfc.errors import ExpressionError
from elfc.model.ir import IR, ref_key
from elfc.model.ops import Op
from elfc.model.raised import Raised, describe
from elfc.runtime.values import Inputs, Results, convert, decode_as, encode, evaluate


@dataclass(frozen=True)
class Failure:
    """What a failed attempt leaves: the exception's type, message and traceback text."""

    error_type: str
    message: str
    traceback: str
    raised: bytes | None = None
    """The exception as a ``try``'s handler reads it (:func:`elfc.model.raised.describe`)."""


def resolve_arguments(
    info: TaskInfo,
    elf: str,
    args: tuple[IR, ...] | list[IR],
    kwargs: Mapping[str, IR],
    results: Results,
) -> tuple[list[Any], dict[str, Any]]:
    """Evaluate the job's argument expressions and validate each against its annotation."""
    params = info.params
    out_args = []
    for i, expr in enumerate(args):
        name = params[i].name if i < len(params) else f"#{i}"
        out_args.append(_argument(info, elf, name, expr, results))
    out_kwargs = {k: _argument(info, elf, k, expr, results) for k, expr in kwargs.items()}
    return out_args, out_kwargs


_REF = Op.REF.value  # a plain str: hashing the Enum member would run Python code


def _argument(info: TaskInfo, elf: str, name: str, expr: IR, results: Results) -> Any:
    hint = info.hints.get(name)
    if type(expr) is dict and type(results) is Inputs:
        body = expr.get(_REF)
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


def invoke(method: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Call a task; an ``async def`` task runs to completion on an event loop of its own."""
    value = method(*args, **kwargs)
    if inspect.iscoroutine(value):
        return asyncio.run(value)
    return value


class _Alarm(Exception):
    """Raised by SIGALRM inside a task that outlived its timeout (in-process runs)."""


def call_with_timeout(
    method: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], timeout: float | None
) -> Any:
    """``invoke``, failing with ``TimeoutError("timeout")`` after ``timeout`` seconds, as a
    worker does. In the main thread a timer signal interrupts the task; elsewhere (no signals
    reach other threads) the task runs in a thread that is abandoned when the timeout passes.
    """
    if timeout is None:
        return invoke(method, args, kwargs)
    if threading.current_thread() is threading.main_thread():

        def on_alarm(signum: int, frame: Any) -> None:
            raise _Alarm

        previous = signal.signal(signal.SIGALRM, on_alarm)
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            return invoke(method, args, kwargs)
        except _Alarm:
            raise TimeoutError("timeout") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, invoke(method, args, kwargs)))
        except BaseException as exc:  # handed to the caller below
            outcome.append((False, exc))

    worker = threading.Thread(target=target, name="elfc-task", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise TimeoutError("timeout")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


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
    if isinstance(exc, Raised):
        # A failure a `try` re-raised: the original's, as it was recorded where it was raised.
        d = exc.description
        return Failure(d.type, d.message, d.traceback, exc.raw)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    # A value the job's arguments compute that raised (`rows[0]` of an empty list): a
    # handler takes it as the exception Python raises there.
    cause = exc.__cause__ if isinstance(exc, ExpressionError) else None
    described = cause if isinstance(cause, Exception) else exc
    return Failure(type(exc).__qualname__, str(exc), text, describe(described, text))
