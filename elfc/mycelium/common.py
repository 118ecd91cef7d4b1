"""The job state machine's rules that do not depend on a database, written once.

Every backend calls these and keeps only the queries that apply them; what must happen
atomically (claims, completions, settling a run) stays inside a backend's transactions, and
the behaviour suite (``tests/mycelium/contract.py``) checks that each backend applied them.

* submission: a run's jobs checked (keys unique, dependencies inside the run) and encoded
  before any transaction starts; a job's first status; new ids;
* reading: id prefixes, a run's summary and error text from its job counts, a job's history
  (which begins with a synthetic ``submitted`` event, never stored);
* failures: the digest that deduplicates them, and the notes written to a job's history;
* claims: a job's stored payload decoded, or the failure that quarantines it
  (:func:`decode_payload`); a job whose workers died under it too often is failed
  (:func:`lost_leases`, :data:`MAX_LOST_LEASES`);
* heartbeats: which jobs a worker must stop;
* writes retried with jittered backoff while the database is busy or conflicting;
* fork bookkeeping: a handle inherited from a parent process is abandoned, never used;
* operating runs: the bound on a job's stored output, and which jobs a retry runs again;
* expansions: a region's new jobs checked and encoded (:class:`Expansion`), their statuses
  and the rows a backend writes for them (:meth:`Expansion.layout`), their history notes.
* caching by input: a job's cache key, and the note of a job that reused a result.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from elfc.errors import MyceliumError
from elfc.model.ir import CATCH, JOIN, BuiltRun, JobSpec, refs, revision_of
from elfc.model.records import Event, FailureInfo, FailureRecord, JobInfo, RunFailure, RunInfo
from elfc.model.status import (
    ACTIVE_JOB_STATUSES,
    FINAL_JOB_STATUSES,
    JOB_STATUSES,
    JobStatus,
    RunStatus,
)

__all__ = [
    "FORKS",
    "LOG_LIMIT",
    "MAX_LOST_LEASES",
    "MAX_NESTING",
    "PATIENCE",
    "UNRUNNABLE_DEPS",
    "Expansion",
    "Layout",
    "Payload",
    "Submission",
    "Undecodable",
    "abandon",
    "cache_key",
    "cached_note",
    "closed_error",
    "decode_args",
    "decode_json",
    "decode_kwargs",
    "decode_payload",
    "expanded_note",
    "expansion_note",
    "expiry_note",
    "failure_digest",
    "failure_summary",
    "first_status",
    "handled_note",
    "job_history",
    "lost_lease_failure",
    "lost_leases",
    "must_stop",
    "nesting",
    "new_ids",
    "pick",
    "prefix_end",
    "release_note",
    "rerun_note",
    "retry",
    "retry_note",
    "retry_plan",
    "run_failure",
    "run_failure_info",
    "run_info",
    "schema_mismatch",
    "skip_note",
    "undecodable_failure",
]

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")

PATIENCE = 60.0
"""Seconds a write keeps retrying while other processes hold a lock or conflict with it."""

MAX_NESTING = 400
"""The deepest a job's stored arguments may nest (JSON arrays and objects inside each other).
Decoding and evaluating them recurses, so a job nested deeper than any worker's recursion
limit allows could never be run: submission refuses it. 400 levels are about 200 nested
operations (``x = x + 1`` two hundred times over); a worker decodes them far within Python's
default limit of 1000 frames."""

MAX_LOST_LEASES = 5
"""Times a job's lease may run out under a worker (the worker was killed, crashed in native
code, ran out of memory, or was paused past its lease) before the job is failed instead of
run again: a job that kills every worker that runs it must not loop forever. The jobs a killed
worker held queued behind its running one lose a lease too, so the limit leaves room for a
few unlucky deaths."""

decode_args = msgspec.json.Decoder(tuple[Any, ...]).decode
decode_kwargs = msgspec.json.Decoder(dict[str, Any]).decode
decode_json = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


# -- submitting ----------------------------------------------------------------------------


def first_status(deps: Sequence[str]) -> JobStatus:
    """A new job's status: ``ready`` without dependencies, else ``pending``."""
    return "pending" if deps else "ready"


