"""ELF119: a pipeline that calls itself, directly or through another pipeline."""

from __future__ import annotations

from _elves import store

from elfc import pipeline


@pipeline
def countdown(n: int = 3) -> int:
    saved = store.save("cat", n)
    return countdown(n - 1) if n else saved  # ELF119


@pipeline
def ping(n: int = 3) -> int:
    return pong(n - 1)  # ELF119


@pipeline
def pong(n: int = 3) -> int:
    return ping(n - 1)  # ELF119
