"""The ArangoDB mycelium's operations for operating runs (task output, retries, pruning)
against the loopback fake server (``fake_arango.py``): through the real driver and HTTP, each
runs its statements in one committed stream transaction, in the order the contract needs, and
a failing one is aborted with nothing committed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from elfc.errors import MyceliumError
from elfc.model.records import LogRecord
from elfc.mycelium.arango import ArangoStore

from .fake_arango import FakeArango

pytest.importorskip("arango", reason="python-arango is not installed")


@pytest.fixture
def fake() -> Iterator[FakeArango]:
    with FakeArango() as server:
        yield server


@pytest.fixture
def store(fake: FakeArango) -> Iterator[ArangoStore]:
    opened = ArangoStore.from_url(fake.url())
    fake.seen.clear()
    yield opened
    opened.close()


def test_a_retry_is_one_transaction_that_counts_waiting_after_the_reset(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["RETRY_RUN"] = lambda binds: [binds["run"]]
    fake.answer["RESET_JOBS"] = lambda binds: [{"id": j, "old": "r1"} for j in binds["jobs"]]
    fake.answer["COUNT_WAITING"] = lambda binds: [
        {"id": j, "waiting": n} for n, j in enumerate(binds["jobs"])
    ]
    assert store.retry_jobs("run1", {"j1": "r2", "j2": "r1"}) is True
    (trx,) = fake.committed()
    assert fake.in_transaction(trx) == [
        "RETRY_RUN", "RESET_JOBS", "DELETE_RESULTS", "COUNT_WAITING", "REREADY",
    ]  # fmt: skip
    (reready,) = fake.queries("REREADY")
    assert reready.binds["waiting"] == [
        {"id": "j1", "waiting": 0, "note": "retried: task revision r1 -> r2"},
        {"id": "j2", "waiting": 1, "note": "retried at task revision r1"},
    ]


def test_a_retry_of_jobs_that_are_not_settled_commits_nothing(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["RETRY_RUN"] = lambda binds: [binds["run"]]
    fake.answer["RESET_JOBS"] = lambda binds: [{"id": "j1", "old": "r1"}]  # j2 is running
    with pytest.raises(MyceliumError, match="j2: not settled jobs of run run1"):
        store.retry_jobs("run1", {"j1": "r1", "j2": "r1"})
    assert fake.committed() == []
    assert set(fake.transactions.values()) == {"aborted"}


def test_task_output_is_stored_in_one_transaction_and_listed_by_run(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["JOBS_FOR_LOGS"] = lambda binds: [
        {"id": j, "run": "run1", "seq": n} for n, j in enumerate(binds["jobs"])
    ]
    store.put_logs([LogRecord("j1", "x", "n1#0", "e", "t", 1, "hello\n")])
    (trx,) = fake.committed()
    assert fake.in_transaction(trx) == ["JOBS_FOR_LOGS", "PUT_LOGS"]
    (put,) = fake.queries("PUT_LOGS")
    (doc,) = put.binds["docs"]
    assert (doc["run"], doc["job"], doc["text"], doc["seq"]) == ("run1", "j1", "hello\n", 0)
    fake.answer["LIST_LOGS"] = lambda binds: [{**doc, "attempt": 1}]
    (record,) = store.list_logs("run1", key="n1#0")
    assert (record.job, record.text, record.time) == ("j1", "hello\n", doc["time"])
    (listed,) = fake.queries("LIST_LOGS")
    assert listed.binds == {"run": "run1", "key": "n1#0", "since": 0.0}


def test_pruning_is_one_transaction_per_batch(fake: FakeArango, store: ArangoStore) -> None:
    batches = [[{"id": "run1", "revision": "p1"}], []]
    fake.answer["PRUNE_PICK"] = lambda binds: batches.pop(0)
    fake.answer["PRUNE_JOBS_OF"] = lambda binds: [
        {"jobs": ["elfc_jobs/j1"], "revisions": ["r1"], "failures": []}
    ]
    assert store.prune_runs(1e12, limit=10) == 1
    assert store.prune_runs(1e12, limit=10) == 0
    first, second = fake.committed()
    assert fake.in_transaction(first)[:2] == ["PRUNE_PICK", "PRUNE_JOBS_OF"]
    assert fake.in_transaction(first)[-1] == "PRUNE_REVISIONS"
    assert fake.in_transaction(second) == ["PRUNE_PICK"]
    (pick, _) = fake.queries("PRUNE_PICK")
    assert pick.binds["statuses"] == ["cancelled", "failed", "succeeded"]
