"""An animal census: Blumycelium's async demo.

Five elves work on one pipeline:

- ``Animals`` makes up measurements. It is deterministic: measurement number *n* of an
  ``Animals(seed=s)`` is drawn from ``random.Random(f"{s}:{n}")``, so a run is reproducible and a
  test can recompute it.
- ``Storage`` appends every measurement to a JSON file (a list of objects) and answers how many
  the file holds.
- ``Stats`` reduces a list of numbers; three named instances compute the mean, the minimum and the
  maximum, each in its own worker.
- ``Formatter`` prints a report and returns it.

Where the file goes: ``Storage(path=None)`` writes ``animals.json`` in the directory named by the
environment variable ``ELFC_EXAMPLE_DIR``, or else in the system's temporary directory
(``tempfile.gettempdir()``). The path is resolved where the elf is built, that is in its worker,
so the same handle works on any machine. Pass ``path=...`` to ``named`` to choose another file.

Run it in this process::

    python -c "from examples.animals.pipeline import census; census(rounds=5)"

or on the default mycelium, each elf in its own worker process::

    ELFC_EXAMPLE_DIR=. elfc run examples/animals/pipeline.py:census -a rounds=5

The ``for`` loop in ``census`` is static (``rounds`` is known at submission): it unrolls into one
``measure`` and one ``save`` job per round. Measuring is independent of storing, so the stats jobs
start as soon as the measurements exist, while the saves may still be running.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Literal, TypedDict

from elfc import elf, named, pipeline, task


class Measurement(TypedDict):
    """One animal: its species, weight in kilograms and height in centimetres."""

    species: str
    weight: int
    height: int


SIZES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    # species: ((min weight kg, max weight kg), (min height cm, max height cm))
    "cat": ((3, 7), (20, 30)),
    "dog": ((5, 45), (25, 80)),
    "goat": ((25, 80), (60, 90)),
    "horse": ((380, 900), (140, 180)),
    "sheep": ((40, 110), (60, 100)),
}


@elf
class Animals:
    """Makes up animal measurements, reproducibly."""

    def __init__(self, seed: int = 0, species: list[str] | None = None) -> None:
        self.seed = seed
        self.species = sorted(SIZES) if species is None else species
        unknown = [s for s in self.species if s not in SIZES]
        if unknown:
            raise ValueError(f"unknown species {unknown}; known: {sorted(SIZES)}")
        self.count = 0

    @task
    def measure(self) -> Measurement:
        """The next animal: measurement number n depends only on the seed and n."""
        rng = random.Random(f"{self.seed}:{self.count}")
        self.count += 1
        species = rng.choice(self.species)
        (w_lo, w_hi), (h_lo, h_hi) = SIZES[species]
        return Measurement(
            species=species, weight=rng.randint(w_lo, w_hi), height=rng.randint(h_lo, h_hi)
        )


def default_store_path() -> Path:
    """``$ELFC_EXAMPLE_DIR/animals.json``, or ``animals.json`` in the system temp directory."""
    directory = os.environ.get("ELFC_EXAMPLE_DIR") or tempfile.gettempdir()
    return Path(directory) / "animals.json"


@elf
class Storage:
    """Keeps measurements in a JSON file (a list of objects)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()

    def load(self) -> list[Measurement]:
        """Everything stored so far (an empty list when there is no file yet)."""
        if not self.path.exists():
            return []
        stored: list[Measurement] = json.loads(self.path.read_text(encoding="utf-8"))
        return stored

    @task(retries=2, retry_delay=0.1)
    def save(self, measurement: Measurement) -> int:
        """Append ``measurement`` to the file; return how many measurements it now holds."""
        stored = [*self.load(), measurement]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a sibling and rename, so a reader never sees half a file.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps(stored, indent=1), encoding="utf-8")
        partial.replace(self.path)
        return len(stored)


@elf
class Stats:
    """Reduces a list of numbers to one statistic."""

    def __init__(self, statistic: Literal["mean", "min", "max"]) -> None:
        self.statistic = statistic

    @task
    def compute(self, values: list[int]) -> float:
        """The mean, minimum or maximum of ``values`` (which must not be empty)."""
        if not values:
            raise ValueError(f"the {self.statistic} of no values is undefined")
        if self.statistic == "mean":
            return sum(values) / len(values)
        return float(min(values) if self.statistic == "min" else max(values))


@elf
class Formatter:
    """Turns the census into a printed report."""

    def __init__(self, title: str = "Animal census") -> None:
        self.title = title

    @task
    def report(
        self, rounds: int, stored: int, weight: dict[str, float], height: dict[str, float]
    ) -> str:
        """Print and return the report: one line per measured quantity."""
        lines = [
            f"{self.title}: {rounds} animals measured, {stored} on file",
            f"{'':8}{'mean':>9}{'min':>9}{'max':>9}",
        ]
        for label, unit, stats in (("weight", "kg", weight), ("height", "cm", height)):
            cells = "".join(f"{stats[k]:>9.1f}" for k in ("mean", "min", "max"))
            lines.append(f"{label + ' ' + unit:<8}{cells}")
        text = "\n".join(lines)
        print(text)
        return text


animals = named(Animals, "animals", seed=42)
store = named(Storage, "store")
mean = named(Stats, "mean", "mean")
minimum = named(Stats, "minimum", "min")
maximum = named(Stats, "maximum", "max")
formatter = named(Formatter, "formatter")


@pipeline
def census(rounds: int = 10) -> str:
    """Measure ``rounds`` animals, store each one, and report their weights and heights."""
    saved: list[int] = []
    weights: list[int] = []
    heights: list[int] = []
    for _ in range(rounds):
        m = animals.measure()
        saved.append(store.save(m))
        weights.append(m["weight"])
        heights.append(m["height"])
    return formatter.report(
        rounds=rounds,
        stored=max(saved),
        weight={
            "mean": mean.compute(weights),
            "min": minimum.compute(weights),
            "max": maximum.compute(weights),
        },
        height={
            "mean": mean.compute(heights),
            "min": minimum.compute(heights),
            "max": maximum.compute(heights),
        },
    )
