"""Plain functions, ``print`` and logging called with task results mean what Python means:
plain Python == in-process == workers on a mycelium, each call made once, its output in the
run's logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elfc import connect
from tests.runtime.fixtures import helpers as hp
from tests.runtime.fixtures.harness import ThreadWorkers
from tests.runtime.test_python_meaning import three_ways

test_in_process_gives_python_s_value, test_workers_give_python_s_values = three_ways(
    hp.PIPELINES, hp.warehouse
)


def test_print_and_logging_land_in_the_run_s_logs_in_order(
    url: str, threads: ThreadWorkers
) -> None:
    threads.start(hp.warehouse)
    mycelium = connect(url)
    run = mycelium.submit(hp.print_and_log, 7)
    assert run.wait(timeout=60) == 7
    text = "".join(record.text for record in mycelium.store.list_logs(run.id))
    assert "downloaded 7 rows" in text
    assert "7 rows downloaded" in text
    assert text.index("downloaded 7 rows") < text.index("7 rows downloaded")


def test_an_impure_helper_runs_once_per_call_even_when_its_consumer_is_retried(
    url: str, threads: ThreadWorkers, tmp_path: Path
) -> None:
    path = tmp_path / "calls.txt"
    assert hp.impure_helper(str(path), 3) == 7
    assert path.read_text().splitlines() == ["3"]
    path.unlink()
    threads.start(hp.warehouse)
    threads.start(hp.picky)
    mycelium = connect(url)
    run = mycelium.submit(hp.impure_helper, str(path), 4)
    assert run.wait(timeout=60) == 9
    assert path.read_text().splitlines() == ["4"]  # once, though `take` ran twice
    (take,) = [j for j in mycelium.store.list_jobs(run.id) if j.task == "take"]
    assert take.attempts == 2


MODULE = """
from elfc import elf, named, pipeline, task


@elf
class Counter:
    @task
    def count(self, n: int) -> int:
        return n


counter = named(Counter, "helpers-counter-{tag}")


def scale(x: int) -> int:
    return x * {factor}  # a comment changes nothing


@pipeline
def scaled(n: int = 2) -> int:
    return scale(counter.count(n))
"""


def _load(tmp_path: Path, tag: str, factor: str) -> Any:
    import importlib.util

    path = tmp_path / f"helper_rev_{tag}.py"
    path.write_text(MODULE.format(tag=tag, factor=factor))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_helper_s_source_is_part_of_the_pipeline_s_revision(tmp_path: Path) -> None:
    """A worker whose copy of the helper differs refuses the call, as it refuses a task of
    another revision: the helper's source revision is part of the pipeline's."""
    a, b = _load(tmp_path, "a", "3"), _load(tmp_path, "b", "4")
    assert a.scaled() == 6 and b.scaled() == 8
    revisions = [m.scaled.compiled().program_revision() for m in (a, b)]
    sources = [m.scaled.compiled().template.source_revision for m in (a, b)]
    assert sources[0] == sources[1]  # the pipeline's own text is the same...
    assert revisions[0] != revisions[1]  # ...its helper's is not


def test_a_helper_defined_in_main_is_reported_with_a_fix(tmp_path: Path) -> None:
    module = _load(tmp_path, "main", "2")
    module.scale.__module__ = "__main__"  # as a script's or a notebook cell's function is
    from elfc.compiler.compile import compile_pipeline

    compiled = compile_pipeline(module.scaled.fn)
    (d,) = [d for d in compiled.diagnostics if d.code == "ELF101"]
    assert "`__main__`" in d.help and "module the workers import" in d.help
    assert d.line == 21  # `return scale(counter.count(n))` (MODULE starts with a newline)


def test_graph_draws_a_call_as_its_own_node_with_its_line() -> None:
    from elfc.render import drawing

    template = hp.with_a_helper.compiled().template
    assert template is not None
    boxes = {b.id: b for b in drawing(template).boxes}
    call = next(b for b in boxes.values() if b.lines[0].startswith("envelope("))
    assert call.lines[0] == 'envelope("sales", rows) · L63'
    arrows = {(a.source, a.target) for a in drawing(template).arrows}
    assert ("n1", call.id) in arrows  # fed by `rows`
    assert any(source == call.id for source, _ in arrows)  # and feeding `store`
