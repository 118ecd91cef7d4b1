"""ELF121 fixed: lists and dict comprehensions carry task results; generators of static values
are fine where Python evaluates them at submission."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def iterators(names: list[str] = ["cat", "dog"]) -> list[int]:
    counts = [animals.count() for _ in names]
    total = sum([n * 2 for n in counts])
    some = any([n > 3 for n in counts])
    by_name = {name: n for name, n in zip(names, counts, strict=True)}
    saved = store.save_all([n + 1 for n in counts])
    ranked = store.save_all(list(range(3)))
    lengths = sum(len(name) for name in names)
    return [total, int(some), by_name["cat"], saved, ranked, lengths]


@pipeline
def returns_a_list() -> object:
    return list(zip(["cat"], [animals.count()], strict=True))
