"""An exception as a ``try`` statement's handler sees it, across processes.

When a job fails for good (its retries spent), its worker records the exception with the
failure: its class hierarchy (``module.qualname`` of every class of its MRO, recorded where it
was raised, so ``except OSError`` takes a ``ConnectionError`` without the handler's process
importing the class), its message (``str(e)``), its arguments (``e.args``, JSON where they are,
else their ``repr``) and its traceback text. The store keeps that as the failed job's result,
which only a ``@catch`` job reads. In the handler, ``except ... as e`` binds a rebuilt
exception: ``str(e)``, ``type(e).__name__``, ``type(e).__qualname__`` and ``e.args`` are the
original's; it is an instance of :class:`Raised`, not of the original class.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

__all__ = ["HANDLED", "TAG", "Raised", "describe", "is_handled", "is_raised", "matches", "rebuild"]

TAG = "@raised"
"""The one key of a raised exception's JSON object."""

_PREFIX = b'{"' + TAG.encode() + b'"'

HANDLED = b'{"@handled":true}'
"""The result of a failed job once a handler took its failure: a ``try`` around the one
that handled it sees a failure no longer, and no value either."""


class Description(msgspec.Struct, frozen=True):
    type: str
    module: str
    mro: list[str]
    message: str
    args: list[Any]
    traceback: str


class _Envelope(msgspec.Struct, frozen=True):
    raised: Description = msgspec.field(name=TAG)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Envelope).decode


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _arg(value: Any) -> Any:
    """``value`` as JSON if it is plain JSON (finite numbers), else its ``repr``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, list | tuple):
        return [_arg(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _arg(v) for k, v in value.items()}
    return repr(value)


def describe(exc: BaseException, traceback: str) -> bytes:
    """The JSON a handler reads for ``exc`` (raised with ``traceback``)."""
    if isinstance(exc, Raised):
        return exc.raw
    cls = type(exc)
    try:
        message = str(exc)
    except Exception as err:  # an exception whose __str__ raises still has a description
        message = f"<str() failed: {type(err).__name__}>"
    description = Description(
        type=cls.__qualname__,
        module=cls.__module__,
        mro=[_name(c) for c in cls.__mro__ if issubclass(c, BaseException)],
        message=message,
        args=[_arg(a) for a in exc.args],
        traceback=traceback,
    )
    return _encode(_Envelope(description))


def is_handled(raw: bytes) -> bool:
    """True when ``raw`` (a stored result) is :data:`HANDLED`."""
    return raw == HANDLED


def is_raised(raw: bytes) -> bool:
    """True when ``raw`` (a stored result) is a raised exception's description."""
    return raw.startswith(_PREFIX)


class Raised(Exception):
    """A failure of another process, rebuilt where a ``try``'s handler runs.

    Its class is made per original class, named like it (``type(e).__name__``); ``str(e)``
    is the original's message and ``e.args`` its arguments.
    """

    raw: bytes
    description: Description

    def __str__(self) -> str:
        return self.description.message

    @property
    def names(self) -> list[str]:
        """``module.qualname`` of each class of the original's hierarchy, most derived first."""
        return self.description.mro


_CLASSES: dict[tuple[str, str], type[Raised]] = {}


def rebuild(raw: bytes) -> Raised:
    """The exception ``raw`` (from :func:`describe`) describes."""
    d = _decode(raw).raised
    cls = _CLASSES.get((d.module, d.type))
    if cls is None:
        name = d.type.rpartition(".")[2]
        cls = type(name, (Raised,), {"__qualname__": d.type, "__module__": d.module})
        _CLASSES[d.module, d.type] = cls
    exc = cls(*d.args)
    exc.raw = raw
    exc.description = d
    return exc


def matches(exc: BaseException, types: Any) -> bool:
    """Python's ``except types`` test for ``exc``: by the hierarchy recorded where a rebuilt
    exception was raised, else by ``isinstance``."""
    wanted = types if isinstance(types, tuple) else (types,)
    for t in wanted:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(
                "catching classes that do not inherit from BaseException is not allowed"
            )
    if isinstance(exc, Raised):
        names = set(exc.names)
        return any(_name(t) in names for t in wanted)
    return isinstance(exc, wanted)
