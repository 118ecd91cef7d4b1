"""ELF114 fixed: one name per elf instance; identical handles under one name are fine."""

from __future__ import annotations

from _elves import Animals, Storage

from elfc import named, pipeline

archive = named(Storage, "archive", path="a.json")
archive_again = named(Storage, "archive", path="a.json")
backup = named(Storage, "backup", path="b.json")
zoo = named(Animals, "zoo")
keeper = named(Storage, "keeper")


@pipeline
def conflicts() -> int:
    saved = archive.save("cat", backup.save("dog", keeper.save("cow", zoo.count())))
    return archive_again.save("cat", saved)
