"""Branches and loops on task results mean what Python means: plain Python == in-process ==
workers on a mycelium, for each pipeline of ``fixtures/control_flow.py``."""

from __future__ import annotations

from typing import Any

import pytest

from elfc import connect
from elfc.errors import RunFailed
from elfc.pipeline import Pipeline
from tests.runtime.fixtures import control_flow as cf
from tests.runtime.fixtures.harness import ThreadWorkers
from tests.runtime.test_python_meaning import plain, same, three_ways

test_in_process_gives_python_s_value, test_workers_give_python_s_values = three_ways(
    cf.PIPELINES, cf.shop
)


@pytest.mark.parametrize(
    ("p", "args"),
    [
        (cf.quality_gate, (0,)),
        (cf.quality_gate, (3,)),
        (cf.quality_gate, (9,)),
        (cf.if_elif_else, (1,)),
        (cf.if_elif_else, (9,)),
        (cf.if_without_else, (7,)),
        (cf.poll_until_done, (5,)),
        (cf.continue_and_break, (3,)),
    ],
    ids=lambda v: str(v),
)
def test_every_path_gives_python_s_value(
    p: Pipeline[..., Any], args: tuple[Any, ...], url: str, threads: ThreadWorkers
) -> None:
    threads.start(cf.shop)
    expected = plain(p, *args)
    assert same(p(*args), expected)
    assert same(connect(url).submit(p, *args).wait(timeout=60), expected)


def test_a_failed_assert_fails_the_run_with_its_message(url: str, threads: ThreadWorkers) -> None:
    with pytest.raises(AssertionError, match="the shop has too many items"):
        plain(cf.assert_holds, 7)
    with pytest.raises(RunFailed, match="the shop has too many items"):
        cf.assert_holds(7)
    threads.start(cf.shop)
    run = connect(url).submit(cf.assert_holds, 7)
    with pytest.raises(Exception, match="the shop has too many items"):
        run.wait(timeout=60)


def test_not_taken_jobs_are_recorded_and_never_run(url: str, threads: ThreadWorkers) -> None:
    threads.start(cf.shop)
    mycelium = connect(url)
    run = mycelium.submit(cf.if_elif_else, 9)
    assert run.wait(timeout=60) == "large:72"
    jobs = {j.key: j for j in mycelium.store.list_jobs(run.id)}
    statuses = sorted(j.status for j in jobs.values())
    assert statuses.count("not_taken") == 1, statuses
    (skipped,) = [j for j in jobs.values() if j.status == "not_taken"]
    assert skipped.task == "double" and skipped.attempts == 0
    assert mycelium.store.run_info(run.id).status == "succeeded"  # type: ignore[union-attr]


def test_a_map_makes_one_job_per_element(url: str, threads: ThreadWorkers) -> None:
    threads.start(cf.shop)
    mycelium = connect(url)
    run = mycelium.submit(cf.map_then_reduce, 50)
    assert run.wait(timeout=60) == sum(2 * x for x in range(50))
    jobs = mycelium.store.list_jobs(run.id)
    doubles = [j for j in jobs if j.task == "double"]
    assert len(doubles) == 50
    assert len({j.key for j in doubles}) == 50
    assert all(j.status == "succeeded" and j.attempts == 1 for j in doubles)
