"""ELF116: a module that does not import (here, a syntax error) is one diagnostic, not a
traceback."""

from __future__ import annotations

from _elves import animals

from elfc import pipeline


@pipeline
def broken() -> int:
    n = animals.count(  # ELF116
    return n
