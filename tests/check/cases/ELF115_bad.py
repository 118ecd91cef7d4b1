"""ELF115: a pipeline whose source Python does not keep: made by exec, or a lambda."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline

exec(
    """
@pipeline
def made_by_exec() -> int:  # ELF115
    return animals.count()
"""
)

by_lambda = pipeline(lambda: animals.count())  # ELF115
