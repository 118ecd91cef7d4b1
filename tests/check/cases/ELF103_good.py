"""ELF103 fixed: branches, `assert`, `while` and conditional expressions on task results are
regions of the graph, decided when the results exist."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def branches(limit: int = 3, loud: bool = False) -> int:
    m = animals.measure()
    if m["weight"] > 10:
        label = "heavy"
    elif m["weight"] > 5:
        label = "medium"
    else:
        label = "light"
    n = animals.count()
    while n < 5:
        n = store.save(label, n)
    weight = m["weight"] if m["species"] == "cat" else 0
    assert m["weight"] >= 0, "a weight is never negative"
    saved = 0
    for name in animals.names():
        if store.save(name, 1) > 3:
            continue
        saved += 1
    if not saved:
        return 0
    return store.save(label, weight + saved)
