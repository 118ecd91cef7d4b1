"""The watchdog's one invariant, from inside: a stop is raised in a thread only between
``arm`` and ``disarm``, never in the code that runs after, however close to the task's return
it is decided; and a thread that does not come back in time is abandoned exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

from elfc.errors import JobStopped, JobTimedOut
from elfc.runtime.watchdog import Watchdog


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_no_stop_lands_after_disarm_even_when_decided_as_the_task_returns() -> None:
    watchdog = Watchdog(grace=5.0)
    outcomes: Counter[str] = Counter()
    escaped: list[BaseException] = []

    def guarded() -> None:
        guard = watchdog.guard(on_abandon=lambda reason: None)
        for i in range(1500):
            try:
                try:
                    # Timeouts of 0 to 0.6 ms around a 0.3 ms task: some fire mid-task, some
                    # as it returns, some never.
                    guard.arm(timeout=0.0002 * (i % 4))
                    spin(0.0003)
                finally:
                    reason = guard.disarm()
                outcomes["returned, told" if reason else "returned"] += 1
            except JobStopped as stopped:
                outcomes[f"stopped: {stopped.reason}"] += 1
            try:
                spin(0.0002)  # elfc's own code after the task: nothing may arrive here
            except JobStopped as stray:
                escaped.append(stray)
        watchdog.forget(guard)

    def meddler(guards_of: threading.Thread) -> None:
        # Cancels from another thread too (as a heartbeat does), at random moments.
        while guards_of.is_alive():
            for guard in list(watchdog.guards):
                guard.stop("cancelled")
            time.sleep(0.0007)

    thread = threading.Thread(target=guarded)
    thread.start()
    other = threading.Thread(target=meddler, args=(thread,))
    other.start()
    thread.join(60)
    other.join(5)
    watchdog.close()
    assert not thread.is_alive()
    assert escaped == []
    assert outcomes["stopped: timeout"] > 0 and outcomes["stopped: cancelled"] > 0, outcomes
    assert outcomes["returned"] > 0, outcomes


def test_a_thread_blocked_in_c_is_abandoned_once_after_the_grace() -> None:
    watchdog = Watchdog(grace=0.2)
    abandoned: list[tuple[str, float]] = []
    result: list[str] = []
    t0 = time.monotonic()

    def blocked() -> None:
        guard = watchdog.guard(on_abandon=lambda r: abandoned.append((r, time.monotonic() - t0)))
        try:
            try:
                guard.arm(timeout=0.1)
                time.sleep(1.0)  # C code: the stop waits for it to return
            finally:
                guard.disarm()
        except JobStopped as stopped:
            result.append(f"{type(stopped).__name__} abandoned={guard.abandoned}")

    thread = threading.Thread(target=blocked)
    thread.start()
    thread.join(5)
    watchdog.close()
    [(reason, when)] = abandoned
    assert reason == "timeout" and 0.3 <= when < 0.9  # timeout + grace, before the sleep ends
    # The exception still arrives once the sleep returns; the guard says it was abandoned.
    assert result == [f"{JobTimedOut.__name__} abandoned=True"]