class Submission:
    """A run checked and encoded for :meth:`Store.submit`, before any transaction starts.

    Raises :class:`MyceliumError` if two jobs share a key, a job depends on a key outside the
    run, or a value is not JSON-encodable: nothing is written then.
    """

    def __init__(self, built: BuiltRun) -> None:
        self.built = built
        jobs = built.jobs
        self.position = {job.key: i for i, job in enumerate(jobs)}
        """Job key -> its index in ``built.jobs``."""
        if len(self.position) != len(jobs):
            raise MyceliumError(f"run of {built.pipeline} has duplicate job keys")
        # A job that reads one result twice still waits for it once.
        self.deps = [tuple(dict.fromkeys(job.deps)) for job in jobs]
        """Each job's distinct dependency keys, in order."""
        for job, deps in zip(jobs, self.deps, strict=True):
            for dep in deps:
                if dep not in self.position:
                    raise MyceliumError(f"job {job.key} depends on {dep!r}, not a job of the run")
        try:
            self.payloads = [
                (_encode(job.args), _encode(job.kwargs), _encode(deps))
                for job, deps in zip(jobs, self.deps, strict=True)
            ]
            """Each job's ``(args, kwargs, deps)`` as JSON."""
            self.arguments, self.output = _encode(built.arguments), _encode(built.output)
        except (TypeError, msgspec.EncodeError, RecursionError) as exc:
            check_nesting(jobs)
            raise MyceliumError(f"run of {built.pipeline} is not JSON-encodable: {exc}") from exc
        check_nesting(jobs, self.payloads)
        self.dependents = Counter(dep for deps in self.deps for dep in deps)
        """Job key -> how many jobs wait for it."""
        self.statuses = [first_status(deps) for deps in self.deps]
        self.run_status: RunStatus = "running" if jobs else "succeeded"


UNRUNNABLE_DEPS: frozenset[str] = frozenset(
    ["failed", "skipped", "cancelled", "not_taken", "handled"]
)
"""A job that waits for a job in one of these will never run: it is created ``skipped``
(except a ``try``'s :data:`~elfc.model.ir.CATCH` job, which waits for them to settle)."""


