"""ELF114: two handles with the same elf name but a different class or configuration."""

from __future__ import annotations

from _elves import Animals, Storage

from elfc import named, pipeline

archive = named(Storage, "archive", path="a.json")
backup = named(Storage, "archive", path="b.json")  # ELF114
zoo = named(Animals, "keeper")
keeper = named(Storage, "keeper")  # ELF114


@pipeline
def conflicts() -> int:
    return archive.save("cat", backup.save("dog", keeper.save("cow", zoo.count())))
