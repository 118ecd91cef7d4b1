"""ELF108: a method that is not a @task is called on a handle."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def not_tasks() -> int:
    where = store.location()  # ELF108
    n = animals.counted()  # ELF108
    return store.save(where, n)
