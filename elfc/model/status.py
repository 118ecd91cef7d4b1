"""Job and run statuses: the words, their sets and their display order, defined once.

Job life cycle::

    pending ──(last dependency succeeded)──> ready ──claim──> running ──complete──> succeeded
                                               ^                 │
                                               └─retry/release/──┤──fail──> failed
                                                 lease expired   │            └─> every transitive
                                                                 │                dependent: skipped
    cancel_run: pending/ready ──> cancelled; running jobs are told by heartbeat and then released

A job of a branch that was not taken is created ``not_taken`` (final) when its branch is
decided; it never runs, and it neither fails nor skips anything.

A job that failed inside a ``try`` whose handler took the failure becomes ``handled`` (final)
when the handler runs: it is shown as a failure, and it does not fail its run.

A run is ``running`` until no job of it can progress; it then becomes ``succeeded``, or
``failed`` if any job failed. Cancelling makes it ``cancelled`` at once.

Every module that needs one of these words or sets imports it from here (the backends' SQL
and AQL text aside, which spells statuses inside queries).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

__all__ = [
    "ACTIVE_JOB_STATUSES",
    "FINAL_JOB_STATUSES",
    "FINAL_RUN_STATUSES",
    "JOB_STATUSES",
    "JOB_STATUS_SEVERITY",
    "RUN_STATUSES",
    "JobStatus",
    "RunStatus",
    "active_count",
    "final_count",
]

JobStatus = Literal[
    "pending",
    "ready",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
    "not_taken",
    "handled",
]
RunStatus = Literal["running", "succeeded", "failed", "cancelled"]

JOB_STATUSES: Final[tuple[JobStatus, ...]] = get_args(JobStatus)
"""Every status a job can have, in life-cycle order (the order of counts in displays)."""

ACTIVE_JOB_STATUSES: Final[frozenset[JobStatus]] = frozenset({"pending", "ready", "running"})
"""A job in one of these can still progress."""

FINAL_JOB_STATUSES: Final[frozenset[JobStatus]] = frozenset(JOB_STATUSES) - ACTIVE_JOB_STATUSES
"""A job in one of these never changes again (until an operator retries it)."""

RUN_STATUSES: Final[tuple[RunStatus, ...]] = get_args(RunStatus)
"""Every status a run can have."""

FINAL_RUN_STATUSES: Final[frozenset[RunStatus]] = frozenset({"succeeded", "failed", "cancelled"})
"""A run in one of these is settled: waiting for it ends."""

JOB_STATUS_SEVERITY: Final[tuple[JobStatus, ...]] = (
    "failed",
    "cancelled",
    "handled",
    "skipped",
    "not_taken",
    "running",
    "ready",
    "pending",
    "succeeded",
)
"""Worst first: a group of jobs (a graph node, an elf) is shown as the first of these it has."""


def active_count(counts: Mapping[str, int]) -> int:
    """How many of the counted jobs (status -> count) can still progress."""
    return sum(counts.get(s, 0) for s in ACTIVE_JOB_STATUSES)


def final_count(counts: Mapping[str, int]) -> int:
    """How many of the counted jobs (status -> count) are settled."""
    return sum(counts.get(s, 0) for s in FINAL_JOB_STATUSES)
