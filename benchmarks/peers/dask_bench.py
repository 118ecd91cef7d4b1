"""Dask distributed: LocalCluster of 2 worker processes, 1 thread each, on 127.0.0.1.

Futures API (``submit``/``map`` with futures as arguments; measured a little faster here than
building the same graph with ``dask.delayed``), ``pure=False`` so no result is reused between
runs. The CHAIN is left to Dask's scheduler, which keeps dependent hops on one worker; pinning
them to alternate workers was slower. The scheduler and the two nannies run inside the client
process (LocalCluster's default), so their memory is in the client's RSS, not in the system's.
"""

from __future__ import annotations

import logging
import time

from common import (
    HOST,
    Figures,
    Sizes,
    figures,
    first_result,
    measure_chain,
    measure_fanout,
    memory,
)
from dask.distributed import Client, LocalCluster

TIMEOUT = 300.0


def source(n: int) -> int:
    return n


def work(seed: int, i: int) -> int:
    return seed + i


def reduce(values: list[int]) -> int:
    return sum(values)


def step(x: int) -> int:
    return x + 1


def run_round(sizes: Sizes) -> dict[str, Figures]:
    launched = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host=HOST,
        dashboard_address=None,
        worker_dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)

    def fanout(n: int) -> int:
        seed = client.submit(source, n, pure=False)
        parts = client.map(work, [seed] * n, range(n), pure=False)
        return int(client.submit(reduce, parts, pure=False).result(timeout=TIMEOUT))

    def chain(n: int) -> int:
        x = client.submit(step, 0, pure=False)
        for _ in range(n - 1):
            x = client.submit(step, x, pure=False)
        return int(x.result(timeout=TIMEOUT))

    try:
        start_s = first_result(fanout, launched)
        fan = measure_fanout(fanout, sizes)
        hop = measure_chain(chain, sizes)
        mem = memory()
    finally:
        client.close()
        cluster.close()
    return {"dask": figures(fan, hop, start_s, mem)}
