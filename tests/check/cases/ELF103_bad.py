"""ELF103: branching on a task result (if, elif, while, conditional expression, assert, a
comprehension's condition): the graph must be known at submission."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def branches(limit: int = 3) -> int:
    m = animals.measure()
    if m["weight"] > 10:  # ELF103
        label = "heavy"
    elif m["weight"] > 5:  # ELF103
        label = "medium"
    else:
        label = "light"
    n = animals.count()
    while n > 0:  # ELF103
        n = store.save(label, n)
    weight = m["weight"] if m["species"] == "cat" else 0  # ELF103
    assert m["weight"] >= 0  # ELF103
    small = [i for i in range(limit) if i < n]  # ELF103
    return store.save(label, weight + len(small))
