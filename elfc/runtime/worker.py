"""A worker: serves one elf instance by claiming its jobs, running them, recording outcomes.

The loop is claim -> run -> record, with a wait on the mycelium when idle. Signal handlers only
set flags. ``run_one`` is the one place that classifies an outcome (result, failure, retry,
timeout, stop). A background thread renews the leases of the jobs in hand and learns which of
them must stop (their run was cancelled); a job is stopped by raising inside it.

Each job's stdout, stderr and ``logging`` records are captured (``capture.py``) and stored
with the job (``Store.put_logs``) before its outcome, so a settled run's output is all there.
While a job runs, the heartbeat thread stores the whole lines it wrote so far every
:data:`LIVE_OUTPUT` seconds (a job shorter than that writes one record, at its end), so that
``elfc logs -f`` shows them as they come.

Caching by input: a job of a ``@task(cache=True)`` task, or of a run submitted with
``reuse``, has a cache key (``common.cache_key``: the elf class, revision and configuration,
the task revision, the argument values as canonical JSON), computed once its arguments are
resolved. The worker looks it up (``Store.cached_result``): when a succeeded job has it, the
job completes with a copy of that result without calling the task, marked as cached; else
the task runs and the key is recorded with its result. Other jobs have no key: recording one
costs an index entry per job (about 8 µs in SQLite, a tenth of a trivial job).

Logging (``elfc.runtime.worker``): start and stop at INFO; each claim, success and release at
DEBUG (the loop runs tens of thousands of times a second, so whether DEBUG is on is read once
per :meth:`Worker.serve`); failures and retries at INFO; refusals and lost leases at WARNING.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from elfc.compiler.elves import ElfInfo, TaskInfo, elf_info
from elfc.decorators import Handle
from elfc.errors import ElfStartFailed, JobStopped, MyceliumError, UsageError
from elfc.model.ir import CATCH, JOIN, SYSTEM_TASKS
from elfc.model.raised import describe
from elfc.model.records import Claimed, ElfRecord, FailureRecord, LogRecord, WorkerInfo
from elfc.mycelium.common import cache_key
from elfc.mycelium.store import Store
from elfc.runtime.capture import OutputCapture
from elfc.runtime.context import JobContext, running
from elfc.runtime.execute import Failure, encode_result, failure_of, invoke, resolve_arguments
from elfc.runtime.expand import (
    RegionMismatch,
    expansion_of,
    is_try_spec,
    join_value,
    settled_join,
)
from elfc.runtime.revisions import elf_revisions
from elfc.runtime.run import check_value
from elfc.runtime.values import Inputs, canonical

log = logging.getLogger(__name__)

DEFAULT_LEASE = 30.0
"""Seconds a claimed job stays leased without a heartbeat; renewed every third of it (at
most every 5 s). ``$ELFC_LEASE`` overrides it: see :func:`lease_from_env`."""
LEASE_ENV = "ELFC_LEASE"
MIN_LEASE, MAX_LEASE = 0.5, 86400.0
"""The leases a worker accepts, in seconds: a shorter one would lapse between heartbeats
(two workers then take a job from each other in turn); a longer one (or ``inf``) would leave
the jobs of a dead worker unclaimable for that long."""


def check_lease(value: float, where: str = "the lease") -> float:
    """``value`` if it is a lease a worker can keep (a number of seconds in
    [:data:`MIN_LEASE`, :data:`MAX_LEASE`]), else :class:`UsageError` saying so."""
    if not MIN_LEASE <= value <= MAX_LEASE:  # False for nan too
        raise UsageError(
            f"{where} must be between {MIN_LEASE:g} and {MAX_LEASE:g} seconds, not {value!r}"
        )
    return value


def lease_from_env() -> float:
    """The lease of ``$ELFC_LEASE`` if set (checked by :func:`check_lease`), else
    :data:`DEFAULT_LEASE`. ``elfc run`` calls this before it submits anything, so a bad value
    is reported once, not by every worker it starts."""
    text = os.environ.get(LEASE_ENV, "").strip()
    if not text:
        return DEFAULT_LEASE
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"${LEASE_ENV} must be a number of seconds, not {text!r}") from None
    if not MIN_LEASE <= value <= MAX_LEASE:
        raise UsageError(
            f"${LEASE_ENV} must be between {MIN_LEASE:g} and {MAX_LEASE:g} seconds, not {text!r}"
        )
    return value


LIVE_OUTPUT = 0.5
"""Seconds between two stores of a running job's output (see the module)."""

