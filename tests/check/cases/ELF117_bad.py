"""ELF117: a task result where a value must be known at submission: a dict key, unpacking
with * or **, raise, an attribute of a static object, starred assignment."""

from __future__ import annotations

import types

from _elves import animals, sensors, store

from elfc import pipeline

CONFIG = types.SimpleNamespace(last=0)


@pipeline
def misplaced() -> list[int]:
    m = animals.measure()
    names = animals.names()
    by_species = {m["species"]: 1}  # ELF117
    everything = [*names]  # ELF117
    merged = {**sensors.counts()}  # ELF117
    biggest = max(*names)  # ELF117
    first, *rest = animals.pair()  # ELF117
    CONFIG.last = animals.count()  # ELF117
    saved = store.save(*names)  # ELF117
    if not by_species:
        raise ValueError(m["species"])  # ELF117
    return [saved, len(everything), len(merged), len(biggest), first]
