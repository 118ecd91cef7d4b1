"""Expanding a region: run its code when the values it decides on exist.

An expansion job (task ``@expand``, made at submission or by another expansion where a
branch, loop or ``while`` depends on a task result) carries the region's id, the pipeline it
belongs to and its revision, the key prefix of the jobs it makes, and the values the region
reads, as IR. The process that claims it finds the pipeline in its own imported code (by
name; a revision other than the job's is refused, as a worker refuses a task of another
revision), rebuilds those values — a value whose results the claim carried becomes the
Python value itself, anything else stays a task result — and calls the region's function,
which records the jobs of the path taken. The store then adds them to the run in one
transaction with the job's change into its region's *join*: a ``@join`` job evaluates the
region's values once the jobs they read have succeeded (or, when they read none, the
expansion's own result is those values).

Nothing stored in the mycelium is executed: the job names code that the expanding process
imported itself.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import msgspec

from elfc.compiler.compile import Compiled, compiled_for, compiled_named
from elfc.compiler.lower import UNBOUND, BuildState, Dyn, Frame, Splice, Spliced, value_ir
from elfc.decorators import HANDLES, pipeline_function
from elfc.errors import BuildError
from elfc.model.ir import IR, CallNode, JobSpec, refs
from elfc.model.ops import Op
from elfc.model.raised import is_handled, is_raised
from elfc.model.raised import rebuild as rebuild_exception
from elfc.mycelium.common import Expansion
from elfc.runtime.values import ExpressionError, Inputs, Results, UnboundValue, evaluate

__all__ = [
    "RegionMismatch",
    "expansion_of",
    "is_try_spec",
    "join_value",
    "program",
    "settled_join",
]

_encode = msgspec.json.Encoder().encode


class RegionMismatch(Exception):
    """The pipeline an expansion names is not here, or not at the job's revision."""


def program(name: str, revision: str) -> Compiled:
    """The compiled pipeline ``name`` (``module:qualname``) of this process at ``revision``,
    importing its module if this process has not compiled it yet."""
    compiled = compiled_named(name)
    if compiled is None:
        module, _, qualname = name.partition(":")
        try:
            obj: Any = sys.modules.get(module) or importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise RegionMismatch(
                f"pipeline {name} cannot be imported here ({exc}): a worker expanding its "
                "branches and loops needs the pipeline's module on its path"
            ) from exc
        fn: Callable[..., Any] = pipeline_function(obj) or obj
        compiled = compiled_for(fn)
    compiled = compiled.require()
    if compiled.program_revision() != revision:
        raise RegionMismatch(
            f"pipeline {name}: the run was submitted with revision {revision}, this process "
            f"has revision {compiled.program_revision()}; restart the worker with the "
            "submitted code"
        )
    return compiled


def expansion_of(
    spec: dict[str, Any], elf: str, deps: tuple[str, ...] | list[str], results: Results
) -> Expansion:
    """Run the region an expansion job describes (``spec``, its payload); what to store."""
    compiled = program(spec["pipeline"], spec["revision"])
    available = set(deps)
    state = BuildState(
        compile=compiled_for,
        evaluate=lambda ir: evaluate(ir, results),
        default_elf=elf,
    )
    frame = Frame(state, compiled, spec["prefix"])
    frame.index = {str(k): int(v) for k, v in spec["index"].items()}
    frame.expanding = (spec["region"], spec["prefix"].removesuffix("/"))

    def rebuild(entry: list[Any]) -> Any:
        tag = entry[0]
        if tag == "u":
            return UNBOUND
        if tag == "l":
            return logging.getLogger(entry[1])
        if tag == "h":
            found = HANDLES.get(entry[1])
            if not found:
                raise BuildError(f"handle {entry[1]!r} is not defined in this process")
            state.handles[entry[1]] = found[-1]
            return found[-1]
        return _rebuild(entry[1], results, available)

    handled: list[str] = []
    fn = compiled.region_function(spec["region"])
    settles = spec.get("kind") == "try"
    if settles:
        caught, inputs, handled = _settled(spec, results, available, rebuild)
        decision: list[Any] = [caught]
        if caught is None:
            handled = []
    else:
        decision = [rebuild(e) for e in spec["decision"]]
        inputs = [rebuild(e) for e in spec["inputs"]]
    value = fn(frame, decision, int(spec["iteration"]), *inputs)
    outs = int(spec["outs"])
    if outs < 0:
        join = _value_ir(value, "the value")
    else:
        names = getattr(value, "names", ())
        join = {
            Op.LIST: [
                _value_ir(v, names[i] if i < len(names) else "?") for i, v in enumerate(value)
            ]
        }
    placeholders = _not_taken(compiled, spec["region"], spec["prefix"], state.jobs)
    jobs = state.jobs
    if refs(join) or (settles and jobs):
        return Expansion(jobs, placeholders, join=join, handled=handled, settles=settles)
    return Expansion(jobs, placeholders, result=_encode(join), handled=handled)


