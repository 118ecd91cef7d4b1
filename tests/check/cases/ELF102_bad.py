"""ELF102: a method that is not a pure method of the result's declared type is called on a task
result (or on a list holding task results)."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def method_on_result() -> int:
    m = animals.measure()
    species = m["species"].format_map({})  # ELF102
    weight = m.fromkeys(["weight"], 0)  # ELF102
    names = animals.names()
    first = names.index("cat")
    reading = sensors.reading()
    celsius = reading.celsius()  # ELF102
    counts = [animals.count() for _ in range(3)]
    threes = counts.count(3)  # ELF102
    return store.save(species, weight + first + threes + int(celsius))
