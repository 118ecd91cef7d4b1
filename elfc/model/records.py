"""The records that cross the store boundary: what backends store and return.

Each is a frozen msgspec Struct, so it is built in one place and JSON round-trips; the
mycelium's protocol (``elfc.mycelium.store``) says which operation takes or returns which.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from elfc.model.ir import IR

__all__ = [
    "Claimed",
    "ElfRecord",
    "Event",
    "FailureInfo",
    "FailureRecord",
    "JobInfo",
    "JobSpan",
    "JobsBucket",
    "LogRecord",
    "RevisionRecord",
    "RunFailure",
    "RunInfo",
    "WorkerInfo",
]


class RevisionRecord(msgspec.Struct, frozen=True):
    """The source of one elf class, task method or pipeline function, at one revision."""

    hash: str
    kind: Literal["elf", "task", "pipeline"]
    qualname: str
    module: str
    source: str
    doc: str | None = None
    signature: str | None = None


class ElfRecord(msgspec.Struct, frozen=True):
    """A named elf instance: which class serves it and with what configuration."""

    name: str
    cls: str
    """The class's qualified name."""
    module: str
    config: str
    """The handle's constructor arguments, as JSON text."""
    revision: str
    doc: str | None = None
    last_seen: float = 0.0
    """Set by the mycelium on ``put_elf``; ignored on input."""


class FailureRecord(msgspec.Struct, frozen=True):
    """What a worker reports when a task raised: the input of :meth:`Store.fail`."""

    error_type: str
    message: str
    traceback: str
    revision: str
    """The task revision that raised."""
    raised: bytes | None = None
    """The exception as a ``try`` statement's handler sees it (JSON: its class hierarchy,
    message, arguments and traceback; see ``elfc.runtime.caught``): stored as the failed job's
    result, which only a :data:`~elfc.model.ir.CATCH` job reads."""


class FailureInfo(msgspec.Struct, frozen=True):
    """A stored failure: all jobs that raised the same traceback share one, with a count."""

    hash: str
    error_type: str
    message: str
    traceback: str
    count: int
    first_seen: float
    last_seen: float
    elf: str
    task: str
    revision: str
    run: str | None = None
    """For a run's own failure (its value refused, see :class:`RunFailure`): the run; ``elf``
    is empty, ``task`` the pipeline and ``revision`` its revision then. ``None`` for a
    failure jobs raised."""


class Event(msgspec.Struct, frozen=True, array_like=True):
    """One entry of a job's status history: ``(time, status, note)``."""

    time: float
    status: str
    note: str


class RunFailure(msgspec.Struct, frozen=True):
    """Why a run whose jobs all succeeded failed after all: its value, evaluated from the
    output expression, was refused by the pipeline's return annotation (see
    :meth:`Store.fail_run`)."""

    error_type: str
    message: str
    time: float
    """When it was recorded."""


class RunInfo(msgspec.Struct, frozen=True):
    """A run as stored, with its job counts."""

    id: str
    pipeline: str
    revision: str
    arguments: dict[str, IR]
    status: str
    """One of :data:`RUN_STATUSES`."""
    created: float
    finished: float | None
    """When the last job of the run reached a final status (``None`` while any is active)."""
    total: int
    counts: dict[str, int]
    """Jobs per status; every status of :data:`JOB_STATUSES` is present."""
    elf_counts: dict[str, dict[str, int]]
    """Jobs per elf instance, then per status (for progress displays)."""
    output: IR
    """The run's output expression (refers to job results with ``{"ref": key}``)."""
    error: str | None = None
    """Why the run did not succeed, in one line (``None`` unless failed or cancelled)."""
    cached: int = 0
    """Succeeded jobs that reused the result of an earlier job instead of running (counted
    in ``counts["succeeded"]`` too)."""
    failure: RunFailure | None = None
    """The run's own failure, when its jobs succeeded but its value did not (``None``
    otherwise: a run failed by its jobs has their failures)."""


