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

import math
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from elfc.compiler.elves import elf_info
from elfc.decorators import Handle, as_handle, pipeline_function
from elfc.errors import BuildError
from elfc.model.ir import IR, JobSpec, refs
from elfc.model.ops import Op
from elfc.model.typeref import finite_json, is_plain, typeref

BUILDER = "__elfc__"
MAX_JOBS = 5_000_000
MAX_DEPTH = 64


class Dyn:
    """A value that exists only when the run executes: its IR (a ref or a derive).

    ``typed`` is the same IR with the producer's return type attached to a bare ref (see
    :mod:`elfc.model.typeref`), used wherever the value is evaluated rather than handed to a
    task parameter whose own annotation decodes it.
    """

    __slots__ = ("ir", "typed")

    def __init__(self, ir: IR, typed: IR | None = None) -> None:
        self.ir = ir
        self.typed = ir if typed is None else typed

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


_JSON_SCALARS = (type(None), bool, int, str)


def _plain(value: Any) -> bool:
    """True when ``value`` is JSON as it stands: it decodes back to an equal, same-typed value."""
    t = type(value)
    if t in _JSON_SCALARS:
        return True
    if t is float:
        return math.isfinite(value)
    if t is list:
        return all(_plain(v) for v in value)
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def as_ir(value: Any) -> IR:
    """The IR of a value handed to a task parameter, whose annotation decodes it.

    Task results become refs and derives; the rest are literals, or operations that rebuild
    what JSON cannot carry (a tuple, a set, a datetime) as the same Python value.
    """
    if isinstance(value, Dyn):
        return value.ir
    return value_ir(value)


def value_ir(value: Any) -> IR:
    """The IR of a value that is evaluated as it is (an element, an operand, the output)."""
    if isinstance(value, Dyn):
        return value.typed
    t = type(value)
    if t in _JSON_SCALARS:
        return value
    if _plain(value):
        # A copy: the pipeline may mutate its list after passing it (``xs.append(...)``).
        return value if t is float else {Op.LIT: msgspec.to_builtins(value)}
    if t is list:
        return {Op.LIST: [value_ir(v) for v in value]}
    if t is tuple:
        return {Op.TUPLE: [value_ir(v) for v in value]}
    if t is set:
        return {Op.SET: [value_ir(v) for v in value]}
    if t is frozenset:
        return {Op.CALL: ["frozenset", [{Op.LIST: [value_ir(v) for v in value]}]]}
    if t is dict:
        return {Op.DICT: [[value_ir(k), value_ir(v)] for k, v in value.items()]}
    return _static_value(value)


def _static_value(value: Any) -> IR:
    """``{"val": [typeref, json]}`` for a value of a class JSON does not name (datetime, Enum)."""
    ref = typeref(type(value))
    if ref is None:
        raise BuildError(
            f"{value!r} cannot be passed to a task: its class {type(value).__qualname__} is "
            "defined inside a function, so no other process can name it; define it at module level"
        )
    try:
        data = msgspec.to_builtins(value, enc_hook=_enc_hook)
    except (TypeError, msgspec.EncodeError) as exc:
        raise BuildError(
            f"{value!r} cannot be passed to a task: values cross processes as JSON ({exc})"
        ) from exc
    return {Op.VAL: [ref, finite_json(data)]}


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Dyn):
        raise TypeError("a task result inside an object other than a list, tuple, set or dict")
    raise TypeError(f"{type(obj).__qualname__} is not JSON-encodable")


_RESULT_REFS: dict[Any, Any] = {}


def _result_typeref(tp: Any) -> Any:
    """The type reference a result of annotation ``tp`` needs (None: plain JSON), cached."""
    try:
        return _RESULT_REFS[tp]
    except KeyError:
        ref = None if tp is None or is_plain(tp) else typeref(tp)
        _RESULT_REFS[tp] = ref
        return ref
    except TypeError:  # an unhashable annotation
        return None if is_plain(tp) else typeref(tp)


def ref_ir(key: str, return_type: Any) -> IR:
    """The typed ref of a job's result: the producer's return type, unless JSON already is it."""
    ref = _result_typeref(return_type)
    return {Op.REF: key} if ref is None else {Op.REF: [key, ref]}


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
        info = elf_info(handle.cls).tasks.get(name)
        if info is None:
            raise BuildError(f"{handle.name!r} ({handle.cls.__qualname__}) has no task {name!r}")
        revision = self.compiled.task_revision(nid, handle.name)
        if revision is None:
            # A handle the compiler could not foresee at this call site: read the class.
            revision = info.revision
        return_type = info.hints.get("return")

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
            return Dyn({Op.REF: key}, ref_ir(key, return_type))

        return call

    def derive(self, nid: str, slots: list[Any]) -> Any:
        expr = self.compiled.derives[nid]
        if expr == {Op.SLOT: 0}:
            return slots[0]
        return Dyn(_fill(expr, [value_ir(s) for s in slots]))

    def inline(self, nid: str, target: Any) -> Callable[..., Any]:
        fn = pipeline_function(target)
        if fn is None and isinstance(target, types.FunctionType):
            fn = target  # a helper function that calls tasks, compiled like a pipeline
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
        return tuple(Dyn({Op.ITEM: [value.typed, i]}) for i in range(count))
