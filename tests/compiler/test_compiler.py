"""The compiler: graph templates, jobs made at submission, revisions, spans and caching.

The pipelines are defined in this file (their source must be in a file); positions are looked
up by searching this file's text for the source they point at, so the assertions say *which*
code a span covers, not magic numbers.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import textwrap
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

import pytest

from elfc import elf, named, pipeline, task
from elfc.model.ir import CallNode, DeriveNode, InlineNode, InputNode, OutputNode, Template
from elfc.pipeline import Pipeline

HERE = Path(__file__).resolve()


class Measurement(TypedDict):
    species: str
    weight: int


@elf
class Zoo:
    @task
    def measure(self) -> Measurement:
        return Measurement(species="cat", weight=4)

    @task
    def double(self, x: int) -> int:
        return 2 * x

    @task
    def save(self, species: str, weight: int) -> int:
        return weight


left = named(Zoo, "tc-left")
right = named(Zoo, "tc-right")


@pipeline
def measure_and_save() -> int:
    m = left.measure()
    return right.save(m["species"], m["weight"] + 1)


@pipeline
def grid(rows: int = 2, cols: int = 3) -> list[int]:
    cells = []
    for i in range(rows):
        for j in range(cols):
            cells.append(left.double(i * cols + j))
    return cells


@pipeline
def alternate(n: int = 4) -> list[int]:
    out = []
    for i in range(n):
        w = left if i % 2 else right
        out.append(w.double(i))
    return out


WORKERS = [left, right]
BY_SIDE = {"left": left, "right": right}


@pipeline
def through_collections() -> list[int]:
    out = [w.double(1) for w in (left, right)]
    for w in WORKERS:
        out.append(w.double(2))
    for side, w in BY_SIDE.items():
        out.append(w.double(len(side)))
    out.append(BY_SIDE["right"].double(3))
    return out


@pipeline
def collect(names: list[str] = ["cat", "dog"]) -> dict[str, Any]:  # noqa: B006
    by_name = {}
    for name in names:
        by_name[name] = left.save(name, len(name))
    both = (by_name["cat"], [left.double(1)])
    return {"saved": by_name, "first": both[0]}


@pipeline
def doubled(x: int) -> int:
    for _ in range(2):
        x = left.double(x)
    return x


@pipeline
def nests(rounds: int = 2) -> list[int]:
    first = left.double(1)
    return [doubled(first + i) for i in range(rounds)]


@pipeline
def accents() -> int:
    return right.save("café ☕", left.double(1))


SIZES = {"small": 1}


@pipeline
def fails_statically(size: str = "large") -> int:
    rounds = 1
    rounds = SIZES[size]
    return left.double(rounds)


class Holder:
    """A pipeline defined indented, inside a function, under two decorators."""

    @staticmethod
    def make() -> Pipeline[[int], int]:
        def keep(p: Pipeline[[int], int]) -> Pipeline[[int], int]:
            return p

        @keep
        @pipeline
        def indented(k: int) -> int:
            base = left.double(k)
            return right.double(base * 2)

        return indented


indented = Holder.make()


# --------------------------------------------------------------------------- helpers

SOURCE = HERE.read_text(encoding="utf-8").splitlines()


def locate(text: str, after: str = "") -> tuple[int, int]:
    """1-based (line, column) of ``text`` in this file (after the line containing ``after``)."""
    start = next(i for i, line in enumerate(SOURCE) if after in line) if after else 0
    for number in range(start, len(SOURCE)):
        column = SOURCE[number].find(text)
        if column >= 0:
            return number + 1, column + 1
    raise AssertionError(text)


def calls(t: Template) -> list[CallNode]:
    return [n for n in t.nodes if isinstance(n, CallNode)]


# --------------------------------------------------------------------------- templates


def test_template_nodes_edges_and_spans() -> None:
    t = measure_and_save.graph()
    assert t.pipeline == f"{__name__}:measure_and_save"
    assert (t.path, t.line) == (str(HERE), locate("def measure_and_save")[0])
    measure, save = calls(t)
    assert (measure.handles, measure.task, measure.source) == (
        ("tc-left",),
        "measure",
        "left.measure()",
    )
    assert (save.handles, save.task) == (("tc-right",), "save")
    line, column = locate("right.save(m", after="def measure_and_save")
    assert (save.span.line, save.span.column, save.span.end_line) == (line, column, line)
    assert save.span.end_column == column + len('right.save(m["species"], m["weight"] + 1)')
    derives = {n.source: n for n in t.nodes if isinstance(n, DeriveNode)}
    assert derives['m["species"]'].expr == {"item": [{"slot": 0}, "species"]}
    derive = derives['m["weight"] + 1']
    assert derive.expr == {"bin": ["+", {"item": [{"slot": 0}, "weight"]}, 1]}
    labels = {(e.source, e.target, e.label) for e in t.edges}
    species = derives['m["species"]']
    assert {
        (measure.id, species.id, "m"),
        (measure.id, derive.id, "m"),
        (species.id, save.id, 'm["species"]'),
        (derive.id, save.id, 'm["weight"] + 1'),
        (save.id, "out", "tc-right.save"),
    } == labels
    assert isinstance(t.node("out"), OutputNode)


def test_inputs_and_regions_with_headers() -> None:
    t = grid.graph()
    inputs = [n for n in t.nodes if isinstance(n, InputNode)]
    assert [(n.name, n.annotation, n.default) for n in inputs] == [
        ("rows", "int", "2"),
        ("cols", "int", "3"),
    ]
    outer, inner = t.regions
    assert (outer.header, outer.parent) == ("for i in range(rows)", None)
    assert (inner.header, inner.parent) == ("for j in range(cols)", outer.id)
    assert (outer.span.line, outer.span.column) == locate("for i in range(rows)")
    (call,) = calls(t)
    assert call.region == inner.id
    assert {(e.source, e.label) for e in t.edges if e.target == call.id} == {
        ("in:rows", "i"),
        ("in:cols", "j"),
    }


def test_spans_of_an_indented_decorated_nested_definition() -> None:
    t = indented.graph()
    first, second = calls(t)
    assert (first.span.line, first.span.column) == locate("left.double(k)")
    assert (second.span.line, second.span.column) == locate("right.double(base * 2)")
    assert t.line == locate("def indented")[0]
    (k,) = [n for n in t.nodes if isinstance(n, InputNode)]
    assert (k.span.line, k.span.column) == locate("k: int", after="def indented")


def test_columns_count_characters_not_bytes() -> None:
    double, save = sorted(calls(accents.graph()), key=lambda n: n.task)
    line, column = locate("left.double(1)", after="def accents")
    assert (double.span.line, double.span.column) == (line, column)
    assert double.span.end_column == column + len("left.double(1)")
    assert double.source == "left.double(1)"
    assert save.source == 'right.save("café ☕", left.double(1))'


def test_template_json_round_trip() -> None:
    for p in (measure_and_save, grid, alternate, collect, nests, indented):
        t = p.graph()
        assert Template.from_json(t.to_json()) == t


# --------------------------------------------------------------------------- jobs


def test_static_loops_unroll_with_iteration_keys() -> None:
    built = grid.build(rows=2, cols=3)
    (call,) = calls(grid.graph())
    assert [j.key for j in built.jobs] == [f"{call.id}#{i}.{j}" for i in range(2) for j in range(3)]
    assert [j.args for j in built.jobs] == [(n,) for n in range(6)]
    assert built.output == {"list": [{"ref": j.key} for j in built.jobs]}
    assert len(grid.build(rows=4, cols=5).jobs) == 20
    assert grid.build(rows=0).jobs == ()


def test_jobs_read_results_through_refs() -> None:
    built = measure_and_save.build()
    measure, save = built.jobs
    assert save.deps == (measure.key,)
    assert save.args == (
        {"item": [{"ref": measure.key}, "species"]},
        {"bin": ["+", {"item": [{"ref": measure.key}, "weight"]}, 1]},
    )


def test_conditional_handle_choice() -> None:
    (call,) = calls(alternate.graph())
    assert call.handles == ("tc-left", "tc-right")
    built = alternate.build(n=4)
    assert [j.elf for j in built.jobs] == ["tc-right", "tc-left", "tc-right", "tc-left"]


def test_handles_reached_through_collections() -> None:
    assert {c.handles for c in calls(through_collections.graph())} <= {
        ("tc-left", "tc-right"),
        ("tc-left",),
        ("tc-right",),
    }
    built = through_collections.build()
    assert [(j.elf, j.args) for j in built.jobs] == [
        ("tc-left", (1,)),
        ("tc-right", (1,)),
        ("tc-left", (2,)),
        ("tc-right", (2,)),
        ("tc-left", (4,)),
        ("tc-right", (5,)),
        ("tc-right", (3,)),
    ]
    assert through_collections() == [2, 2, 4, 4, 8, 10, 6]


def test_containers_collect_results() -> None:
    built = collect.build()
    saves = [j for j in built.jobs if j.task == "save"]
    assert [j.args for j in saves] == [("cat", 3), ("dog", 3)]
    by_name = {"dict": [["cat", {"ref": saves[0].key}], ["dog", {"ref": saves[1].key}]]}
    assert built.output == {"dict": [["saved", by_name], ["first", {"ref": saves[0].key}]]}
    assert collect() == {"saved": {"cat": 3, "dog": 3}, "first": 3}


def test_nested_pipelines_are_inlined_with_prefixed_keys() -> None:
    t = nests.graph()
    (inline,) = [n for n in t.nodes if isinstance(n, InlineNode)]
    assert inline.pipeline == f"{__name__}:doubled"
    assert inline.revision == doubled.graph().revision
    built = nests.build(rounds=2)
    (first, *rest) = built.jobs
    (inner,) = calls(doubled.graph())
    assert [j.key for j in rest] == [
        f"{inline.id}#{i}/{inner.id}#{k}" for i in range(2) for k in range(2)
    ]
    # the first inner job reads `first + i`, the second the first's result
    assert rest[0].args == ({"bin": ["+", {"ref": first.key}, 0]},)
    assert rest[1].args == ({"ref": rest[0].key},)
    assert nests(rounds=2) == [8, 12]


def test_an_exception_in_static_code_points_at_its_line() -> None:
    with pytest.raises(KeyError) as raised:
        fails_statically.build()
    frames = [
        f for f in traceback.extract_tb(raised.value.__traceback__) if f.filename == str(HERE)
    ]
    assert frames[-1].lineno == locate("rounds = SIZES[size]")[0]


def test_compiling_twice_returns_the_cached_result() -> None:
    first = grid.compiled()
    assert grid.compiled() is first
    assert grid.graph() is first.template


# --------------------------------------------------------------------------- revisions

VERSION = '''\
from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Counter:
    @task
    def add(self, a: int, b: int) -> int:
        return a + b


counter = named(Counter, "tc-counter")


@pipeline
def flow(n: int = 3) -> int:
    """Adds things up."""
    total = counter.add(0, 1)
    for i in range(n):
        total = counter.add(total, i)
    return total
'''

REFORMATTED = '''\
from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Counter:
    @task
    def add(self, a: int, b: int) -> int:
        return a + b


counter = named(Counter, "tc-counter")


# a comment above
@pipeline
def flow(
    n: int = 3,
) -> int:
    """Adds things up, documented differently."""
    total = counter.add(0,
                        1)  # a trailing comment

    for i in range(n):   # loop
        total = counter.add(total, i)
    return (total)
'''


@functools.cache
def flow_of(source: str, tmp: Path) -> Pipeline[..., Any]:
    name = f"tc_revision_{abs(hash(source))}"
    path = tmp / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    flow: Pipeline[..., Any] = module.flow
    return flow


def test_revisions_survive_reformatting_and_change_with_behaviour(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("revisions")
    original = flow_of(VERSION, tmp).graph()
    assert flow_of(REFORMATTED, tmp).graph().revision == original.revision
    assert flow_of(REFORMATTED, tmp).graph().source_revision == original.source_revision
    changed_pipeline = VERSION.replace("counter.add(0, 1)", "counter.add(0, 2)")
    assert flow_of(changed_pipeline, tmp).graph().revision != original.revision
    changed_task = VERSION.replace("return a + b", "return a - b")
    changed = flow_of(changed_task, tmp).graph()
    assert changed.source_revision == original.source_revision
    assert changed.revision != original.revision


def test_revision_is_stable_across_processes() -> None:
    import subprocess

    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE.parent)!r})
        import test_compiler
        print(test_compiler.grid.graph().revision)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == grid.graph().revision


RENAMED = """
from __future__ import annotations

import msgspec

from elfc import elf, named, pipeline, task


class Person(msgspec.Struct, rename="camel"):
    first_name: str
    age_years: int


@elf
class People:
    @task
    def get(self) -> Person:
        return Person("ann", 41)


@elf
class Cards:
    @task
    def card(self, name: str, age: int) -> str:
        return f"{name}:{age}"


people = named(People, "people")
cards = named(Cards, "cards")


@pipeline
def card() -> str:
    p = people.get()
    return cards.card(p.first_name, p.age_years + 1)
"""


def test_attribute_reads_of_renamed_struct_fields_read_the_python_field(tmp_path: Path) -> None:
    path = tmp_path / "renamed_people.py"
    path.write_text(RENAMED)
    spec = importlib.util.spec_from_file_location("renamed_people", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["renamed_people"] = module
    spec.loader.exec_module(module)
    job = module.card.build().jobs[1]
    # The result is decoded as the Struct its task declares; its field has its Python name.
    assert job.args[0] == {"attr": [{"ref": ["n1", "renamed_people:Person"]}, "first_name"]}
    assert module.card() == "ann:42"
