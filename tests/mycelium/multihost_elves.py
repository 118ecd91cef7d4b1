"""The elf of the multi-host tests: a fan-out whose every call is recorded.

Each call appends a line (its key, ``source``, ``work 17`` or ``total``, a tab, its job's id)
to a file of its process in ``$ELFC_CALLS``, named ``<network namespace inode>-<pid>``: which
host ran which job how many times, read back by ``tests.mycelium.netns.calls``.
"""

from __future__ import annotations

import os
import time

from elfc import elf, named, pipeline, task
from elfc.runtime.context import current_job
from tests.runtime.elves_for_tests import append_line


def _record(key: str) -> None:
    ns = os.readlink("/proc/self/ns/net").removeprefix("net:[").removesuffix("]")
    job = current_job()
    assert job is not None
    append_line(os.path.join(os.environ["ELFC_CALLS"], f"{ns}-{os.getpid()}"), f"{key}\t{job.job}")


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
