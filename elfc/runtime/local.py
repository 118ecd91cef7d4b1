"""Run a pipeline in this process: ``census(rounds=3)``.

Jobs run in creation order (a topological order, and FIFO per elf), one elf instance built per
handle, every value through the same JSON encode and validation as a distributed run.
"""

from __future__ import annotations

import time
from typing import Any

from elfc.compiler.compile import Compiled
from elfc.compiler.elves import elf_info
from elfc.errors import JobFailure, RunFailed
from elfc.runtime.execute import call_with_timeout, encode_result, failure_of, resolve_arguments
from elfc.runtime.run import output_value, result_type
from elfc.runtime.values import Inputs


def run_local(compiled: Compiled, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a compiled pipeline's whole graph here: its value, or ``RunFailed``."""
    compiled = compiled.require()
    built, handles = compiled.build_with_handles(args, kwargs)
    instances: dict[str, Any] = {}
    stored: dict[str, bytes] = {}
    results = Inputs(stored)
    dead: set[str] = set()
    failures: list[JobFailure] = []
    for job in built.jobs:
        if any(d in dead for d in job.deps):
            dead.add(job.key)
            continue
        handle = handles[job.elf]
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
                break
            except Exception as exc:
                if attempt + 1 < attempts:
                    time.sleep(info.options.retry_delay * (2**attempt))
                    continue
                f = failure_of(exc)
                failures.append(
                    JobFailure(job.key, job.elf, job.task, f.error_type, f.message, f.traceback)
                )
                dead.add(job.key)
    if failures:
        raise RunFailed(failures)
    return output_value(built.output, results, result_type(compiled.fn), compiled.name)
