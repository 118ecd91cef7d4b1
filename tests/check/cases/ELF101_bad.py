"""ELF101: a plain function (or a builtin that is not pure) is called with a task result, at
submission, before the result exists."""

from __future__ import annotations

from _elves import animals, store

from elfc import pipeline


def shout(word: str) -> str:
    return word.upper() + "!"


@pipeline
def plain_function() -> int:
    m = animals.measure()
    loud = shout(m["species"])  # ELF101
    print(m)  # ELF101
    names = animals.names()
    joined = ascii(names)  # ELF101
    ordered = sorted(names, key=len)  # ELF101
    return store.save(loud, len(joined) + len(ordered))
