"""How fast `elfc check` is: a generated project of 200 pipelines plus the examples.

Usage::

    python benchmarks/check_speed.py [--runs 5] [--pipelines 200]

Prints the median of ``--runs`` runs of:

- ``elfc check examples/ <project>`` as a subprocess (what CI pays: interpreter start, imports,
  compiling every pipeline, validating elves and handles), target < 5 s on 2 cores;
- the same through ``elfc.checker.check`` in process (modules re-imported each run);
- the cold compile of one pipeline of 20, 100 and 500 lines (target <= 25 ms per 100 lines),
  and a cached ``compiled()`` (target <= 1 ms);
- the extra time to import a module of 50 ``@pipeline`` functions over the same module with
  plain functions (target <= 20 ms).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

ELVES = '''\
"""The elves of the generated project."""

from __future__ import annotations

from typing import TypedDict

from elfc import elf, named, task


class Measurement(TypedDict):
    species: str
    weight: int


class Reading(TypedDict):
    sensor: str
    value: int


@elf
class Animals:
    @task
    def measure(self) -> Measurement:
        return Measurement(species="cat", weight=4)


@elf
class Sensors:
    @task
    def read(self, name: str) -> Reading:
        return Reading(sensor=name, value=len(name))


@elf
class Storage:
    def __init__(self, path: str) -> None:
        self.path = path

    @task(retries=2)
    def save(self, species: str, weight: int) -> int:
        return weight

    @task
    def total(self, values: list[int]) -> int:
        return sum(values)


@elf
class Formatter:
    @task
    def render(self, text: str, n: int) -> str:
        return f"{text}: {n}"

    @task
    def join(self, parts: list[str]) -> str:
        return "\\n".join(parts)


animals = named(Animals, "gen-animals")
sensors = named(Sensors, "gen-sensors")
store = named(Storage, "gen-store", path="store.json")
fmt = named(Formatter, "gen-fmt")
'''

CHUNKS = [
    """\
    acc{j} = []
    for i{j} in range(rounds):
        m{j} = animals.measure()
        acc{j}.append(store.save(m{j}["species"], m{j}["weight"] + i{j}))
    parts.append(fmt.render(label, store.total(acc{j})))""",
    """\
    r{j} = sensors.read(label)
    v{j} = (r{j}["value"] * 3 + len(label)) // 2
    parts.append(fmt.render(f"{{label}}-{j}: {{v{j}}}", v{j}))""",
    """\
    if rounds > {k}:
        c{j} = store.save(label, rounds)
    else:
        c{j} = store.save("none", 0)
    parts.append(fmt.render(label, c{j}))""",
    """\
    xs{j} = [sensors.read(f"{{label}}{{k}}")["value"] for k in range(2)]
    parts.append(fmt.render(label, max(xs{j}) + min(xs{j})))""",
    """\
    parts.append(fmt.render(label, small(rounds)))""",
]

SMALL = '''\
@pipeline
def small(rounds: int = 2) -> int:
    """A pipeline the others inline."""
    return store.total([animals.measure()["weight"] for _ in range(rounds)])
'''


def pipeline_source(name: str, lines: int, seed: int) -> str:
    """A realistic pipeline of about ``lines`` lines: loops, derives, branches, inlining."""
    body: list[str] = []
    j = 0
    while len(body) < max(lines - 6, 1):
        chunk = CHUNKS[(seed + j) % len(CHUNKS)]
        body += chunk.format(j=j, k=j % 4).splitlines()
        j += 1
    return (
        f"@pipeline\n"
        f'def {name}(rounds: int = 2, label: str = "{name}") -> str:\n'
        f'    """Generated pipeline {name}."""\n'
        f"    parts = []\n" + "\n".join(body) + "\n    return fmt.join(parts)\n"
    )


def module_source(names_and_sizes: list[tuple[str, int]], seed: int) -> str:
    head = (
        "from __future__ import annotations\n\n"
        "from elves import animals, fmt, sensors, store\n\n"
        "from elfc import pipeline\n\n\n" + SMALL + "\n\n"
    )
    return head + "\n\n".join(
        pipeline_source(name, size, seed + i) for i, (name, size) in enumerate(names_and_sizes)
    )


def make_project(folder: Path, pipelines: int, per_module: int = 10) -> int:
    """Write the project; returns how many pipelines it defines (the inlined ones included)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "elves.py").write_text(ELVES, encoding="utf-8")
    sizes = [10, 20, 20, 40, 80]
    count = 0
    modules = (pipelines + per_module - 1) // per_module
    for m in range(modules):
        names = [
            (f"flow_{m}_{i}", sizes[(m + i) % len(sizes)])
            for i in range(min(per_module - 1, pipelines - count - 1))
        ]
        (folder / f"flows_{m:02d}.py").write_text(module_source(names, m), encoding="utf-8")
        count += len(names) + 1
    return count


