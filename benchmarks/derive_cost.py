"""What evaluating a job's arguments costs a worker: stored JSON results in, task arguments out.

    python benchmarks/derive_cost.py [--jobs 20000] [--rounds 5]

Three argument shapes, each timed over --jobs jobs (per job: decode the results it reads,
evaluate its argument expressions, validate them against the task's annotations):
  bare     a result handed over as it stands (``store.save(m)``)
  derive   a subscript and an operator on a JSON result (``m["weight"] + 1``)
  typed    a comparison of a datetime result (``when() < deadline``)
Prints the median microseconds per job of --rounds rounds. It runs against whichever elfc is
importable, so the same script measures two checkouts (run it with each one's Python). For a
figure that does not depend on the machine's load, count instructions: run one --shape under
``valgrind --tool=callgrind`` with two --jobs values; the difference over the job difference is
the instructions per job (benchmarks/README.md has the figures).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from elfc import elf, task
from elfc.compiler.elves import TaskInfo, elf_info
from elfc.runtime import values
from elfc.runtime.execute import resolve_arguments


@elf
class Sink:
    @task
    def save(self, m: dict[str, str | int]) -> int:
        return 0

    @task
    def weight(self, w: int) -> int:
        return w

    @task
    def flag(self, early: bool) -> int:
        return int(early)


RAW = {
    "n1": b'{"species":"cat","weight":4}',
    "n2": b'"2026-03-01T12:30:00Z"',
}
DEADLINE = datetime(2026, 3, 1, 13, tzinfo=UTC)
TYPED_REF: Any = {"ref": ["n2", "datetime:datetime"]}


def shapes() -> dict[str, tuple[TaskInfo, tuple[Any, ...]]]:
    tasks = elf_info(Sink).tasks
    has_types = hasattr(values, "Inputs")
    deadline: Any = (
        {"val": ["datetime:datetime", DEADLINE.isoformat()]} if has_types else DEADLINE.isoformat()
    )
    when: Any = TYPED_REF if has_types else {"ref": "n2"}
    return {
        "bare": (tasks["save"], ({"ref": "n1"},)),
        "derive": (tasks["weight"], ({"bin": ["+", {"item": [{"ref": "n1"}, "weight"]}, 1]},)),
        "typed": (tasks["flag"], ({"cmp": [when, ["<", deadline]]},)),
    }


def per_job(info: TaskInfo, args: tuple[Any, ...], jobs: int) -> float:
    inputs = getattr(values, "Inputs", None)
    started = time.perf_counter()
    for _ in range(jobs):
        if inputs is not None:
            results: Any = inputs(RAW)
        else:
            results = {k: values.decode(v) for k, v in RAW.items()}
        resolve_arguments(info, "sink", args, {}, results)
    return (time.perf_counter() - started) / jobs * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shape", choices=["bare", "derive", "typed"], help="only this shape")
    opts = ap.parse_args()
    for name, (info, args) in shapes().items():
        if opts.shape and name != opts.shape:
            continue
        per_job(info, args, 1000)  # warm caches
        runs = [per_job(info, args, opts.jobs) for _ in range(opts.rounds)]
        print(f"{name:7} {statistics.median(runs):7.2f} us/job")


if __name__ == "__main__":
    main()
