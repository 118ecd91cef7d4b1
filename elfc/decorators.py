"""The declarations: ``@elf``, ``@task``, ``named`` handles, and the marker of a pipeline.

Declaring is cheap: nothing is parsed or hashed until a pipeline is compiled, checked, run or
served. Metadata (source, docstring, signature, revision) is computed on first use and cached
by the compiler (``elfc.compiler.elves``). This module imports nothing of elfc above
``elfc.errors``: the compiler, the runtime and ``elfc.pipeline`` all build on it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast, overload

import msgspec

from elfc.errors import ElfDefinitionError, HandleMisuse

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

TASK_ATTR = "__elfc_task__"
ELF_ATTR = "__elfc_elf__"
PIPELINE_ATTR = "__elfc_pipeline__"
"""A class attribute set to True on ``elfc.pipeline.Pipeline``: see :func:`pipeline_function`."""


@dataclass(frozen=True)
class TaskOptions:
    """How a task's jobs are retried and bounded."""

    retries: int = 0
    retry_delay: float = 1.0
    timeout: float | None = None
    cache: bool = False
    """A job reuses the result of a succeeded job of the same task revision, elf class,
    configuration and argument values instead of running (see ``elfc.runtime.worker``)."""


@overload
def task(fn: F, /) -> F: ...
@overload
def task(
    *,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    cache: bool = False,
) -> Callable[[F], F]: ...
def task(
    fn: F | None = None,
    /,
    *,
    retries: int = 0,
    retry_delay: float = 1.0,
    timeout: float | None = None,
    cache: bool = False,
) -> F | Callable[[F], F]:
    """Mark a method of an ``@elf`` class as a task.

    Usage: ``@task`` or ``@task(retries=3, retry_delay=0.5, timeout=30.0, cache=True)``. The
    method stays an ordinary method: on a real instance it is called directly, so elves are
    unit-tested by plain calls. Every parameter and the return must be annotated with types
    that cross a process as JSON.

    With ``cache=True`` a job of the task whose task revision, elf (class, revision and
    configuration) and argument values equal those of an earlier job of it that succeeded, in
    any run of the mycelium, takes a copy of that job's result instead of running. Only for
    tasks whose result depends on nothing but their arguments; in-process runs (no mycelium)
    always run the task.
    """
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ElfDefinitionError(f"@task(retries=...) takes an int >= 0, not {retries!r}")
    if not isinstance(retry_delay, int | float) or retry_delay < 0:
        raise ElfDefinitionError(f"@task(retry_delay=...) takes seconds >= 0, not {retry_delay!r}")
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise ElfDefinitionError(f"@task(timeout=...) takes seconds > 0 or None, not {timeout!r}")
    if not isinstance(cache, bool):
        raise ElfDefinitionError(f"@task(cache=...) takes True or False, not {cache!r}")
    options = TaskOptions(
        retries, float(retry_delay), None if timeout is None else float(timeout), cache
    )

    def mark(f: F) -> F:
        if not callable(f):
            raise ElfDefinitionError(f"@task decorates a method, not {f!r}")
        setattr(f, TASK_ATTR, options)
        return f

    return mark(fn) if fn is not None else mark


def elf(cls: C) -> C:
    """Mark a class as an elf: its ``@task`` methods become jobs that its named instances run.

    Usage::

        @elf
        class Storage:
            def __init__(self, path: str) -> None: ...
            @task
            def save(self, species: str, weight: int) -> int: ...
    """
    if not isinstance(cls, type):
        raise ElfDefinitionError(f"@elf decorates a class, not {cls!r}")
    setattr(cls, ELF_ATTR, True)
    return cls


def is_elf(cls: object) -> bool:
    return isinstance(cls, type) and ELF_ATTR in cls.__dict__


def task_names(cls: type) -> list[str]:
    """Names of the ``@task`` methods of an elf class (inherited ones included)."""
    names = []
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if hasattr(value, TASK_ATTR) and name not in names:
                names.append(name)
    return names


