"""ELF203 fixed: bounded loops. A generator of unknown length is fine (`elfc check -v` says how
many jobs the defaults make)."""

from __future__ import annotations

from collections.abc import Iterator

from _elves import store

from elfc import pipeline


def batches(limit: int) -> Iterator[int]:
    yield from range(limit)


@pipeline
def bounded(limit: int = 3) -> list[int]:
    saved = []
    for i in range(limit):
        saved.append(store.save("cat", i))
    i = 0
    while i < limit:
        saved.append(store.save("dog", i))
        i += 1
    for b in batches(limit):
        saved.append(store.save("cow", b))
    return saved
