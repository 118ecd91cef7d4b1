"""ELF103: a branch on a task result that a graph cannot give Python's meaning: a `break` out
of it, a `return` in it below the pipeline's top level, a `continue` not directly in its loop, a
loop `else` on a task result, a filter on a task result in a comprehension over a static
value."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def branches(limit: int = 3) -> int:
    m = animals.measure()
    saved = 0
    for i in range(limit):
        if store.save("cat", i) > 10:  # ELF103
            break
    for i in range(limit):
        if m["weight"] > i:  # ELF103
            return i
    for name in animals.names():
        if limit > 2:
            if store.save(name, 1) > 3:  # ELF103
                continue
        saved += 1
    weight = 0
    n = animals.count()
    while n > 0:  # ELF103
        n = store.save("cat", n)
    else:
        saved += 1
    small = [i for i in range(limit) if i < n]  # ELF103
    return store.save("x", weight + len(small) + saved)