class Expansion:
    """A region's expansion checked and encoded for :meth:`Store.expand` before its
    transaction: the jobs it adds, the not-taken placeholders, and the join that the
    expansion job becomes (or its result, when the region's values are known already).

    A new job may depend on a job the expansion adds before it or on any job of the run
    (``external``, whose statuses the backend reads in its transaction and hands to
    :meth:`statuses`).
    """

    def __init__(
        self,
        jobs: Sequence[JobSpec],
        not_taken: Sequence[JobSpec] = (),
        join: Any = None,
        result: bytes | None = None,
        handled: Sequence[str] = (),
        settles: bool = False,
    ) -> None:
        if (join is None) == (result is None):
            raise ValueError("an expansion has either a join or a result")
        self.handled = list(handled)
        """Keys of the run's ``failed`` jobs that a ``try``'s handler took: each of them, and
        each failed job of its expansion (keys below ``key/``), become ``handled`` in the
        expansion's transaction (and no longer fail the run)."""
        self.settles = settles
        """The expansion of a ``try``'s handlers: its join is a :data:`CATCH` job again, which
        waits for every job the handlers made to settle (a failure there is the handler's,
        re-raised by the join)."""
        self.jobs = list(jobs)
        self.not_taken = list(not_taken)
        self.result = result
        self.join_ir = join
        every = [*self.jobs, *self.not_taken]
        self.position = {job.key: i for i, job in enumerate(self.jobs)}
        if len({job.key for job in every}) != len(every):
            raise MyceliumError("an expansion made two jobs with one key")
        self.deps = [tuple(dict.fromkeys(job.deps)) for job in self.jobs]
        self.join_deps: tuple[str, ...] = tuple(sorted(refs(join))) if join is not None else ()
        if settles and join is not None:
            # Every job the handlers made, in the order made (the join re-raises the first
            # failure in that order), then what the values read besides.
            made = [job.key for job in self.jobs]
            self.join_deps = (*made, *(d for d in self.join_deps if d not in set(made)))
        external: dict[str, None] = {}
        for i, deps in enumerate(self.deps):
            for dep in deps:
                at = self.position.get(dep)
                if at is None:
                    external[dep] = None
                elif at >= i:
                    raise MyceliumError(f"job {self.jobs[i].key} depends on a later job {dep}")
        for dep in self.join_deps:
            if dep not in self.position:
                external[dep] = None
        self.external = list(external)
        """Keys of jobs already in the run that the new jobs or the join wait for."""
        try:
            self.payloads = [
                (_encode(job.args), _encode(job.kwargs), _encode(deps))
                for job, deps in zip(self.jobs, self.deps, strict=True)
            ]
            self.placeholder_payloads = [
                (_encode(job.args), _encode(job.kwargs), b"[]") for job in self.not_taken
            ]
            self.join_payload = (
                (_encode([join]), b"{}", _encode(list(self.join_deps)))
                if join is not None
                else None
            )
        except (TypeError, msgspec.EncodeError, RecursionError) as exc:
            check_nesting(every)
            raise MyceliumError(f"an expansion is not JSON-encodable: {exc}") from exc
        check_nesting(self.jobs, self.payloads)
        check_nesting(self.not_taken, self.placeholder_payloads)
        self.dependents = Counter(dep for deps in self.deps for dep in deps)
        self.dependents.update(self.join_deps)
        """Key -> how many of the new jobs (and the join) wait for it."""

    def statuses(self, existing: dict[str, str]) -> tuple[list[str], list[int], str, int]:
        """Given the status of each external key, each new job's status and waiting count,
        then the join's. Raises :class:`MyceliumError` for an external key not in the run."""
        missing = [k for k in self.external if k not in existing]
        if missing:
            raise MyceliumError(f"an expansion depends on {missing[0]!r}, not a job of the run")
        known = dict(existing)
        statuses, waits = [], []
        for job, deps in zip(self.jobs, self.deps, strict=True):
            status, waiting = _status_after([known[d] for d in deps], job.task == CATCH)
            known[job.key] = status
            statuses.append(status)
            waits.append(waiting)
        join_status, join_waiting = _status_after([known[d] for d in self.join_deps], self.settles)
        return statuses, waits, join_status, join_waiting

    @property
    def join_task(self) -> str:
        return CATCH if self.settles else JOIN

    def layout(
        self, existing: Mapping[str, tuple[K, str]], new: Sequence[K], expander: K
    ) -> Layout[K]:
        """The rows of this expansion for a backend that names jobs by ``K`` (a row number,
        a document key): ``existing`` maps each external key to its job and status (read in
        the transaction), ``new`` names the new jobs then the placeholders, ``expander`` the
        expansion job. Raises :class:`MyceliumError` for an external key not in the run."""
        statuses, waits, join_status, join_waiting = self.statuses(
            {k: status for k, (_, status) in existing.items()}
        )
        every = [*self.jobs, *self.not_taken]
        every_status = [*statuses, *(["not_taken"] * len(self.not_taken))]
        named = {job.key: new[i] for i, job in enumerate(self.jobs)}
        edges: list[tuple[K, K]] = []

        def wait_for(deps: Iterable[str], dependent: K, settled: bool = False) -> None:
            for dep in deps:
                if dep in named:
                    edges.append((named[dep], dependent))
                elif existing[dep][1] not in (FINAL_JOB_STATUSES if settled else ("succeeded",)):
                    edges.append((existing[dep][0], dependent))

        for i, deps in enumerate(self.deps):
            if statuses[i] != "skipped":
                wait_for(deps, new[i], self.jobs[i].task == CATCH)
        if self.join_payload is not None and join_status != "skipped":
            wait_for(self.join_deps, expander, self.settles)
        inside = set(named.values())
        return Layout(
            every,
            every_status,
            [*waits, *([0] * len(self.not_taken))],
            join_status,
            join_waiting,
            edges,
            Counter(dep for dep, _ in edges if dep not in inside),
            Counter(zip((job.elf for job in every), every_status, strict=True)),
        )