def task_options(cls: type, name: str) -> TaskOptions | None:
    fn = inspect.getattr_static(cls, name, None)
    opts = getattr(fn, TASK_ATTR, None)
    return opts if isinstance(opts, TaskOptions) else None


class Handle:
    """A module-level reference to a named elf instance; the instance itself lives in a worker."""

    __slots__ = ("args", "cls", "config", "kwargs", "location", "name")

    def __init__(self, cls: type, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.cls = cls
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.config = _config_json(args, kwargs)
        self.location = _caller_location()

    def build(self) -> Any:
        """Construct the real elf instance (what a worker serves)."""
        return self.cls(*self.args, **self.kwargs)

    def __getattr__(self, attr: str) -> Any:
        cls = object.__getattribute__(self, "cls")
        name = object.__getattribute__(self, "name")
        if task_options(cls, attr) is not None:
            return _misuse(cls, name, attr)
        raise AttributeError(
            f"handle {name!r} ({cls.__qualname__}) has no task {attr!r}; "
            f"its tasks are: {', '.join(task_names(cls)) or '(none)'}"
        )

    def __repr__(self) -> str:
        return f"<elf handle {self.name!r}: {self.cls.__qualname__}>"


def _misuse(cls: type, name: str, attr: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise HandleMisuse(
            f"{name}.{attr}() is a task call on the handle {name!r}: it only means something "
            f"inside a @pipeline, where it becomes a job. To run it here, build the elf and call "
            f"the method: {cls.__qualname__}(...).{attr}(...), or call a pipeline that uses it."
        )

    return call


def _config_json(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    try:
        return msgspec.json.encode({"args": args, "kwargs": kwargs}, order="sorted").decode()
    except (TypeError, msgspec.EncodeError):
        return repr((args, sorted(kwargs.items())))


def _caller_location() -> tuple[str, int]:
    frame = inspect.currentframe()
    # Skip Handle.__init__ and named(): report the user's line.
    for _ in range(3):
        if frame is None:
            break
        frame = frame.f_back
    if frame is None:
        return ("<unknown>", 0)
    return (frame.f_code.co_filename, frame.f_lineno)


HANDLES: dict[str, list[Handle]] = {}
"""Every handle created in this process, by name (several when names collide)."""


def named(cls: Callable[P, T], name: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
    """A handle to the elf instance ``name`` of ``cls``, built in its worker with these arguments.

    Usage: ``store = named(Storage, "store", path="animals.json")``. mypy checks the arguments
    against ``Storage.__init__`` and types the handle as a ``Storage``, so pipelines type-check
    as ordinary code; the real ``Storage(...)`` is only constructed where the elf runs.
    """
    if not is_elf(cls):
        raise ElfDefinitionError(
            f"named() takes an @elf class; {getattr(cls, '__qualname__', cls)!r} is not decorated "
            f"with @elf"
        )
    if not isinstance(name, str) or not name or not name.replace("-", "_").isidentifier():
        raise ElfDefinitionError(
            f"an elf name is a non-empty identifier (letters, digits, _ and -), not {name!r}"
        )
    handle = Handle(cast(type, cls), name, tuple(args), dict(kwargs))
    HANDLES.setdefault(name, []).append(handle)
    return cast(T, handle)


def as_handle(value: object) -> Handle | None:
    return value if isinstance(value, Handle) else None


def pipeline_function(obj: object) -> Callable[..., Any] | None:
    """The function behind a ``@pipeline`` object, else None.

    The compiler and its cache recognise pipelines through this marker rather than by importing
    ``elfc.pipeline``, which sits above them (it calls the compiler and the runtime).
    """
    if getattr(type(obj), PIPELINE_ATTR, False) is not True:
        return None
    fn = getattr(obj, "fn", None)
    return fn if callable(fn) else None


def pipeline_name(fn: Callable[..., Any]) -> str:
    """A pipeline's qualified name, ``module:function``: how runs and revisions name it."""
    return f"{fn.__module__}:{fn.__qualname__}"
