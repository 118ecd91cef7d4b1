"""``Run``: a handle on one submission of a pipeline."""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from elfc.errors import ElfcError, JobFailure, MyceliumError, RunCancelled, RunFailed
from elfc.model.ir import ref_key, refs
from elfc.model.ops import Op
from elfc.model.records import LogRecord
from elfc.model.status import FINAL_RUN_STATUSES
from elfc.mycelium.store import Store
from elfc.runtime.retry import Retried, retry_run
from elfc.runtime.values import Inputs, convert, decode_as, evaluate

R = TypeVar("R")


class Run(Generic[R]):
    """A submitted run. ``run.wait()`` returns the pipeline's value or raises ``RunFailed``.

    Usage: ``run = census.submit(rounds=3); print(run.status()); value = run.wait(timeout=60)``.
    """

    def __init__(self, store: Store, run_id: str, result_type: Any = Any) -> None:
        self.id = run_id
        self._store = store
        self._result_type = result_type

    def status(self) -> str:
        """One of ``running``, ``succeeded``, ``failed``, ``cancelled``."""
        status = self._store.run_status(self.id)
        if status is None:
            raise ElfcError(f"run {self.id} is not in {self._store.url}")
        return status

    def wait(self, timeout: float | None = None) -> R:
        """Block until the run settles; return its value, or raise ``RunFailed``/``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.status()
        while status not in FINAL_RUN_STATUSES:
            remaining = 1.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"run {self.id} still {status} after {timeout} s")
            # None: the run is gone; status() says so.
            status = self._store.wait_for_run(self.id, min(remaining, 1.0)) or self.status()
        if status == "cancelled":
            raise RunCancelled(f"run {self.id} was cancelled")
        if status == "failed":
            raise RunFailed(self.failures(), self.id)
        value: R = run_output(self._store, self.id, self._result_type)
        return value

    def failures(self) -> list[JobFailure]:
        return run_failures(self._store, self.id)

    def cancel(self) -> None:
        """Cancel: pending and ready jobs are cancelled, running ones stopped."""
        self._store.cancel_run(self.id)

    def retry(self, *, from_keys: tuple[str, ...] = (), everything: bool = False) -> Retried:
        """Run this settled run's failed part again with the task code imported in this
        process: its failed, skipped and cancelled jobs, succeeded ones whose task changed,
        the jobs of ``from_keys`` (or all, ``everything``) and all downstream of them. The run
        keeps its id and history; ``wait()`` for it again. Raises ``ElfcError`` when it is
        still running or nothing would run again.

        Usage: ``run.retry(); value = run.wait(timeout=60)``.
        """
        return retry_run(self._store, self.id, from_keys, everything)

    def logs(self, key: str | None = None) -> list[LogRecord]:
        """What the run's jobs wrote (stdout, stderr, logging), oldest first; only the job
        ``key`` (such as ``"n1#0"``) when given."""
        return self._store.list_logs(self.id, key)

    def __repr__(self) -> str:
        return f"<Run {self.id}>"


def run_output(store: Store, run_id: str, tp: Any = Any) -> Any:
    """The value of a succeeded run, validated as ``tp``; ``KeyError`` if there is no such run."""
    info = store.run_info(run_id)
    if info is None:
        raise KeyError(run_id)
    if info.status == "succeeded" and info.error is not None:
        raise MyceliumError(f"run {info.id}: {info.error}")
    expr = info.output
    if not isinstance(expr, dict):
        return convert(expr, tp) if tp is not Any else expr
    return output_value(expr, Inputs(store.results(info.id, refs(expr))), tp, info.pipeline)


def output_value(expr: Any, results: Inputs, tp: Any, pipeline: str) -> Any:
    """A pipeline's value from its output expression, validated as its return annotation."""
    where = f"the result of pipeline {pipeline}"
    if type(expr) is dict and len(expr) == 1 and Op.REF in expr and tp is not Any:
        return decode_as(results.raw(ref_key(expr[Op.REF])), tp, where=where)
    value = evaluate(expr, results) if isinstance(expr, dict) else expr
    return value if tp is Any else convert(value, tp, where=where)


def run_failures(store: Store, run_id: str) -> list[JobFailure]:
    """Each failed job of a run, with the failure it stored."""
    out = []
    for job in store.list_jobs(run_id, status="failed"):
        full = store.get_job(job.id)
        f = full.failure if full else None
        out.append(
            JobFailure(
                job=job.id,
                elf=job.elf,
                task=job.task,
                error_type=f.error_type if f else "unknown",
                message=f.message if f else "",
                traceback=f.traceback if f else "",
            )
        )
    return out