@dataclass(frozen=True)
class Layout(Generic[K]):
    """An expansion's rows (see :meth:`Expansion.layout`)."""

    jobs: list[JobSpec]
    """The new jobs, then the not-taken placeholders."""
    statuses: list[str]
    """Each one's first status (``ready``, ``pending``, ``skipped``; ``not_taken``)."""
    waiting: list[int]
    """Each one's waiting counter: its dependencies not succeeded yet."""
    join_status: str
    join_waiting: int
    edges: list[tuple[K, K]]
    """``(dependency, dependent)`` for every dependency not succeeded yet, into new jobs
    (none into a skipped one) and into the join (the expansion job)."""
    outside: Counter[K]
    """Existing job -> how many new edges leave it (its ``dependents`` grow by as many)."""
    added: Counter[tuple[str, str]]
    """``(elf, status)`` -> how many jobs the expansion adds so (the run's counts)."""

    def finished(self, i: int) -> bool:
        """Is the ``i``-th job created in a final status (skipped, not taken)?"""
        return self.statuses[i] in FINAL_JOB_STATUSES


def expansion_note(job_id: str) -> str:
    """The first history note of a job an expansion added."""
    return f"made by expansion {job_id}"


def expanded_note(plan: Expansion) -> str:
    """The history note of the expansion job when the expansion is stored."""
    made = f"expanded into {len(plan.jobs)} jobs"
    return made if plan.result is not None else f"{made}; joins them"


def _status_after(dep_statuses: Sequence[str], settles: bool = False) -> tuple[str, int]:
    """A new job's status and waiting count; ``settles``: a :data:`CATCH` job, which waits
    for its dependencies to settle however they end."""
    if settles:
        waiting = sum(1 for s in dep_statuses if s not in FINAL_JOB_STATUSES)
        return ("pending" if waiting else "ready"), waiting
    if any(s in UNRUNNABLE_DEPS for s in dep_statuses):
        return "skipped", 0
    waiting = sum(1 for s in dep_statuses if s != "succeeded")
    return ("pending" if waiting else "ready"), waiting


def check_nesting(
    jobs: Sequence[JobSpec], payloads: Sequence[tuple[bytes, bytes, bytes]] | None = None
) -> None:
    """:class:`MyceliumError` for a job whose arguments nest deeper than a worker decodes.

    With the encoded ``payloads``, only jobs whose JSON is long enough to nest that deep are
    walked (each level takes a bracket), so the usual short arguments cost nothing.
    """
    for i, job in enumerate(jobs):
        if payloads is not None and len(payloads[i][0]) + len(payloads[i][1]) <= MAX_NESTING:
            continue
        depth = max(nesting(job.args), nesting(job.kwargs))
        if depth > MAX_NESTING:
            raise MyceliumError(
                f"job {job.key} ({job.elf}.{job.task}): its arguments nest {depth} levels "
                f"deep, more than the {MAX_NESTING} a worker decodes; build the value in a "
                f"task, or in fewer nested steps"
            )


