"""Fuzzing what a worker reads from the database: arbitrary JSON as IR, and arbitrary bytes as
a job's stored row. Whoever can write to the mycelium controls both, so neither may run code,
crash the worker, or take unbounded time or memory: the interpreter answers with a value made
of JSON-like data or an :class:`ExpressionError`; the row decoder with a payload or
:class:`Undecodable`; a claim quarantines what it cannot decode, and a worker survives every
job.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elfc.errors import ExpressionError
from elfc.model.ir import BuiltRun, JobSpec
from elfc.model.ops import BINARY_OPS, BUILTINS, COMPARE_OPS, UNARY_OPS, Op
from elfc.mycelium.common import Undecodable, decode_payload
from elfc.runtime.values import MAX_INT_BITS, MAX_ITEMS, evaluate
from tests.runtime.fixtures.harness import ThreadWorkers, elves, opened, sqlite_url

NAMES = ["eval", "exec", "__import__", "open", "getattr", "compile", "globals", *BUILTINS]
ATTRS = ["__class__", "__globals__", "__dict__", "__subclasses__", "mro", "weight"]

ints = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(10**12), 10**12),
    st.sampled_from([10**7, 50_000_000, 10**9, 2**63, -(2**63)]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["%1000000000d", "%*d", ">1000000000", ".999999999f", "{0}", "A"]),
)


def operations(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Well-formed and malformed operation objects over ``inner`` sub-expressions."""
    small = st.lists(inner, max_size=4)
    return st.one_of(
        st.builds(lambda op, body: {op: body}, st.sampled_from(list(Op)), inner | small),
        st.builds(
            lambda o, a, b: {"bin": [o, a, b]}, st.sampled_from(sorted(BINARY_OPS)), inner, inner
        ),
        st.builds(lambda o, a: {"unary": [o, a]}, st.sampled_from(sorted(UNARY_OPS)), inner),
        st.builds(
            lambda a, rest: {"cmp": [a, *rest]},
            inner,
            st.lists(st.tuples(st.sampled_from(sorted(COMPARE_OPS)), inner).map(list), max_size=2),
        ),
        st.builds(
            lambda name, args, kw: {"call": [name, args, kw]},
            st.sampled_from(NAMES),
            small,
            st.dictionaries(
                st.sampled_from(["start", "key", "strict", "ndigits"]), inner, max_size=2
            ),
        ),
        st.builds(
            lambda parts: {"fmt": parts},
            st.lists(
                st.one_of(
                    st.text(max_size=5),
                    st.tuples(
                        inner, st.sampled_from([None, "r", "s", "a", "x"]), inner | st.none()
                    ).map(list),
                ),
                max_size=3,
            ),
        ),
        st.builds(lambda e, name: {"attr": [e, name]}, inner, st.sampled_from(ATTRS)),
        st.builds(lambda e, k: {"item": [e, k]}, inner, inner),
        st.builds(lambda v: {"lit": v}, small),
        st.builds(lambda k: {"ref": k}, st.sampled_from(["n1#0", "missing", "__builtins__"])),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),  # several keys, or none
    )


# What turns a few bytes into a huge value or a long computation: repetition, powers,
# shifts, and format widths, over small and large operands.
amplifiers = st.one_of(
    st.builds(
        lambda op, a, b: {"bin": [op, a, b]},
        st.sampled_from(["*", "**", "<<", "%", "+"]),
        st.one_of(st.integers(2, 10), st.sampled_from(["A", "%1000000000d", "%.999999999f"])),
        st.one_of(ints, st.sampled_from([{"lit": [1]}, 3.5])),
    ),
    st.builds(
        lambda value, width: {"fmt": [[value, None, width]]},
        st.one_of(st.integers(), st.floats(), st.text(max_size=3)),
        st.sampled_from([">1000000000", "0>999999999", ".1000000000f", "^2000000", "10"]),
    ),
    st.builds(
        lambda seq, n: {"call": ["sum", [{"lit": [seq] * n}, {"lit": []}]]},
        st.lists(st.integers(), max_size=3),
        st.integers(0, 2000),
    ),
)
expressions = st.recursive(scalars | amplifiers, operations, max_leaves=12)

PLAIN = (type(None), bool, int, float, str, list, tuple, dict, set)


def plain(value: Any, depth: int = 0) -> bool:
    """JSON-like data all the way down: nothing callable, no module, no type object."""
    if not isinstance(value, PLAIN) or depth > 50:
        return False
    if isinstance(value, dict):
        return all(plain(k, depth + 1) and plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return all(plain(v, depth + 1) for v in value)
    return True


def size(value: Any) -> int:
    if isinstance(value, int):
        return abs(value).bit_length()
    return len(value) if isinstance(value, str | list | tuple) else 0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_arbitrary_ir_gives_plain_data_or_an_expression_error_in_bounded_time_and_memory(
    expr: Any,
) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        value = evaluate(expr, {"n1#0": [1, 2, 3]})
    except ExpressionError:
        value = None
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert plain(value), value
    assert size(value) <= max(MAX_ITEMS, MAX_INT_BITS)
    assert peak < 200 * 2**20, f"{expr!r} took {peak / 2**20:.0f} MiB"
    assert seconds < 5, f"{expr!r} took {seconds:.1f} s"


rows = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
    ).map(lambda v: __import__("json").dumps(v).encode()),
    st.integers(1, 20_000).map(lambda n: b"[" * n + b"]" * n),
)


@settings(max_examples=300, deadline=None)
@given(rows, rows, rows)
def test_a_stored_row_decodes_to_a_payload_or_undecodable_and_nothing_else(
    args: bytes, kwargs: bytes, deps: bytes
) -> None:
    try:
        decoded = decode_payload(args, kwargs, deps)
    except Undecodable as exc:
        assert str(exc)
        return
    job_args, job_kwargs, dep_keys = decoded
    assert isinstance(job_args, tuple) and isinstance(job_kwargs, dict)
    assert all(isinstance(k, str) for k in dep_keys)


def summer_job(expr: Any) -> BuiltRun:
    module = elves()
    task = module.Summer.total
    revision = getattr(task, "__elfc_revision__", "r")
    spec = JobSpec(
        key="n1#0", node="n1", elf="summer", task="total", revision=revision,
        args=(expr,), kwargs={}, deps=(), seq=0,
    )  # fmt: skip
    return BuiltRun("fuzz:pipe", "p1", {}, (spec,), {"ref": "n1#0"})


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_url(Path(tmp_path_factory.mktemp("fuzz")))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(expressions)
def test_a_worker_settles_every_job_of_arbitrary_ir_and_lives_on(fuzz_url: str, expr: Any) -> None:
    with ThreadWorkers(fuzz_url) as workers, opened(fuzz_url) as store:
        worker = workers.start(elves().summer, on_revision_mismatch="run")
        run_id = store.submit(summer_job(expr))
        assert store.wait_for_run(run_id, 20) in ("succeeded", "failed")
        [job] = store.list_jobs(run_id)
        assert job.status in ("succeeded", "failed")
        assert not worker.finished.is_set()  # still serving
