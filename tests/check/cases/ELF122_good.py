"""ELF122 fixed: convert an operand so that Python accepts the operation."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def operations() -> int:
    n = animals.count()
    label = str(n) + "kg"
    more = animals.names() * 2
    return store.save(label, len(more))
