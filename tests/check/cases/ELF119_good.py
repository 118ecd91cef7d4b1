"""ELF119 fixed: the recursion unrolled as a static loop; pipelines call other pipelines."""

from __future__ import annotations

from _elves import store

from elfc import pipeline


@pipeline
def countdown(n: int = 3) -> int:
    saved = 0
    for i in range(n, 0, -1):
        saved = store.save("cat", i)
    return saved


@pipeline
def ping(n: int = 3) -> int:
    return countdown(n) + pong(n)


@pipeline
def pong(n: int = 3) -> int:
    return store.save("dog", n)
