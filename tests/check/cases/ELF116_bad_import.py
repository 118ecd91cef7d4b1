"""ELF116: a module whose import raises is reported at the line that raised, in that module."""

from __future__ import annotations

from _elves import Storage

from elfc import named, pipeline

SETTINGS = {"path": "store.json"}
store = named(Storage, "store", path=SETTINGS["directory"])  # ELF116


@pipeline
def saves() -> int:
    return store.save("cat", 1)
