"""Elves and pipelines the chaos suite runs in real worker processes (imported by path, as
``tests/runtime/elves_for_tests.py`` is): a two-elf fan-out whose every execution is logged,
a task that kills its own worker, and a pipeline of chained derives.
"""

from __future__ import annotations

import os
import signal
import time

from elfc import elf, named, pipeline, task


def append_line(path: str, text: str) -> None:
    """One ``O_APPEND`` write: atomic between processes, so lines never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text}\n".encode())
    finally:
        os.close(fd)


@elf
class Squarer:
    @task
    def square(self, log: str, i: int, pause: float) -> int:
        """``i * i`` after ``pause`` seconds; logs ``square <i>`` once it is done."""
        time.sleep(pause)
        append_line(log, f"square {i}")
        return i * i


@elf
class Adder:
    @task
    def add(self, log: str, group: int, values: list[int]) -> int:
        append_line(log, f"add {group}")
        return sum(values)

    @task
    def numbers(self, log: str, n: int) -> list[int]:
        append_line(log, "numbers")
        return list(range(n))


@elf
class Crasher:
    @task
    def crash(self, log: str) -> int:
        """Kills its own worker process, every time (as a crash in native code would)."""
        append_line(log, f"crash {os.getpid()}")
        os.kill(os.getpid(), signal.SIGKILL)
        return 0  # never reached

    @task
    def fine(self, x: int) -> int:
        return x


squarer = named(Squarer, "squarer")
adder = named(Adder, "adder")
crasher = named(Crasher, "crasher")


@pipeline
def fan(log: str, n: int = 200, groups: int = 10, pause: float = 0.0) -> int:
    """``n`` squares on one elf, summed in ``groups`` on another, then summed again there:
    ``sum(i * i for i in range(n))``."""
    squares = [squarer.square(log, i, pause) for i in range(n)]
    size = (n + groups - 1) // groups
    partial = [adder.add(log, g, squares[g * size : (g + 1) * size]) for g in range(groups)]
    return adder.add(log, groups, partial)


@pipeline
def dynamic_fan(log: str, n: int = 2000, pause: float = 0.0, expand_pause: float = 0.0) -> int:
    """A loop over a task's list: expanded at run time into one square per element (the
    static ``time.sleep`` runs at expansion, making it last long enough to be killed in)."""
    squares = []
    for i in adder.numbers(log, n):
        time.sleep(expand_pause)
        squares.append(squarer.square(log, i, pause))
    return adder.add(log, -1, squares)


@pipeline
def crashing(log: str) -> list[int]:
    """A job that kills every worker that runs it, beside one that succeeds."""
    return [crasher.crash(log), crasher.fine(7)]


@pipeline
def chained(log: str) -> int:
    """A derive nested 150 deep (``x = x + 1`` in a static loop), read by one task."""
    x = squarer.square(log, 1, 0.0)
    for _ in range(150):
        x = x + 1
    return squarer.square(log, x, 0.0)


@pipeline
def too_deep(log: str) -> int:
    """A derive nested 500 deep: more than a worker can decode, refused at submission."""
    x = squarer.square(log, 1, 0.0)
    for _ in range(500):
        x = x + 1
    return squarer.square(log, x, 0.0)


def logged_total(log: str, values: list[int]) -> int:
    """A plain function with a side effect, called on a task result: logs ``helper``."""
    append_line(log, f"helper {len(values)}")
    return sum(values)


@pipeline
def helped(log: str, n: int = 5, pause: float = 2.0) -> int:
    """A helper between two tasks, its consumer slow enough to be killed in."""
    total = logged_total(log, adder.numbers(log, n))
    return squarer.square(log, total, pause)
