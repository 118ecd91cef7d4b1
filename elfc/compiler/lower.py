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

import logging
import math
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from elfc.compiler.elves import elf_info
from elfc.decorators import Handle, as_handle, pipeline_function
from elfc.errors import BuildError, ElfcError
from elfc.model.ir import CATCH, EXPAND, IR, JobSpec, refs
from elfc.model.ops import Op
from elfc.model.raised import describe, matches
from elfc.model.typeref import finite_json, is_plain, typeref

BUILDER = "__elfc__"
MAX_JOBS = 5_000_000
MAX_DEPTH = 64
MAX_ELEMENTS = 100_000
"""The most elements one expansion of a loop over a task result may have."""
MAX_ITERATIONS = 1_000
"""The most iterations a ``while`` on a task result may make."""


class Outs(list[Any]):
    """A region's values, in the order of ``names``."""

    def __init__(self, names: tuple[str, ...], values: list[Any]) -> None:
        super().__init__(values)
        self.names = names


class _Unbound:
    """The value of a variable not bound where a region starts or ends."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unbound>"


UNBOUND: Any = _Unbound()


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


class Splice:
    """Part of a list the pipeline appends to: a region's list of appended values."""

    __slots__ = ("value",)

    def __init__(self, value: Dyn) -> None:
        self.value = value


class Spliced(list[Any]):
    """A list the pipeline appends to in a branch or loop on task results: some of its parts
    exist only when the run executes. Appending works; anything that would need its length
    or its elements at submission refuses, rather than count a part as one element."""

    def _refuse(self, what: str) -> BuildError:
        return BuildError(
            f"a list built in a branch or loop on task results was {what} at submission, "
            "before its parts exist; `elfc check` points at the line"
        )

    def __len__(self) -> int:
        raise self._refuse("measured with len()")

    def __iter__(self) -> Iterator[Any]:
        raise self._refuse("iterated")

    def __getitem__(self, index: Any) -> Any:
        raise self._refuse("indexed")

    def __bool__(self) -> bool:
        raise self._refuse("tested as a condition")

    def __contains__(self, item: object) -> bool:
        raise self._refuse("searched")

    def extend(self, values: Any) -> None:
        if isinstance(values, Dyn):
            list.append(self, Splice(values))
        else:
            list.extend(self, values)

    def __iadd__(self, values: Any) -> Spliced:  # type: ignore[misc]
        self.extend(values)
        return self

    def parts(self) -> list[Any]:
        """Its elements and splices, in order (without refusing)."""
        return [list.__getitem__(self, i) for i in range(list.__len__(self))]


def _spliced_ir(value: Spliced, element: Callable[[Any], IR]) -> IR:
    segments: list[IR] = []
    run: list[IR] = []
    for part in value.parts():
        if isinstance(part, Splice):
            if run:
                segments.append({Op.LIST: run})
                run = []
            segments.append(element(part.value))
        else:
            run.append(element(part))
    if run:
        segments.append({Op.LIST: run})
    return {Op.CONCAT: segments}


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
    if t is Spliced:
        return _spliced_ir(value, value_ir)
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


def _holds_dyn(value: Any, depth: int = 0) -> bool:
    """True when ``value`` is or holds (in lists, tuples, sets, dicts) a task result."""
    if isinstance(value, Dyn):
        return True
    if depth > MAX_DEPTH:
        return False
    if type(value) is Spliced:
        return any(isinstance(p, Splice) or _holds_dyn(p, depth + 1) for p in value.parts())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_dyn(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_holds_dyn(v, depth + 1) for v in value.values())
    return False


def _pending(value: Any, can_evaluate: bool) -> bool:
    """True when ``value`` holds a task result that cannot be evaluated here yet."""
    if not _holds_dyn(value):
        return False
    return not can_evaluate or bool(refs(value_ir(value)))


