"""ELF105: statements a pipeline body cannot contain: try ... except*, with, global, nonlocal,
del, yield, await (in an async pipeline, which is ELF118 too), match, class."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline

LAST = 0


@pipeline
def statements() -> int:
    try:  # ELF105
        n = animals.count()
    except* ValueError:
        n = 0
    with open("log.txt") as log:  # ELF105
        log.write("counted")
    del log  # ELF105
    return n


@pipeline
def sets_a_global() -> int:
    global LAST  # ELF105
    LAST = 1
    return animals.count()


def make_counter() -> object:
    calls = 0

    @pipeline
    def counter() -> int:
        nonlocal calls  # ELF105
        calls = 1
        return animals.count()

    return counter


counter = make_counter()


@pipeline
def generates(rounds: int = 2) -> int:
    for i in range(rounds):
        yield store.save("cat", i)  # ELF105
    return 0


@pipeline
async def awaits() -> int:  # ELF118
    await animals.count()  # ELF105
    return 0


@pipeline
def matches(kind: str = "cat") -> int:
    match kind:  # ELF105
        case "cat":
            return animals.count()
        case _:
            return 0


@pipeline
def defines_a_class() -> int:
    class Local:  # ELF105
        pass

    return animals.count()
