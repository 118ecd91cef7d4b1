"""ELF106: a lambda or a nested function captures a task result; it would run at submission."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def captures() -> int:
    m = animals.measure()
    weigh = lambda: m["weight"]  # ELF106

    def species() -> str:
        return m["species"]  # ELF106

    return store.save(species(), weigh())
