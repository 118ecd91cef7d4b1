"""ELF107: mutating a task result: item or attribute assignment, augmented assignment on a
mutable value, a mutating method."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def mutates() -> int:
    m = animals.measure()
    m["weight"] = 0  # ELF107
    m["weight"] += 1  # ELF107
    reading = sensors.reading()
    reading.value = 0.0  # ELF107
    names = animals.names()
    names += ["cow"]  # ELF107
    names.append("cow")  # ELF107
    names.sort()  # ELF107
    counts = sensors.counts()
    counts.update({"cow": 1})  # ELF107
    return store.save(names[0], m["weight"] + counts["cow"])
