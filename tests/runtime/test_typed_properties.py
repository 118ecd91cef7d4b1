"""Property: for drawn arguments, plain Python == in-process == on workers (SQLite).

The pipelines of ``fixtures/typed_echo.py`` apply operators, comparisons, builtins, f-strings,
attribute reads and pure methods to results of many declared types (datetime, timedelta,
Decimal, Enum, bytes, tuple, set, float with NaN and infinities, NamedTuple, list, dict, str).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elfc import connect
from elfc.runtime.client import Mycelium
from tests.runtime.fixtures import typed_echo
from tests.runtime.fixtures.harness import ThreadWorkers, sqlite_url
from tests.runtime.test_python_meaning import plain

zones = st.sampled_from([UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5))])
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=zones
)
deltas = st.timedeltas(min_value=timedelta(days=-3000), max_value=timedelta(days=3000))
decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=3, min_value=-1e6, max_value=1e6
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([math.nan, math.inf])
words = st.text(alphabet="ab cAB", max_size=8)

ARGUMENTS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "times": st.tuples(moments, moments, deltas),
    "amounts": st.tuples(decimals, decimals),
    "colours": st.tuples(st.sampled_from(list(typed_echo.Colour))),
    "blobs": st.tuples(st.binary(max_size=8)),
    "pairs": st.tuples(st.tuples(st.integers(-3, 3), st.sampled_from(["a", "b"]))),
    "tag_sets": st.tuples(st.sets(st.sampled_from(list("abcdefgh")), max_size=6)),
    "floats": st.tuples(floats, floats),
    "lists": st.tuples(
        st.lists(st.integers(-5, 5), max_size=6),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-9, 9)),
    ),
    "spans": st.tuples(st.builds(typed_echo.Span, st.integers(0, 9), st.integers(0, 9)), words),
}


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, element by element, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mycelium]:
    url = sqlite_url(tmp_path_factory.mktemp("typed"))
    with ThreadWorkers(url) as threads:
        threads.start(typed_echo.echo)
        threads.start(typed_echo.echo)
        m = connect(url)
        yield m
        m.close()


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_in_process_equals_python(name: str) -> None:
    p = typed_echo.PIPELINES[name]
    assert p.check() == []

    @settings(max_examples=60, deadline=None)
    @given(ARGUMENTS[name])
    def check(args: tuple[Any, ...]) -> None:
        expected = plain(p, *args)
        got = p(*args)
        assert same(got, expected), (args, got, expected)

    check()


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_on_workers_equals_python(name: str, workers: Mycelium) -> None:
    p = typed_echo.PIPELINES[name]

    @settings(
        max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(ARGUMENTS[name])
    def check(args: tuple[Any, ...]) -> None:
        expected = plain(p, *args)
        got = workers.submit(p, *args).wait(timeout=60)
        assert same(got, expected), (args, got, expected)

    check()


def test_a_decimal_is_not_float_arithmetic() -> None:
    assert typed_echo.amounts(Decimal("0.1"), Decimal("0.2"))[0] == Decimal("0.3")
