"""ELF109: a task is called on an elf built inside the pipeline, or on the class itself."""

from __future__ import annotations

from _elves import Animals, Storage, animals

from elfc import pipeline


@pipeline
def local_elves() -> int:
    n = Animals().count()  # ELF109
    local = Storage("local.json")
    saved = local.save("cat", n)  # ELF109
    return Storage.save(animals, "dog", saved)  # ELF109
