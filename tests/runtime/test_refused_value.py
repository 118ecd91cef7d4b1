"""A run whose jobs all succeed but whose value its pipeline's return annotation refuses fails:
the first reader of the value records why (``Store.fail_run``), every reader is told."""

from __future__ import annotations

import pytest

from elfc import RunFailed, ValueCrossingError
from elfc.runtime.client import Mycelium
from tests.runtime.fixtures import refused
from tests.runtime.fixtures.harness import ThreadWorkers

REASON = (
    "its value was refused: ValueCrossingError: the result of pipeline "
    "tests.runtime.fixtures.refused:count is not a valid `int`: Expected `int`, got `str`"
)


def test_in_process_the_refused_value_raises_where_it_is_returned() -> None:
    with pytest.raises(ValueCrossingError, match=r"not a valid `int`: Expected `int`, got `str`"):
        refused.count()
    assert refused.count(3) == 3


def test_wait_fails_the_run_and_every_reader_sees_the_same_reason(
    threads: ThreadWorkers, mycelium: Mycelium
) -> None:
    threads.start(refused.loose)
    run = mycelium.submit(refused.count)
    with pytest.raises(RunFailed) as first:
        run.wait(timeout=60)
    assert str(first.value) == f"run {run.id} failed: {REASON}"
    assert first.value.failures == () and first.value.reason == REASON
    assert run.status() == "failed" and run.failures() == []
    info = mycelium.store.run_info(run.id)
    assert info is not None and info.failure is not None
    assert info.counts["succeeded"] == 1 and info.error == REASON
    recorded = info.failure.time
    # Another reader (a second handle, as another process would have) reads the stored
    # reason; nothing is stored again.
    again = mycelium.run(run.id, int)
    with pytest.raises(RunFailed, match="its value was refused: ValueCrossingError"):
        again.wait(timeout=5)
    with pytest.raises(RunFailed, match="its value was refused"):
        mycelium.output(run.id, int)
    later = mycelium.store.run_info(run.id)
    assert later is not None and later.failure is not None and later.failure.time == recorded
    (row,) = mycelium.store.list_run_failures()
    assert row.run == run.id and row.error_type == "ValueCrossingError"


def test_an_output_expression_that_raises_fails_the_run(
    threads: ThreadWorkers, mycelium: Mycelium
) -> None:
    threads.start(refused.loose)
    run = mycelium.submit(refused.total)
    with pytest.raises(RunFailed, match=r"its value was refused: ExpressionError: .*TypeError"):
        run.wait(timeout=60)
    assert run.status() == "failed"


def test_a_value_the_annotation_accepts_is_returned(
    threads: ThreadWorkers, mycelium: Mycelium
) -> None:
    threads.start(refused.loose)
    assert mycelium.submit(refused.count, 41).wait(timeout=60) == 41
    assert mycelium.submit(refused.total, 41).wait(timeout=60) == 42
    assert mycelium.store.list_run_failures() == []
