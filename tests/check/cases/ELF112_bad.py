"""ELF112: a producer's declared type that cannot validate as the consumer's parameter."""

from __future__ import annotations

from _elves import animals, sensors, store

from elfc import pipeline


@pipeline
def types() -> list[int]:
    return [
        store.save(animals.count(), 1),  # ELF112
        store.save_counts(animals.names()),  # ELF112
        store.save_all(animals.names()),  # ELF112
        store.save_measurement(animals.label()),  # ELF112
        store.save_reading(sensors.note()),  # ELF112
        store.save("cat", animals.maybe()),  # ELF112
        store.save("cat", "heavy"),  # ELF112
    ]
