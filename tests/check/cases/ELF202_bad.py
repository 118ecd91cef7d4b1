"""ELF202 (warning): a handle that no pipeline uses."""

from __future__ import annotations

from _elves import Storage, animals

from elfc import named, pipeline

archive = named(Storage, "archive")  # ELF202


@pipeline
def counted() -> int:
    return animals.count()
