"""ELF203 (warning): a static loop that makes jobs and that only a `break` ends."""

from __future__ import annotations

import itertools

from _elves import store

from elfc import pipeline


@pipeline
def endless(limit: int = 3) -> list[int]:
    saved = []
    for i in itertools.count():  # ELF203
        if i >= limit:
            break
        saved.append(store.save("cat", i))
    while True:  # ELF203
        saved.append(store.save("dog", len(saved)))
        if len(saved) > 2 * limit:
            break
    return saved