def nesting(value: object) -> int:
    """How deeply lists, tuples and dicts nest in ``value`` (a scalar: 0), found without
    recursion, so that a value too deep to encode is measured rather than crashing."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def new_ids(jobs: int) -> tuple[str, list[str]]:
    """A new run id and ``jobs`` new job ids: 16 random hex digits each.

    Ids are random so that hosts need no shared counter; a clash with a stored id is
    astronomically rare but possible, so a backend's insert refuses it and the caller draws
    again. Being hex digits, ids sort alike in every collation (see :func:`prefix_end`).
    """
    ids = os.urandom(8 * jobs).hex()
    return secrets.token_hex(8), [ids[i : i + 16] for i in range(0, len(ids), 16)]


# -- reading -------------------------------------------------------------------------------


def prefix_end(prefix: str) -> str | None:
    """The end of the key range ``[prefix, end)`` holding the keys that start with ``prefix``;
    ``None`` when no key can (an empty prefix, or one whose last character has no successor).

    ``9`` is followed by ``a``, not ``:``: ArangoDB compares strings by locale, where
    punctuation sorts before digits. For keys of lowercase hex digits (every id and hash elfc
    makes) the range is the same in SQLite's byte order.
    """
    if not prefix or ord(prefix[-1]) >= 0x10FFFF:
        return None
    last = prefix[-1]
    return prefix[:-1] + ("a" if last == "9" else chr(ord(last) + 1))


def pick(rows: Sequence[R], prefix: str, what: str, key: Callable[[R], str]) -> R | None:
    """The row whose ``key`` is ``prefix`` itself, else the only row; ``None`` for no rows.

    ``rows`` are those of the range :func:`prefix_end` gives, at most two. Raises
    :class:`MyceliumError` when the prefix is ambiguous.
    """
    for row in rows:
        if key(row) == prefix:
            return row
    if len(rows) > 1:
        raise MyceliumError(f"{what} prefix {prefix!r} is ambiguous: give more characters")
    return rows[0] if rows else None


def run_info(
    run_id: str,
    pipeline: str,
    revision: str,
    arguments: bytes | str,
    status: str,
    created: float,
    finished: float | None,
    total: int,
    output: bytes | str,
    counted: Iterable[Sequence[Any]],
    cached: int = 0,
    failure: RunFailure | None = None,
) -> RunInfo:
    """A run as stored (``arguments`` and ``output`` as JSON) with its ``(elf, status, n)``
    job counts, how many of its jobs reused a result and its own failure (see
    :func:`run_failure`); every status is present in the
    counts, and a run that did not succeed says why in ``error``."""
    counts: dict[str, int] = dict.fromkeys(JOB_STATUSES, 0)
    elf_counts: dict[str, dict[str, int]] = {}
    for elf, job_status, n in counted:
        counts[job_status] += n
        elf_counts.setdefault(elf, dict.fromkeys(JOB_STATUSES, 0))[job_status] += n
    error = _run_error(status, counts, failure)
    try:
        decoded, value = decode_kwargs(arguments), decode_json(output)
    except (msgspec.DecodeError, RecursionError) as exc:
        # Listed with the damage said, rather than making every run unreadable.
        decoded, value = {}, None
        error = f"its stored arguments or output are damaged ({exc})"
    return RunInfo(
        run_id,
        pipeline,
        revision,
        decoded,
        status,
        created,
        finished,
        total,
        counts,
        elf_counts,
        value,
        error,
        cached,
        failure,
    )


def run_failure(error_type: object, message: object, when: object) -> RunFailure | None:
    """A run's own failure from its stored fields (``None`` when none is stored, or when
    what is stored is not a failure elfc wrote)."""
    if not isinstance(error_type, str) or not isinstance(message, str):
        return None
    return RunFailure(error_type, message, float(when) if isinstance(when, int | float) else 0.0)


def run_failure_info(run_id: str, pipeline: str, revision: str, failure: RunFailure) -> FailureInfo:
    """A run's own failure as a row of ``elfc failures``: one per run (never merged with
    another run's), seen once, when it was recorded."""
    digest = revision_of(failure.error_type, failure.message, run_id)
    return FailureInfo(
        digest, failure.error_type, failure.message, "", 1, failure.time, failure.time,
        "", pipeline, revision, run_id,
    )  # fmt: skip


