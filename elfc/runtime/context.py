"""Which job this thread is running: :func:`current_job`.

A worker sets it around each task call, in a process's main thread and in each thread of
``elfc.serve(...)`` alike. It is a :class:`contextvars.ContextVar`, and every thread starts
with a context of its own, so threads serving elves side by side each see their own job; code
that must attribute output to a job (a task's ``print`` or ``logging`` calls, say) reads it
from the thread that wrote.

Usage::

    job = current_job()
    if job is not None:
        print(f"{job.elf}.{job.task} attempt {job.attempt} of job {job.job}")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class JobContext:
    """The job a thread is running, and the worker running it."""

    job: str
    run: str
    elf: str
    task: str
    attempt: int
    worker: str


_current: ContextVar[JobContext | None] = ContextVar("elfc_current_job", default=None)


def current_job() -> JobContext | None:
    """The job this thread is running a task for; ``None`` outside a task."""
    return _current.get()


@contextmanager
def running(job: JobContext) -> Iterator[JobContext]:
    """Make ``job`` this thread's current job for the ``with`` block."""
    token = _current.set(job)
    try:
        yield job
    finally:
        _current.reset(token)
