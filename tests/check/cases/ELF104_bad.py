"""ELF104: a loop or comprehension over a task result, whose length is unknown at submission."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def loops() -> list[int]:
    saved = []
    for name in animals.names():  # ELF104
        saved.append(store.save(name, 1))
    counts = sensors.counts()
    for species, n in counts.items():  # ELF104
        saved.append(store.save(species, n))
    sizes = [len(name) for name in animals.names()]  # ELF104
    for i in range(animals.count()):  # ELF104
        saved.append(store.save("cat", i))
    for i, name in enumerate(animals.names()):  # ELF104
        saved.append(store.save(name, i))
    return saved + sizes
