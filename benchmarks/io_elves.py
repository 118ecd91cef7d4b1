"""The elf and pipeline of the threads benchmark: an I/O-bound fan-out (each task sleeps)."""

from __future__ import annotations

import time

from elfc import elf, named, pipeline, task


@elf
class Fetcher:
    """Stands for a task that waits on the network: it sleeps, holding no CPU and no GIL."""

    @task
    def fetch(self, i: int, ms: float) -> int:
        time.sleep(ms / 1000)
        return i

    @task
    def total(self, values: list[int]) -> int:
        return sum(values)


fetcher = named(Fetcher, "fetcher")
collector = named(Fetcher, "collector")


@pipeline
def io_fanout(n: int = 800, ms: float = 10.0) -> int:
    """``n`` independent 10 ms waits and one sum over them."""
    return collector.total([fetcher.fetch(i, ms) for i in range(n)])
