"""Celery with Redis as broker and result backend: one worker, prefork pool of 2 processes.

The harness starts redis-server on 127.0.0.1 (a free port, no persistence) for each round and
stops it after. FANOUT is one canvas, ``source | chord(work x 2000, reduce)``: the worker that
finishes ``source`` sends the 2000 members, and the Redis backend counts them done for the
chord. CHAIN is one ``chain`` of 200 ``step`` signatures: each worker sends the next hop.
Both are sent once and read with ``.get(follow_parents=False)``, which waits for the last task
only (a plain ``.get()`` also fetches every parent's result, a third of the speed on FANOUT).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from celery import Celery, chain, chord
from common import (
    Figures,
    Sizes,
    figures,
    first_result,
    measure_chain,
    measure_fanout,
    memory,
    redis_server,
    stopping,
)

TIMEOUT = 300.0

# The worker imports this module too; the URL reaches it through the environment.
app = Celery("celery_bench")
app.conf.update(
    broker_url=os.environ.get("PEERS_CELERY_REDIS", "redis://127.0.0.1:6379/0"),
    result_backend=os.environ.get("PEERS_CELERY_REDIS", "redis://127.0.0.1:6379/0"),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.source")
def source(n: int) -> int:
    return n


@app.task(name="bench.work")
def work(seed: int, i: int) -> int:
    return seed + i


@app.task(name="bench.reduce")
def reduce(values: list[int]) -> int:
    return sum(values)


@app.task(name="bench.step")
def step(x: int) -> int:
    return x + 1


def fanout(n: int) -> int:
    canvas = source.s(n) | chord([work.s(i) for i in range(n)], reduce.s())
    return int(canvas.apply_async().get(timeout=TIMEOUT, follow_parents=False))


def run_chain(n: int) -> int:
    canvas = chain(step.s(0), *[step.s() for _ in range(n - 1)])
    return int(canvas.apply_async().get(timeout=TIMEOUT, follow_parents=False))


def worker() -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "--pool", "prefork",
            "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip",
            "--without-mingle", "--without-heartbeat", "--hostname", "bench@127.0.0.1"]  # fmt: skip
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def run_round(sizes: Sizes) -> dict[str, Figures]:
    launched = time.perf_counter()
    with redis_server() as url:
        os.environ["PEERS_CELERY_REDIS"] = url
        app.conf.update(broker_url=url, result_backend=url)
        with stopping([worker()]):
            start_s = first_result(fanout, launched)
            fan = measure_fanout(fanout, sizes)
            hop = measure_chain(run_chain, sizes)
            mem = memory()
        app.close()
    return {"celery": figures(fan, hop, start_s, mem)}
