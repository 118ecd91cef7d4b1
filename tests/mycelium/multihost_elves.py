"""The elf of the multi-host tests: a fan-out whose every call is recorded.

Each call appends its job's key (``source``, ``work 17``, ``total``) to a file of its
process in ``$ELFC_CALLS``, named ``<network namespace inode>-<pid>``: which host ran which
job how many times, read back by ``tests.mycelium.netns.calls``.
"""

from __future__ import annotations

import os
import time

from elfc import elf, named, pipeline, task


def _record(key: str) -> None:
    ns = os.readlink("/proc/self/ns/net").removeprefix("net:[").removesuffix("]")
    path = os.path.join(os.environ["ELFC_CALLS"], f"{ns}-{os.getpid()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{key}\n".encode())
    finally:
        os.close(fd)


@elf
class Spread:
    @task
    def source(self, n: int) -> int:
        _record("source")
        return n

    @task
    def work(self, seed: int, i: int, pause: float) -> int:
        _record(f"work {i}")
        time.sleep(pause)
        return seed + i

    @task
    def total(self, values: list[int]) -> int:
        _record("total")
        return sum(values)


spread = named(Spread, "spread")


@pipeline
def fanout(n: int, pause: float = 0.0) -> int:
    seed = spread.source(n)
    parts = [spread.work(seed, i, pause) for i in range(n)]
    return spread.total(parts)


def expected(n: int) -> int:
    """What ``fanout(n)`` returns: the sum of ``n + i`` for ``i < n``."""
    return n * n + n * (n - 1) // 2


def keys(n: int) -> set[str]:
    """The key of every job of ``fanout(n)``."""
    return {"source", "total", *(f"work {i}" for i in range(n))}
