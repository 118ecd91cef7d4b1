"""ELF108 fixed: only @task methods are called on handles."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def not_tasks() -> int:
    n = animals.count()
    return store.save("cat", n)