def _settled(
    spec: dict[str, Any],
    results: Results,
    available: set[str],
    rebuild: Callable[[list[Any]], Any],
) -> tuple[BaseException | None, list[Any], list[str]]:
    """What a ``try``'s handlers see once its body's jobs have settled: the first failure in
    the body's order (a job's, a value's the body computed, or its static code's), the
    variables as they were there, and the failed jobs a handler taking it takes too."""
    failed: dict[str, bytes] = {}
    inner: set[str] = set()
    for key in sorted(available):
        stored = _stored(results, key)
        if stored is None:  # skipped: no result
            available.discard(key)
        elif is_raised(stored):
            failed[key] = stored
        elif is_handled(stored):
            inner.add(key)
    available.difference_update(failed)
    available.difference_update(inner)
    taken = list(failed)
    current = list(spec["base"])
    for kind, key, entries in spec["events"]:
        if kind == "j" and (key in inner or (key not in available and key not in failed)):
            # A failure a `try` inside this one took, or a job skipped after it (or after a
            # failure before this `try`, which fails the run by itself).
            current = entries
            continue
        if kind == "j" and key in failed:
            return rebuild_exception(failed[key]), [rebuild(e) for e in current], taken
        if kind == "x":
            thrown = spec["thrown"]
            assert thrown is not None
            return rebuild_exception(thrown.encode()), [rebuild(e) for e in entries], taken
        if kind == "s":
            try:
                for e, old in zip(entries, current, strict=True):
                    if e != old:
                        rebuild(e)
            except ExpressionError as exc:
                cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
                return cause, [rebuild(e) for e in current], taken
        current = entries
    return None, [rebuild(e) for e in spec["final"]], taken


def _stored(results: Results, key: str) -> bytes | None:
    """Job ``key``'s stored result as the claim carried it (None: it has none, skipped)."""
    if not isinstance(results, Inputs):
        return None
    try:
        return results.raw(key)
    except ExpressionError:
        return None


def is_try_spec(payload: Any) -> bool:
    """True for the first payload of a :data:`CATCH` job (a ``try``'s region), False for
    the join it becomes."""
    lit = payload.get(Op.LIT.value) if isinstance(payload, dict) else None
    return isinstance(lit, dict) and lit.get("kind") == "try"


def settled_join(expr: IR, deps: tuple[str, ...] | list[str], results: Results) -> bytes:
    """The join of a ``try``'s handlers: the first failure among the jobs they made (in the
    order made), re-raised, else the region's values."""
    # A job the handlers made that has no result was skipped: a failure before it is then
    # among these (re-raised here), or a `try` inside the handler took it, or it happened
    # before the `try` (and fails the run by itself).
    for key in deps:  # in the order the handlers made them
        stored = _stored(results, key)
        if stored is not None and is_raised(stored):
            raise rebuild_exception(stored)
    return join_value(expr, results)


def join_value(expr: IR, results: Results) -> bytes:
    """A join's result: the region's values (``expr``), evaluated, as literal IR."""
    if isinstance(expr, dict) and set(expr) == {Op.LIST.value}:
        return _encode({Op.LIST: [_joined(e, results) for e in expr[Op.LIST.value]]})
    return _encode(_joined(expr, results))


def _joined(expr: IR, results: Results) -> IR:
    try:
        return value_ir(evaluate(expr, results))
    except UnboundValue as exc:  # still unbound: an error only where something reads it
        return {Op.UNBOUND: exc.name}


def _value_ir(value: Any, name: str) -> IR:
    if value is UNBOUND:
        return {Op.UNBOUND: name}
    return value_ir(value)


def _rebuild(ir: IR, results: Results, available: set[str]) -> Any:
    """The value of ``ir`` where the results of ``available`` exist: the Python value when it
    reads only those; else the static structure around the task results it holds."""
    found = refs(ir)
    if found <= available:
        try:
            return evaluate(ir, results)
        except UnboundValue:  # a variable no path taken assigned: unbound here too
            return UNBOUND
    if isinstance(ir, dict) and len(ir) == 1:
        ((op, body),) = ir.items()
        if op == Op.LIST:
            return [_rebuild(e, results, available) for e in body]
        if op == Op.TUPLE:
            return tuple(_rebuild(e, results, available) for e in body)
        if op == Op.DICT:
            return {evaluate(k, results): _rebuild(v, results, available) for k, v in body}
        if op == Op.REF and not isinstance(body, str):
            return Dyn({Op.REF: body[0]}, ir)
        if op == Op.CONCAT:
            out = Spliced()
            for segment in body:
                if isinstance(segment, dict) and set(segment) == {Op.LIST.value}:
                    list.extend(out, [_rebuild(e, results, available) for e in segment["list"]])
                elif refs(segment) <= available:
                    list.extend(out, evaluate(segment, results))
                else:
                    list.append(out, Splice(Dyn(segment, segment)))
            return out
    return Dyn(ir, ir)


def _not_taken(compiled: Compiled, rid: str, prefix: str, made: list[JobSpec]) -> list[JobSpec]:
    """A ``not_taken`` placeholder per task call of branch ``rid`` that made no job."""
    template = compiled.template
    assert template is not None
    regions = {r.id: r for r in template.regions}
    if rid not in regions or regions[rid].kind != "if":
        return []
    made_nodes = {job.node for job in made}
    out = []
    for node in template.nodes:
        if not isinstance(node, CallNode) or prefix + node.id in made_nodes:
            continue
        r = node.region
        while r is not None and r in regions and not regions[r].dynamic:
            r = regions[r].parent
        if r != rid:
            continue
        out.append(
            JobSpec(
                key=prefix + node.id, node=prefix + node.id, elf=node.handles[0],
                task=node.task, revision=node.revisions[0], args=(), kwargs={}, deps=(),
                seq=0,
            )
        )  # fmt: skip
    return out
