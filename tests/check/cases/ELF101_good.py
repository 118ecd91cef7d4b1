"""ELF101 fixed: the functions are defined at module level (a lambda written in the call is
fine); a call with a task result then runs once, where the result exists."""

from __future__ import annotations

import logging

from _elves import animals, store

from elfc import pipeline

log = logging.getLogger("census")


def shout(word: str) -> str:
    return word.upper() + "!"


def whisper(word: str) -> str:
    return word.lower()


@pipeline
def local_functions() -> int:
    m = animals.measure()
    loud = shout(m["species"])
    log.info("measured %s", m)
    quiet = whisper(m["species"])
    names = animals.names()
    ordered = sorted(names, key=lambda name: name[::-1])
    return store.save(loud + quiet, len(ordered))
