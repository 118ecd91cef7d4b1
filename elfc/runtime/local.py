"""Run a pipeline in this process: ``census(rounds=3)``.

Jobs run in creation order (a topological order, and FIFO per elf), one elf instance built per
handle, every value through the same JSON encode and validation as a distributed run.
"""

from __future__ import annotations

import time
from typing import Any

from elfc.compiler.compile import Compiled
from elfc.compiler.elves import elf_info
from elfc.decorators import HANDLES, Handle
from elfc.errors import JobFailure, RunFailed
from elfc.model.ir import CATCH, JOIN, SYSTEM_TASKS, JobSpec
from elfc.model.raised import HANDLED
from elfc.runtime.execute import (
    Failure,
    call_with_timeout,
    encode_result,
    failure_of,
    resolve_arguments,
)
from elfc.runtime.expand import expansion_of, is_try_spec, join_value, settled_join
from elfc.runtime.run import output_value, result_type
from elfc.runtime.values import Inputs


def run_local(compiled: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a compiled pipeline's whole graph here: its value, or ``RunFailed``.

    Jobs run in creation order whenever their dependencies are done; a region's expansion
    adds its jobs (and its join) at the end, as a mycelium adds them to a run.
    """
    compiled = compiled.require()
    built, handles = compiled.build_with_handles(args, kwargs)
    instances: dict[str, Any] = {}
    stored: dict[str, bytes] = {}
    results = Inputs(stored)
    dead: set[str] = set()
    failures: list[JobFailure] = []
    raised: dict[str, bytes] = {}
    """What each failed job raised, as a ``try``'s handler reads it."""
    pending: list[JobSpec] = list(built.jobs)
    while pending:
        later: list[JobSpec] = []
        progressed = False
        for job in pending:
            if any(d not in stored and d not in dead for d in job.deps):
                later.append(job)
                continue
            progressed = True
            if job.task != CATCH and any(d in dead for d in job.deps):
                dead.add(job.key)
                continue
            if job.task in SYSTEM_TASKS:
                inputs = results
                if job.task == CATCH:
                    seen = {**stored, **{d: raised[d] for d in job.deps if d in raised}}
                    inputs = Inputs(seen)
                later.extend(_region_job(job, inputs, stored, dead, failures, raised, handles))
                continue
            _run_job(job, handles, instances, results, stored, dead, failures, raised)
        if not progressed:
            raise AssertionError(f"in-process run stuck on {[j.key for j in later][:5]}")
        pending = later
    if failures:
        raise RunFailed(failures)
    return output_value(built.output, results, result_type(compiled.fn), compiled.name)


def _run_job(
    job: JobSpec,
    handles: dict[str, Handle],
    instances: dict[str, Any],
    results: Inputs,
    stored: dict[str, bytes],
    dead: set[str],
    failures: list[JobFailure],
    raised: dict[str, bytes],
) -> None:
    handle = handles.get(job.elf) or HANDLES[job.elf][-1]
    info = elf_info(handle.cls).tasks[job.task]
    attempts = info.options.retries + 1
    for attempt in range(attempts):
        try:
            a, kw = resolve_arguments(info, job.elf, job.args, job.kwargs, results)
            if job.elf not in instances:
                instances[job.elf] = handle.build()
            method = getattr(instances[job.elf], job.task)
            value = call_with_timeout(method, a, kw, info.options.timeout)
            stored[job.key] = encode_result(info, job.elf, value)
            return
        except Exception as exc:
            if attempt + 1 < attempts:
                time.sleep(info.options.retry_delay * (2**attempt))
                continue
            _failed(job, failure_of(exc), dead, failures, raised)


def _failed(
    job: JobSpec,
    f: Failure,
    dead: set[str],
    failures: list[JobFailure],
    raised: dict[str, bytes],
) -> None:
    failures.append(JobFailure(job.key, job.elf, job.task, f.error_type, f.message, f.traceback))
    dead.add(job.key)
    if f.raised is not None:
        raised[job.key] = f.raised


def _region_job(
    job: JobSpec,
    results: Inputs,
    stored: dict[str, bytes],
    dead: set[str],
    failures: list[JobFailure],
    raised: dict[str, bytes],
    handles: dict[str, Handle],
) -> list[JobSpec]:
    """An expansion (its jobs, then its join) or a join; the jobs to run after it."""
    try:
        if job.task == JOIN:
            stored[job.key] = join_value(job.args[0], results)
            return []
        if job.task == CATCH and not is_try_spec(job.args[0]):
            stored[job.key] = settled_join(job.args[0], job.deps, results)
            return []
        plan = expansion_of(job.args[0]["lit"], job.elf, job.deps, results)
    except Exception as exc:
        _failed(job, failure_of(exc, skip_frames=1), dead, failures, raised)
        return []
    if plan.handled:
        taken = tuple(plan.handled)
        below = tuple(k + "/" for k in taken)
        handled = {f.job for f in failures if f.job in taken or f.job.startswith(below)}
        raised.update(dict.fromkeys(handled, HANDLED))
        failures[:] = [f for f in failures if f.job not in handled]
    for made in plan.jobs:
        h = HANDLES.get(made.elf)
        if made.elf not in handles and h:
            handles[made.elf] = h[-1]
    if plan.result is not None:
        stored[job.key] = plan.result
        return list(plan.jobs)
    join = JobSpec(
        key=job.key, node=job.node, elf=job.elf, task=plan.join_task, revision=job.revision,
        args=(plan.join_ir,), kwargs={}, deps=plan.join_deps, seq=job.seq,
    )  # fmt: skip
    return [*plan.jobs, join]
