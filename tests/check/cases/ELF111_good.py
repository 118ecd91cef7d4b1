"""ELF111 fixed: keys and fields that the declared types have."""

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
        store.save(m["species"], 1),
        store.save(reading.sensor, int(reading.value)),
        store.save("cat", point.y),
        store.save(sample.name, sample.size),
        store.save(pair[1], pair[0]),
        store.save(names[0], 1),
    ]
