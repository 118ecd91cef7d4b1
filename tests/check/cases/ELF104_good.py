"""ELF104 fixed: loop over static values (arguments, ranges, literals, lists of task results);
a task takes the whole dynamic collection."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def loops(species: list[str] = ["cat", "dog"], rounds: int = 2) -> list[int]:
    saved = []
    for name in species:
        saved.append(store.save(name, 1))
    counts = [animals.count() for _ in range(rounds)]
    for i, n in enumerate(counts):
        saved.append(store.save(species[i % len(species)], n))
    for name, n in zip(species, counts, strict=False):
        saved.append(store.save(name, n))
    saved.append(store.save_all(counts))
    return saved