class JobInfo(msgspec.Struct, frozen=True):
    """A job as stored. ``result`` is only filled by :meth:`Store.get_job`."""

    id: str
    run: str
    key: str
    node: str
    elf: str
    task: str
    revision: str
    args: tuple[IR, ...]
    kwargs: dict[str, IR]
    deps: tuple[str, ...]
    seq: int
    status: str
    waiting: int
    """Dependencies that have not succeeded yet."""
    attempts: int
    not_before: float
    lease_owner: str | None
    lease_until: float | None
    created: float
    started: float | None
    """Start of the latest attempt."""
    finished: float | None
    result: bytes | None = None
    failure: FailureInfo | None = None
    """The latest failure of this job, if any (also set while a retry is pending)."""
    history: tuple[Event, ...] = ()
    cache_key: str | None = None
    """The key of the job's task, elf and argument values (``common.cache_key``), recorded
    when it succeeded, if it was a job that may reuse results (a ``@task(cache=True)`` task's,
    or of a ``reuse`` run); another such job with this key may reuse its result."""
    cached_from: str | None = None
    """The id of the job whose result this one reused without running (``None``: it ran)."""

    @property
    def cached(self) -> bool:
        return self.cached_from is not None


class Claimed(msgspec.Struct, frozen=True):
    """A job handed to a worker by :meth:`Store.claim`: everything needed to run it."""

    id: str
    run: str
    key: str
    elf: str
    task: str
    revision: str
    args: tuple[IR, ...]
    kwargs: dict[str, IR]
    deps: tuple[str, ...]
    """Keys of the jobs whose results ``args``/``kwargs`` read: fetch them with ``results``."""
    attempts: int
    """1 on the first attempt."""
    results: dict[str, bytes] | None = None
    """The results of ``deps``, when the backend fetched them with the claim; ``None`` means
    "ask :meth:`Store.results`"."""
    reuse: bool = False
    """Its run was submitted with ``reuse``: the worker may complete it with the result of an
    earlier job of the same cache key (as for a task declared ``@task(cache=True)``)."""


class WorkerInfo(msgspec.Struct, frozen=True):
    """A worker process serving one elf instance."""

    id: str
    elf: str
    host: str
    pid: int
    started: float
    heartbeat: float = 0.0
    """Set by the mycelium on ``heartbeat``; ignored on input."""


class JobSpan(msgspec.Struct, frozen=True, array_like=True):
    """When and where one job ran: a bar of a run's timeline (its latest attempt)."""

    key: str
    elf: str
    task: str
    status: str
    worker: str | None
    """The worker that holds or held the job's latest attempt (``None``: never claimed)."""
    started: float | None
    finished: float | None


class JobsBucket(msgspec.Struct, frozen=True, array_like=True):
    """The jobs one worker started within one slice of a run's time: a bar of the timeline of
    a run too large to draw job by job."""

    elf: str
    worker: str
    slot: int
    """Which slice: the jobs started from ``start + slot * grain`` on, for ``grain`` seconds."""
    start: float
    """When the first of them started."""
    end: float
    """When the last of them ended (now for a running one; its start for one never ended)."""
    jobs: int
    status: str
    """The worst of their statuses (failed first, as :data:`JOB_STATUS_SEVERITY` orders them)."""
    key: str
    """The key of the first of them in the run's (``seq``) order."""
    busy: float
    """Seconds the jobs took, added up."""


class LogRecord(msgspec.Struct, frozen=True):
    """What one attempt of a job wrote: its stdout, stderr and ``logging`` records, in the
    order written, bounded (see :data:`elfc.mycelium.common.LOG_LIMIT`)."""

    job: str
    run: str
    key: str
    """The job's key in its run (``n2#0``)."""
    elf: str
    task: str
    attempt: int
    """The job's attempt that wrote it (1 on the first)."""
    text: str
    truncated: int = 0
    """Characters left out beyond the bound (0: the text is complete)."""
    time: float = 0.0
    """When it was stored; set by the mycelium on ``put_logs``, ignored on input."""
