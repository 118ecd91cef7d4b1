"""ELF103 fixed: branch on static values (pipeline arguments); compare task results in
expressions that become derives, and let a task decide."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def branches(limit: int = 3, loud: bool = False) -> int:
    m = animals.measure()
    if loud:
        label = "HEAVY"
    elif limit > 5:
        label = "medium"
    else:
        label = "light"
    heavy = store.save_flag(m["weight"] > 10)
    i = 0
    while i < limit:
        heavy = heavy + store.save(label, i)
        i += 1
    weight = m["weight"] if loud else 0
    assert limit >= 0
    small = [i for i in range(limit) if i % 2 == 0]
    return store.save(label, weight + len(small) + heavy)
