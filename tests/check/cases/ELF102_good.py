"""ELF102 fixed: a task does the method's work; subscripts, operators, pure builtins and the pure
methods of the declared type are fine, and so are methods of static values and of static lists
holding task results."""

from __future__ import annotations

from _elves import animals, sensors, store, text

from elfc import pipeline


@pipeline
def method_on_result(label: str = "cat") -> int:
    m = animals.measure()
    species = text.upper(m["species"]) + m["species"].upper()
    weight = m.get("weight", 0)
    names = animals.names()
    first = names[names.index("cat")] + ", ".join(names)
    reading = sensors.reading()
    celsius = reading.value - 273.15
    counts = [animals.count() for _ in range(3)]
    counts.append(animals.count())
    copied = counts.copy()
    return store.save(species + label.upper() + first, weight + int(celsius) + sum(copied))
