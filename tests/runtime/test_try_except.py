"""``try``/``except`` around task calls means what Python means: plain Python == in-process ==
workers on a mycelium, for each pipeline of ``fixtures/try_except.py``; a handled failure is
recorded ``handled`` and does not fail its run; an unhandled or re-raised one does."""

from __future__ import annotations

from typing import Any

import pytest

from elfc import connect
from elfc.errors import RunFailed
from elfc.pipeline import Pipeline
from tests.runtime.fixtures import try_except as te
from tests.runtime.fixtures.harness import ThreadWorkers
from tests.runtime.test_python_meaning import plain, same, three_ways

test_in_process_gives_python_s_value, test_workers_give_python_s_values = three_ways(
    te.PIPELINES, te.source
)


@pytest.mark.parametrize(
    ("p", "args"),
    [
        (te.fallback_source, (4,)),
        (te.by_base_class, (3,)),
        (te.bound_exception, ("12",)),
        (te.else_and_finally, ("zz",)),
        (te.runs_in_order, ("5",)),
        (te.keeps_the_old_value, ("9",)),
        (te.value_error_of_a_derive, (3,)),
        (te.nested, ("x", "a")),
        (te.nested, ("4", "b")),
        (te.return_in_handler, (2,)),
        (te.static_code_raises, ("2",)),
        (te.own_exception_class, (3,)),
        (te.nothing_fails, (-1,)),
    ],
    ids=lambda v: str(v),
)
def test_every_path_gives_python_s_value(
    p: Pipeline[..., Any], args: tuple[Any, ...], url: str, threads: ThreadWorkers
) -> None:
    threads.start(te.source)
    expected = plain(p, *args)
    assert same(p(*args), expected)
    assert same(connect(url).submit(p, *args).wait(timeout=60), expected)


def test_a_handled_failure_is_recorded_and_does_not_fail_the_run(
    url: str, threads: ThreadWorkers
) -> None:
    threads.start(te.source)
    mycelium = connect(url)
    run = mycelium.submit(te.fallback_source, -3)
    assert run.wait(timeout=60) == 21
    jobs = {j.key: j for j in mycelium.store.list_jobs(run.id)}
    (handled,) = [j for j in jobs.values() if j.status == "handled"]
    assert handled.task == "fetch"
    assert not [j for j in jobs.values() if j.status in ("failed", "skipped")]
    assert mycelium.store.run_info(run.id).status == "succeeded"  # type: ignore[union-attr]
    # The failure stays inspectable: its traceback is stored with the job.
    failures = mycelium.store.list_failures()
    assert any("source unreachable for -3" in f.message for f in failures)


def test_a_later_call_in_the_body_never_runs_after_a_failure(
    url: str, threads: ThreadWorkers
) -> None:
    threads.start(te.source)
    mycelium = connect(url)
    run = mycelium.submit(te.runs_in_order, "x")
    assert run.wait(timeout=60) == 1
    statuses = {j.task: j.status for j in mycelium.store.list_jobs(run.id) if j.task == "double"}
    assert statuses == {"double": "skipped"}, statuses


@pytest.mark.parametrize("p", [te.unhandled, te.reraised], ids=["unhandled", "reraised"])
def test_an_unhandled_failure_fails_the_run_with_the_original_error(
    p: Pipeline[..., Any], url: str, threads: ThreadWorkers
) -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        plain(p)
    with pytest.raises(RunFailed, match="invalid literal"):
        p()
    threads.start(te.source)
    mycelium = connect(url)
    run = mycelium.submit(p)
    with pytest.raises(RunFailed, match="invalid literal"):
        run.wait(timeout=60)
    assert mycelium.store.run_info(run.id).status == "failed"  # type: ignore[union-attr]
    assert "handled" not in {j.status for j in mycelium.store.list_jobs(run.id)}


def test_retries_happen_before_the_handler_runs(url: str, threads: ThreadWorkers) -> None:
    threads.start(te.flaky)
    mycelium = connect(url)
    run = mycelium.submit(te.retried_then_handled)
    assert run.wait(timeout=60) == "fallback after 3 attempts"
    (job,) = [j for j in mycelium.store.list_jobs(run.id) if j.task == "flap"]
    assert job.status == "handled" and job.attempts == 3
