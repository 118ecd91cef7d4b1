"""ELF115 fixed: pipelines are defined with `def` in a module file."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline


@pipeline
def made_by_def() -> int:
    return animals.count()
