"""``Run``: a handle on one submission of a pipeline."""

from __future__ import annotations

import sys
import time
import typing
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from elfc.compiler.compile import compiled_for
from elfc.decorators import pipeline_function
from elfc.errors import (
    ElfcError,
    ExpressionError,
    JobFailure,
    MyceliumError,
    RunCancelled,
    RunFailed,
    ValueCrossingError,
)
from elfc.model.ir import ref_key, refs
from elfc.model.ops import Op
from elfc.model.records import LogRecord, RunInfo
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
        """Block until the run settles and return its value.

        Raises ``RunFailed`` (with each failed job) when it failed, ``RunCancelled`` when it
        was cancelled, and ``TimeoutError`` when it is still running after ``timeout``
        seconds (the run goes on).
        """
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
            raise run_failed(self._store, self.id)
        value: R = run_output(self._store, self.id, self._result_type)
        return value

    def failures(self) -> list[JobFailure]:
        """Each failed job of the run so far, with its stored failure (exception type,
        message, remote traceback), without waiting for the run to settle; ``[]`` when none
        has failed. A run failed by its return annotation has none: see ``RunFailed.reason``.
        """
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
    """The value of a succeeded run, validated as ``tp`` (the pipeline's return annotation);
    ``KeyError`` if there is no such run.

    A value ``tp`` refuses, or an output expression that raises, fails the run: the first
    reader to find it records it (:meth:`Store.fail_run`, once) and every reader gets
    :class:`RunFailed` with the ``reason``, as for a run recorded failed that way before.
    """
    info = store.run_info(run_id)
    if info is None:
        raise KeyError(run_id)
    if info.status == "failed" and info.failure is not None:
        raise RunFailed((), info.id, info.error)
    if info.status == "succeeded" and info.error is not None:
        raise MyceliumError(f"run {info.id}: {info.error}")
    try:
        return _value(store, info, tp)
    except (ValueCrossingError, ExpressionError) as exc:
        if info.status != "succeeded":
            raise
        store.fail_run(info.id, type(exc).__name__, str(exc))
        raise run_failed(store, info.id) from exc


def _value(store: Store, info: RunInfo, tp: Any) -> Any:
    """The run's value from its output expression, validated as ``tp``."""
    expr = info.output
    if not isinstance(expr, dict):
        where = f"the result of pipeline {info.pipeline}"
        return expr if tp is Any else convert(expr, tp, where=where)
    return output_value(expr, Inputs(store.results(info.id, refs(expr))), tp, info.pipeline)


def check_value(store: Store, run_id: str) -> bool:
    """Evaluate the value of a run that has just succeeded, as its pipeline's return
    annotation says, when this process has imported that pipeline (a worker imported its
    module), and fail the run if the annotation refuses it and the pipeline here is the
    revision the run was submitted with; ``True`` if this call failed the run. Anything else
    (the run is not succeeded, the pipeline is not imported here or is another revision of
    it) changes nothing: readers evaluate the value then.

    The revision is compared only for a refused value: it takes compiling the pipeline (from
    the compile cache when there is one), which an accepted value never needs.
    """
    if store.run_status(run_id) != "succeeded":
        return False
    info = store.run_info(run_id)
    if info is None or info.status != "succeeded" or info.error is not None:
        return False
    fn = imported_pipeline(info.pipeline)
    if fn is None:
        return False
    try:
        _value(store, info, result_type(fn))
    except (ValueCrossingError, ExpressionError) as exc:
        if revision_of_pipeline(fn) != info.revision:
            return False
        return store.fail_run(info.id, type(exc).__name__, str(exc))
    return False


def result_type(fn: Callable[..., Any]) -> Any:
    """A pipeline function's return annotation (``Any`` when absent or unresolvable)."""
    try:
        return typing.get_type_hints(fn).get("return", Any)
    except Exception:  # unresolvable annotations: the plain value
        return Any


def imported_pipeline(name: str, revision: str | None = None) -> Callable[..., Any] | None:
    """The function of pipeline ``module:qualname`` if its module is imported in this process
    (``sys.modules``, never an import), and, with ``revision``, if it compiles to that
    revision; else ``None``."""
    module, _, qualname = name.rpartition(":")
    obj: object = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    fn = pipeline_function(obj)
    if fn is None or (revision is not None and revision_of_pipeline(fn) != revision):
        return None
    return fn


def revision_of_pipeline(fn: Callable[..., Any]) -> str | None:
    """The revision the pipeline function ``fn`` compiles to (``None``: it does not)."""
    try:
        template = compiled_for(fn).template
    except ElfcError:
        return None
    return None if template is None else template.revision


def run_failed(store: Store, run_id: str) -> RunFailed:
    """The error of a failed run: its failed jobs, or its own failure (its value refused)."""
    info = store.run_info(run_id)
    if info is not None and info.failure is not None:
        return RunFailed((), info.id, info.error)
    return RunFailed(run_failures(store, run_id), run_id)


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
