"""Lowering: the submission-time builder and the code that drives it.

The analysis decides, per libcst node, what happens at submission; this module rewrites the
pipeline function accordingly (a task call becomes ``__elfc__.task(id, handle, name)(...)``, a
dynamic expression ``__elfc__.derive(id, [slots])``, a static loop's iterable
``__elfc__.loop(id, it)``) and compiles it with the pipeline's own globals and line numbers.
Running that function with concrete arguments performs the pipeline's static code exactly as
Python and records one job per task call executed. It runs in the submitting process, from
source the process imported itself: nothing stored in a mycelium is ever executed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from elfc.compiler.elves import elf_info
from elfc.decorators import Handle, as_handle, pipeline_function
from elfc.errors import BuildError
from elfc.model.ir import IR, JobSpec, refs
from elfc.model.ops import Op

BUILDER = "__elfc__"
MAX_JOBS = 5_000_000
MAX_DEPTH = 64


class Dyn:
    """A value that exists only when the run executes: its IR (a ref or a derive)."""

    __slots__ = ("ir",)

    def __init__(self, ir: IR) -> None:
        self.ir = ir

    def _refuse(self, what: str) -> BuildError:
        return BuildError(
            f"a task result ({msgspec.json.encode(self.ir).decode()[:80]}) was {what} at "
            f"submission, before it exists; `elfc check` points at the line"
        )

    def __bool__(self) -> bool:
        raise self._refuse("tested as a condition")

    def __iter__(self) -> Iterator[Any]:
        raise self._refuse("iterated")

    def __len__(self) -> int:
        raise self._refuse("measured with len()")

    def __repr__(self) -> str:
        return f"<task result {msgspec.json.encode(self.ir).decode()}>"


class _Static:
    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _lit(raw: Any) -> IR:
    return raw if _scalar(raw) else {Op.LIT: raw}


def _conv(value: Any) -> _Static | Dyn:
    if isinstance(value, Dyn):
        return value
    if _scalar(value):
        return _Static(value)
    if isinstance(value, list | tuple | set | frozenset):
        parts = [_conv(v) for v in value]
        if not any(isinstance(p, Dyn) for p in parts):
            return _Static(_builtins(value))
        op = "tuple" if isinstance(value, tuple) else "list" if isinstance(value, list) else "set"
        return Dyn({op: [as_ir(p) for p in parts]})
    if isinstance(value, dict):
        items = [(_conv(k), _conv(v)) for k, v in value.items()]
        if not any(isinstance(k, Dyn) or isinstance(v, Dyn) for k, v in items):
            return _Static(_builtins(value))
        return Dyn({Op.DICT: [[as_ir(k), as_ir(v)] for k, v in items]})
    return _Static(_builtins(value))


def _builtins(value: Any) -> Any:
    try:
        return msgspec.to_builtins(value, enc_hook=_enc_hook)
    except (TypeError, msgspec.EncodeError) as exc:
        raise BuildError(
            f"{value!r} cannot be passed to a task: values cross processes as JSON ({exc})"
        ) from exc


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Dyn):
        raise TypeError("a task result inside an object other than a list, tuple, set or dict")
    raise TypeError(f"{type(obj).__qualname__} is not JSON-encodable")


def as_ir(value: Any) -> IR:
    """The IR of a submission-time value: task results become refs/derives, the rest literals."""
    c = value if isinstance(value, _Static | Dyn) else _conv(value)
    return c.ir if isinstance(c, Dyn) else _lit(c.raw)


def _fill(expr: IR, slots: list[IR]) -> IR:
    if isinstance(expr, dict):
        if "slot" in expr and len(expr) == 1:
            return slots[expr["slot"]]
        if "lit" in expr and len(expr) == 1:
            return expr
        return {k: _fill(v, slots) for k, v in expr.items()}
    if isinstance(expr, list):
        return [_fill(v, slots) for v in expr]
    return expr


class Program(Protocol):
    """What a frame needs of a compiled pipeline (``compile.Compiled`` is one)."""

    chains: dict[str, tuple[str, ...]]
    derives: dict[str, IR]

    def task_revision(self, node_id: str, handle: str) -> str | None: ...

    def require(self) -> Program: ...

    def invoke(self, frame: Frame, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...


@dataclass
class BuildState:
    """What one submission accumulates across the pipeline and the pipelines it inlines."""

    compile: Callable[[Callable[..., Any]], Program]
    """How an inlined pipeline's function is compiled: the compiler passes itself down."""
    jobs: list[JobSpec] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    handles: dict[str, Handle] = field(default_factory=dict)
    depth: int = 0


