"""ELF105 fixed: failures and resources are handled inside tasks, results are returned rather
than stored in globals, and a pipeline returns a list instead of yielding."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


@pipeline
def statements() -> int:
    return animals.count()


@pipeline
def returns_instead_of_global() -> int:
    return animals.count()


def make_counter() -> object:
    start = 1

    @pipeline
    def counter() -> int:
        return store.save("cat", start)

    return counter


counter = make_counter()


@pipeline
def collects(rounds: int = 2) -> list[int]:
    return [store.save("cat", i) for i in range(rounds)]


@pipeline
def branches_on_static(kind: str = "cat") -> int:
    if kind == "cat":
        return animals.count()
    return 0
