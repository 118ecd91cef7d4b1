"""ELF110 fixed: every call binds to `save(species: str, weight: int)`."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def arguments() -> list[int]:
    n = animals.count()
    return [
        store.save(species="cat", weight=n),
        store.save("cat", n),
        store.save("cat", weight=3),
    ]
