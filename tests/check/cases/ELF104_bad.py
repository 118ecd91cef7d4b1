"""ELF104: a comprehension whose inner loop iterates a task call's result (the outer loop is
expanded at run time; an inner iterable made by a task in each element is not)."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline


@pipeline
def loops() -> list[int]:
    return [len(a + b) for a in animals.names() for b in animals.names()]  # ELF104
