"""ELF123: what the pipeline returns cannot validate as its return annotation."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline


@pipeline
def counted() -> str:
    return animals.count()  # ELF123
