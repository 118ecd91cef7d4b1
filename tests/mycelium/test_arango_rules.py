"""The shared claim and lease rules (``elfc.mycelium.common``) on the ArangoDB backend, over
the real driver and transport against the loopback fake server, whose :class:`JobTable`
serves the job statements of ``aql.py``: a job whose stored arguments cannot be decoded is
failed at claim and the next one is claimed; a job whose lease ran out
:data:`MAX_LOST_LEASES` times is failed with ``WorkerLost`` and its dependents skipped; a
damaged job document still reads. The same rules run against a real server in the behaviour
suite (``contract.py``, when ``ELFC_ARANGO_URL`` is set)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from elfc.mycelium.arango import ArangoStore
from elfc.mycelium.common import MAX_LOST_LEASES, cached_note

from .contract import BOOM, LEASE
from .fake_arango import FakeArango, JobTable, statements

pytest.importorskip("arango", reason="python-arango is not installed")


@pytest.fixture
def fake() -> Iterator[FakeArango]:
    with FakeArango() as server:
        yield server


@pytest.fixture
def table(fake: FakeArango) -> JobTable:
    served = JobTable()
    served.run("r1")
    served.serve(fake)
    return served


@pytest.fixture
def store(fake: FakeArango, table: JobTable) -> Iterator[ArangoStore]:
    opened = ArangoStore.from_url(fake.url())
    fake.seen.clear()
    yield opened
    opened.close()


@pytest.fixture
def default_recursion_limit() -> Iterator[None]:
    """Python's default recursion limit, which a worker process runs with (another test of
    this process may have raised it, letting a deeper payload decode)."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(before)


def _transactions(fake: FakeArango) -> list[list[str]]:
    """The statements of each committed transaction since ``fake.seen`` was cleared."""
    return [names for trx in fake.committed() if (names := fake.in_transaction(trx))]


# -- a job that cannot be decoded is failed at claim ------------------------------------------

HOSTILE: list[tuple[str, Any]] = [
    ("args", "not JSON at all"),
    ("args", "[" * 5000 + "]" * 5000),  # deeper than any worker can decode
    ("args", '{"an": "object, not an array"}'),
    ("args", ["an", "array", "where JSON text belongs"]),
    ("args", None),
    ("kwargs", "[1, 2]"),
    ("deps", "a#0"),
    ("deps", [1, 2]),
]


@pytest.mark.usefixtures("default_recursion_limit")
@pytest.mark.parametrize(("field", "value"), HOSTILE, ids=[f"{f}={v!r:.24}" for f, v in HOSTILE])
def test_a_job_that_cannot_be_decoded_is_failed_at_claim_and_the_next_is_claimed(
    fake: FakeArango, table: JobTable, store: ArangoStore, field: str, value: Any
) -> None:
    poison = table.job("a#0")
    table.job("c#0", deps=("a#0",))
    table.job("b#0")
    table.jobs[poison][field] = value
    (claimed,) = store.claim("e", "w1", LEASE, limit=1)
    assert (claimed.key, claimed.args, claimed.kwargs, claimed.attempts) == ("b#0", (), {"x": 1}, 1)
    assert table.status() == {"a#0": "failed", "c#0": "skipped", "b#0": "running"}
    (failure,) = table.failures.values()
    assert failure["error_type"] == "UndecodableJob"
    assert f"job {poison}: its stored arguments cannot be decoded" in failure["message"]
    assert "submit the run again" in failure["message"]
    # The first CLAIM took the damaged job; its failure committed (one transaction, under
    # the lease that claim took) before the second CLAIM took the next job.
    assert [name for trx, name in statements(fake) if trx is None] == [
        "PROBE", "CLAIM", "SETTLE", "CLAIM",
    ]  # fmt: skip
    assert _transactions(fake) == [["HELD", "RECORD_FAILURE", "INSERT", "FAIL", "SKIP_DEPENDENTS"]]
    (fail,) = fake.queries("FAIL")
    assert fail.binds["job"] == poison and fail.binds["worker"] == "w1"
    # The damaged job reads, and says why it failed.
    got = store.get_job(poison)
    assert got is not None and got.status == "failed" and got.failure is not None
    assert got.failure.error_type == "UndecodableJob"
    assert [j.key for j in store.list_jobs("r1")] == ["a#0", "c#0", "b#0"]


