"""Serving elves in threads of this process: ``elfc.serve(...)``.

Each replica is a :class:`ThreadWorker` in a thread of its own: the same claim -> run ->
record loop as a worker process (:class:`~elfc.runtime.worker.Worker`), with its own mycelium
connection, heartbeat thread, doorbell and elf instance, so leases, heartbeats, batching and
graceful stop behave as they do in a process. What differs is how a running task is stopped:
signals reach only a main thread, so a :class:`~elfc.runtime.watchdog.Watchdog` raises the
stop in the task's thread and, if a task blocked in C code does not come back in time, settles
its job for it and abandons the thread (see ``watchdog.py`` for exactly what Python can and
cannot interrupt).

A :class:`Serving` holds the replicas. Its monitor thread restarts a replica whose loop died
(an exception escaped it: the mycelium unreachable, the elf's constructor raising) after
logging the traceback at ERROR, up to :data:`MAX_RESTARTS` times; then it gives up on it and
:meth:`Serving.check` and :meth:`Serving.stop` raise :class:`ServeError` with the tracebacks.
An abandoned replica is replaced at once. Nothing fails silently.

Logging (``elfc.runtime.serve``): start and stop at INFO, a replaced or restarted thread at
WARNING, a dead one at ERROR with its traceback.

Usage::

    with elfc.serve(animals, store, mycelium="sqlite:///runs.db", threads=4) as serving:
        census.submit(rounds=10).wait()
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, Literal

from elfc.decorators import Handle
from elfc.errors import ElfcError, JobStopped, ServeError
from elfc.model.records import Claimed
from elfc.mycelium.store import Store
from elfc.mycelium.urls import default_url, open_mycelium
from elfc.runtime.execute import Failure
from elfc.runtime.watchdog import REASONS, Guard, Watchdog
from elfc.runtime.worker import DEFAULT_LEASE, Mismatch, Outcome, Worker

log = logging.getLogger(__name__)

MAX_RESTARTS = 3
"""Restarts of one replica whose loop keeps dying before :class:`Serving` gives up on it."""


class ThreadWorker(Worker):
    """A :class:`Worker` whose task is stopped by a watchdog instead of signals.

    Usage: ``ThreadWorker(store, handle, watchdog=w).serve()`` in a thread of its own.
    """

    def __init__(self, store: Store, handle: Handle, *, watchdog: Watchdog, **options: Any) -> None:
        super().__init__(store, handle, **options)
        self.watchdog = watchdog
        self.guard: Guard | None = None
        self.abandoned = threading.Event()
        """Set when the watchdog gave up on this worker's thread and settled its job."""

    def serve(
        self,
        *,
        idle_exit: float | None = None,
        install_signals: bool = False,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        self.guard = self.watchdog.guard(self._abandon)
        try:
            return super().serve(idle_exit=idle_exit, install_signals=False, on_ready=on_ready)
        finally:
            self.watchdog.forget(self.guard)

    def interrupt(self) -> bool:
        """Stop the running task now; its job is given back. ``False`` if none was running."""
        return self.guard is not None and self.guard.stop("stopped")

    def run_one(self, job: Claimed) -> Outcome:
        try:
            return super().run_one(job)
        finally:
            # The one stop raised per task may have landed as _disarm was being entered,
            # leaving the guard active: disarm again (a no-op when it is not).
            assert self.guard is not None
            self.guard.disarm()

    # The three hooks Worker calls around a task (see Worker._arm).
    def _arm(self, timeout: float | None) -> None:
        assert self.guard is not None
        self.guard.arm(timeout)

    def _disarm(self) -> None:
        assert self.guard is not None
        reason = self.guard.disarm()
        if self.guard.abandoned:
            raise JobStopped("abandoned")  # its job was settled by the watchdog
        # Told to stop as it returned: the stop wins, as a signal landing then would. A stop
        # already on its way out of the task keeps its own traceback.
        if reason is not None and not isinstance(sys.exc_info()[1], JobStopped):
            raise REASONS[reason]()

    def _interrupt(self, reason: str) -> None:
        if self.guard is not None:
            self.guard.stop(reason)

    def _complete(self, done: list[tuple[str, bytes]]) -> None:
        if self.abandoned.is_set():
            # The watchdog gave these back when it abandoned this thread; another replica
            # runs them again (at-least-once).
            log.debug("abandoned worker %s drops %d result(s)", self.id, len(done))
            return
        super()._complete(done)

    def _abandon(self, reason: str) -> None:
        """The task did not return to Python after it was told to stop (called by the
        watchdog, under the guard's lock): settle its job as the thread would have, give
        back the other jobs this worker holds, stop its heartbeat."""
        job, ident = self.current, self.guard.ident if self.guard else 0
        self.stopping.set()
        stack = _task_stack(sys._current_frames().get(ident))
        if job is not None:
            self._record(self._abandoned_outcome(job, reason, stack))
        others = sorted(self.held - {job.id} if job else self.held)
        if others:
            self.store.release_many(others, self.id)
        self.held.clear()
        self.finished.set()  # its heartbeat stops: nothing is held any more
        self.abandoned.set()
        log.warning(
            "worker thread %s: task %s did not return to Python %.1f s after it was told to "
            "stop (%s); its job was settled and the thread abandoned, where it was:\n%s",
            self.id, job.task if job else "?", self.watchdog.grace, reason, stack,
        )  # fmt: skip

    def _abandoned_outcome(self, job: Claimed, reason: str, stack: str) -> Outcome:
        task = self.info.tasks.get(job.task)
        if reason != "timeout" or task is None:
            return Outcome(job, released=True)
        outcome = self._failed(job, task, TimeoutError("timeout"), skip=0)
        assert outcome.failure is not None
        where = (
            f"the task was blocked outside Python (in C code) at its timeout and did not "
            f"return within {self.watchdog.grace} s; its thread was abandoned here:\n{stack}"
        )
        failure = Failure("TimeoutError", outcome.failure.message, where)
        return Outcome(job, failure=failure, retry_at=outcome.retry_at)


def _task_stack(frame: FrameType | None) -> str:
    """A stuck thread's stack from the task's frame down (elfc's own frames above it left
    out, as a task's traceback leaves them out)."""
    entries = traceback.extract_stack(frame)
    calls = [i for i, e in enumerate(entries) if e.name == "_call" and e.filename == _WORKER_FILE]
    return "".join(traceback.format_list(entries[calls[-1] + 1 if calls else 0 :]))


_WORKER_FILE = sys.modules[Worker.__module__].__file__


@dataclass
class Replica:
    """One thread serving one elf; replaced when its loop dies or its thread is abandoned."""

    handle: Handle
    worker: ThreadWorker
    thread: threading.Thread = field(default_factory=threading.Thread)
    restarts: int = 0
    error: BaseException | None = None
    """What escaped the worker's loop, if anything."""
    ended: bool = False
    given_up: bool = False
    abandoned: list[threading.Thread] = field(default_factory=list)


class Serving:
    """Elves served by threads of this process; made by :func:`serve`.

    ``stop()`` (or leaving the ``with`` block) stops them gracefully; ``workers`` are the
    current :class:`ThreadWorker` of each replica; ``errors`` what escaped their loops.
    """

    def __init__(
        self,
        handles: list[Handle],
        url: str,
        counts: Mapping[str, int],
        options: dict[str, Any],
        idle_exit: float | None,
        grace: float,
    ) -> None:
        self.url = url
        self.options = options
        self.idle_exit = idle_exit
        self.errors: list[BaseException] = []
        """Every exception that escaped a worker's loop (each was logged, and the replica
        restarted or given up on)."""
        self.given_up: list[BaseException] = []
        self._stopping = threading.Event()
        self._changed = threading.Event()
        self._lock = threading.Lock()
        self.watchdog = Watchdog(grace)
        self.replicas: list[Replica] = []
        try:
            for handle in handles:
                for _ in range(counts[handle.name]):
                    self.replicas.append(self._start(handle))
        except BaseException:
            self._stopping.set()
            for replica in self.replicas:
                replica.worker.stop()
            self._end_all(1.0)
            self.watchdog.close()
            raise
        self._monitor = threading.Thread(target=self._watch, name="elfc-serve", daemon=True)
        self._monitor.start()
        log.info("serving %s in %d thread(s)", ", ".join(counts), len(self.replicas))

    @property
    def workers(self) -> list[ThreadWorker]:
        with self._lock:
            return [r.worker for r in self.replicas]

    # -- starting and replacing ----------------------------------------------------------
    def _start(self, handle: Handle, replica: Replica | None = None) -> Replica:
        store = open_mycelium(self.url)  # each replica has its own connection, as a process
        worker = ThreadWorker(store, handle, watchdog=self.watchdog, **self.options)
        if replica is None:
            replica = Replica(handle, worker)
        else:
            replica.worker, replica.ended = worker, False
        replica.thread = threading.Thread(
            target=self._run, args=(replica, worker), name=f"elfc-{handle.name}", daemon=True
        )
        replica.thread.start()
        return replica

    def _run(self, replica: Replica, worker: ThreadWorker) -> None:
        try:
            worker.serve(idle_exit=self.idle_exit)
        except BaseException as exc:
            if not worker.abandoned.is_set():
                log.error("worker thread %s died", worker.id, exc_info=exc)
                self.errors.append(exc)
                replica.error = exc
        finally:
            if not worker.abandoned.is_set():
                worker.store.close()
            self._changed.set()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            self._changed.wait(0.25)
            self._changed.clear()
            with self._lock:
                replicas = list(self.replicas)
            for replica in replicas:
                if not self._stopping.is_set():
                    self._tend(replica)

    def _tend(self, replica: Replica) -> None:
        worker = replica.worker
        if worker.abandoned.is_set():
            log.warning("replacing abandoned worker thread %s", worker.id)
            replica.abandoned.append(replica.thread)
            self._restart(replica)
        elif replica.thread.is_alive() or replica.ended or replica.given_up:
            return
        elif replica.error is None:
            replica.ended = True  # idle_exit
        elif replica.restarts >= MAX_RESTARTS:
            replica.given_up = True
            self.given_up.append(replica.error)
            log.error("giving up on elf %r after %d restarts", replica.handle.name, MAX_RESTARTS)
        else:
            replica.restarts += 1
            log.warning(
                "restarting the worker thread for elf %r (%d of %d)",
                replica.handle.name, replica.restarts, MAX_RESTARTS,
            )  # fmt: skip
            time.sleep(min(0.1 * 2**replica.restarts, 2.0))
            replica.error = None
            self._restart(replica)

    def _restart(self, replica: Replica) -> None:
        try:
            with self._lock:
                if self._stopping.is_set():
                    return
                self._start(replica.handle, replica)
        except Exception as exc:  # the mycelium cannot be opened: counted as a death
            log.error("cannot restart the worker thread for %r", replica.handle.name, exc_info=exc)
            replica.error, replica.ended = exc, False
            self._changed.set()

    # -- waiting and stopping ------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`ServeError` if a replica was given up on (its loop kept dying)."""
        if self.given_up:
            raise ServeError(_describe(self.given_up))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every replica has ended (``idle_exit``, or :meth:`stop` from another
        thread) or a replica was given up on; ``True`` if they all ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.given_up:
            if self._all_ended():
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return False

    def _all_ended(self) -> bool:
        if all(r.ended or r.given_up for r in self.replicas):
            return True
        return self._stopping.is_set() and not any(r.thread.is_alive() for r in self.replicas)

    def interrupt(self) -> int:
        """Stop serving, and stop the tasks running now rather than let them finish: their
        jobs are given back, as a worker process does on a second SIGTERM. Returns how many
        tasks were told (each thread then ends; :meth:`stop` or :meth:`wait` for them)."""
        self._stopping.set()
        told = 0
        for worker in self.workers:
            worker.stop()
            told += worker.interrupt()
        return told

    def stop(self, grace: float | None = 10.0) -> None:
        """Stop serving: each thread finishes its task (for up to ``grace`` seconds; ``None``:
        as long as it takes), gives back the jobs it claimed and had not started, and ends.
        Tasks still running after ``grace`` are stopped and their jobs given back. Raises
        :class:`ServeError` if a replica had been given up on."""
        with self._lock:
            self._stopping.set()  # under the lock: no replica is restarted after this
        for worker in self.workers:
            worker.stop()
        self._end_all(grace)
        self._monitor.join(5)
        self.watchdog.close()
        log.info("stopped serving")
        self.check()

    def _end_all(self, grace: float | None) -> None:
        deadline = None if grace is None else time.monotonic() + grace
        for replica in self.replicas:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            replica.thread.join(left)
        if any(r.thread.is_alive() for r in self.replicas):
            self.interrupt()  # the watchdog abandons those that cannot be interrupted
            for replica in self.replicas:
                replica.thread.join(self.watchdog.grace + 1.0)
        stuck = [r.worker.id for r in self.replicas if r.thread.is_alive()]
        if stuck:
            log.warning("worker threads left running (blocked in C code): %s", " ".join(stuck))

    def __enter__(self) -> Serving:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _describe(errors: list[BaseException]) -> str:
    parts = [f"{len(errors)} worker thread(s) kept dying and were given up on:"]
    for exc in errors:
        parts.append("".join(traceback.format_exception(exc)).rstrip())
    return "\n".join(parts)


def serve(
    *elves: object,
    mycelium: str | None = None,
    threads: int | Mapping[str, int] = 1,
    lease: float = DEFAULT_LEASE,
    on_revision_mismatch: Mismatch = "fail",
    idle_exit: float | None = None,
    grace: float = 1.0,
    task_output: Literal["echo", "store", "off"] = "echo",
) -> Serving:
    """Serve elves in threads of this process until ``stop()``; a context manager.

    ``elves`` are handles (``named(...)``); ``threads`` the replicas of each, as one number for
    all or ``{"elf name": n}`` (unnamed elves get one); ``mycelium`` a URL (default: as
    :func:`elfc.connect`). Each replica is a worker as ``elfc worker`` runs one, in a thread:
    its own connection and elf instance. A task's ``timeout`` and a run's cancellation stop a
    running task by raising in its thread; ``grace`` is how long a task blocked in C code has
    to return to Python before its job is settled without it and its thread abandoned.

    Usage::

        with elfc.serve(fetcher, mycelium="sqlite:///runs.db", threads=16):
            crawl.submit(urls).wait()
    """
    handles = _handles(elves)
    counts = _counts(handles, threads)
    options: dict[str, Any] = {
        "lease": lease,
        "on_revision_mismatch": on_revision_mismatch,
        # What tasks print: stored per job, and written to this process's streams with echo.
        "echo_output": task_output == "echo",
        "capture_output": task_output != "off",
    }
    return Serving(handles, mycelium or default_url(), counts, options, idle_exit, grace)


def _handles(elves: tuple[object, ...]) -> list[Handle]:
    if not elves:
        raise ElfcError("serve() needs at least one elf handle: serve(store, mycelium=...)")
    handles: dict[str, Handle] = {}
    for e in elves:
        if not isinstance(e, Handle):
            raise ElfcError(
                f"serve() takes elf handles made by named(Class, 'name', ...), not {e!r}"
            )
        if e.name in handles and handles[e.name] is not e:
            raise ElfcError(f"serve() was given two different handles named {e.name!r}")
        handles[e.name] = e
    return list(handles.values())


def _counts(handles: list[Handle], threads: int | Mapping[str, int]) -> dict[str, int]:
    names = [h.name for h in handles]
    if isinstance(threads, int):
        counts = dict.fromkeys(names, threads)
    else:
        unknown = sorted(set(threads) - set(names))
        if unknown:
            raise ElfcError(f"threads= names {unknown} not among the served elves {names}")
        counts = {name: threads.get(name, 1) for name in names}
    bad = {n: c for n, c in counts.items() if not isinstance(c, int) or c < 1}
    if bad:
        raise ElfcError(f"threads must be at least 1 per elf, got {bad}")
    return counts
