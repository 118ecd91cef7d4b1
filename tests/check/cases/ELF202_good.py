"""ELF202 fixed: every handle is used by a pipeline."""

from __future__ import annotations

from _elves import Storage, animals

from elfc import named, pipeline

archive = named(Storage, "archive")


@pipeline
def counted() -> int:
    return archive.save("cat", animals.count())