def _run_error(status: str, counts: dict[str, int], failure: RunFailure | None) -> str | None:
    if status == "failed" and failure is not None:
        return f"its value was refused: {failure.error_type}: {failure.message}"
    if status == "failed":
        return f"{counts['failed']} job(s) failed, {counts['skipped']} skipped"
    if status == "cancelled":
        return "cancelled"
    return None


_decode_history = msgspec.json.Decoder(tuple[Event, ...]).decode


def job_info_of(row: Sequence[Any], result: bytes | None, failure: FailureInfo | None) -> JobInfo:
    """A job read from a SQL backend's row (``no, id, run id, key, node, elf, task, revision,
    args, kwargs, deps, seq, status, waiting, attempts, not_before, lease_owner, lease_until,
    created, started, finished, history, cache_key, cached_from, failure``), with its result
    and failure read by the backend. A damaged row reads as a job without arguments (a claim
    fails it, saying why) rather than making the whole run unreadable."""
    (_no, job_id, run_id, key, node, elf, task, revision, args, kwargs, deps, seq, status,
     waiting, attempts, not_before, lease_owner, lease_until, created, started, finished,
     history, key_of_cache, cached_from, _failure) = row  # fmt: skip
    try:
        job_args, job_kwargs, dep_keys = decode_payload(args, kwargs, deps)
    except Undecodable:
        job_args, job_kwargs, dep_keys = (), {}, ()
    try:
        events = _decode_history(history or "[]")
    except (msgspec.DecodeError, RecursionError):
        events = ()
    return JobInfo(
        job_id, run_id, key, node, elf, task, revision, job_args, job_kwargs, dep_keys, seq,
        status, waiting, attempts, not_before, lease_owner, lease_until, created, started,
        finished, result, failure, job_history(created, dep_keys, events), key_of_cache,
        cached_from,
    )  # fmt: skip


def job_history(created: float, deps: Sequence[str], later: Iterable[Event]) -> tuple[Event, ...]:
    """A job's status history: the ``submitted`` event (made up from the job's creation, so
    that submitting writes no history), then the stored ones."""
    return (Event(created, first_status(deps), "submitted"), *later)


# -- failures and history notes ------------------------------------------------------------


def failure_digest(failure: FailureRecord) -> str:
    """The key that deduplicates failures: the same type, message and traceback are one."""
    return revision_of(failure.error_type, failure.message, failure.traceback)


def failure_summary(failure: FailureRecord) -> str:
    """``Type: message``: a failed job's history note."""
    return f"{failure.error_type}: {failure.message}"


def retry_note(retry_at: float, failure: FailureRecord) -> str:
    return f"retry at {retry_at:.3f} after {failure_summary(failure)}"


def skip_note(failed_key: str) -> str:
    return f"upstream {failed_key} failed"


def handled_note(catcher_id: str) -> str:
    """The history note of a failed job whose failure a ``try``'s handler took."""
    return f"handled by the except of job {catcher_id}"


def release_note(worker_id: str) -> str:
    return f"released by {worker_id}"


def expiry_note(lease_owner: str) -> str:
    """The note of a job whose lease ran out (the AQL query spells it in its own text)."""
    return f"lease of {lease_owner} expired"


# -- claims ----------------------------------------------------------------------------------


Payload = tuple[tuple[Any, ...], dict[str, Any], tuple[str, ...]]
"""A claimed job's decoded ``(args, kwargs, dependency keys)``."""

_decode_keys = msgspec.json.Decoder(tuple[str, ...]).decode


class Undecodable(Exception):
    """A stored job payload that cannot be decoded (see :func:`decode_payload`)."""