class Frame:
    """The ``__elfc__`` object a builder function calls (one per pipeline invocation)."""

    def __init__(self, state: BuildState, compiled: Program, prefix: str = "") -> None:
        self.state = state
        self.compiled = compiled
        self.prefix = prefix
        self.index: dict[str, int] = {}

    def key(self, nid: str) -> str:
        chain = self.compiled.chains.get(nid, ())
        key = self.prefix + nid
        if chain:
            key += "#" + ".".join(str(self.index.get(r, 0)) for r in chain)
        if key in self.state.keys:
            n = 2
            while f"{key}~{n}" in self.state.keys:
                n += 1
            key = f"{key}~{n}"
        return key

    def task(self, nid: str, receiver: Any, name: str) -> Callable[..., Dyn]:
        handle = as_handle(receiver)
        if handle is None:
            raise BuildError(f"`{name}` was called on {receiver!r}, which is not an elf handle")
        revision = self.compiled.task_revision(nid, handle.name)
        if revision is None:
            # A handle the compiler could not foresee at this call site: read the class.
            info = elf_info(handle.cls).tasks.get(name)
            if info is None:
                raise BuildError(
                    f"{handle.name!r} ({handle.cls.__qualname__}) has no task {name!r}"
                )
            revision = info.revision

        def call(*args: Any, **kwargs: Any) -> Dyn:
            state = self.state
            if len(state.jobs) >= MAX_JOBS:
                raise BuildError(f"the run would make more than {MAX_JOBS} jobs")
            key = self.key(nid)
            a = tuple(as_ir(v) for v in args)
            kw = {k: as_ir(v) for k, v in kwargs.items()}
            deps: set[str] = set()
            for e in (*a, *kw.values()):
                if isinstance(e, dict):
                    deps |= refs(e)
            state.keys.add(key)
            state.handles[handle.name] = handle
            state.jobs.append(
                JobSpec(
                    key=key,
                    node=self.prefix + nid,
                    elf=handle.name,
                    task=name,
                    revision=revision,
                    args=a,
                    kwargs=kw,
                    deps=tuple(sorted(deps)),
                    seq=len(state.jobs),
                )
            )
            return Dyn({Op.REF: key})

        return call

    def derive(self, nid: str, slots: list[Any]) -> Any:
        expr = self.compiled.derives[nid]
        if expr == {Op.SLOT: 0}:
            return slots[0]
        return Dyn(_fill(expr, [as_ir(s) for s in slots]))

    def inline(self, nid: str, target: Any) -> Callable[..., Any]:
        fn = pipeline_function(target)
        if fn is None:
            raise BuildError(f"{target!r} is not a pipeline")

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.state.depth >= MAX_DEPTH:
                raise BuildError(f"pipelines inline each other more than {MAX_DEPTH} deep")
            compiled = self.state.compile(fn).require()
            frame = Frame(self.state, compiled, self.key(nid) + "/")
            self.state.depth += 1
            try:
                return compiled.invoke(frame, args, kwargs)
            finally:
                self.state.depth -= 1

        return call

    def loop(self, rid: str, iterable: Iterable[Any]) -> Iterator[Any]:
        for i, item in enumerate(iterable):
            self.index[rid] = i
            yield item

    def again(self, rid: str, condition: Any) -> bool:
        if condition:
            self.index[rid] = self.index.get(rid, -1) + 1
            return True
        self.index.pop(rid, None)
        return False

    def unpack(self, value: Any, count: int) -> tuple[Any, ...]:
        if not isinstance(value, Dyn):
            return tuple(value)
        return tuple(Dyn({Op.ITEM: [value.ir, i]}) for i in range(count))
