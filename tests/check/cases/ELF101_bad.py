"""ELF101: a function is called with a task result where no process that runs it could be
handed the function: a task result itself, a function or object the pipeline made, a function
defined in `__main__`."""

from __future__ import annotations

import logging

from _elves import animals, store

from elfc import pipeline


def shout(word: str) -> str:
    return word.upper() + "!"


@pipeline
def local_functions() -> int:
    m = animals.measure()
    louder = shout
    loud = louder(m["species"])  # ELF101
    log = logging.getLogger("census")
    log.info("measured %s", m)

    def whisper(word: str) -> str:
        return word.lower()

    quiet = whisper(m["species"])  # ELF101
    return store.save(loud + quiet, 1)
