"""Huey on SQLite (SqliteHuey, WAL): one consumer with 2 worker processes and a 1 ms poll.

Two settings, each with its own database and consumer: SQLite's default fsync (synchronous=FULL
in WAL mode) and fsync off (synchronous=OFF, Huey's fastest). FANOUT waits for the source, then
enqueues a chord (2000 ``work`` members, ``reduce`` as callback: Huey counts members done with
an atomic counter). CHAIN is a Huey pipeline (``.then``): each worker enqueues the next hop, and
any of the 2 workers may take it. The client polls results every 1 ms too.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common import (
    Figures,
    Sizes,
    figures,
    first_result,
    measure_chain,
    measure_fanout,
    memory,
    stopping,
    wait_for,
)
from huey import Huey, SqliteHuey, group
from huey.api import Result, TaskWrapper

# Set on import in the driver and inherited by the consumers, which import this module too.
DIR = os.environ.get("PEERS_HUEY_DIR") or tempfile.mkdtemp(prefix="peers-huey-")
os.environ["PEERS_HUEY_DIR"] = DIR
POLL = 0.001
TIMEOUT = 300.0


@dataclass(frozen=True)
class App:
    huey: Huey
    source: TaskWrapper
    work: TaskWrapper
    reduce: TaskWrapper
    step: TaskWrapper


def define(huey: Huey) -> App:
    @huey.task()
    def source(n: int) -> int:
        return n

    @huey.task()
    def work(seed: int, i: int) -> int:
        return seed + i

    @huey.task()
    def reduce(values: list[int]) -> int:
        return sum(values)

    @huey.task()
    def step(x: int) -> int:
        return x + 1

    return App(huey, source, work, reduce, step)


# The consumers load these by name: huey_bench.fsync_default, huey_bench.fsync_off.
fsync_default = SqliteHuey("bench", filename=os.path.join(DIR, "default.db"), fsync=None)
fsync_off = SqliteHuey("bench", filename=os.path.join(DIR, "off.db"), fsync=False)
APPS = {"fsync_default": define(fsync_default), "fsync_off": define(fsync_off)}
ROWS = {"fsync_default": "huey (fsync default)", "fsync_off": "huey (fsync off)"}


def wait(result: Result) -> Any:
    # backoff 1 and max_delay = POLL: poll every 1 ms (Huey's own default starts at 50 ms).
    return result.get(blocking=True, timeout=TIMEOUT, backoff=1.0, max_delay=POLL)


def workloads(app: App) -> tuple[Callable[[int], int], Callable[[int], int]]:
    def fanout(n: int) -> int:
        seed = wait(app.source(n))
        done = app.huey.enqueue(group([app.work.s(seed, i) for i in range(n)]).then(app.reduce))
        return int(wait(done.callback))

    def chain(n: int) -> int:
        tasks = [app.step.s(0)] + [app.step.s() for _ in range(n - 1)]
        for before, after in itertools.pairwise(tasks):
            before.on_complete = after  # what .then() builds, without its walk to the tail
        results = app.huey.enqueue(tasks[0])
        last = results if isinstance(results, Result) else list(results)[-1]
        return int(wait(last))

    return fanout, chain


def consumer(name: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "huey.bin.huey_consumer", f"huey_bench.{name}",
            "--workers", "2", "--worker-type", "process", "--delay", str(POLL),
            "--no-periodic", "--quiet"]  # fmt: skip
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def run_one(name: str, sizes: Sizes) -> Figures:
    fanout, chain = workloads(APPS[name])
    launched = time.perf_counter()
    with stopping([consumer(name)]) as procs:
        wait_for(lambda: memory().processes >= 3 or procs[0].poll() is not None, "huey consumer")
        if procs[0].poll() is not None:
            raise RuntimeError(f"huey consumer exited with {procs[0].returncode}")
        start_s = first_result(fanout, launched)
        fan = measure_fanout(fanout, sizes)
        hop = measure_chain(chain, sizes)
        return figures(fan, hop, start_s, memory())


def run_round(sizes: Sizes) -> dict[str, Figures]:
    try:
        return {ROWS[name]: run_one(name, sizes) for name in APPS}
    finally:
        for app in APPS.values():
            app.huey.storage.close()
        for f in os.listdir(DIR):
            os.unlink(os.path.join(DIR, f))
        os.rmdir(DIR)
