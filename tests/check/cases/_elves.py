"""Elves and handles shared by the diagnostic cases (each case file imports what it needs).

The tasks have real bodies so that the passing cases also run in process.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, TypedDict

import msgspec

from elfc import elf, named, task


class Measurement(TypedDict):
    species: str
    weight: int


class Label(TypedDict):
    species: str
    weight: str


@dataclasses.dataclass
class Reading:
    sensor: str
    value: float

    def celsius(self) -> float:
        return self.value - 273.15


@dataclasses.dataclass
class Note:
    sensor: str
    value: str


class Point(NamedTuple):
    x: int
    y: int


class Sample(msgspec.Struct):
    name: str
    size: int


@elf
class Animals:
    """Makes up animals."""

    @task
    def measure(self) -> Measurement:
        return Measurement(species="cat", weight=4)

    @task
    def label(self) -> Label:
        return Label(species="cat", weight="light")

    @task
    def names(self) -> list[str]:
        return ["cat", "dog"]

    @task
    def count(self) -> int:
        return 2

    @task
    def maybe(self) -> int | None:
        return None

    @task
    def pair(self) -> tuple[int, str]:
        return (1, "cat")


@elf
class Sensors:
    """Reads structured values."""

    @task
    def reading(self) -> Reading:
        return Reading("t1", 290.0)

    @task
    def note(self) -> Note:
        return Note("t1", "warm")

    @task
    def point(self) -> Point:
        return Point(1, 2)

    @task
    def sample(self) -> Sample:
        return Sample("s", 3)

    @task
    def counts(self) -> dict[str, int]:
        return {"cat": 1}


@elf
class Text:
    """String work that a pipeline cannot do on task results itself."""

    @task
    def upper(self, text: str) -> str:
        return text.upper()

    @task
    def join(self, parts: list[str], sep: str = ", ") -> str:
        return sep.join(parts)


@elf
class Storage:
    """Stores things, and says how many it holds."""

    def __init__(self, path: str = "store.json") -> None:
        self.path = path
        self.count = 0

    def location(self) -> str:
        """Not a task: only code in the elf's own process calls it."""
        return self.path

    @task
    def save(self, species: str, weight: int) -> int:
        self.count += 1
        return self.count

    @task
    def save_all(self, weights: list[int]) -> int:
        self.count += len(weights)
        return self.count

    @task
    def save_counts(self, counts: dict[str, int]) -> int:
        return len(counts)

    @task
    def save_measurement(self, m: Measurement) -> int:
        return m["weight"]

    @task
    def save_reading(self, r: Reading) -> int:
        return int(r.value)

    @task
    def save_flag(self, flag: bool) -> int:
        return int(flag)

    @task
    def log(self, message: str) -> None:
        pass


animals = named(Animals, "animals")
sensors = named(Sensors, "sensors")
text = named(Text, "text")
store = named(Storage, "store")
