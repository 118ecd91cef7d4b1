"""ELF124: a branch or loop on a task result that a graph cannot give Python's meaning: a
`break` out of a branch (the next elements would wait for it), a `return` in a region inside a
loop, a `continue` not directly in its loop, a loop `else`."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def regions(limit: int = 3) -> int:
    m = animals.measure()
    saved = 0
    for i in range(limit):
        if store.save("cat", i) > 10:  # ELF124
            break
    for i in range(limit):
        if m["weight"] > i:  # ELF124
            return i
    for name in animals.names():
        if limit > 2:
            if store.save(name, 1) > 3:  # ELF124
                continue
        saved += 1
    n = animals.count()
    while n > 0:  # ELF124
        n = store.save("cat", n)
    else:
        saved += 1
    for name in animals.names():  # ELF124
        saved += store.save(name, 2)
    else:
        saved += 1
    return store.save("x", saved)


@pipeline
def tries(limit: int = 3) -> int:
    try:  # ELF124
        n = animals.count()
        return n
    except ValueError:
        n = 0
    try:  # ELF124
        n = animals.count()
        if n > limit:
            n = store.save("cat", n)
    except ValueError:
        n = 0
    try:  # ELF124
        n = animals.count()
    except ValueError:
        n = 0
    finally:
        store.save("log", 1)
    return n
