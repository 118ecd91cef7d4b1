"""ELF101 fixed: work on task results happens in tasks, or with whitelisted pure builtins;
plain functions take static values."""

from __future__ import annotations

from _elves import animals, store, text

from elfc import pipeline


def shout(word: str) -> str:
    return word.upper() + "!"


@pipeline
def plain_function(greeting: str = "hello") -> int:
    m = animals.measure()
    loud = text.upper(m["species"])
    intro = shout(greeting)
    names = animals.names()
    joined = text.join(names)
    ordered = sorted(names)
    return store.save(loud + intro, len(joined) + len(ordered))
