"""ELF104 fixed: loops and comprehensions over task results are expanded when the results
exist, one job per element."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def loops() -> list[int]:
    saved = []
    for name in animals.names():
        saved.append(store.save(name, 1))
    counts = sensors.counts()
    for species, n in counts.items():
        saved.append(store.save(species, n))
    sizes = [len(name) for name in animals.names()]
    for i in range(animals.count()):
        saved.append(store.save("cat", i))
    for i, name in enumerate(animals.names()):
        saved.append(store.save(name, i))
    return saved + sizes
