"""ELF110: task arguments that do not bind to the task's signature."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def arguments() -> list[int]:
    n = animals.count()
    return [
        store.save(specie="cat", weight=n),  # ELF110
        store.save("cat"),  # ELF110
        store.save("cat", n, 3),  # ELF110
        store.save("cat", species="dog", weight=n),  # ELF110
    ]