def median_seconds(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forget(folder: Path) -> None:
    """Drop the project's modules and handles, so the next in-process check imports afresh."""
    from elfc.decorators import HANDLES

    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(folder)):
            del sys.modules[name]
    for name, group in list(HANDLES.items()):
        HANDLES[name] = [h for h in group if not h.location[0].startswith(str(folder))]


def import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compile_times(folder: Path, runs: int) -> Iterator[tuple[int, float, float]]:
    """Per pipeline size: lines, median cold compile (what `elfc check` pays) and median
    lowering into the builder (paid once, at the first submission)."""
    from elfc.compiler.compile import compile_pipeline

    for lines in (20, 100, 500):
        path = folder / f"sized_{lines}.py"
        path.write_text(module_source([("sized", lines)], 0), encoding="utf-8")
        module = import_file(path, f"sized_{lines}")
        actual = len(path.read_text(encoding="utf-8").split("def sized", 1)[1].splitlines())
        fn = module.sized.fn
        compile_pipeline(fn).require()  # warm: elves' metadata, linecache

        def cold(fn: Any = fn) -> None:
            compile_pipeline(fn)

        def lower(fn: Any = fn) -> float:
            compiled = compile_pipeline(fn)
            start = time.perf_counter()
            compiled.builder()
            return time.perf_counter() - start

        compiling = median_seconds(cold, max(runs, 15))
        yield actual, compiling, statistics.median(lower() for _ in range(max(runs, 15)))


def import_overhead(folder: Path, runs: int) -> float:
    """Extra seconds to import 50 decorated pipelines rather than 50 plain functions."""
    text = module_source([(f"p{i}", 10) for i in range(50)], 0)
    plain = text.replace("@pipeline\n", "")
    (folder / "decorated_50.py").write_text(text, encoding="utf-8")
    (folder / "plain_50.py").write_text(plain, encoding="utf-8")

    def load(stem: str) -> Callable[[], Any]:
        def run() -> None:
            sys.modules.pop(stem, None)
            import_file(folder / f"{stem}.py", stem)

        return run

    load("decorated_50")()  # byte-compile both once
    load("plain_50")()
    return median_seconds(load("decorated_50"), max(runs, 9)) - median_seconds(
        load("plain_50"), max(runs, 9)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pipelines", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from elfc.checker import check

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        count = make_project(project, args.pipelines)
        lines = sum(len(p.read_text().splitlines()) for p in project.glob("*.py"))
        paths = [ROOT / "examples", project]
        print(f"project: {count} pipelines in {len(list(project.glob('flows_*.py')))} modules, "
              f"{lines} lines; plus examples/")  # fmt: skip

        sys.path.insert(0, str(project))
        gc.collect()

        bench = Path(tmp) / "sizes"
        bench.mkdir()
        sys.path.insert(0, str(bench))
        (bench / "elves.py").write_text(ELVES, encoding="utf-8")
        for size, seconds, lowering in compile_times(bench, args.runs):
            per_100 = seconds * 1000 * 100 / size
            print(
                f"cold compile, {size:3d}-line pipeline: {seconds * 1000:6.1f} ms "
                f"({per_100:.1f} ms per 100 lines; target <= 25); "
                f"lowering at first build +{lowering * 1000:.1f} ms"
            )
        from elfc.pipeline import Pipeline

        p = import_file(bench / "sized_100.py", "sized_100_again").sized
        assert isinstance(p, Pipeline)
        p.compiled()
        cached = median_seconds(p.compiled, 1001)
        print(f"cached compiled():        {cached * 1e6:.2f} us   (target <= 1 ms)")
        result = check(paths, build=False)
        assert not result.diagnostics, [d.headline() for d in result.diagnostics[:5]]
        assert len(result.pipelines) == count + 3, len(result.pipelines)
        command = [sys.executable, "-m", "elfc", "check", *map(str, paths)]

        def subprocess_check() -> None:
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)

        def in_process_check() -> None:
            forget(project)
            check(paths)

        sub = median_seconds(subprocess_check, args.runs)
        inproc = median_seconds(in_process_check, args.runs)
        print(f"elfc check (subprocess):  median {sub:.2f} s of {args.runs}   (target < 5 s)")
        print(f"elfc check (in process):  median {inproc:.2f} s of {args.runs}")

        overhead = import_overhead(bench, args.runs)
        print(f"import, 50 @pipelines:    +{overhead * 1000:.2f} ms over plain functions "
              f"(target <= 20 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