def decode_payload(args: bytes | str, kwargs: bytes | str, deps: bytes | str) -> Payload:
    """A job's stored arguments and dependency keys, decoded for a claim.

    Raises :class:`Undecodable` (never anything else) when a column is not JSON of the right
    shape or nests too deep to decode: the claim then fails the job with
    :func:`undecodable_failure` in the same transaction, so that a row nobody can run never
    kills a worker or blocks the queue.
    """
    try:
        return decode_args(args), decode_kwargs(kwargs), _decode_keys(deps)
    except (msgspec.DecodeError, RecursionError, MemoryError, UnicodeDecodeError) as exc:
        raise Undecodable(f"{type(exc).__name__}: {exc}") from None


def undecodable_failure(job_id: str, revision: str, error: Undecodable) -> FailureRecord:
    """The failure of a job whose stored payload cannot be decoded."""
    return FailureRecord(
        "UndecodableJob",
        f"job {job_id}: its stored arguments cannot be decoded ({error}); the row was damaged "
        f"or written by something other than elfc. The job is failed so that it does not block "
        f"the queue; submit the run again",
        "",
        revision,
    )


def lost_leases(attempts: int, failures: int) -> int:
    """How many times a job's lease ran out under a worker: its attempts (claims, less those
    given back) that ended in no recorded failure, this one included."""
    return attempts - failures


def lost_lease_failure(lease_owner: str, lost: int, revision: str) -> FailureRecord:
    """The failure of a job whose lease ran out :data:`MAX_LOST_LEASES` times."""
    return FailureRecord(
        "WorkerLost",
        f"the worker running this job stopped {lost} times before finishing it (killed, "
        f"crashed in native code, out of memory, or paused past its lease); the last was "
        f"{lease_owner}. The job is failed instead of being tried again; see that worker's "
        f"output, or `elfc run`'s, for its exit code or signal",
        "",
        revision,
    )


# -- heartbeats ------------------------------------------------------------------------------


def must_stop(asked: Iterable[str], kept: Iterable[tuple[str, bool]]) -> set[str]:
    """The jobs of ``asked`` a worker must stop: all but those whose lease it still held, as
    ``kept`` says (``(job_id, run_cancelled)``), in a run that is not cancelled."""
    return set(asked) - {job_id for job_id, cancelled in kept if not cancelled}


# -- errors ------------------------------------------------------------------------------------


def schema_mismatch(url: str, found: object, expected: int, elsewhere: str) -> MyceliumError:
    """The error for a mycelium of another schema version: never migrated, only refused."""
    return MyceliumError(
        f"the mycelium {url} has schema version {found}, this elfc uses version {expected}: "
        f"open it with the elfc release that wrote it, or point elfc at a new mycelium "
        f"({elsewhere}); elfc never changes a mycelium of another version"
    )


def closed_error(url: str) -> MyceliumError:
    return MyceliumError(f"the mycelium {url} was closed")


# -- retries --------------------------------------------------------------------------------------


def retry(
    attempt: Callable[[], T],
    transient: Callable[[Exception], bool],
    gave_up: Callable[[Exception], Exception],
    first: float,
    cap: float,
    patience: float = PATIENCE,
) -> T:
    """``attempt()``, tried again while it raises an error that is ``transient``.

    Between tries it sleeps a random time up to a delay that starts at ``first`` seconds and
    doubles up to ``cap``: full jitter, so writers that collided do not collide again in step.
    Any other error propagates as it is; after ``patience`` seconds the last transient one is
    replaced by ``gave_up(error)``.
    """
    deadline = time.monotonic() + patience
    delay = first
    while True:
        try:
            return attempt()
        except Exception as exc:
            if not transient(exc):
                raise
            if time.monotonic() > deadline:
                raise gave_up(exc) from exc
        time.sleep(random.uniform(0.0, delay))
        delay = min(delay * 2, cap)


# -- fork ------------------------------------------------------------------------------------------

FORKS = [0]
"""``FORKS[0]`` counts the forks between the first process and this one. A store remembers
it when it connects; a different count means the connection is the parent's."""
os.register_at_fork(after_in_child=lambda: FORKS.__setitem__(0, FORKS[0] + 1))

