"""The store contract: the operations every mycelium backend offers.

A backend (``elfc.mycelium.sqlite``, ``elfc.mycelium.arango``) is one class that subclasses
:class:`Store` and holds only its queries and driver code; the rules the two share (submission
checks, run summaries, id prefixes, failure digests, write retries) are in ``common.py``.
Everything a worker, a submitter or the command line needs from a database goes through the
methods below; their docstrings are the contract that ``tests/mycelium/contract.py`` checks
against every backend. The records they take and return are in :mod:`elfc.model.records`,
the statuses in :mod:`elfc.model.status`; ``open_mycelium(url)`` (``urls.py``) picks the
backend for a URL.

Job life cycle::

    pending ──(last dependency succeeded)──> ready ──claim──> running ──complete──> succeeded
                                               ^                 │
                                               └─retry/release/──┤──fail──> failed
                                                 lease expired   │            └─> every transitive
                                                                 │                dependent: skipped
    cancel_run: pending/ready ──> cancelled; running jobs are told by heartbeat and then released

A run is ``running`` until no job of it can progress; it then becomes ``succeeded``, or
``failed`` if any job failed. ``cancel_run`` makes it ``cancelled`` at once. A ``succeeded``
run whose value its pipeline's return annotation refuses is made ``failed`` by ``fail_run``
(by whoever evaluates the value first).

Times are wall-clock seconds (``time.time()``) because leases are compared across processes.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import ClassVar, Self

from elfc.errors import MyceliumError
from elfc.model.ir import BuiltRun
from elfc.model.records import (
    Claimed,
    ElfRecord,
    FailureInfo,
    FailureRecord,
    JobInfo,
    JobsBucket,
    JobSpan,
    LogRecord,
    RevisionRecord,
    RunInfo,
    WorkerInfo,
)
from elfc.model.status import FINAL_RUN_STATUSES, JOB_STATUS_SEVERITY
from elfc.mycelium.common import Expansion, run_failure_info

__all__ = ["Store"]


class Store(abc.ABC):
    """The database shared by submitters and workers. One instance per process.

    Usage: ``with open_mycelium("sqlite:///.elfc/mycelium.db") as store: store.submit(built)``.

    Job and run ids are opaque strings; wherever a method accepts an id for reading it also
    accepts a unique prefix (an ambiguous prefix raises :class:`MyceliumError`). Writes take
    full ids. Every method may raise :class:`MyceliumError` when the database cannot be used;
    "atomic" below means the whole operation commits or none of it does, and no other process
    sees a part of it.
    """

    schemes: ClassVar[tuple[str, ...]] = ()
    """URL schemes this backend serves."""
    supports_doorbell: ClassVar[bool] = False
    """``wait_for_work`` wakes within milliseconds of new work, not only on its poll."""
    supports_batches: ClassVar[bool] = False
    """``complete_many`` runs in one transaction (not one per job), ``exchange`` in one or two."""
    password_env: ClassVar[str | None] = None
    """The environment variable this backend reads a password from when its URL has none
    (``None``: the backend takes no password). ``elfc run`` hands a password to the workers it
    starts through it, never on their command lines."""

    url: str
    """The mycelium's URL with any password masked: safe to print."""

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Store:
        """Open the mycelium at ``url`` (one of ``cls.schemes``); create its schema if empty.

        Raises :class:`MyceliumError` for a malformed URL, an unreachable database, or one of
        another schema version (which is never changed).
        """

    def close(self) -> None:  # noqa: B027 - optional hook; a backend without resources needs none
        """Release connections and sockets. Idempotent; the instance may not be used after."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # -- revisions, elves, templates ---------------------------------------------------

    @abc.abstractmethod
    def put_revisions(self, records: Iterable[RevisionRecord]) -> None:
        """Store revisions, all in one transaction. Idempotent: a hash already stored is left
        as it is (revisions are immutable), so two submitters may store the same one at once.
        """

    @abc.abstractmethod
    def get_revision(self, hash_or_prefix: str) -> RevisionRecord | None:
        """The revision with this hash or unique hash prefix; ``None`` when none matches."""

    @abc.abstractmethod
    def put_elf(self, record: ElfRecord) -> None:
        """Insert or replace the elf instance ``record.name``; its ``last_seen`` becomes now
        (the value in ``record`` is ignored)."""

    @abc.abstractmethod
    def list_elves(self) -> list[ElfRecord]:
        """Every elf instance, sorted by name (code point order); ``[]`` when none."""

    @abc.abstractmethod
    def put_template(self, revision: str, template_json: bytes) -> None:
        """Store a pipeline's graph template (JSON) under its revision. Idempotent: a template
        already stored under ``revision`` is kept."""

    @abc.abstractmethod
    def get_template(self, revision: str) -> bytes | None:
        """The template JSON stored under exactly ``revision``; ``None`` when missing."""

    # -- submitting and running ------------------------------------------------------

    @abc.abstractmethod
    def submit(self, built: BuiltRun, template_json: bytes | None = None) -> str:
        """Write a run and return its new id.

        Atomic: the run (status ``running``), every job of ``built.jobs``, an edge from each
        dependency to its dependent, and a waiting counter per job (its number of distinct
        dependencies). Jobs without dependencies are ``ready``, the others ``pending``. Each
        job keeps ``built.reuse``, which :meth:`claim` hands back as ``Claimed.reuse``.
        ``template_json``, when given, is stored under ``built.revision`` as by
        :meth:`put_template`, in the same transaction. A run without jobs is ``succeeded`` at
        once.

        Raises :class:`MyceliumError`, writing nothing, if two jobs share a key or a job
        depends on a key that is not in the run.
        """

    @abc.abstractmethod
    def claim(self, elf: str, worker_id: str, lease: float, limit: int = 1) -> list[Claimed]:
        """Take up to ``limit`` ready jobs of elf instance ``elf`` whose ``not_before`` has
        passed, oldest run first and by ``seq`` within a run.

        Atomic: each taken job becomes ``running`` with ``attempts + 1``, lease owner
        ``worker_id`` and ``lease_until = now + lease`` (``lease`` in seconds), and no other
        claim can take it. May first return expired leases to ``ready`` (see
        :meth:`expire_leases`). Returns the jobs in FIFO order; an empty list when nothing is
        ready or ``limit <= 0``. An idle claim should not take a write lock.
        """

    @abc.abstractmethod
    def results(self, run_id: str, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored JSON results of the jobs ``keys`` of the run with exactly ``run_id``;
        keys without a result (or not in the run) are absent from the returned dict.
        """

    def complete(self, job_id: str, worker_id: str, result: bytes) -> bool:
        """Store a job's JSON result and mark it ``succeeded``; ``True`` if it was stored.

        Atomic, and only if the job is still ``running`` under a lease of ``worker_id`` (else
        nothing is stored and ``False`` is returned: a result is stored once per job). In the
        same transaction each dependent's waiting counter is decremented (``ready`` at 0); the
        run settles when no job of it is left active.
        """
        return self.complete_many(worker_id, [(job_id, result)])[0]

    @abc.abstractmethod
    def complete_many(
        self,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        keys: Mapping[str, str] | None = None,
        reused: Mapping[str, str] | None = None,
    ) -> list[bool]:
        """:meth:`complete` for each ``(job_id, result)`` pair, in one transaction where the
        backend can (``supports_batches``). Returns one bool per pair, in order; a job id given
        twice is accepted once, with its first result. ``[]`` for no pairs.

        ``keys`` (job id -> cache key, ``common.cache_key``) is recorded with each accepted
        job that has one, so that :meth:`cached_result` finds it. ``reused`` (job id -> the
        id of the job whose result it took, from :meth:`cached_result`) marks a job as cached:
        its ``cached_from`` is set and its history event carries ``common.cached_note``
        instead of the worker's id. The result given is stored as the job's own copy, so
        pruning the job it came from never takes it away.
        """

    @abc.abstractmethod
    def cached_result(self, key: str) -> tuple[str, bytes] | None:
        """The id and stored result of a ``succeeded`` job, of any run, recorded with cache
        key ``key`` (the most recently finished one); ``None`` when there is none (never
        recorded, retried since, or pruned)."""

    def exchange(
        self,
        elf: str,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        lease: float,
        limit: int,
        keys: Mapping[str, str] | None = None,
        reused: Mapping[str, str] | None = None,
    ) -> tuple[list[bool], list[Claimed]]:
        """:meth:`complete_many` then :meth:`claim`: a worker's hand-back-and-take-more step.

        Returns what each would return; a dependent readied by ``done`` can be taken by the
        same call. SQLite does both in one transaction; ArangoDB commits the completions
        first, so that a claim conflicting with another worker's never undoes them.
        """
        accepted = self.complete_many(worker_id, done, keys, reused) if done else []
        return accepted, self.claim(elf, worker_id, lease, limit) if limit > 0 else []

    def expand(self, job_id: str, worker_id: str, expansion: Expansion) -> bool:
        """Apply a region's expansion made by the worker holding expansion job ``job_id``;
        ``True`` if it was applied.

        Atomic, and only if the job is ``running`` under a lease of ``worker_id`` in a run
        that is ``running`` (else ``False``, nothing written: an expansion is applied once,
        whoever made it). In one transaction: the new jobs are added to the run after its
        existing ones (``ready``, ``pending`` with a waiting counter over their unfinished
        dependencies, or ``skipped`` when one of those can never succeed; a ``@catch`` job
        waits for its dependencies to settle instead), the placeholders are added
        ``not_taken``, the ``failed`` jobs of ``expansion.handled`` become ``handled``, and
        the expansion job either succeeds with
        ``expansion.result`` or becomes its region's join (task ``@join``, its payload the
        join expression, waiting for the jobs that expression reads; ``skipped``, with its
        dependents, if one of them can never succeed).
        """
        raise NotImplementedError(f"{type(self).__name__} does not expand regions yet")

    @abc.abstractmethod
    def fail(
        self,
        job_id: str,
        worker_id: str,
        failure: FailureRecord,
        retry_at: float | None = None,
    ) -> bool:
        """Record that a running job raised; ``True`` if it was recorded.

        Atomic, and only if the job is ``running`` under a lease of ``worker_id`` (else
        ``False``, nothing stored). The failure is stored deduplicated by the hash of its type,
        message and traceback (``count``, ``first_seen``, ``last_seen``) and linked to the job.
        With ``retry_at`` (a wall-clock time) the job goes back to ``ready`` and cannot be
        claimed before then; ``cancelled`` instead if its run was cancelled. Without it the job
        is ``failed``, every transitive dependent ``skipped`` (upstream failed), and the run
        settles (``failed``) once no job of it is left active. ``failure.raised``, when given,
        is stored as the job's result (what a ``try``'s handler reads).

        A ``@catch`` job (:data:`~elfc.model.ir.CATCH`) is never skipped: each of its
        dependencies that fails or is skipped counts as settled for it, as one that
        succeeds does, and it becomes ``ready`` once all have settled. Skipping does not go
        past it.
        """

    def release(self, job_id: str, worker_id: str) -> bool:
        """Give back a running job without an outcome (a worker stopping, or a job of a
        cancelled run): ``ready`` again with ``attempts - 1``, or ``cancelled`` if its run was
        cancelled. Atomic. ``False`` if the job is not running under a lease of ``worker_id``.
        """
        return self.release_many([job_id], worker_id) == 1

    @abc.abstractmethod
    def release_many(self, job_ids: Iterable[str], worker_id: str) -> int:
        """:meth:`release` for several jobs in one transaction; returns how many were released
        (jobs not running under a lease of ``worker_id`` are left alone)."""

    @abc.abstractmethod
    def heartbeat(self, worker: WorkerInfo, running: Iterable[str] = ()) -> set[str]:
        """Record that ``worker`` is alive (its ``heartbeat`` becomes now) and extend the lease
        of each job in ``running`` that it holds by that job's lease length.

        Returns the ids among ``running`` that the worker must stop: their run was cancelled,
        or the worker no longer holds them (its lease expired and the job moved on). ``set()``
        when ``running`` is empty.
        """

    @abc.abstractmethod
    def expire_leases(self, now: float | None = None) -> int:
        """Return every ``running`` job whose lease ended before ``now`` (default: the current
        time) to ``ready``, or to ``cancelled`` in a cancelled run: a worker that died loses
        nothing. Its attempt still counts. Returns how many jobs were returned. ``claim`` does
        this on its own, so no separate reaper is needed.
        """

    @abc.abstractmethod
    def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run (exactly ``run_id``). Atomic: its pending and ready jobs become
        ``cancelled`` and the run ``cancelled``; its running jobs are reported by
        :meth:`heartbeat` to their workers. Returns ``False`` if the run was not running
        (unknown, or already settled), changing nothing.
        """

    @abc.abstractmethod
    def fail_run(self, run_id: str, error_type: str, message: str) -> bool:
        """Record that a run whose jobs all succeeded failed after all: its value was refused
        (by the pipeline's return annotation). ``True`` if this call recorded it.

        Atomic, and only if the run (exactly ``run_id``) is ``succeeded``: it becomes
        ``failed`` with ``finished`` kept, and :attr:`RunInfo.failure` holds ``error_type``,
        ``message`` and the time now. Otherwise ``False``, changing nothing: an unknown,
        running, cancelled or failed run (so two readers who both find the value refused
        store it once, and a cancelled run is never made failed). :meth:`retry_jobs`
        clears the failure when it reopens the run.
        """

    # -- reading -------------------------------------------------------------------

    @abc.abstractmethod
    def run_info(self, run_id: str) -> RunInfo | None:
        """The run with this id or unique prefix, with its job counts read in one snapshot;
        ``None`` when missing."""

    def run_status(self, run_id: str) -> str | None:
        """The status (one of :data:`RUN_STATUSES`) of the run with exactly ``run_id``;
        ``None`` when missing."""
        info = self.run_info(run_id)
        return None if info is None else info.status

    @abc.abstractmethod
    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        """The ``limit`` most recently submitted runs, newest first."""

    @abc.abstractmethod
    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobInfo]:
        """The jobs of a run (id or unique prefix) in ``seq`` order, optionally only those
        with ``status``. Results are not included (``result`` is ``None``); an unknown run
        gives an empty list.
        """

    # Reading for displays of large runs (the dashboard). Each has a correct default built
    # on the methods above; a backend overrides it with a query that reads only what it needs.

    def find_runs(
        self,
        status: str | None = None,
        pipeline: str | None = None,
        prefix: str = "",
        limit: int = 50,
    ) -> list[RunInfo]:
        """Up to ``limit`` runs, newest first, with ``status`` (exactly), whose pipeline
        contains ``pipeline`` (case-insensitive) and whose id starts with ``prefix``."""
        needle = (pipeline or "").lower()
        found = []
        for info in self.list_runs(2**31 - 1):
            if status is not None and info.status != status:
                continue
            if needle not in info.pipeline.lower() or not info.id.startswith(prefix):
                continue
            found.append(info)
            if len(found) >= limit:
                break
        return found

    def page_jobs(
        self, run_id: str, status: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[JobInfo]:
        """``list_jobs(run_id, status)[offset:offset + limit]``, without reading the rest."""
        return self.list_jobs(run_id, status)[max(offset, 0) : max(offset, 0) + max(limit, 0)]

    def job_spans(self, run_id: str) -> list[JobSpan]:
        """When and by which worker each job of the run (id or unique prefix) ran, in
        ``seq`` order; ``[]`` for an unknown run."""
        return [
            JobSpan(j.key, j.elf, j.task, j.status, j.lease_owner, j.started, j.finished)
            for j in self.list_jobs(run_id)
        ]

    def job_buckets(self, run_id: str, start: float, grain: float, now: float) -> list[JobsBucket]:
        """The run's started jobs grouped per elf, worker and slice of ``grain`` seconds from
        ``start`` (by when each started), sorted by elf, worker and slot; a running job ends
        at ``now``. ``[]`` for an unknown run."""
        groups: dict[tuple[str, str, int], list[JobSpan]] = {}
        for span in self.job_spans(run_id):
            if span.started is None or span.worker is None:
                continue
            slot = int((span.started - start) // grain) if grain > 0 else 0
            groups.setdefault((span.elf, span.worker, slot), []).append(span)
        rank: dict[str, int] = {status: i for i, status in enumerate(JOB_STATUS_SEVERITY)}
        out = []
        for (elf, worker, slot), spans in sorted(groups.items()):
            ends = [_span_end(s, now) for s in spans]
            out.append(
                JobsBucket(
                    elf,
                    worker,
                    slot,
                    min(s.started or 0.0 for s in spans),
                    max(ends),
                    len(spans),
                    min((s.status for s in spans), key=lambda s: rank.get(s, len(rank))),
                    spans[0].key,
                    sum(e - (s.started or 0.0) for s, e in zip(spans, ends, strict=True)),
                )
            )
        return out

    def failure_jobs(self, failure_hash: str, limit: int = 10) -> list[JobInfo]:
        """Up to ``limit`` jobs whose latest failure has exactly this hash: newest run first,
        then in ``seq`` order (without their results)."""
        found: list[JobInfo] = []
        for info in self.list_runs(2**31 - 1):
            for job in self.list_jobs(info.id):
                if len(found) >= limit:
                    return found
                if job.failure is not None and job.failure.hash == failure_hash:
                    found.append(job)
        return found

    def node_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """Jobs of the run (id or unique prefix) per job node path (``n3``, ``n2#0.1/n1``),
        then per status; ``{}`` for an unknown run."""
        counts: dict[str, dict[str, int]] = {}
        for job in self.list_jobs(run_id):
            per = counts.setdefault(job.node, {})
            per[job.status] = per.get(job.status, 0) + 1
        return counts

    @abc.abstractmethod
    def get_job(self, job_id: str) -> JobInfo | None:
        """The job with this id or unique prefix, with its result, latest failure and status
        history (first the ``submitted`` event); ``None`` when missing.
        """

    @abc.abstractmethod
    def list_failures(self, limit: int = 20) -> list[FailureInfo]:
        """The ``limit`` most recently seen distinct failures, newest first."""

    def list_run_failures(self, limit: int = 20) -> list[FailureInfo]:
        """The ``limit`` most recently recorded failures of runs themselves (:meth:`fail_run`),
        newest first, one per run (see :attr:`FailureInfo.run`)."""
        found = [
            run_failure_info(info.id, info.pipeline, info.revision, info.failure)
            for info in self.find_runs(status="failed", limit=2**31 - 1)
            if info.failure is not None
        ]
        found.sort(key=lambda f: f.last_seen, reverse=True)
        return found[: max(limit, 0)]

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerInfo]:
        """Every worker that ever sent a heartbeat, most recent heartbeat first."""

    # -- operating runs: task output, retries (added for `elfc logs` and `elfc retry`) ---

    @abc.abstractmethod
    def put_logs(self, logs: Sequence[LogRecord]) -> None:
        """Append what job attempts wrote, all in one transaction; each record's ``time``
        becomes now (the value given is ignored).

        Records are only ever added: the same ``(job, attempt)`` stored twice (a job run
        again by ``retry_jobs`` counts its attempts from 1 again) is listed twice. ``text`` is
        stored as given (the worker bounds it). ``[]`` writes nothing. Raises
        :class:`MyceliumError`, storing nothing, for a job id that is not stored.
        """

    def stage_logs(self, logs: Sequence[LogRecord]) -> None:
        """:meth:`put_logs`, possibly deferred to this instance's next write transaction (a
        worker stages a job's output just before recording its outcome, so that both commit
        together). A record of a job that is not stored is dropped, never an error: it must
        not fail the write it rides with. The default stores at once (record by record if
        one of them is refused)."""
        try:
            self.put_logs(logs)
        except MyceliumError:
            for one in logs:
                with contextlib.suppress(MyceliumError):
                    self.put_logs([one])

    @abc.abstractmethod
    def list_logs(
        self, run_id: str, key: str | None = None, since: float | None = None
    ) -> list[LogRecord]:
        """The output stored for the jobs of the run with exactly ``run_id`` (only the job
        with ``key`` when given; only records stored at or after ``since`` when given),
        oldest first, then by job ``seq``, attempt and the order they were stored in. ``[]``
        for an unknown run.
        """

    @abc.abstractmethod
    def retry_jobs(self, run_id: str, revisions: Mapping[str, str]) -> bool:
        """Run again the jobs ``revisions`` names (job id -> the task revision to run now) of
        the settled run with exactly ``run_id``; ``True`` if the run was reopened.

        Atomic: each named job's result, cache key and ``cached_from`` are deleted and it
        becomes ``ready`` when every
        dependency has ``succeeded`` and is not among the named ones, else ``pending`` with
        ``waiting`` the number of such dependencies not yet succeeded; its ``revision`` is
        replaced, ``attempts`` and ``not_before`` restart at 0, its lease and times are
        cleared, and one history event records the new status with ``common.rerun_note``
        (earlier history and failures are kept). The run becomes ``running`` with
        ``finished`` and its own failure (:meth:`fail_run`) cleared; its id and every other
        job stay as they are.

        The caller names a set closed under dependents (``common.retry_plan`` makes one).
        Returns ``False``, changing nothing, if the run is unknown or still ``running``, or
        ``revisions`` is empty. Raises :class:`MyceliumError`, changing nothing, if a named
        job is not a job of the run in a final status.
        """

    @abc.abstractmethod
    def prune_runs(
        self, finished_before: float, statuses: Iterable[str] = FINAL_RUN_STATUSES, limit: int = 100
    ) -> int:
        """Delete up to ``limit`` settled runs whose status is in ``statuses`` and that
        finished before ``finished_before`` (oldest first), with what only they referred to;
        returns how many runs were deleted (0: none is left to delete).

        Atomic per call: each run's jobs, their arguments, dependency edges, results, task
        output, failure links and counters; then each failure no job links to any more, each
        template no run uses, and each task or pipeline revision no job, run or elf uses. A
        running run, and anything a remaining run uses, is never touched, so workers may run
        meanwhile; call it again until it returns 0 (bounded transactions).
        A deleted job's cache key goes with it: :meth:`cached_result` no longer finds it,
        while a job that reused its result keeps its own copy.
        """

    # -- waiting ---------------------------------------------------------------------

    @abc.abstractmethod
    def wait_for_work(self, elf: str, timeout: float) -> None:
        """Block until work for ``elf`` may have appeared, or ``timeout`` seconds passed.

        Spurious returns are allowed: the caller claims and waits again. It returns early
        when a job of ``elf`` became ready, when a retry delay or a lease of that elf ends,
        and on the first call (work readied before the caller started listening). Waiting
        costs next to no CPU.
        """

    def wait_for_run(self, run_id: str, timeout: float) -> str | None:
        """Block until the run (exactly ``run_id``) has a final status or ``timeout`` seconds
        passed; return its status then (``None`` for an unknown run).
        """
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            status = self.run_status(run_id)
            left = deadline - time.monotonic()
            if status is None or status in FINAL_RUN_STATUSES or left <= 0:
                return status
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)


def _span_end(span: JobSpan, now: float) -> float:
    """When a started job's latest attempt ended: its finish, now while it runs, else its start
    (an attempt given back without an outcome)."""
    started = span.started or 0.0
    if span.finished is not None and span.finished >= started:
        return span.finished
    return now if span.status == "running" else started
