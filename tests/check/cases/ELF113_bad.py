"""ELF113: task annotations that cannot cross a process: missing ones, locks, callables, open
files, iterators. Reported for every task, whether or not a pipeline calls it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TextIO

from elfc import elf, named, pipeline, task


@elf
class Broken:
    @task
    def untyped(self, x):  # ELF113
        return x

    @task
    def locked(self, lock: threading.Lock) -> int:  # ELF113
        return 0

    @task
    def callback(self, fn: Callable[[int], int]) -> int:  # ELF113
        return fn(1)

    @task
    def opened(self, path: str) -> TextIO:  # ELF113
        return open(path)

    @task
    def stream(self) -> Iterator[int]:  # ELF113
        yield 1

    @task
    def fine(self, n: int) -> int:
        return n


broken = named(Broken, "broken")


@pipeline
def uses_broken() -> int:
    return broken.fine(len(broken.opened("x.txt").name))