def test_a_claim_of_several_returns_every_decodable_job_it_took(
    fake: FakeArango, table: JobTable, store: ArangoStore
) -> None:
    first, damaged, last = (table.job(k) for k in ("a#0", "b#0", "c#0"))
    table.jobs[damaged]["args"] = "[1,"
    claimed = store.claim("e", "w1", LEASE, limit=3)
    assert [c.id for c in claimed] == [first, last]
    assert len(fake.queries("CLAIM")) == 1
    assert table.status() == {"a#0": "running", "b#0": "failed", "c#0": "running"}


def test_a_claim_that_takes_only_damaged_jobs_goes_on_until_none_is_ready(
    fake: FakeArango, table: JobTable, store: ArangoStore
) -> None:
    for key in ("a#0", "b#0", "c#0"):
        table.jobs[table.job(key)]["kwargs"] = "nope"
    assert store.claim("e", "w1", LEASE, limit=2) == []
    assert len(fake.queries("CLAIM")) == 3  # 2 damaged, 1 damaged, then nothing left
    assert set(table.status().values()) == {"failed"}
    assert [f["error_type"] for f in table.failures.values()] == ["UndecodableJob"] * 3
    assert len(table.links) == 3


# -- a job whose workers keep dying is failed --------------------------------------------------


def test_a_job_whose_lease_ran_out_max_lost_leases_times_is_failed_and_its_dependents_skipped(
    fake: FakeArango, table: JobTable, store: ArangoStore
) -> None:
    a = table.job("a#0")
    table.job("b#0", deps=("a#0",))
    table.job("c#0", deps=("b#0",))
    # A failure with a retry is not a lost lease: it does not count towards the limit.
    (claimed,) = store.claim("e", "w-retry", LEASE)
    assert store.fail(claimed.id, "w-retry", BOOM, retry_at=time.time() - 1)
    for i in range(MAX_LOST_LEASES):
        fake.seen.clear()
        (claimed,) = store.claim("e", f"w{i}", LEASE)
        assert claimed.id == a and claimed.attempts == i + 2
        assert store.expire_leases(now=time.time() + 2 * LEASE) == 1
        (expiry,) = [t for t in _transactions(fake) if t[0] == "EXPIRED"]
        if i < MAX_LOST_LEASES - 1:
            assert table.jobs[a]["status"] == "ready", table.jobs[a]["history"]
            assert expiry == ["EXPIRED", "EXPIRE"]
    assert expiry == ["EXPIRED", "RECORD_FAILURE", "INSERT", "FAIL", "SKIP_DEPENDENTS"]
    assert table.status() == {"a#0": "failed", "b#0": "skipped", "c#0": "skipped"}
    got = store.get_job(a)
    assert got is not None and got.failure is not None
    assert got.failure.error_type == "WorkerLost"
    assert f"stopped {MAX_LOST_LEASES} times" in got.failure.message
    assert f"the last was w{MAX_LOST_LEASES - 1}." in got.failure.message
    assert got.history[-1].status == "failed" and "WorkerLost" in got.history[-1].note
    assert store.run_status("r1") == "failed"


def test_one_expiry_fails_the_jobs_at_the_limit_and_returns_the_others(
    fake: FakeArango, table: JobTable, store: ArangoStore
) -> None:
    worn, fresh = table.job("a#0"), table.job("b#0")
    table.jobs[worn]["attempts"] = MAX_LOST_LEASES - 1  # four lost leases already
    assert len(store.claim("e", "w1", LEASE, limit=2)) == 2
    fake.seen.clear()
    assert store.expire_leases(now=time.time() + 2 * LEASE) == 2
    assert table.status() == {"a#0": "failed", "b#0": "ready"}
    assert _transactions(fake) == [["EXPIRED", "EXPIRE", "RECORD_FAILURE", "INSERT", "FAIL"]]
    (expire,) = fake.queries("EXPIRE")
    assert expire.binds["jobs"] == [fresh]


