"""The ArangoDB mycelium against a loopback fake server (``fake_arango.py``) that drops, fails
or delays chosen requests: what the store does when the transport fails, without ArangoDB.

Each test injects one failure where python-arango meets the network (the real driver, the
real ``requests``/urllib3 stack, real sockets) and checks, from the requests the server saw,
that nothing was applied twice and that the store's answer is the one the server's state
implies. What only a real server shows (snapshot-isolation conflicts, cluster placement) is
in ``test_arango.py``, run when ``ELFC_ARANGO_URL`` is set.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from elfc.errors import MyceliumError
from elfc.model.records import WorkerInfo
from elfc.mycelium import arango as backend
from elfc.mycelium.arango import ArangoStore, aql

from .contract import job, run_of
from .fake_arango import FakeArango, statements

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


def _completing(fake: FakeArango, run: str = "r1") -> None:
    """COMPLETE accepts every job it is given, each with one dependent."""
    fake.answer["COMPLETE"] = lambda binds: [
        {"id": job, "run": run, "key": f"k-{job}", "dependents": 1} for job in binds["jobs"]
    ]


def _claimable(binds: dict[str, Any]) -> list[Any]:
    skip, limit = binds.get("skip", 0), binds.get("limit", 1)
    return [
        {
            "id": f"job{skip + i}",
            "run": "r1",
            "run_no": 1,
            "seq": skip + i,
            "key": f"k{i}",
            "task": "t",
            "revision": "rev",
            "args": "[]",
            "kwargs": "{}",
            "deps": ["a"],
            "attempts": 1,
            "results": [["a", "41"]],
        }
        for i in range(limit)
    ]


# -- 1. a request whose answer was lost is never sent again -------------------------------------


def test_python_arango_alone_sends_a_dropped_request_again(fake: FakeArango) -> None:
    """Why the store has its own HTTP client: python-arango's BaseConnection.process_request
    (arango/connection.py) catches requests.ConnectionError and sends the same request again,
    transaction header and all, even with retry_attempts=0 (which only turns off urllib3's)."""
    from arango.client import ArangoClient
    from arango.http import DefaultHTTPClient

    client = ArangoClient(
        hosts=f"http://{fake.host}", http_client=DefaultHTTPClient(retry_attempts=0)
    )
    db = client.db("db", username="u", password="")
    txn = db.begin_transaction(write=[aql.JOBS])
    fake.fault(query="COMPLETE", drop="after")
    txn.aql.execute(aql.COMPLETE.text, bind_vars={"jobs": ["j1"], "worker": "w", "now": 1.0})
    assert fake.in_transaction(txn.transaction_id) == ["COMPLETE", "COMPLETE"]
    client.close()


def test_a_commit_whose_answer_was_lost_is_resolved_by_the_transaction_status(
    fake: FakeArango, store: ArangoStore
) -> None:
    _completing(fake)
    fake.fault(method="PUT", path="/_api/transaction/", drop="after")
    assert store.complete_many("w1", [("j1", b"1")]) == [True]
    (trx,) = fake.transactions
    assert fake.transactions[trx] == "committed"
    assert fake.in_transaction(trx) == ["COMPLETE", "INSERT", "READY_DEPENDENTS"]
    assert len(fake.requests("PUT", "/_api/transaction/")) == 1  # the commit, once
    assert len(fake.requests("GET", f"/_api/transaction/{trx}")) == 1  # then its status
    assert [name for trx, name in statements(fake) if trx is None] == ["SETTLE"]


def test_a_commit_that_never_arrived_is_sent_once_more(
    fake: FakeArango, store: ArangoStore
) -> None:
    """Dropped before the server saw it: the status says running, so committing is safe."""
    _completing(fake)
    fake.fault(method="PUT", path="/_api/transaction/", drop="before")
    assert store.complete_many("w1", [("j1", b"1")]) == [True]
    (trx,) = fake.transactions
    assert fake.transactions[trx] == "committed"
    assert fake.in_transaction(trx) == ["COMPLETE", "INSERT", "READY_DEPENDENTS"]
    commits = fake.requests("PUT", "/_api/transaction/")
    assert [c.dropped for c in commits] == ["before", None]


def test_a_statement_whose_answer_was_lost_aborts_its_transaction_and_runs_the_body_anew(
    fake: FakeArango, store: ArangoStore
) -> None:
    _completing(fake)
    fake.fault(query="READY_DEPENDENTS", drop="after")
    assert store.complete_many("w1", [("j1", b"1")]) == [True]
    first, second = fake.transactions
    assert fake.transactions == {first: "aborted", second: "committed"}
    assert fake.in_transaction(first) == ["COMPLETE", "INSERT", "READY_DEPENDENTS"]
    assert fake.in_transaction(second) == ["COMPLETE", "INSERT", "READY_DEPENDENTS"]


@pytest.mark.parametrize(("written", "outcome"), [(True, "committed"), (False, "ran again")])
def test_a_forgotten_transaction_is_resolved_by_its_receipt(
    fake: FakeArango, store: ArangoStore, written: bool, outcome: str
) -> None:
    """The server no longer knows the transaction (1655): the results it would have written
    (keyed by job id) tell whether it committed."""
    _completing(fake)
    fake.fault(method="PUT", path="/_api/transaction/", drop="after")
    fake.forget_transactions = True
    fake.answer["EXISTING"] = lambda binds: list(binds["keys"]) if written else []
    assert store.complete_many("w1", [("j1", b"1")]) == [True]
    (existing,) = fake.queries("EXISTING")
    assert existing.binds == {"@collection": aql.RESULTS, "keys": ["j1"]}
    assert len(fake.transactions) == (1 if outcome == "committed" else 2)


def test_a_claim_whose_answer_was_lost_is_read_back_not_sent_again(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["PROBE"] = lambda binds: [{"ready": True, "expired": False}]
    fake.fault(query="CLAIM", drop="after")
    fake.answer["CLAIMED"] = _claimable  # what the lost CLAIM took
    (claimed,) = store.claim("elf", "w1", lease=30.0, limit=1)
    assert [s.query for s in fake.queries()] == ["PROBE", "CLAIM", "CLAIMED"]
    (claim,), (read_back,) = fake.queries("CLAIM"), fake.queries("CLAIMED")
    assert {k: read_back.binds[k] for k in ("worker", "lease", "now")} == {
        k: claim.binds[k] for k in ("worker", "lease", "now")
    }
    assert claimed.id == "job0" and claimed.results == {"a": b"41"}


def test_reads_and_rerunnable_writes_are_sent_again_other_writes_are_not(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["RUN_STATUS"] = lambda binds: [{"status": "running", "idle": False}]
    fake.fault(query="RUN_STATUS", drop="after")
    assert store.run_status("r1") == "running"
    assert [s.query for s in fake.queries()] == ["RUN_STATUS", "RUN_STATUS"]
    fake.fault(query="BEAT", drop="after")
    store.heartbeat(WorkerInfo("w1", "elf", "host", 1, 0.0, 0.0))
    assert [s.query for s in fake.queries("BEAT")] == ["BEAT", "BEAT"]
    assert aql.RERUNNABLE | {n for n, q in aql.QUERIES.items() if not q.writes} >= {
        "RUN_STATUS",
        "BEAT",
    }
    writes_outside = {n for n, q in aql.QUERIES.items() if q.writes} - aql.RERUNNABLE
    # every other write runs inside a stream transaction, or is CLAIM (read back)
    assert "CLAIM" in writes_outside and "COMPLETE" in writes_outside


def test_a_request_that_never_left_goes_to_the_next_coordinator(fake: FakeArango) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    url = f"arango://u@127.0.0.1:{closed},{fake.host}/db?connect_timeout=1"
    with ArangoStore.from_url(url) as store:
        assert store.run_status("nope") is None
    assert [s.query for s in fake.queries()] == ["SCHEMA", "RUN_STATUS"]


def test_the_first_live_coordinator_keeps_the_requests(
    fake: FakeArango, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead coordinator costs one failed connect, not one in every N requests."""
    import urllib3.util.connection

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    connect = urllib3.util.connection.create_connection
    tried: list[int] = []

    def counting(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        tried.append(address[1])
        return connect(address, *args, **kwargs)

    monkeypatch.setattr("urllib3.connection.connection.create_connection", counting)
    url = f"arango://u@127.0.0.1:{closed},{fake.host}/db?connect_timeout=1"
    with ArangoStore.from_url(url) as store:
        for _ in range(6):
            store.run_status("nope")
    assert tried.count(closed) == 1 and len(fake.queries("RUN_STATUS")) == 6


# -- 2. a cancel conflicts with every write that read the run's status -------------------------


def test_cancel_writes_every_job_status_that_run_status_readers_write() -> None:
    """EXPIRE and REQUEUE read the run's status and write a running job; CLAIM and
    READY_DEPENDENTS write ready and pending ones. Under snapshot isolation two
    transactions conflict only on a document both write, so CANCEL_JOBS must write jobs of
    each of those statuses (SQLite serialises its writers and needs no such rule)."""
    cancelled = _statuses(aql.CANCEL_JOBS.text)
    for query in (aql.EXPIRE, aql.REQUEUE):
        assert "FOR r IN elfc_runs" in query.text
        assert _statuses(query.text) <= cancelled, query.name
    assert {"pending", "ready", "running"} <= cancelled


def _statuses(text: str) -> set[str]:
    import re

    found = set(re.findall(r'j\.status == "(\w+)"', text))
    for group in re.findall(r"j\.status IN \[([^\]]*)\]", text):
        found |= set(re.findall(r'"(\w+)"', group))
    return found


def test_cancel_runs_its_statements_in_one_transaction(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["CANCEL_RUN"] = lambda binds: [binds["run"]]
    assert store.cancel_run("r1") is True
    (trx,) = fake.committed()
    assert fake.in_transaction(trx) == ["CANCEL_RUN", "CANCEL_JOBS"]


# -- 5. refusals that clusters and deadlocks answer are retried, never a crash ---------------------


@pytest.mark.parametrize("code", [29, 30, 1004, 1478, 1491, 1496])
def test_deadlocks_and_fail_overs_are_retried(
    fake: FakeArango, store: ArangoStore, code: int
) -> None:
    _completing(fake)
    fake.fault(query="COMPLETE", error=(503 if code != 29 else 400, code))
    assert store.complete_many("w1", [("j1", b"1")]) == [True]
    first, second = fake.transactions
    assert fake.transactions == {first: "aborted", second: "committed"}


def test_a_commit_a_coordinator_timed_out_on_is_resolved_by_reading(
    fake: FakeArango, store: ArangoStore
) -> None:
    """1457 (cluster timeout) after the work was done: like a lost answer, not a refusal."""
    _completing(fake)
    fake.fault(method="PUT", path="/_api/transaction/", error=(500, 1457))
    assert store.complete_many("w1", [("j1", b"1")]) == [True]
    assert list(fake.transactions.values()) == ["committed"]
    assert len(fake.requests("GET", "/_api/transaction/")) == 1


def test_a_settle_that_fails_after_the_commit_does_not_fail_the_completion(
    fake: FakeArango, store: ArangoStore, caplog: pytest.LogCaptureFixture
) -> None:
    _completing(fake)
    fake.fault(query="SETTLE", error=(403, 11))
    with caplog.at_level("INFO", logger=backend.__name__):
        assert store.complete_many("w1", [("j1", b"1")]) == [True]
    assert list(fake.transactions.values()) == ["committed"]
    assert "not settled now" in caplog.text


def test_an_unanswered_write_that_cannot_be_resolved_says_so(
    fake: FakeArango, store: ArangoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "PATIENCE", 0.3)
    _completing(fake)
    fake.fault(method="PUT", path="/_api/transaction/", drop="after")
    fake.fault(method="GET", path="/_api/transaction/", drop="after", times=10**6)
    with pytest.raises(MyceliumError, match="outcome could not be read") as caught:
        store.complete_many("w1", [("j1", b"1")])
    assert "elfc jobs" in str(caught.value)
    assert len(fake.requests("PUT", "/_api/transaction/")) == 1


# -- 6. completions commit before the claim; conflicting claimers spread ----------------------------


def test_exchange_commits_completions_before_it_claims(
    fake: FakeArango, store: ArangoStore
) -> None:
    _completing(fake)
    fake.answer["PROBE"] = lambda binds: [{"ready": True, "expired": False}]
    fake.answer["CLAIM"] = _claimable
    fake.fault(query="CLAIM", error=(409, 1200), times=3)
    accepted, claimed = store.exchange("elf", "w1", [("j1", b"1")], lease=30.0, limit=2)
    assert accepted == [True] and len(claimed) == 2
    (trx,) = fake.transactions
    assert fake.transactions[trx] == "committed"
    assert "CLAIM" not in fake.in_transaction(trx)
    commit = fake.seen.index(fake.requests("PUT", f"/_api/transaction/{trx}")[0])
    claims = fake.queries("CLAIM")
    assert len(claims) == 4 and all(fake.seen.index(c) > commit for c in claims)
    skips = [c.binds["skip"] for c in claims]
    assert skips[0] == 0 and all(1 <= s <= 2 * (i + 1) for i, s in enumerate(skips[1:]))


def test_a_claim_that_skipped_past_the_ready_jobs_takes_the_head_again(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["PROBE"] = lambda binds: [{"ready": True, "expired": False}]
    fake.answer["CLAIM"] = lambda binds: [] if binds["skip"] else _claimable(binds)
    fake.fault(query="CLAIM", error=(409, 1200))
    (claimed,) = store.claim("elf", "w1", lease=30.0, limit=1)
    assert [c.binds["skip"] for c in fake.queries("CLAIM")] == [0, 1, 0]
    assert claimed.id == "job0"


# -- 7. smaller ones ---------------------------------------------------------------------------------


def test_a_submission_takes_its_run_number_outside_its_transaction(
    fake: FakeArango, store: ArangoStore
) -> None:
    fake.answer["NEXT_RUN_NO"] = lambda binds: [7]
    run_id = store.submit(run_of(job("a")))
    (trx,) = fake.committed()
    assert [name for t, name in statements(fake) if t is None] == ["NEXT_RUN_NO"]
    (numbered,), (begun,) = fake.queries("NEXT_RUN_NO"), fake.requests("POST", "/begin")
    assert fake.seen.index(numbered) < fake.seen.index(begun)
    assert fake.in_transaction(trx) == ["INSERT", "INSERT", "INSERT"]
    (run_insert,) = [s for s in fake.queries("INSERT") if s.binds["@collection"] == aql.RUNS]
    assert run_insert.binds["docs"][0]["no"] == 7 and run_insert.binds["docs"][0]["_key"] == run_id


def test_a_5xx_answer_is_reported_as_an_answer_not_as_unreachable(fake: FakeArango) -> None:
    fake.fault(method="GET", path="/_api/version", status=(502, "<html>Bad Gateway</html>"))
    with pytest.raises(MyceliumError) as caught:
        ArangoStore.from_url(fake.url())
    assert "answered HTTP 502" in str(caught.value)
    assert "cannot reach" not in str(caught.value)
    assert len(fake.requests("GET", "/_api/version")) == 1  # urllib3 did not retry it


def test_prefix_lookups_are_sorted_before_their_limit() -> None:
    text = aql.BY_PREFIX.text
    assert text.index("SORT d._key") < text.index("LIMIT 2")


# -- 4. on a cluster, every transaction stays on one DB-Server ---------------------------------------


def _new_mycelium(fake: FakeArango) -> None:
    """The first SCHEMA read finds no collection (1203): the store sets the mycelium up."""
    fake.fault(query="SCHEMA", error=(404, 1203))


def test_a_new_mycelium_on_a_cluster_co_locates_its_collections() -> None:
    with FakeArango(role="COORDINATOR", sharding="flexible") as fake:
        _new_mycelium(fake)
        ArangoStore.from_url(fake.url()).close()
        first, *rest = aql.COLLECTIONS
        assert set(fake.collections) == set(aql.COLLECTIONS)
        assert fake.collections[first].get("numberOfShards") == 1
        for name in rest:
            assert fake.collections[name].get("distributeShardsLike") == first, name
        assert len(fake.requests("GET", r"/_api/collection/\w+/properties")) == len(aql.COLLECTIONS)


def test_a_new_mycelium_on_a_single_server_takes_no_cluster_options(fake: FakeArango) -> None:
    _new_mycelium(fake)
    ArangoStore.from_url(fake.url()).close()
    assert set(fake.collections) == set(aql.COLLECTIONS)
    for body in fake.collections.values():
        assert "numberOfShards" not in body and "distributeShardsLike" not in body
    assert not fake.requests("GET", "/properties")


def test_a_sharded_cluster_database_that_is_not_co_located_is_refused() -> None:
    with FakeArango(role="COORDINATOR", sharding="flexible") as fake:
        fake.collections = {name: {"numberOfShards": 1} for name in aql.COLLECTIONS}
        fake.collections[aql.JOBS] = {"numberOfShards": 1, "distributeShardsLike": aql.META}
        with pytest.raises(MyceliumError, match="not co-located") as caught:
            ArangoStore.from_url(fake.url())
        message = str(caught.value)
        assert aql.RUNS in message and aql.JOBS not in message.split("with")[0]
        assert 'sharding: "single"' in message and "docs/arango.md" in message


def test_a_oneshard_database_needs_no_co_location() -> None:
    with FakeArango(role="COORDINATOR", sharding="single") as fake:
        fake.collections = {name: {"numberOfShards": 1} for name in aql.COLLECTIONS}
        ArangoStore.from_url(fake.url()).close()
        assert not fake.requests("GET", "/properties")


def test_a_run_s_graph_holds_only_that_run_s_vertices() -> None:
    """Failures are shared across runs (deduplicated by hash): they have a graph of their own,
    so the web UI's traversal from a run never reaches another run."""
    vertices = {
        collection
        for _, sources, targets in aql.GRAPHS["elfc_runs"]
        for collection in (*sources, *targets)
    }
    assert vertices == {aql.RUNS, aql.JOBS}
    assert aql.GRAPHS["elfc_failures"] == ((aql.JOB_FAILURES, (aql.JOBS,), (aql.FAILURES,)),)
    edges = {edges for definitions in aql.GRAPHS.values() for edges, _, _ in definitions}
    assert edges == set(aql.EDGE_COLLECTIONS)  # every edge collection is browsable
