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
from elfc.mycelium.common import Expansion
from elfc.runtime.values import Results, UnboundValue, evaluate

__all__ = ["RegionMismatch", "expansion_of", "join_value", "program"]

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
        if tag == "h":
            found = HANDLES.get(entry[1])
            if not found:
                raise BuildError(f"handle {entry[1]!r} is not defined in this process")
            state.handles[entry[1]] = found[-1]
            return found[-1]
        return _rebuild(entry[1], results, available)

    decision = [rebuild(e) for e in spec["decision"]]
    inputs = [rebuild(e) for e in spec["inputs"]]
    fn = compiled.region_function(spec["region"])
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
    if refs(join):
        return Expansion(jobs, placeholders, join=join)
    return Expansion(jobs, placeholders, result=_encode(join))


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
