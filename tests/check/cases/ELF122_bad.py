"""ELF122: an operator on task results that Python would reject for their declared types."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def operations() -> int:
    n = animals.count()
    label = n + "kg"  # ELF122
    more = animals.names() * animals.names()  # ELF122
    return store.save(label, len(more))
