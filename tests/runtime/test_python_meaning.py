"""A pipeline means what Python means: plain Python == in-process == on workers.

Each pipeline of ``fixtures/typed_shop.py`` once gave another value than Python (a datetime
compared as text, an Enum equal to its value, bytes measured as base64, a tuple turned list).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from elfc import connect
from elfc.decorators import Handle
from elfc.pipeline import Pipeline
from tests.runtime.fixtures import typed_shop
from tests.runtime.fixtures.harness import ThreadWorkers


def plain(p: Pipeline[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run the pipeline's function as ordinary Python, each handle a real instance (helpers
    in the same module see the instances too)."""
    scope = p.fn.__globals__
    handles = {k: v for k, v in scope.items() if isinstance(v, Handle)}
    scope.update({k: v.build() for k, v in handles.items()})
    try:
        return p.fn(*args, **kwargs)
    finally:
        scope.update(handles)


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("p", typed_shop.PIPELINES, ids=lambda p: p.name)
def test_in_process_gives_python_s_value(p: Pipeline[..., Any]) -> None:
    assert p.check() == []
    expected = plain(p)
    assert same(p(), expected), (p(), expected)


def test_workers_give_python_s_values(url: str, threads: ThreadWorkers) -> None:
    threads.start(typed_shop.shop)
    mycelium = connect(url)
    runs = [(p, mycelium.submit(p)) for p in typed_shop.PIPELINES]
    for p, run in runs:
        got = run.wait(timeout=60)
        expected = plain(p)
        assert same(got, expected), (p.name, got, expected)


def test_the_reproduced_values() -> None:
    # The values users saw before, and Python's, spelled out.
    assert typed_shop.before_deadline() is False
    assert typed_shop.status_is_text() is False
    assert typed_shop.blob_length() == 6
    assert typed_shop.doubled_price() == typed_shop.Decimal("25.00")
    assert typed_shop.bounds_equal() is True
    assert typed_shop.bounds_extended() == (10, 99, 100)
    assert typed_shop.enumerated() == [(0, "ann"), (1, "bob"), (2, "cy")]
    assert typed_shop.not_a_number() is True
    assert typed_shop.infinities()[:2] == [math.inf, -math.inf]
    assert typed_shop.record_fields() == "7:OPEN:2026:kelvin:5"
    assert typed_shop.static_operands() == [True, True, True, True, True, True]
    assert typed_shop.with_helpers() == "TOTAL! 17"


def test_a_helper_that_calls_tasks_is_inlined() -> None:
    built = typed_shop.with_helpers.build()
    assert [(job.node, job.task) for job in built.jobs] == [
        ("n1/n1", "names"), ("n1/n2", "names"), ("n2", "names"), ("n3/n1", "count"),
        ("n3/n2", "bounds"),
    ]  # fmt: skip


def three_ways(
    pipelines: list[Pipeline[..., Any]], *handles: Any
) -> tuple[Callable[..., None], Callable[..., None]]:
    """Two tests for ``pipelines`` (each runnable with its defaults), for a module to bind:
    the in-process run gives plain Python's value, and so do workers serving ``handles``."""

    @pytest.mark.parametrize("p", pipelines, ids=lambda p: p.name.rpartition(":")[2])
    def in_process(p: Pipeline[..., Any]) -> None:
        assert p.check() == []
        expected = plain(p)
        got = p()
        assert same(got, expected), (got, expected)

    def on_workers(url: str, threads: ThreadWorkers) -> None:
        for handle in handles:
            threads.start(handle)
        mycelium = connect(url)
        runs = [(p, mycelium.submit(p)) for p in pipelines]
        for p, run in runs:
            got = run.wait(timeout=60)
            assert same(got, plain(p)), (p.name, got, plain(p))
            assert mycelium.store.run_status(run.id) == "succeeded", p.name

    return in_process, on_workers
