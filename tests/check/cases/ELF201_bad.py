"""ELF201 (warning): a task's result is never used."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def discards(rounds: int = 2) -> int:
    animals.measure()  # ELF201
    for i in range(rounds):
        store.save("cat", i)  # ELF201
    return animals.count()
