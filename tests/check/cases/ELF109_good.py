"""ELF109 fixed: tasks are called on module-level handles made with named()."""

from __future__ import annotations

from _elves import Storage, animals

from elfc import named, pipeline

local = named(Storage, "local", "local.json")


@pipeline
def local_elves() -> int:
    n = animals.count()
    saved = local.save("cat", n)
    return local.save("dog", saved)
