"""ELF118 fixed: a plain def; its task calls already run concurrently as jobs."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline


@pipeline
def counted() -> int:
    return animals.count()
