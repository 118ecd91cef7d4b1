"""ELF112 fixed: every argument's declared type fits its parameter (int into float is fine:
both are JSON numbers)."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def types() -> list[int]:
    label = animals.label()
    n = animals.maybe()
    return [
        store.save(str(animals.count()), 1),
        store.save_counts(sensors.counts()),
        store.save_all([animals.count(), animals.count()]),
        store.save_measurement(animals.measure()),
        store.save_reading(sensors.reading()),
        store.save(label["species"], len(label["weight"])),
        store.save("cat", n or 0),
        store.save("cat", 3),
    ]
