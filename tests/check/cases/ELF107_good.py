"""ELF107 fixed: build new values (they become derives); rebinding a name is fine."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def mutates() -> int:
    m = animals.measure()
    weight = m["weight"] + 1
    reading = sensors.reading()
    value = reading.value * 2
    names = animals.names()
    names = names + ["cow"]
    ordered = sorted(names)
    total = animals.count()
    total += 1
    counts = sensors.counts()
    merged = {"cow": 1, "cat": counts["cat"]}
    return store.save(ordered[0], weight + int(value) + total + merged["cat"])
