"""ELF121: an iterator (a generator expression, zip, enumerate, range, a dict view...) where a
value is needed: as a task argument, the pipeline's result, or holding task results in a pure
builtin. Values reach tasks and derives as JSON data, and an iterator is not data."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def iterators(names: list[str] = ["cat", "dog"]) -> list[int]:
    counts = [animals.count() for _ in names]
    total = sum(n * 2 for n in counts)  # ELF121
    some = any(n > 3 for n in counts)  # ELF121
    by_name = dict(zip(names, counts))  # ELF121
    saved = store.save_all(n + 1 for n in counts)  # ELF121
    ranked = store.save_all(range(3))  # ELF121
    return [total, int(some), by_name["cat"], saved, ranked]


@pipeline
def returns_an_iterator() -> object:
    return zip(["cat"], [animals.count()])  # ELF121
