"""ELF118: an async pipeline."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline


@pipeline
async def counted() -> int:  # ELF118
    return animals.count()
