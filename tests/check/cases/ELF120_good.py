"""ELF120 fixed: the defaults build."""

from __future__ import annotations

from _elves import store

from elfc import pipeline

SIZES = {"small": 1, "large": 3}


@pipeline
def sized(size: str = "small") -> list[int]:
    rounds = SIZES[size]
    return [store.save(size, i) for i in range(rounds)]
