"""Stopping tasks that run in threads, which no signal reaches.

A worker process stops its task with signals (SIGALRM at a timeout, SIGUSR2 on cancel), but
Python runs signal handlers only in the main thread. A task served in a thread is stopped by
the :class:`Watchdog`, one thread that watches the :class:`Guard` of every worker thread:

1. at the task's timeout, on cancel, or when its worker is told to stop now, it raises an
   exception in the task's thread (``PyThreadState_SetAsyncExc``: :class:`JobTimedOut`,
   :class:`JobCancelled` or :class:`JobInterrupted`). Python delivers it at the thread's next
   bytecode, so a task running Python code stops at once, and the worker fails or releases
   the job exactly as a worker process would;
2. a task blocked in C code (``time.sleep``, a socket read, a lock, a long numpy call) only
   sees that exception when the call returns. If the thread has not come back ``grace``
   seconds after it was told, the watchdog *abandons* it: the guard's ``on_abandon`` settles
   the job on the thread's behalf (failed with a ``TimeoutError``, or released) and the thread
   is replaced. The abandoned thread runs on until its call returns; whatever it then
   produces is discarded, never stored. Python cannot kill a thread.

The invariants: an exception is raised in a thread only while its guard is *active*, that is
between :meth:`Guard.arm` and :meth:`Guard.disarm` (around the task call), both sides decide
under the guard's lock, and at most one is raised per :meth:`Guard.arm`. :meth:`Guard.disarm`
clears a request not yet delivered, so a stop decided as the task returned never surfaces
later in elfc's code; the caller disarms again in a ``finally`` of its own in case the one
exception arrived as ``disarm`` was being called. Python delivers such an exception at any
call or loop jump, so the guarded thread calls nothing in the active window that would leak
if interrupted: the guard's lock is a C lock, and it wakes the watchdog through a C queue
(``SimpleQueue.put``), never a :class:`threading.Condition`, whose Python ``__enter__`` can be
interrupted after taking its lock and leave it taken.

Usage::

    watchdog = Watchdog(grace=1.0)
    guard = watchdog.guard(on_abandon=settle)   # in the worker thread
    try:
        guard.arm(timeout=2.0)
        value = task()
    finally:
        stopped = guard.disarm()                # "timeout", "cancelled", "stopped" or None
    ...
    watchdog.close()
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import queue
import threading
import time
from collections.abc import Callable

from elfc.errors import JobCancelled, JobInterrupted, JobStopped, JobTimedOut

log = logging.getLogger(__name__)

Stop = JobTimedOut | JobCancelled | JobInterrupted

REASONS: dict[str, type[Stop]] = {
    "timeout": JobTimedOut,
    "cancelled": JobCancelled,
    "stopped": JobInterrupted,
}
"""Why a task is stopped -> the exception class raised in its thread."""

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.restype = ctypes.c_int


def _raise_in(ident: int, exc: type[BaseException] | None) -> None:
    """Make thread ``ident`` raise ``exc`` at its next bytecode (``None``: clear a pending one,
    passed as a NULL pointer, which is why no ``argtypes`` are declared)."""
    _set_async_exc(ctypes.c_ulong(ident), None if exc is None else ctypes.py_object(exc))


class Guard:
    """The task of one worker thread, as the watchdog sees it. Made by :meth:`Watchdog.guard`
    in the thread it guards."""

    def __init__(self, watchdog: Watchdog, on_abandon: Callable[[str], None]) -> None:
        self.watchdog = watchdog
        self.on_abandon = on_abandon
        self.ident = threading.get_ident()
        self.lock = threading.Lock()
        self.active = False
        self.deadline: float | None = None
        """When the running task times out (``time.monotonic()``), or ``None``."""
        self.reason: str | None = None
        """Why the running task was told to stop; ``None`` while it was not."""
        self.told_at = 0.0
        self.abandoned = False
        """The watchdog gave up on this thread: it settled the job and replaced the thread."""

    def arm(self, timeout: float | None) -> None:
        """A task starts in this thread (call it inside the ``try`` whose ``finally`` disarms)."""
        with self.lock:
            self.reason = None
            self.deadline = None if timeout is None else time.monotonic() + timeout
            self.active = True
        if timeout is not None:
            self.watchdog.wake()  # a C call: nothing to leak if a stop lands here

    def disarm(self) -> str | None:
        """The task returned or raised: returns why it was told to stop, or ``None``.

        A stop already requested but not yet delivered is withdrawn here; one delivered while
        this runs is absorbed (the reason returned says what happened).
        """
        while True:
            try:
                with self.lock:
                    self.active = False
                    self.deadline = None
                    if self.reason is not None:
                        _raise_in(self.ident, None)
                    return self.reason
            except JobStopped:
                continue

    def stop(self, reason: str) -> bool:
        """Tell the running task to stop (from any thread); ``False`` if none is running."""
        with self.lock:
            if not self.active or self.reason is not None:
                return False
            self.reason, self.told_at = reason, time.monotonic()
            _raise_in(self.ident, REASONS[reason])
        self.watchdog.wake()
        return True

    def _still_active(self) -> bool:
        return self.active

    def due(self, now: float) -> float | None:
        """The next time this guard needs the watchdog, or ``None``."""
        if not self.active or self.abandoned:
            return None
        if self.reason is not None:
            return self.told_at + self.watchdog.grace
        return self.deadline

    def check(self, now: float) -> None:
        """Time the task out, or abandon a thread that did not come back in time."""
        if not self.active or self.abandoned:
            return
        if self.reason is None:
            if self.deadline is not None and now >= self.deadline:
                self.stop("timeout")
            return
        if now < self.told_at + self.watchdog.grace:
            return
        with self.lock:
            if not self._still_active():
                return  # it came back just now
            self.abandoned = True
            self.active = False
            reason = self.reason
            # Settled under the lock: the thread, should it return now, finds the job
            # already settled and the guard abandoned, and records nothing.
            try:
                self.on_abandon(reason)
            except Exception:
                log.exception("settling the job of an abandoned worker thread failed")


class Watchdog:
    """The thread that times out and stops tasks running in worker threads.

    ``grace``: seconds a task told to stop has to return to Python before its thread is
    abandoned (see the module docstring).
    """

    def __init__(self, grace: float = 1.0) -> None:
        self.grace = grace
        self.guards: list[Guard] = []
        self._lock = threading.Lock()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="elfc-watchdog", daemon=True)
        self._thread.start()

    def guard(self, on_abandon: Callable[[str], None]) -> Guard:
        """A guard for the calling thread; ``on_abandon(reason)`` settles its job if the
        thread does not come back from a stop in time (called in the watchdog's thread)."""
        guard = Guard(self, on_abandon)
        with self._lock:
            self.guards.append(guard)
        return guard

    def forget(self, guard: Guard) -> None:
        """Stop watching ``guard`` (its thread has ended)."""
        with self._lock:
            if guard in self.guards:
                self.guards.remove(guard)

    def wake(self) -> None:
        """Have the watchdog look at its guards again (safe to call from a guarded thread)."""
        self._wake.put(None)

    def close(self) -> None:
        self._closed = True
        self._wake.put(None)
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._closed:
            with self._lock:
                guards = list(self.guards)
            now = time.monotonic()
            dues = [d for g in guards if (d := g.due(now)) is not None]
            wait = None if not dues else min(dues) - now
            if wait is None or wait > 0:
                with contextlib.suppress(queue.Empty):
                    self._wake.get(timeout=wait)
                continue
            for guard in guards:
                guard.check(time.monotonic())
