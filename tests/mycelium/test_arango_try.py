"""The settling rules of ``try`` statements (:class:`~tests.mycelium.contract.TryContract`)
on the ArangoDB backend, over the real driver and transport against the loopback fake server,
whose :class:`JobTable` serves the statements of ``aql.py`` as their AQL says; the
statements each of those writes runs in one transaction; and the ``try``/``except``
pipelines of ``tests/runtime/test_try_except.py`` served by workers through it. The same
cases run against a real server in the behaviour suite (``test_arango.py``, when
``ELFC_ARANGO_URL`` is set)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from elfc.mycelium.arango import aql
from elfc.mycelium.common import Expansion
from elfc.mycelium.store import Store
from tests.runtime.test_try_except import (  # noqa: F401  (collected here)
    test_a_handled_failure_is_recorded_and_does_not_fail_the_run,
    test_a_later_call_in_the_body_never_runs_after_a_failure,
    test_an_unhandled_failure_fails_the_run_with_the_original_error,
    test_every_path_gives_python_s_value,
    test_retries_happen_before_the_handler_runs,
    test_workers_give_python_s_values,
)

from .contract import CAUGHT, TryContract, catcher, job, run_of, take
from .fake_arango import FakeArango, JobTable

pytest.importorskip("arango", reason="python-arango is not installed")


@pytest.fixture
def url() -> Iterator[str]:
    """The mycelium the pipelines run on: the fake server, serving a table of its own."""
    with FakeArango() as fake:
        JobTable().serve(fake)
        yield fake.url()


class TestArangoTry(TryContract):
    @pytest.fixture
    def fake(self) -> Iterator[FakeArango]:
        with FakeArango() as server:
            JobTable().serve(server)
            yield server

    @pytest.fixture
    def mycelium_url(self, fake: FakeArango) -> str:
        return fake.url()

    def test_a_failure_and_a_handling_are_each_one_transaction(
        self, fake: FakeArango, mycelium: Store
    ) -> None:
        mycelium.submit(run_of(job("a#0"), catcher("t#0", ["a#0"])))
        a = take(mycelium, "e", "a#0")
        fake.seen.clear()
        assert mycelium.fail(a.id, "w", CAUGHT)
        ((trx, names),) = _transactions(fake)
        # The exception is stored with the failure; skipping readies the catch job.
        assert names == [
            "HELD",
            "RECORD_FAILURE",
            "INSERT",
            "FAIL",
            "PUT_RESULTS",
            "SKIP_DEPENDENTS",
        ]
        (begin,) = fake.requests("POST", "/_api/transaction/begin")
        assert aql.RESULTS in begin.body["collections"]["write"]
        (skip,) = fake.queries("SKIP_DEPENDENTS")
        assert skip.trx == trx and skip.binds["catch"] == "@catch"
        t = take(mycelium, "x", "t#0")
        fake.seen.clear()
        assert mycelium.expand(t.id, "w", Expansion([], result=b"1", handled=["a#0"]))
        ((_, names),) = _transactions(fake)
        assert names == [
            "EXPANDING", "EXPAND_RUN", "HANDLE", "HANDLED_RESULTS", "EXPAND_JOB", "INSERT",
        ]  # fmt: skip
        (handle,) = fake.queries("HANDLE")
        assert handle.binds["keys"] == ["a#0"] and handle.binds["note"].endswith(t.id)
        (results,) = fake.queries("HANDLED_RESULTS")
        assert results.binds["jobs"] == [a.id] and results.binds["value"] == '{"@handled":true}'


def _transactions(fake: FakeArango) -> list[tuple[str, list[str]]]:
    """Each committed transaction since ``fake.seen`` was cleared, with its statements."""
    return [(trx, names) for trx in fake.committed() if (names := fake.in_transaction(trx))]
