"""ELF201 fixed: results are used, or discarded on purpose with `_ =`; tasks returning None
need neither."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def discards(rounds: int = 2) -> int:
    _ = animals.measure()
    saved = [store.save("cat", i) for i in range(rounds)]
    store.log("saved")
    return animals.count() + len(saved)
