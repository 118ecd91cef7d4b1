"""ELF103: a comprehension's filter on a task result over a static iterable (the elements kept
are only known at run time, and each is static data): the graph must be known at submission."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def branches(limit: int = 3) -> int:
    n = animals.count()
    small = [i for i in range(limit) if i < n]  # ELF103
    return store.save("x", len(small))
