"""ELF124 fixed: the break decided in a task, the return after the loop, the branch directly
in its loop, the `else` after the loop; the `return` after the `try`, the branch after it, the
task call out of the `finally`."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def regions(limit: int = 3) -> int:
    m = animals.measure()
    saved = 0
    for i in range(limit):
        saved += store.save("cat", i)
    found = -1
    for i in range(limit):
        if found < 0 and m["weight"] > i:
            found = i
    for name in animals.names():
        if store.save(name, 1) > 3:
            continue
        saved += 1
    n = animals.count()
    while n < 5:
        n = store.save("cat", n)
    saved += 1
    return store.save("x", saved + found)


@pipeline
def tries(limit: int = 3) -> int:
    try:
        n = animals.count()
    except ValueError:
        n = 0
    if n > limit:
        n = store.save("cat", n)
    try:
        n = store.save("dog", n)
    except ValueError:
        n = 0
    finally:
        limit += 1
    return n
