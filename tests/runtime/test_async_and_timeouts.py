"""``async def`` tasks run to completion; an in-process run honours timeouts as workers do."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from elfc import RunFailed, connect
from tests.runtime.fixtures import async_shop
from tests.runtime.fixtures.harness import ThreadWorkers


def test_an_async_task_runs_in_process() -> None:
    assert async_shop.fetch_all.check() == []
    assert async_shop.fetch_all(3) == sum(3 * i for i in range(3))


def test_an_async_task_runs_on_a_worker(url: str, threads: ThreadWorkers) -> None:
    threads.start(async_shop.fetcher)
    assert connect(url).submit(async_shop.fetch_all, 4).wait(timeout=60) == 18


def test_an_in_process_run_fails_a_task_past_its_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(RunFailed) as failed:
        async_shop.too_slow(2.0)
    assert time.monotonic() - started < 1.5
    (failure,) = failed.value.failures
    assert (failure.error_type, failure.message) == ("TimeoutError", "timeout")
    assert async_shop.too_slow(0.01) == "done"


def test_the_timeout_holds_off_the_main_thread_too() -> None:
    outcome: list[Any] = []

    def run() -> None:
        try:
            async_shop.too_slow(2.0)
        except RunFailed as exc:
            outcome.append(exc.failures[0].error_type)

    started = time.monotonic()
    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert outcome == ["TimeoutError"]
    assert time.monotonic() - started < 1.5
