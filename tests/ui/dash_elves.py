"""Elves and pipelines whose runs the dashboard tests look at: a run that succeeds, one that
fails with a traceback, one held running by a gate file, one whose result is hostile HTML,
and a wide one (``wide(n)``: n jobs and a sum)."""

from __future__ import annotations

import time
from pathlib import Path

from elfc import elf, named, pipeline, task


@elf
class Maker:
    """Small arithmetic, a deliberate failure, a wait on a file, and text handed back."""

    @task
    def square(self, i: int) -> int:
        return i * i

    @task
    def total(self, xs: list[int]) -> int:
        return sum(xs)

    @task
    def explode(self, n: int) -> int:
        if n > 0:
            raise ValueError(f"refusing {n}: <b>not bold</b>")
        return n

    @task
    def hold(self, gate: str) -> str:
        """Wait until the file ``gate`` exists (at most 120 s), then hand back its name."""
        deadline = time.monotonic() + 120
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return gate

    @task
    def echo(self, text: str) -> str:
        return text


maker = named(Maker, "maker")
holder = named(Maker, "holder")
"""A second instance for ``gated``, so a held job never blocks the other runs' workers."""


@pipeline
def wide(n: int = 10) -> int:
    """``n`` squares and their sum."""
    return maker.total([maker.square(i) for i in range(n)])


@pipeline
def broken(n: int = 3) -> int:
    """``explode`` fails for ``n > 0``; the ``square`` after it is skipped."""
    bad = maker.explode(n)
    return maker.square(bad)


@pipeline
def gated(gate: str) -> str:
    """Runs until the file ``gate`` exists, then one more step."""
    opened = holder.hold(gate)
    return holder.echo(opened)


@pipeline
def hostile(text: str) -> str:
    """Hands ``text`` back: the dashboard must show it as text."""
    return maker.echo(text)
