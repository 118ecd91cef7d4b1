"""ELF117 fixed: dynamic values go into containers as values, and are indexed, not unpacked."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def misplaced() -> list[int]:
    m = animals.measure()
    names = animals.names()
    by_name = {"species": m["species"]}
    everything = [names]
    counts = sensors.counts()
    biggest = max(names)
    pair = animals.pair()
    first, label = pair
    last = animals.count()
    saved = store.save(names[0], last)
    if not by_name:
        raise ValueError("static values may be raised")
    return [saved, len(everything), counts["cat"], len(biggest), first, len(label)]