def test_a_job_of_a_cancelled_run_is_cancelled_at_expiry_never_failed(
    table: JobTable, store: ArangoStore
) -> None:
    worn = table.job("a#0")
    table.jobs[worn]["attempts"] = MAX_LOST_LEASES - 1
    store.claim("e", "w1", LEASE)
    table.runs["r1"]["status"] = "cancelled"
    assert store.expire_leases(now=time.time() + 2 * LEASE) == 1
    assert table.status() == {"a#0": "cancelled"} and not table.failures


# -- a damaged document reads --------------------------------------------------------------------


def test_a_damaged_job_document_reads_as_a_job_without_arguments(
    table: JobTable, store: ArangoStore
) -> None:
    ok, damaged = table.job("a#0"), table.job("b#0")
    table.jobs[damaged].update(
        args="not JSON", kwargs=7, deps={"not": "a list"}, history=[["when", "x"]]
    )
    listed = {j.key: j for j in store.list_jobs("r1")}
    assert listed["a#0"].kwargs == {"x": 1}
    bad = listed["b#0"]
    assert (bad.args, bad.kwargs, bad.deps) == ((), {}, ())
    assert [e.note for e in bad.history] == ["submitted"]
    got = store.get_job(damaged)
    assert got is not None and got.id == damaged and got.args == ()
    assert store.get_job(ok) is not None


def test_elfc_jobs_and_show_read_a_damaged_job_and_say_why_it_failed(
    table: JobTable, store: ArangoStore, fake: FakeArango
) -> None:
    run = table.run("0123456789abcdef")
    damaged = table.job("a#0", run=run)
    table.job("b#0", run=run)
    table.jobs[damaged].update(args="not JSON", history=[["not", "an event"]])
    assert [c.key for c in store.claim("e", "w1", LEASE)] == ["b#0"]
    elfc = [sys.executable, "-m", "elfc"]
    listed = subprocess.run(
        [*elfc, "jobs", run, "--mycelium", fake.url()], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = [line.split() for line in listed.stdout.splitlines() if damaged in line]
    assert "failed" in row and "ready" not in row, row
    shown = subprocess.run(
        [*elfc, "show", damaged, "--mycelium", fake.url()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "UndecodableJob" in shown.stdout and "cannot be decoded" in shown.stdout
    assert "Traceback" not in listed.stderr + shown.stderr


# -- caching by input ------------------------------------------------------------------------


def test_a_result_recorded_with_a_cache_key_is_reused_and_counted(
    store: ArangoStore, table: JobTable
) -> None:
    """What the worker hands over travels in COMPLETE's binds and comes back in readings
    (the AQL itself runs on a real server only: the contract's caching cases)."""
    first = table.job("a#0")
    table.run("r2", no=2)
    second = table.job("a#0", run="r2")
    table.jobs[second]["reuse"] = True
    (a,) = store.claim("e", "w", LEASE)
    assert a.id == first and not a.reuse
    assert store.complete_many("w", [(a.id, b"1")], keys={a.id: "k1"}) == [True]
    assert store.cached_result("k1") == (first, b"1")
    assert store.cached_result("k2") is None
    (c,) = store.claim("e", "w", LEASE)
    assert c.id == second and c.reuse
    assert store.complete_many("w", [(c.id, b"1")], {c.id: "k1"}, {c.id: first}) == [True]
    job = store.get_job(second)
    assert job is not None and job.cached_from == first and job.cache_key == "k1"
    assert job.history[-1].note == cached_note(first)
    info = store.run_info("r2")
    assert info is not None and info.cached == 1
    assert {r.id: r.cached for r in store.list_runs()} == {"r1": 0, "r2": 1}
    # A job document stored before caching existed reads as never cached.
    del table.jobs[first]["cache_key"], table.jobs[first]["cached_from"]
    old = store.get_job(first)
    assert old is not None and (old.cache_key, old.cached_from) == (None, None)
