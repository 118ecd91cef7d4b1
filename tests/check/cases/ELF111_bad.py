"""ELF111: a key or attribute that the producer's declared return type does not have
(TypedDict, dataclass, NamedTuple, msgspec.Struct, tuple, list)."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def members() -> list[int]:
    m = animals.measure()
    reading = sensors.reading()
    point = sensors.point()
    sample = sensors.sample()
    pair = animals.pair()
    names = animals.names()
    return [
        store.save(m["specie"], 1),  # ELF111
        store.save(m.species, 1),  # ELF111
        store.save(reading.sensr, 1),  # ELF111
        store.save(reading.celsius, 1),  # ELF111
        store.save("cat", point.z),  # ELF111
        store.save("cat", sample.sise),  # ELF111
        store.save(pair[2], 1),  # ELF111
        store.save(names["first"], 1),  # ELF111
    ]