Mismatch = Literal["fail", "run"]


@dataclass
class Outcome:
    job: Claimed
    result: bytes | None = None
    failure: Failure | None = None
    retry_at: float | None = None
    released: bool = False
    cache_key: str | None = None
    """The key of what the job computed, recorded with its result (``None``: the job may not
    reuse results, or its arguments have no canonical JSON)."""
    cached_from: str | None = None
    """The job whose result it reused without running."""
    settled: bool = False
    """The outcome is in the store already (an expansion applied in its own transaction)."""


class Worker:
    """Serves the elf instance behind ``handle`` from ``store``.

    Usage: ``Worker(store, handle).serve()`` runs until SIGTERM/SIGINT (or ``stop()``).
    """

    def __init__(
        self,
        store: Store,
        handle: Handle,
        *,
        lease: float | None = None,
        on_revision_mismatch: Mismatch = "fail",
        max_batch: int = 32,
        echo_output: bool = True,
        capture_output: bool = True,
    ) -> None:
        self.store = store
        self.handle = handle
        self.elf = handle.name
        self.lease = lease_from_env() if lease is None else check_lease(lease)
        self.mismatch = on_revision_mismatch
        self.max_batch = max_batch
        self.id = f"{socket.gethostname()}:{os.getpid()}:{self.elf}:{uuid.uuid4().hex[:6]}"
        self.info: ElfInfo = elf_info(handle.cls)
        self.instance: Any = None
        self.stopping = threading.Event()
        self.finished = threading.Event()
        """Set when ``serve`` has handed back every job: heartbeats go on until then."""
        self.current: Claimed | None = None
        self.held: set[str] = set()
        """Jobs claimed and not yet settled (queued, running, or done and unreported): the
        heartbeat renews all their leases, not only the running one's."""
        self.revoked: set[str] = set()
        """Held jobs the heartbeat said to drop (run cancelled, or lease lost). A job leaves
        it when it is claimed again (its lease is this worker's anew) and when it is settled:
        a remembered loss must never make the worker give back a job it holds again."""
        self.stop_reason: str | None = None
        self.jobs_done = 0
        # Seconds per job, smoothed. It starts as if jobs were slow, so the first claim takes
        # one job: a batch claimed before any duration is known could queue jobs behind a
        # long one while a replica sits idle.
        self._avg = 0.002
        self._started = time.time()
        self._main = threading.get_ident()
        self._debug = False
        self._refused: set[tuple[str, str]] = set()
        """(task, revision) pairs already warned about: a mismatch warns once, not per job."""
        self.capture = OutputCapture(echo=echo_output, enabled=capture_output)
        """Each job's output (unless not ``capture_output``); with ``echo_output`` also
        written to this process's streams."""
        self._logs: list[LogRecord] = []
        """Output of settled jobs not stored yet: stored before their outcomes."""
        self._output_lock = threading.Lock()
        """Held while the running job's output is taken and stored, and while a job's output
        is ended: a job's last part is never stored before a part taken earlier."""
        self._unstored = ""
        """Output taken from the running job that could not be stored: kept for its end."""
        self._keys: dict[str, str] = {}
        """Cache keys of the jobs in ``done`` (job id -> key), recorded with their results."""
        self._reused: dict[str, str] = {}
        """Jobs in ``done`` that reused a result: job id -> the job it came from."""
        self._elf_identity = (
            f"{self.info.module}:{self.info.qualname}",
            self.info.revision,
            handle.config,
        )
        self._succeeded_in: set[str] = set()
        """Runs this worker ran a job of successfully since it last looked whether they had
        succeeded (see :meth:`_check_values`)."""

    # -- set-up -----------------------------------------------------------------------
    def register(self) -> None:
        """Store the elf's and its tasks' source revisions, and the elf instance itself."""
        info = self.info
        self.store.put_revisions(elf_revisions(info))
        self.store.put_elf(
            ElfRecord(
                name=self.elf, cls=info.qualname, module=info.module, config=self.handle.config,
                revision=info.revision, doc=info.doc,
            )
        )  # fmt: skip

    def worker_info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id, elf=self.elf, host=socket.gethostname(), pid=os.getpid(),
            started=self._started,
        )  # fmt: skip

    # -- the loop -----------------------------------------------------------------------
    def serve(
        self,
        *,
        idle_exit: float | None = None,
        install_signals: bool = True,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Run until stopped; returns how many jobs this worker settled.

        ``on_ready`` is called once the stop signals are handled and the elf is built (a
        supervisor told "serving" may signal the worker from then on).
        """
        self._started = time.time()
        self.finished.clear()
        if install_signals and threading.current_thread() is threading.main_thread():
            self._install_signals()
        self._debug = log.isEnabledFor(logging.DEBUG)
        self.register()
        try:
            self.instance = self.handle.build()
        except Exception as exc:
            raise self._could_not_start(exc) from exc
        if on_ready is not None:
            on_ready()
        log.info("worker %s serving elf %r (lease %s s)", self.id, self.elf, self.lease)
        beat = threading.Thread(target=self._heartbeat_loop, name="elfc-heartbeat", daemon=True)
        beat.start()
        self.store.heartbeat(self.worker_info())
        idle_since = time.monotonic()
        done: list[tuple[str, bytes]] = []
        queue: deque[Claimed] = deque()
        self.capture.install()
        try:
            while not self.stopping.is_set():
                if not queue:
                    self._store_logs(now=not done)  # an idle claim may write nothing
                    accepted, claimed = self.store.exchange(
                        self.elf, self.id, done, self.lease, self._batch_size(),
                        *self._take_keys(),
                    )  # fmt: skip
                    self._check_accepted(done, accepted)
                    if claimed and self._debug:
                        log.debug("claimed %s", " ".join(job.id for job in claimed))
                    self.held.difference_update(job_id for job_id, _ in done)
                    self.revoked.difference_update(job_id for job_id, _ in done)
                    done = []
                    self.held.update(job.id for job in claimed)
                    self.revoked.difference_update(job.id for job in claimed)
                    queue.extend(claimed)
                    if not queue:
                        self._check_values()
                        if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                            break
                        self.store.wait_for_work(self.elf, 0.5)
                        continue
                    idle_since = time.monotonic()
                job = queue.popleft()
                # A queued job of a cancelled run is given back unstarted.
                outcome = (
                    Outcome(job, released=True) if job.id in self.revoked else self.run_one(job)
                )
                if outcome.result is not None:
                    done.append((job.id, outcome.result))
                    if outcome.cache_key is not None:
                        self._keys[job.id] = outcome.cache_key
                    if outcome.cached_from is not None:
                        self._reused[job.id] = outcome.cached_from
                    self._succeeded_in.add(job.run)
                    if self._debug:
                        log.debug("job %s (%s.%s) succeeded", job.id, self.elf, job.task)
                else:
                    if done:
                        self._complete(done)
                        done = []
                    self._record(outcome)
                    self.held.discard(job.id)
                    self.revoked.discard(job.id)
                self.jobs_done += 1
                # Results go back with the next claim when the batch in hand is finished
                # (one transaction), or at once when many are waiting.
                if queue and len(done) >= self.max_batch:
                    self._complete(done)
                    done = []
        finally:
            self.capture.uninstall()
            if done:
                self._complete(done)
            self._store_logs(now=True)
            if queue:
                self.store.release_many([j.id for j in queue], self.id)
                log.debug("gave back %d queued job(s) unstarted", len(queue))
            self._check_values()
            self.stopping.set()
            self.held.clear()
            self.revoked.clear()
            self.finished.set()
            log.info("worker %s stopped after %d jobs", self.id, self.jobs_done)
        return self.jobs_done

    def _check_values(self) -> None:
        """For each run this worker completed jobs of that has succeeded now, evaluate its
        value as its pipeline's return annotation says, and fail the run if the annotation
        refuses it (:func:`check_value`: only with the pipeline imported here, at the run's
        revision). Called when the worker has nothing to do, and when it stops, so a run
        submitted with ``elfc submit`` is recorded failed without anyone reading its value.
        Never fatal: a reader evaluates the value too."""
        runs, self._succeeded_in = self._succeeded_in, set()
        for run_id in sorted(runs):
            try:
                if check_value(self.store, run_id):
                    log.info("run %s failed: its value was refused", run_id)
            except Exception as exc:
                log.warning("could not check the value of run %s: %s", run_id, exc)

    def _could_not_start(self, exc: Exception) -> ElfStartFailed:
        """The elf's ``__init__`` raised: fail the jobs this worker would have run next (one
        claim's worth), so that the traceback is stored where ``elfc failures``, ``elfc run``
        and ``Run.wait()`` show it; the error to raise says so in one line."""
        cause = failure_of(exc, skip_frames=2)  # from the elf's __init__ on
        message = f"elf {self.elf!r} ({self.info.qualname}) could not start: {cause.message}"
        failed = 0
        for job in self.store.claim(self.elf, self.id, self.lease, self.max_batch):
            record = FailureRecord(cause.error_type, message, cause.traceback, job.revision)
            failed += self.store.fail(job.id, self.id, record)
        log.info("elf %r could not start; failed %d job(s) with its error", self.elf, failed)
        stored = f"; its traceback is stored with the {failed} job(s) it failed" if failed else ""
        return ElfStartFailed(f"{message} ({cause.error_type}){stored}: see `elfc failures`")

    def _complete(self, done: list[tuple[str, bytes]]) -> None:
        self._store_logs()
        self._check_accepted(done, self.store.complete_many(self.id, done, *self._take_keys()))
        self.held.difference_update(job_id for job_id, _ in done)
        self.revoked.difference_update(job_id for job_id, _ in done)

    def _take_keys(self) -> tuple[dict[str, str] | None, dict[str, str] | None]:
        """The cache keys and reuses of the results about to be handed back (``None`` for
        none), forgotten here: they go with those results only."""
        keys, reused = self._keys or None, self._reused or None
        if keys is not None:
            self._keys = {}
        if reused is not None:
            self._reused = {}
        return keys, reused

    def _check_accepted(self, done: list[tuple[str, bytes]], accepted: list[bool]) -> None:
        # A refused result means the lease had passed to another worker, which runs the job
        # again (at-least-once): worth a warning, since the task ran twice.
        if all(accepted):
            return
        for (job_id, _), ok in zip(done, accepted, strict=True):
            if not ok:
                log.warning("job %s: result not stored, this worker had lost its lease", job_id)

    def _batch_size(self) -> int:
        # Trivial tasks are claimed in batches (one transaction for many jobs); slow ones one
        # at a time, so that replicas share them and results flow back promptly.
        return max(1, min(self.max_batch, int(0.002 / max(self._avg, 1e-6))))

    def stop(self) -> None:
        self.stopping.set()

    # -- one job ------------------------------------------------------------------------
    def run_one(self, job: Claimed) -> Outcome:
        if job.task in SYSTEM_TASKS:
            return self._region_job(job)
        task = self.info.tasks.get(job.task)
        if task is None:
            return Outcome(job, failure=Failure(
                "UnknownTask",
                f"elf {self.elf!r} ({self.info.qualname}) has no task {job.task!r} here",
                "",
            ))  # fmt: skip
        if job.revision != task.revision and self._on_mismatch(job, task) == "fail":
            return Outcome(job, failure=Failure(
                "RevisionMismatch",
                f"{self.elf}.{job.task}: the job was submitted for task revision {job.revision}, "
                f"this worker runs revision {task.revision}; restart the worker with the "
                f"submitted code, or start it with --on-revision-mismatch run",
                "",
            ))  # fmt: skip
        started = time.perf_counter()
        self.current, self.stop_reason = job, None
        self.capture.begin()
        try:
            result, key, source = self._call(job, task)
            return Outcome(job, result=result, cache_key=key, cached_from=source)
        except JobStopped as stopped:
            if stopped.reason == "cancelled" or self.stopping.is_set():
                return Outcome(job, released=True)
            return self._failed(job, task, TimeoutError(stopped.reason), skip=0)
        except (Exception, SystemExit) as exc:  # a task's sys.exit() fails its job, not the worker
            return self._failed(job, task, exc)
        finally:
            self._keep_output(job)
            self.current = None
            elapsed = time.perf_counter() - started
            self._avg = 0.8 * self._avg + 0.2 * elapsed

    def _region_job(self, job: Claimed) -> Outcome:
        """An expansion or a join of a branch or loop on task results (``expand.py``)."""
        started = time.perf_counter()
        self.current, self.stop_reason = job, None
        self.capture.begin()  # a region's static code may print: it is the user's output
        try:
            raw = job.results
            if raw is None:
                raw = self.store.results(job.run, job.deps) if job.deps else {}
            results = Inputs(raw)
            if job.task == JOIN:
                return Outcome(job, result=join_value(job.args[0], results))
            if job.task == CATCH and not is_try_spec(job.args[0]):
                return Outcome(job, result=settled_join(job.args[0], job.deps, results))
            spec = job.args[0]["lit"] if isinstance(job.args[0], dict) else None
            if not isinstance(spec, dict):
                raise RegionMismatch("the expansion job's payload is not a region")
            with running(JobContext(job.id, job.run, self.elf, job.task, job.attempts, self.id)):
                plan = expansion_of(spec, self.elf, job.deps, results)
        except JobStopped:
            return Outcome(job, released=True)
        except (Exception, SystemExit) as exc:
            return Outcome(job, failure=failure_of(exc, skip_frames=1))
        finally:
            self._keep_output(job)
            self.current = None
            self._avg = 0.8 * self._avg + 0.2 * (time.perf_counter() - started)
        if plan.result is not None and not (plan.jobs or plan.not_taken or plan.handled):
            # Nothing to add (a call on task results, a branch whose arm makes no job): a
            # completion like a task's, batched with the next claim.
            return Outcome(job, result=plan.result)
        self._store_logs()
        try:
            applied = self.store.expand(job.id, self.id, plan)
        except MyceliumError as exc:  # e.g. jobs the run already has: the expansion fails
            return Outcome(job, failure=Failure("MyceliumError", str(exc), ""))
        if not applied:
            log.warning("job %s: expansion not stored (lease lost or run not running)", job.id)
        elif self._debug:
            log.debug("job %s expanded into %d job(s)", job.id, len(plan.jobs))
        return Outcome(job, settled=True)

    def _keep_output(self, job: Claimed) -> None:
        with self._output_lock:
            text, dropped = self.capture.end()
            text, self._unstored = self._unstored + text, ""
        if text or dropped:
            self._logs.append(
                LogRecord(job.id, job.run, job.key, self.elf, job.task, job.attempts, text, dropped)
            )

    def _store_logs(self, now: bool = False) -> None:
        """Hand the output kept so far to the store, which writes it with the outcome that
        follows (``stage_logs``), or at once with ``now``. A failure to store it is logged,
        never fatal: the job's outcome matters more than its output."""
        if not self._logs:
            return
        logs, self._logs = self._logs, []
        try:
            if now:
                self.store.put_logs(logs)
            else:
                self.store.stage_logs(logs)
        except Exception as exc:
            log.warning("could not store the output of %d job(s): %s", len(logs), exc)

    def _on_mismatch(self, job: Claimed, task: TaskInfo) -> Mismatch:
        """What to do with a job submitted for other task source; logged as a warning once
        per task and submitted revision (a whole run of such jobs would flood the log)."""
        first = (job.task, job.revision) not in self._refused
        self._refused.add((job.task, job.revision))
        level = logging.WARNING if first else logging.DEBUG
        action = "refusing" if self.mismatch == "fail" else "running anyway"
        log.log(
            level,
            "%s job %s: submitted for %s.%s revision %s, this worker has revision %s",
            action,
            job.id,
            self.elf,
            job.task,
            job.revision,
            task.revision,
        )
        return self.mismatch

    def _call(self, job: Claimed, task: TaskInfo) -> tuple[bytes, str | None, str | None]:
        """Run the job: its result, cache key, and the job whose result it reused (if so)."""
        raw = job.results
        if raw is None:
            raw = self.store.results(job.run, job.deps) if job.deps else {}
        results = Inputs(raw)
        args, kwargs = resolve_arguments(task, self.elf, job.args, job.kwargs, results)
        key = self._cache_key(task, args, kwargs) if job.reuse or task.options.cache else None
        if key is not None:
            hit = self.store.cached_result(key)
            if hit is not None:
                if self._debug:
                    log.debug("job %s reuses the result of job %s", job.id, hit[0])
                return hit[1], key, hit[0]
        method = getattr(self.instance, job.task)
        context = JobContext(job.id, job.run, self.elf, job.task, job.attempts, self.id)
        with running(context):
            try:
                self._arm(task.options.timeout)
                value = invoke(method, args, kwargs)
            finally:
                self._disarm()
        return encode_result(task, self.elf, value), key, None

    def _cache_key(self, task: TaskInfo, args: list[Any], kwargs: dict[str, Any]) -> str | None:
        values = canonical((args, kwargs))
        if values is None:
            return None
        elf_class, elf_revision, config = self._elf_identity
        return cache_key(elf_class, elf_revision, config, task.name, task.revision, values)

    def _failed(self, job: Claimed, task: TaskInfo, exc: BaseException, skip: int = 2) -> Outcome:
        failure = failure_of(exc, skip_frames=skip)
        if isinstance(exc, TimeoutError) and skip == 0:
            message = (
                f"{self.elf}.{job.task} ran longer than its timeout of {task.options.timeout} s"
            )
            failure = Failure(
                "TimeoutError",
                message,
                failure.traceback,
                describe(TimeoutError(message), failure.traceback),
            )
        retry_at = None
        if job.attempts <= task.options.retries:
            retry_at = time.time() + task.options.retry_delay * (2 ** (job.attempts - 1))
        return Outcome(job, failure=failure, retry_at=retry_at)

    def _record(self, outcome: Outcome) -> None:
        self._store_logs()
        job = outcome.job
        if outcome.released:
            released = self.store.release(job.id, self.id)
            log.debug("job %s released%s", job.id, "" if released else " (no longer held)")
        elif outcome.failure is not None:
            f = outcome.failure
            record = FailureRecord(f.error_type, f.message, f.traceback, job.revision, f.raised)
            if self.store.fail(job.id, self.id, record, outcome.retry_at):
                self._log_failure(job, f, outcome.retry_at)
            else:
                log.warning("job %s: failure not stored, this worker had lost its lease", job.id)

    def _log_failure(self, job: Claimed, f: Failure, retry_at: float | None) -> None:
        task = f"{self.elf}.{job.task}"
        if retry_at is None:
            log.info("job %s (%s) failed: %s: %s", job.id, task, f.error_type, f.message)
            return
        delay, attempt = retry_at - time.time(), job.attempts + 1
        message = "job %s (%s) raised %s: %s; attempt %d in %.2f s"
        log.info(message, job.id, task, f.error_type, f.message, attempt, delay)

    # -- stopping a running task ------------------------------------------------------------
    # A worker process stops its task with signals; a worker thread cannot (signals reach only
    # the main thread), so elfc.runtime.serve.ThreadWorker overrides these three with its
    # watchdog. ``_disarm`` raises JobStopped if the task was told to stop as it returned.
    def _arm(self, timeout: float | None) -> None:
        if timeout is not None and self._timers:
            signal.setitimer(signal.ITIMER_REAL, timeout)

    def _disarm(self) -> None:
        if self._timers:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _interrupt(self, reason: str) -> None:
        """Stop the running task (from the heartbeat thread): its run was cancelled."""
        if self._timers:
            signal.pthread_kill(self._main, signal.SIGUSR2)

    # -- signals and heartbeats -----------------------------------------------------------
    _timers = False

    def _install_signals(self) -> None:
        self._timers = True

        def on_stop(signum: int, frame: Any) -> None:
            if self.stopping.is_set() and self.current is not None:
                raise JobStopped("stopped")  # a second signal: give the job back now
            self.stopping.set()

        def on_alarm(signum: int, frame: Any) -> None:
            if self.current is not None:
                raise JobStopped("timeout")

        def on_cancel(signum: int, frame: Any) -> None:
            if self.current is not None and self.stop_reason == "cancelled":
                raise JobStopped("cancelled")

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.signal(signal.SIGUSR2, on_cancel)

    def _store_live_output(self) -> None:
        """Store the whole lines the running job wrote since the last call (heartbeat thread).
        A failure to store them is logged; they are stored with the job's end instead."""
        job = self.current
        if job is None or self.capture.live is None:
            return
        with self._output_lock:
            if self.current is not job:
                return  # it ended meanwhile: its output goes with its outcome
            text = self.capture.take()
            if not text:
                return
            record = LogRecord(job.id, job.run, job.key, self.elf, job.task, job.attempts, text)
            try:
                self.store.put_logs([record])
            except Exception as exc:
                self._unstored += text
                log.warning("could not store the output of running job %s: %s", job.id, exc)

    def _heartbeat_loop(self) -> None:
        # Beats until serve() returns, not until stopping is set: a stopping worker finishing
        # its job must keep its lease, or another worker would run the job again. Between
        # beats it stores what the running job wrote (every LIVE_OUTPUT seconds).
        period = max(0.05, min(self.lease / 3, 5.0))
        tick = min(period, LIVE_OUTPUT)
        next_beat = time.monotonic() + period
        while not self.finished.wait(tick):
            self._store_live_output()
            if time.monotonic() < next_beat - tick / 2:
                continue
            next_beat = time.monotonic() + period
            job = self.current
            try:
                stop = self.store.heartbeat(self.worker_info(), self.held.copy())
            except Exception as exc:  # a missed beat is retried; the lease has slack for it
                log.warning("heartbeat failed, retrying in %.1f s: %s", period, exc)
                continue
            if stop - self.revoked:
                dropped = " ".join(sorted(stop - self.revoked))
                log.info("told to drop (run cancelled or lease lost): %s", dropped)
            self.revoked.update(stop)
            if job is not None and job.id in stop and self.current is job:
                self.stop_reason = "cancelled"
                self._interrupt("cancelled")
