"""ELF123 fixed: the return annotation says what the body returns."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline


@pipeline
def counted() -> int:
    return animals.count()
