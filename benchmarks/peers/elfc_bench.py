"""elfc on a SQLite mycelium (``run_on`` any other), with the pipelines and workers of
benchmarks/runtime.py.

FANOUT: one ``bench`` worker with 2 replicas (2 worker processes under a small parent).
CHAIN: a ``ping`` and a ``pong`` worker; the hops alternate, so every hop crosses processes.
"""

from __future__ import annotations

import time

from bench_elves import chain, fanout
from common import (
    Figures,
    Sizes,
    figures,
    first_result,
    larger,
    measure_chain,
    measure_fanout,
    memory,
    stopping,
    temp_dir,
)
from runtime import start_worker

from elfc.mycelium.urls import open_mycelium
from elfc.runtime.client import Mycelium

TIMEOUT = 300.0


def run_round(sizes: Sizes) -> dict[str, Figures]:
    with temp_dir("peers-elfc-") as tmp:
        return {"elfc": run_on(f"sqlite:///{tmp}/bench.db", sizes)}


def run_on(url: str, sizes: Sizes) -> Figures:
    """One round on the (empty) mycelium at ``url``."""
    m = Mycelium(open_mycelium(url))

    def run_fanout(n: int) -> int:
        return m.submit(fanout, n=n).wait(timeout=TIMEOUT)

    def run_chain(n: int) -> int:
        return m.submit(chain, n=n).wait(timeout=TIMEOUT)

    launched = time.perf_counter()
    with stopping([start_worker(url, "bench", 2)]):
        start_s = first_result(run_fanout, launched)
        fan = measure_fanout(run_fanout, sizes)
        mem = memory()
    with stopping([start_worker(url, "ping"), start_worker(url, "pong")]):
        hop = measure_chain(run_chain, sizes)
        mem = larger(mem, memory())
    m.store.close()
    return figures(fan, hop, start_s, mem)