_abandoned: list[object] = []


def abandon(*handles: object) -> None:
    """Keep connections and sockets inherited from a parent process alive, unused, forever:
    closing one could break the parent's locks or its open requests."""
    _abandoned.extend(handles)


# -- operating runs: task output and retries -------------------------------------------------

LOG_LIMIT = 1 << 20
"""Characters of output kept per job attempt (1 Mi); what a task writes beyond is counted,
not stored."""


def rerun_note(old_revision: str, new_revision: str) -> str:
    """The history note of a job that ``elfc retry`` runs again."""
    if old_revision == new_revision:
        return f"retried at task revision {new_revision}"
    return f"retried: task revision {old_revision} -> {new_revision}"


def retry_plan(
    jobs: Sequence[JobInfo],
    today: Callable[[JobInfo], str],
    from_keys: Iterable[str] = (),
    everything: bool = False,
) -> dict[str, str]:
    """Which jobs of a settled run a retry runs again: job id -> the task revision to run.

    Every job that did not succeed; a succeeded one whose task revision ``today(job)`` is not
    the one it ran (its result may be stale), each job of ``from_keys``, or every job with
    ``everything``; then every job that depends on one of those, transitively, since its
    inputs change. A ``not_taken`` job (a branch not taken) is never run again: it has no
    inputs and never ran. Raises :class:`MyceliumError` when a job is still active or a key
    of ``from_keys`` is not in the run.
    """
    active = [job.key for job in jobs if job.status in ACTIVE_JOB_STATUSES]
    if active:
        raise MyceliumError(
            f"{len(active)} job(s) of the run are still active ({', '.join(active[:3])}): "
            "wait for the run to settle, or cancel it first"
        )
    by_key = {job.key: job for job in jobs}
    chosen = {
        job.key
        for job in jobs
        if everything or job.status != "succeeded" or today(job) != job.revision
    }
    for key in from_keys:
        if key not in by_key:
            raise MyceliumError(f"the run has no job {key!r}; list its keys with `elfc jobs RUN`")
        chosen.add(key)
    dependents: dict[str, list[str]] = {}
    for job in jobs:
        for dep in job.deps:
            dependents.setdefault(dep, []).append(job.key)
    todo = list(chosen)
    while todo:
        for key in dependents.get(todo.pop(), ()):
            if key not in chosen:
                chosen.add(key)
                todo.append(key)
    return {
        by_key[key].id: today(by_key[key])
        for key in sorted(chosen, key=lambda k: by_key[k].seq)
        if by_key[key].status != "not_taken"
    }


# -- caching by input -------------------------------------------------------------------------

CACHE_KEY_FORMAT = "elfc-cache-1"
"""Part of every cache key: changing how keys are made changes this, so that no key of the
old making is ever taken for one of the new."""


def cache_key(
    elf_class: str,
    elf_revision: str,
    config: str,
    task: str,
    task_revision: str,
    arguments: bytes,
) -> str:
    """What a job computes, as a key: the elf class (``module:qualname``), its source
    revision and its configuration as registered (the handle's constructor arguments as
    JSON), the task and the revision of its source, and the job's resolved argument values
    as canonical JSON (``elfc.runtime.values.canonical``). Two jobs of one key run the same
    code on the same values, so a job may reuse the stored result of another (a 128-bit
    BLAKE2b digest, 32 hex digits). The elf's instance name is not part of it: two
    instances of one class and configuration compute alike."""
    h = hashlib.blake2b(digest_size=16)
    for part in (CACHE_KEY_FORMAT, elf_class, elf_revision, config, task, task_revision):
        h.update(part.encode())
        h.update(b"\x00")
    h.update(arguments)
    return h.hexdigest()


def cached_note(source_job: str) -> str:
    """The history note of a job that succeeded with another job's result, without running."""
    return f"reused the result of job {source_job} (same task revision and arguments)"
