"""ELF104: a loop over a task result that a graph cannot give Python's meaning: a `for ...
else` (the `else` runs after a `break` that happens in an expansion), and a comprehension whose
inner loop calls a task for its iterable."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def loops() -> list[int]:
    saved = []
    for name in animals.names():  # ELF104
        saved.append(store.save(name, 1))
    else:
        saved.append(0)
    sizes = [len(a + b) for a in animals.names() for b in animals.names()]  # ELF104
    return saved + sizes