def _region_input(name: str, value: Any) -> list[Any]:
    """How a value a region reads crosses to the process that expands it: ``["u"]`` unbound,
    ``["h", name]`` a handle, ``["l", name]`` a logger, else ``["v", ir]`` (task results in it
    as refs)."""
    if value is UNBOUND:
        return ["u"]
    if isinstance(value, logging.Logger):  # `log = logging.getLogger(...)` in the pipeline
        return ["l", value.name]
    handle = as_handle(value)
    if handle is not None:
        return ["h", handle.name]
    try:
        return ["v", value_ir(value)]
    except BuildError as exc:
        raise BuildError(
            f"`{name}` is used inside a branch or loop on a task result, so it crosses to the "
            f"process that runs that part; {exc}"
        ) from None


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

    def qualified_name(self) -> str: ...

    def program_revision(self) -> str: ...

    def region_function(self, rid: str) -> Callable[..., Any]: ...

    def limit(self, name: str, default: int) -> int: ...

    def describe(self, rid: str) -> str: ...

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
    elf_of: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Job key -> (its position in ``jobs``, the elf that runs it)."""
    evaluate: Callable[[IR], Any] | None = None
    """Evaluates IR that reads no job (set where the runtime's interpreter is at hand: a
    derive over values already known then folds into its value)."""
    default_elf: str | None = None
    """The elf that runs an expansion whose decision reads no job of this state (in an
    expansion: the elf of the expanding job)."""
    last_call: str | None = None
    """The job of the last call region made (the next one waits for it)."""
    trying: list[Trying] = field(default_factory=list)
    """The ``try`` statements around task calls whose body is running, innermost last."""

    def previous_job(self) -> str | None:
        """The job a job made in a ``try`` body waits for: the one made before it in the
        body (Python runs a body's calls one after the other: after a failure, none)."""
        for t in reversed(self.trying):
            if t.last is not None:
                return t.last
        return None

    def made(self, key: str) -> None:
        """Job ``key`` was made: each ``try`` around it records it."""
        for t in self.trying:
            t.record("j", key)
        self.trying[-1].last = key


class Trying:
    """A ``try`` statement around task calls while its body runs: what the handler that
    takes a failure needs, the variables as they were at each point where the body may
    fail (before each job, after each statement, where static code raised)."""

    def __init__(self, rid: str, names: tuple[str, ...], scope: types.FrameType) -> None:
        self.rid = rid
        self.names = names
        self.scope = scope
        """The running frame of the code around the ``try`` (its variables are read)."""
        self.last: str | None = None
        self.keys: list[str] = []
        self.events: list[tuple[str, str, list[Any]]] = []
        """(``j`` a job / ``s`` a statement's end / ``x`` a raise, job key, variables)."""
        self.base = self.values()
        self.thrown: BaseException | None = None

    def values(self) -> list[Any]:
        scope = self.scope.f_locals
        return [scope.get(n, UNBOUND) for n in self.names]

    def record(self, kind: str, key: str = "") -> None:
        if kind == "j":
            self.keys.append(key)
        self.events.append((kind, key, self.values()))


class Frame:
    """The ``__elfc__`` object a builder function calls (one per pipeline invocation)."""

    def __init__(self, state: BuildState, compiled: Program, prefix: str = "") -> None:
        self.state = state
        self.compiled = compiled
        self.prefix = prefix
        self.index: dict[str, int] = {}
        self.expanding: tuple[str, str] = ("", "")
        """(region id, job key) of the expansion this frame runs, if it runs one."""

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
            if state.trying:
                previous = state.previous_job()
                if previous is not None:
                    deps.add(previous)
                state.made(key)
            state.keys.add(key)
            state.elf_of[key] = (len(state.jobs), handle.name)
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
        evaluate = self.state.evaluate
        if evaluate is not None and not any(_holds_dyn(s) for s in slots):
            # Every value is known (an expansion's element): Python's value, now.
            return evaluate(_fill(expr, [value_ir(s) for s in slots]))
        return Dyn(_fill(expr, [value_ir(s) for s in slots]))

    # -- regions: code that runs when a task result it decides on exists ---------------------

    UNBOUND = UNBOUND

    @staticmethod
    def splice(target: Any, added: Any) -> Any:
        """``target`` (a list the region appended to) with the region's appended values."""
        if not isinstance(added, Dyn):
            target.extend(added)
            return target
        if type(target) is not Spliced:
            spliced = Spliced()
            list.extend(spliced, target)
            target = spliced
        target.extend(added)
        return target

    @staticmethod
    def bound(scope: dict[str, Any], names: tuple[str, ...]) -> list[Any]:
        """The values of ``names`` in ``scope`` (a ``locals()``), UNBOUND where unassigned."""
        return [scope.get(n, UNBOUND) for n in names]

    @staticmethod
    def outs(scope: dict[str, Any], names: tuple[str, ...]) -> Outs:
        """What a region hands back: ``bound``, knowing the names (for an unbound one's
        message where it is read)."""
        return Outs(names, [scope.get(n, UNBOUND) for n in names])

    def deferred(self, decision: list[Any]) -> bool:
        """True when a value of ``decision`` holds a task result that does not exist yet."""
        return any(_pending(v, self.state.evaluate is not None) for v in decision)

    def region(
        self,
        rid: str,
        fn: Callable[..., Any] | None,
        decision: list[Any],
        inputs: list[Any],
        names: tuple[str, ...],
        outs: int,
        iteration: int = 0,
        call: bool = False,
    ) -> Any:
        """Run region ``rid`` (the region function ``fn``) now if the values of ``decision``
        are known, else make its expansion job; the region's values (a list of ``outs``, or
        with ``outs`` -1 the one value that ends the pipeline).

        ``call``: a call region (a plain function called with task results), one job that
        runs the call once its values exist. Such jobs run one after the other in the order
        the pipeline makes them (their side effects, ``print`` and logging, happen in Python's
        order), and a ``try`` body may hold them."""
        if not self.deferred(decision):
            evaluate = self.state.evaluate
            known = [
                evaluate(value_ir(v)) if evaluate is not None and _holds_dyn(v) else v
                for v in decision
            ]
            if fn is None:
                fn = self.compiled.region_function(rid)
            return fn(self, known, iteration, *inputs)
        state = self.state
        if len(state.jobs) >= MAX_JOBS:
            raise BuildError(f"the run would make more than {MAX_JOBS} jobs")
        if state.trying and not call:
            raise BuildError(
                f"{self.compiled.describe(rid)} is in the body of a `try` around task calls: "
                "put the `try` inside the branch or loop instead"
            )
        if rid == self.expanding[0] and iteration:
            # A `while` region's next iteration: keyed beside the first (``r6@2``), so that
            # keys do not grow with the number of polls.
            key = f"{self.expanding[1].partition('@')[0]}@{iteration}"
        else:
            key = self.key(rid)
        deps: set[str] = set()
        for v in decision:
            if _holds_dyn(v):
                deps |= refs(value_ir(v))
        if call:
            if state.last_call is not None:
                deps.add(state.last_call)
            if state.trying:
                previous = state.previous_job()
                if previous is not None:
                    deps.add(previous)
        program = self.compiled
        spec = {
            "pipeline": program.qualified_name(),
            "revision": program.program_revision(),
            "region": rid,
            "prefix": key + "/",
            "index": dict(self.index),
            "decision": [_region_input("the decision", v) for v in decision],
            "names": list(names),
            "inputs": [_region_input(n, v) for n, v in zip(names, inputs, strict=True)],
            "outs": outs,
            "iteration": iteration,
        }
        if call:
            state.last_call = key
            if state.trying:
                state.made(key)
        return self._system_job(key, rid, EXPAND, spec, deps, outs)

    def _system_job(
        self, key: str, rid: str, task: str, spec: dict[str, Any], deps: set[str], outs: int
    ) -> Any:
        """Add region ``rid``'s ``@expand``/``@catch`` job; the placeholders of its values."""
        state = self.state
        # The elf of the last job the region reads runs it: its workers are the ones running
        # when those values exist.
        last = max((state.elf_of[k] for k in deps if k in state.elf_of), default=None)
        elf_name = last[1] if last is not None else state.default_elf
        if elf_name is None and state.elf_of:
            elf_name = next(iter(state.elf_of.values()))[1]
        if elf_name is None:
            raise BuildError(f"region {rid}: no elf of the run can run it")
        state.keys.add(key)
        state.elf_of[key] = (len(state.jobs), elf_name)
        state.jobs.append(
            JobSpec(
                key=key,
                node=self.prefix + rid,
                elf=elf_name,
                task=task,
                revision=self.compiled.program_revision(),
                args=({Op.LIT: spec},),
                kwargs={},
                deps=tuple(sorted(deps)),
                seq=len(state.jobs),
            )
        )
        if outs < 0:
            return Dyn({Op.OUT: key})
        return [Dyn({Op.OUT: [key, i]}) for i in range(outs)]

    # -- try: handlers that run when the jobs of a body have settled --------------------------

    def trying(self, rid: str, names: tuple[str, ...]) -> None:
        """The body of ``try`` region ``rid`` starts (``names``: the variables its handlers
        read or write)."""
        scope = sys._getframe(1)
        self.state.trying.append(Trying(rid, names, scope))

    def step(self, rid: str) -> None:
        """A statement of the body of ``rid`` ended."""
        self.state.trying[-1].record("s")

    def thrown(self, rid: str, exc: BaseException) -> None:
        """The body's static code raised ``exc`` at submission: the body ends there, as in
        Python (an error of elfc itself, or an interrupt, is not the pipeline's)."""
        if isinstance(exc, ElfcError) or not isinstance(exc, Exception):
            raise exc
        t = self.state.trying[-1]
        t.thrown = exc
        t.record("x")

    @staticmethod
    def matches(exc: BaseException, types: Any) -> bool:
        """``except types`` for ``exc`` (a failure of a job, or of static code)."""
        return matches(exc, types)

    def catch(self, rid: str, fn: Callable[..., Any], names: tuple[str, ...], outs: int) -> Any:
        """The body of ``try`` region ``rid`` ended: run its handlers now if it made no job
        and read none, else make the ``@catch`` job that runs them when its jobs settle."""
        state = self.state
        t = state.trying.pop()
        assert t.rid == rid and t.names == names, (t.rid, rid)
        final = t.values()
        deps = set(t.keys)
        for _, _, values in t.events:
            for v in values:
                if _holds_dyn(v):
                    deps |= refs(value_ir(v))
        for v in final:
            if _holds_dyn(v):
                deps |= refs(value_ir(v))
        if not deps or not self.deferred([UNBOUND, *final, *(v for e in t.events for v in e[2])]):
            if t.thrown is not None:
                values = t.events[-1][2]
                return fn(self, [t.thrown], 0, *values)
            return fn(self, [None], 0, *final)
        if len(state.jobs) >= MAX_JOBS:
            raise BuildError(f"the run would make more than {MAX_JOBS} jobs")
        key = self.key(rid)
        program = self.compiled

        def entries(values: list[Any]) -> list[Any]:
            return [_region_input(n, v) for n, v in zip(names, values, strict=True)]

        spec = {
            "kind": "try",
            "pipeline": program.qualified_name(),
            "revision": program.program_revision(),
            "region": rid,
            "prefix": key + "/",
            "index": dict(self.index),
            "names": list(names),
            "base": entries(t.base),
            "events": [[kind, k, entries(values)] for kind, k, values in t.events],
            "final": entries(final),
            "thrown": describe(t.thrown, "").decode() if t.thrown is not None else None,
            "outs": outs,
            "iteration": 0,
        }
        if state.trying:
            # A `try` around this one: the job is one of its body's, after the others.
            previous = state.previous_job()
            if previous is not None:
                deps.add(previous)
            state.made(key)
        return self._system_job(key, rid, CATCH, spec, deps, outs)

    def tick(self, rid: str, iteration: int) -> int:
        """The next iteration number of ``while`` region ``rid``, within its bound."""
        limit = self.compiled.limit("max_iterations", MAX_ITERATIONS)
        if iteration >= limit:
            raise BuildError(
                f"{self.compiled.describe(rid)} ran {iteration} iterations, its maximum: end it "
                f"sooner, or raise the bound with @pipeline(max_iterations=...)"
            )
        return iteration + 1

    def elements(self, rid: str, iterable: Any) -> Any:
        """A loop's iterable over a task result, within the bound of one expansion."""
        try:
            size = len(iterable)
        except TypeError:
            iterable = list(iterable)
            size = len(iterable)
        limit = self.compiled.limit("max_elements", MAX_ELEMENTS)
        if size > limit:
            raise BuildError(
                f"{self.compiled.describe(rid)} would expand {size} elements, more than the "
                f"{limit} one expansion may have: split the input into batches, or raise the "
                "bound with @pipeline(max_elements=...)"
            )
        return iterable

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
