"""ELF120 (with -v): the static code fails when the pipeline is built with its default
arguments, at the line that raised."""

from __future__ import annotations

from _elves import store

from elfc import pipeline

SIZES = {"small": 1, "large": 3}


@pipeline
def sized(size: str = "medium") -> list[int]:
    rounds = SIZES[size]  # ELF120
    return [store.save(size, i) for i in range(rounds)]
