"""ELF116 fixed: the module imports."""

from __future__ import annotations

from _elves import Storage, animals

from elfc import named, pipeline

SETTINGS = {"path": "store.json"}
local_store = named(Storage, "local-store", path=SETTINGS["path"])


@pipeline
def counted() -> int:
    n = animals.count()
    return local_store.save("cat", n)
