"""ELF106 fixed: helpers capture only static values; task results are used directly."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def captures(factor: int = 2) -> int:
    m = animals.measure()
    scale = lambda x: x * factor

    def label(prefix: str) -> str:
        return prefix + "-" + str(factor)

    return store.save(label("cat"), m["weight"] + scale(3))
