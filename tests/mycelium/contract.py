"""The mycelium behaviour suite: every backend runs it.

A backend's test file subclasses :class:`MyceliumContract` and provides one fixture,
``mycelium_url``: the URL of a fresh, empty mycelium. Tests that need several processes open
their own connection from that URL.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
import pytest

from elfc.errors import MyceliumError
from elfc.model.ir import CATCH, EXPAND, JOIN, BuiltRun, JobSpec
from elfc.model.raised import HANDLED, describe
from elfc.model.records import (
    Claimed,
    ElfRecord,
    FailureRecord,
    LogRecord,
    RevisionRecord,
    WorkerInfo,
)
from elfc.model.status import JOB_STATUSES
from elfc.mycelium.common import (
    MAX_LOST_LEASES,
    Expansion,
    cached_note,
    handled_note,
    retry_plan,
)
from elfc.mycelium.store import Store
from elfc.mycelium.urls import open_mycelium

LEASE = 30.0
BOOM = FailureRecord(
    "ValueError", "boom", 'Traceback:\n  File "x.py", line 1\nValueError: boom', "r1"
)

RAISED = describe(ValueError("boom"), BOOM.traceback)
"""What a handler reads of ``BOOM``."""
CAUGHT = FailureRecord(BOOM.error_type, BOOM.message, BOOM.traceback, "r1", RAISED)
"""``BOOM`` with the exception a ``try``'s handler reads."""


def job(key: str, elf: str = "e", deps: Sequence[str] = (), seq: int | None = None) -> JobSpec:
    """A job of task ``work`` whose only argument reads its dependencies."""
    return JobSpec(
        key=key,
        node=key.split("#")[0],
        elf=elf,
        task="work",
        revision="r1",
        args=tuple({"ref": d} for d in deps),
        kwargs={"x": 1},
        deps=tuple(deps),
        seq=seq if seq is not None else 0,
    )


def run_of(*jobs: JobSpec, output: Any = None) -> BuiltRun:
    numbered = tuple(
        j if j.seq else JobSpec(**{**_fields(j), "seq": i}) for i, j in enumerate(jobs)
    )
    return BuiltRun("tests:pipe", "p1", {"n": len(jobs)}, numbered, output)


def _fields(spec: JobSpec) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in spec.__struct_fields__}


def chain(n: int, elf: str = "e") -> BuiltRun:
    return run_of(*(job(f"c#{i}", elf, [f"c#{i - 1}"] if i else []) for i in range(n)))


def fanout(n: int, elf: str = "e") -> BuiltRun:
    return run_of(*(job(f"f#{i}", elf) for i in range(n)))


def drain(m: Store, elf: str = "e", worker: str = "w", limit: int = 100) -> list[str]:
    """Claim and complete until nothing of ``elf`` is ready; the keys in completion order."""
    keys = []
    while claimed := m.claim(elf, worker, LEASE, limit):
        for c in claimed:
            assert m.complete(c.id, worker, b'"' + c.key.encode() + b'"')
            keys.append(c.key)
    return keys


def expander(key: str, deps: Sequence[str] = ()) -> JobSpec:
    """An expansion job of elf ``x`` (its payload stands for a region: the store never
    reads it)."""
    region = {"lit": {"region": key.split("#")[0]}}
    return JobSpec(key, key.split("#")[0], "x", EXPAND, "r1", (region,), {}, tuple(deps), 0)


def catcher(key: str, deps: Sequence[str] = ()) -> JobSpec:
    """A ``try`` statement's job of elf ``x``: it waits for ``deps`` to settle (its payload
    stands for the statement's region: the store never reads it)."""
    region = {"lit": {"region": key.split("#")[0], "kind": "try"}}
    return JobSpec(key, key.split("#")[0], "x", CATCH, "r1", (region,), {}, tuple(deps), 0)


def joining(*keys: str) -> Any:
    """A join expression that reads ``keys``."""
    return {"list": [{"ref": k} for k in keys]}


def counted(m: Store, run_id: str) -> dict[str, int]:
    """The run's job counts by status, the zeros left out."""
    info = m.run_info(run_id)
    assert info is not None
    return {status: n for status, n in info.counts.items() if n}


def take(m: Store, elf: str, key: str, worker: str = "w") -> Claimed:
    """Claim the one ready job of ``elf``, which must be ``key``."""
    (claimed,) = m.claim(elf, worker, LEASE)
    assert claimed.key == key
    return claimed


def _claim_worker(
    url: str, worker: str, run_id: str, start: Any, out: Any, deadline: float
) -> None:
    """Child process: claim and complete jobs of ``e`` until none is left; report the ids."""
    import random

    taken: list[str] = []
    with open_mycelium(url) as m:
        start.wait(timeout=30)  # every process connected: now they race
        while time.time() < deadline:
            claimed = m.claim("e", worker, LEASE, random.randint(1, 8))
            if not claimed:
                info = m.run_info(run_id)
                if info is None or info.counts["ready"] == 0:
                    break
                m.wait_for_work("e", 0.05)
                continue
            for c in claimed:
                assert m.complete(c.id, worker, b"1")
                taken.append(c.id)
    out.put((worker, taken))


def _submit_later(url: str, delay: float, elf: str) -> None:
    time.sleep(delay)
    with open_mycelium(url) as m:
        m.submit(run_of(job("late#0", elf)))


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _fail_later(url: str, delay: float, job_id: str) -> None:
    time.sleep(delay)
    with open_mycelium(url) as m:
        assert m.fail(job_id, "w", CAUGHT)


class Backend:
    """A fresh mycelium per test: a backend's test class provides ``mycelium_url``."""

    @pytest.fixture
    def mycelium_url(self) -> str:
        raise NotImplementedError("a backend's test class provides mycelium_url")

    @pytest.fixture
    def mycelium(self, mycelium_url: str) -> Iterator[Store]:
        with open_mycelium(mycelium_url) as m:
            yield m


class TryContract(Backend):
    """How every backend settles the jobs of a ``try`` statement (:data:`CATCH` jobs, the
    failures stored for them, the failures a handler takes). Part of
    :class:`MyceliumContract`; the ArangoDB backend also runs it over the loopback fake."""

    def test_a_catch_job_waits_for_its_dependencies_to_settle_and_reads_the_exception(
        self, mycelium: Store
    ) -> None:
        built = run_of(
            job("s#0", "slow"), job("a#0"), job("b#0", deps=["a#0"]),
            catcher("t#0", ["s#0", "a#0", "b#0"]),
        )  # fmt: skip
        run_id = mycelium.submit(built)
        assert mycelium.complete(take(mycelium, "slow", "s#0").id, "w", b"0")
        waiting = {j.key: (j.status, j.waiting) for j in mycelium.list_jobs(run_id)}
        assert waiting["t#0"] == ("pending", 2)  # a success settles a dependency of it too
        a = take(mycelium, "e", "a#0")
        assert mycelium.fail(a.id, "w", CAUGHT)
        jobs = {j.key: j for j in mycelium.list_jobs(run_id)}
        assert {k: j.status for k, j in jobs.items()} == {
            "s#0": "succeeded", "a#0": "failed", "b#0": "skipped", "t#0": "ready",
        }  # fmt: skip
        assert jobs["t#0"].waiting == 0 and jobs["t#0"].history[-1].status == "ready"
        assert counted(mycelium, run_id) == {"succeeded": 1, "failed": 1, "skipped": 1, "ready": 1}
        failed = mycelium.get_job(a.id)
        assert failed is not None and failed.result == RAISED and failed.failure is not None
        assert failed.failure.message == "boom"
        t = take(mycelium, "x", "t#0")
        assert (t.task, t.deps) == (CATCH, ("s#0", "a#0", "b#0"))
        assert t.results == {"s#0": b"0", "a#0": RAISED}  # nothing of the skipped b#0
        assert mycelium.results(run_id, t.deps) == t.results
        assert mycelium.run_status(run_id) == "running"
        assert mycelium.complete(t.id, "w", b'"caught"')
        assert mycelium.run_status(run_id) == "failed"  # no handler took the failure

    def test_skipping_stops_at_a_catch_job_and_settles_the_ones_after_it(
        self, mycelium: Store
    ) -> None:
        built = run_of(
            job("a#0"), job("b#0", deps=["a#0"]), catcher("t#0", ["b#0"]),
            job("d#0", deps=["t#0"]), job("e#0", deps=["d#0"]), catcher("u#0", ["b#0", "t#0"]),
        )  # fmt: skip
        run_id = mycelium.submit(built)
        assert mycelium.fail(take(mycelium, "e", "a#0").id, "w", CAUGHT)
        jobs = {j.key: (j.status, j.waiting) for j in mycelium.list_jobs(run_id)}
        assert jobs["a#0"][0] == "failed" and jobs["b#0"][0] == "skipped"
        assert (jobs["t#0"], jobs["u#0"]) == (("ready", 0), ("pending", 1))
        assert (jobs["d#0"], jobs["e#0"]) == (("pending", 1), ("pending", 1))
        t = take(mycelium, "x", "t#0")
        assert t.results == {}  # b#0 was skipped: it left nothing
        assert mycelium.complete(t.id, "w", b'"fallback"')
        assert drain(mycelium) == ["d#0", "e#0"]
        u = take(mycelium, "x", "u#0")
        assert u.results == {"t#0": b'"fallback"'}
        assert mycelium.complete(u.id, "w", b"null")
        assert counted(mycelium, run_id) == {"failed": 1, "skipped": 1, "succeeded": 4}
        assert mycelium.run_status(run_id) == "failed"

    def test_the_failures_a_handler_took_become_handled_and_the_run_succeeds(
        self, mycelium: Store
    ) -> None:
        built = run_of(
            job("a#0"), job("a#0/x#0"), job("b#0", deps=["a#0"]), catcher("t#0", ["a#0", "b#0"]),
            job("d#0", deps=["t#0"]),
        )  # fmt: skip
        run_id = mycelium.submit(built)
        for c in mycelium.claim("e", "w", LEASE, limit=2):
            assert mycelium.fail(c.id, "w", CAUGHT)
        t = take(mycelium, "x", "t#0")
        plan = Expansion([], result=b'"fallback"', handled=["a#0"])
        assert mycelium.expand(t.id, "w", plan)
        jobs = {j.key: j for j in mycelium.list_jobs(run_id)}
        assert {k: j.status for k, j in jobs.items()} == {
            "a#0": "handled", "a#0/x#0": "handled", "b#0": "skipped", "t#0": "succeeded",
            "d#0": "ready",
        }  # fmt: skip
        assert counted(mycelium, run_id) == {
            "handled": 2, "skipped": 1, "succeeded": 1, "ready": 1,
        }  # fmt: skip
        for key in ("a#0", "a#0/x#0"):
            got = mycelium.get_job(jobs[key].id)
            assert got is not None and got.result == HANDLED and got.failure is not None
            assert (got.history[-1].status, got.history[-1].note) == ("handled", handled_note(t.id))
            assert [e.status for e in got.history][-2:] == ["failed", "handled"]
        assert mycelium.results(run_id, ["a#0", "t#0"]) == {"a#0": HANDLED, "t#0": b'"fallback"'}
        assert drain(mycelium) == ["d#0"]
        info = mycelium.run_info(run_id)
        assert info is not None and (info.status, info.error) == ("succeeded", None)
        assert info.counts["handled"] == 2 and info.elf_counts["e"]["handled"] == 2

    def test_a_handlers_jobs_are_joined_by_a_catch_job_that_waits_for_them_to_settle(
        self, mycelium: Store
    ) -> None:
        run_id = mycelium.submit(
            run_of(job("a#0"), catcher("t#0", ["a#0"]), job("c#0", deps=["t#0"]))
        )
        assert mycelium.fail(take(mycelium, "e", "a#0").id, "w", CAUGHT)
        t = take(mycelium, "x", "t#0")
        made = [job("h#0"), job("h#1")]
        plan = Expansion(made, join=joining("h#1"), handled=["a#0"], settles=True)
        assert plan.join_task == CATCH
        assert mycelium.expand(t.id, "w", plan)
        jobs = {j.key: j for j in mycelium.list_jobs(run_id)}
        assert (jobs["t#0"].task, jobs["t#0"].status, jobs["t#0"].waiting) == (CATCH, "pending", 2)
        assert jobs["t#0"].deps == ("h#0", "h#1")
        assert (jobs["a#0"].status, jobs["h#0"].status, jobs["h#1"].status) == (
            "handled", "ready", "ready",
        )  # fmt: skip
        h0, h1 = mycelium.claim("e", "w", LEASE, limit=2)
        assert (h0.key, h1.key) == ("h#0", "h#1")
        assert mycelium.fail(h0.id, "w", CAUGHT)
        jobs = {j.key: j for j in mycelium.list_jobs(run_id)}
        assert (jobs["t#0"].status, jobs["t#0"].waiting, jobs["c#0"].status) == (
            "pending", 1, "pending",
        )  # fmt: skip
        assert mycelium.claim("x", "w", LEASE) == []  # h#1 has not settled yet
        assert mycelium.complete(h1.id, "w", b"1")
        joined = take(mycelium, "x", "t#0")
        assert (joined.id, joined.task, joined.args) == (t.id, CATCH, (joining("h#1"),))
        assert joined.results == {"h#0": RAISED, "h#1": b"1"}
        assert mycelium.fail(joined.id, "w", CAUGHT)  # the join raises the handler's failure
        statuses = {j.key: j.status for j in mycelium.list_jobs(run_id)}
        assert statuses == {
            "a#0": "handled", "t#0": "failed", "c#0": "skipped", "h#0": "failed",
            "h#1": "succeeded",
        }  # fmt: skip
        assert mycelium.run_status(run_id) == "failed"
        counts = {"handled": 1, "failed": 2, "succeeded": 1, "skipped": 1}
        assert counted(mycelium, run_id) == counts

    @pytest.mark.parametrize("handled", [[], ["a#0"]], ids=["none", "another"])
    def test_a_failure_no_handler_took_fails_the_run(
        self, mycelium: Store, handled: list[str]
    ) -> None:
        run_id = mycelium.submit(run_of(job("a#0"), job("a#00"), catcher("t#0", ["a#0", "a#00"])))
        for c in mycelium.claim("e", "w", LEASE, limit=2):
            assert mycelium.fail(c.id, "w", CAUGHT)
        t = take(mycelium, "x", "t#0")
        assert mycelium.expand(t.id, "w", Expansion([], result=b"null", handled=handled))
        jobs = {j.key: j for j in mycelium.list_jobs(run_id)}
        assert jobs["a#0"].status == ("handled" if handled else "failed")
        assert jobs["a#00"].status == "failed"  # a key starting so, not one below a#0/
        untouched = mycelium.get_job(jobs["a#00"].id)
        assert untouched is not None and untouched.result == RAISED
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "failed" and info.finished is not None
        assert info.counts["failed"] == (1 if handled else 2)
        assert info.counts["handled"] == len(handled)
        assert info.error == f"{info.counts['failed']} job(s) failed, 0 skipped"

    def test_a_catch_job_that_a_failure_readies_wakes_its_elf(self, mycelium_url: str) -> None:
        with open_mycelium(mycelium_url) as m:
            m.submit(run_of(job("a#0"), catcher("t#0", ["a#0"])))
            a = take(m, "e", "a#0")
            m.wait_for_work("x", 0.01)
            proc = _context().Process(target=_fail_later, args=(mycelium_url, 0.3, a.id))
            proc.start()
            try:
                start = time.monotonic()
                deadline = start + 20
                while not (claimed := m.claim("x", "w", LEASE)):
                    assert time.monotonic() < deadline, "the catch job never became ready"
                    m.wait_for_work("x", 10.0)
                waited = time.monotonic() - start
            finally:
                proc.join(timeout=20)
        assert [c.key for c in claimed] == ["t#0"] and proc.exitcode == 0
        assert waited < 5.0


class MyceliumContract(TryContract):
    """Behaviour every mycelium backend must have."""

    # -- revisions, elves, templates ---------------------------------------------------

    def test_revisions_are_immutable_and_found_by_prefix(self, mycelium: Store) -> None:
        first = RevisionRecord(
            "abc123", "task", "Storage.save", "m", "def save(): ...", "doc", "()"
        )
        mycelium.put_revisions([first, RevisionRecord("abd999", "elf", "Storage", "m", "class")])
        mycelium.put_revisions([RevisionRecord("abc123", "task", "Other", "m", "changed")])
        assert mycelium.get_revision("abc123") == first
        assert mycelium.get_revision("abc") == first
        assert mycelium.get_revision("zzz") is None
        with pytest.raises(MyceliumError, match="ambiguous"):
            mycelium.get_revision("ab")

    def test_elves_are_upserted_with_last_seen(self, mycelium: Store) -> None:
        before = time.time()
        mycelium.put_elf(ElfRecord("store", "Storage", "m", '{"path": "a"}', "r1"))
        mycelium.put_elf(ElfRecord("store", "Storage", "m", '{"path": "b"}', "r2", "doc"))
        mycelium.put_elf(ElfRecord("animals", "Animals", "m", "{}", "r3"))
        elves = mycelium.list_elves()
        assert [e.name for e in elves] == ["animals", "store"]
        assert elves[1].config == '{"path": "b"}' and elves[1].revision == "r2"
        assert elves[1].last_seen >= before - 1

    def test_templates_round_trip(self, mycelium: Store) -> None:
        assert mycelium.get_template("p1") is None
        mycelium.put_template("p1", b'{"nodes": []}')
        mycelium.put_template("p1", b'{"nodes": []}')
        assert mycelium.get_template("p1") == b'{"nodes": []}'
        mycelium.submit(run_of(job("a#0")), template_json=b'{"t": 2}')
        assert mycelium.get_template("p1") == b'{"nodes": []}'  # revisions are immutable

    # -- submit --------------------------------------------------------------------

    def test_submit_makes_jobs_without_deps_ready(self, mycelium: Store) -> None:
        built = run_of(
            job("a#0"), job("b#0", deps=["a#0"]), job("c#0", "other"), output={"ref": "b#0"}
        )
        run_id = mycelium.submit(built, template_json=b"{}")
        info = mycelium.run_info(run_id)
        assert info is not None
        assert (info.id, info.pipeline, info.revision, info.status) == (
            run_id,
            "tests:pipe",
            "p1",
            "running",
        )
        assert info.arguments == {"n": 3} and info.output == {"ref": "b#0"} and info.total == 3
        assert info.counts == {**dict.fromkeys(JOB_STATUSES, 0), "ready": 2, "pending": 1}
        assert info.elf_counts["e"]["ready"] == 1 and info.elf_counts["other"]["ready"] == 1
        statuses = {j.key: (j.status, j.waiting) for j in mycelium.list_jobs(run_id)}
        assert statuses == {"a#0": ("ready", 0), "b#0": ("pending", 1), "c#0": ("ready", 0)}
        assert mycelium.get_template("p1") == b"{}"

    def test_submit_counts_each_dependency_once(self, mycelium: Store) -> None:
        spec = JobSpec("b#0", "b", "e", "work", "r1", (), {}, ("a#0", "a#0"), 1)
        run_id = mycelium.submit(run_of(job("a#0"), spec))
        (b,) = mycelium.list_jobs(run_id, status="pending")
        assert b.waiting == 1 and b.deps == ("a#0",)
        drain(mycelium)
        assert mycelium.run_status(run_id) == "succeeded"

    def test_submit_rejects_a_dependency_outside_the_run(self, mycelium: Store) -> None:
        with pytest.raises(MyceliumError, match="nope"):
            mycelium.submit(run_of(job("a#0", deps=["nope"])))
        assert mycelium.list_runs() == []

    def test_a_run_without_jobs_succeeds_at_once(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(output=42))
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "succeeded" and info.finished is not None
        assert mycelium.wait_for_run(run_id, 1.0) == "succeeded"

    def test_submit_of_10000_jobs_takes_under_a_second(self, mycelium: Store) -> None:
        built = run_of(
            *(job(f"n#{i}", deps=[f"n#{i - 1}"] if i % 10 else []) for i in range(10_000))
        )
        best = float("inf")
        for _ in range(2):  # the best of two: one slow moment on a shared machine is not a bug
            start = time.perf_counter()
            run_id = mycelium.submit(built)
            best = min(best, time.perf_counter() - start)
        assert best < 1.0, f"submitting 10,000 jobs took {best:.3f} s"
        info = mycelium.run_info(run_id)
        assert info is not None and info.counts["ready"] == 1000 and info.counts["pending"] == 9000

    # -- claim -------------------------------------------------------------------

    def test_claim_is_fifo_by_run_then_seq(self, mycelium: Store) -> None:
        first = mycelium.submit(run_of(job("x#0", seq=3), job("x#1", seq=1), job("x#2", seq=2)))
        mycelium.submit(run_of(job("y#0", seq=1)))
        claimed = mycelium.claim("e", "w", LEASE, limit=3)
        assert [(c.run, c.key) for c in claimed] == [(first, "x#1"), (first, "x#2"), (first, "x#0")]
        assert [c.key for c in mycelium.claim("e", "w", LEASE, limit=5)] == ["y#0"]
        assert mycelium.claim("e", "w", LEASE) == []

    def test_claim_takes_only_that_elf_and_marks_it_running(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0", "one"), job("b#0", "two", deps=["a#0"])))
        assert mycelium.claim("two", "w", LEASE) == []
        (c,) = mycelium.claim("one", "w1", LEASE, limit=10)
        assert (c.run, c.key, c.elf, c.task, c.revision) == (run_id, "a#0", "one", "work", "r1")
        assert (c.args, c.kwargs, c.deps, c.attempts) == ((), {"x": 1}, (), 1)
        info = mycelium.get_job(c.id)
        assert info is not None and info.status == "running" and info.lease_owner == "w1"
        assert info.lease_until is not None and info.lease_until > time.time() + LEASE - 5
        assert mycelium.claim("one", "w2", LEASE) == []

    def test_concurrent_claims_from_processes_never_overlap(self, mycelium_url: str) -> None:
        with open_mycelium(mycelium_url) as m:
            run_id = m.submit(fanout(600))
        ctx = _context()
        out, start = ctx.Queue(), ctx.Barrier(3)
        deadline = time.time() + 60
        procs = [
            ctx.Process(
                target=_claim_worker, args=(mycelium_url, f"w{i}", run_id, start, out, deadline)
            )
            for i in range(3)
        ]
        for p in procs:
            p.start()
        taken = dict(out.get(timeout=90) for _ in procs)
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        everything = [job_id for ids in taken.values() for job_id in ids]
        assert len(everything) == len(set(everything)) == 600
        assert sum(1 for ids in taken.values() if ids) >= 2, "one process took every job"
        with open_mycelium(mycelium_url) as m:
            assert m.run_status(run_id) == "succeeded"

    # -- complete --------------------------------------------------------------------

    def test_complete_readies_a_dependent_when_its_last_dependency_succeeds(
        self, mycelium: Store
    ) -> None:
        run_id = mycelium.submit(
            run_of(
                job("a#0"),
                job("b#0", "b", ["a#0"]),
                job("c#0", "c", ["a#0"]),
                job("d#0", "d", ["b#0", "c#0"]),
            )
        )
        drain(mycelium, "e")
        assert [c.key for c in mycelium.claim("d", "w", LEASE)] == []
        (b,) = mycelium.claim("b", "w", LEASE)
        assert b.deps == ("a#0",) and b.args == ({"ref": "a#0"},)
        assert mycelium.results(run_id, b.deps) == {"a#0": b'"a#0"'}
        assert mycelium.complete(b.id, "w", b"2")
        assert mycelium.claim("d", "w", LEASE) == []  # still waits for c
        drain(mycelium, "c")
        (d,) = mycelium.claim("d", "w", LEASE)
        assert mycelium.results(run_id, d.deps) == {"b#0": b"2", "c#0": b'"c#0"'}
        # A backend may hand the inputs over with the claim; they must be the same results.
        assert d.results is None or d.results == {"b#0": b"2", "c#0": b'"c#0"'}
        assert mycelium.run_status(run_id) == "running"
        assert mycelium.complete(d.id, "w", b"4")
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "succeeded" and info.finished is not None
        assert info.counts["succeeded"] == 4 and info.error is None

    def test_a_result_is_stored_once(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0")))
        (c,) = mycelium.claim("e", "w1", LEASE)
        assert not mycelium.complete(c.id, "w2", b"2")  # not the lease owner
        assert mycelium.complete(c.id, "w1", b"1")
        assert not mycelium.complete(c.id, "w1", b"3")
        assert mycelium.results(run_id, ["a#0", "missing"]) == {"a#0": b"1"}
        got = mycelium.get_job(c.id)
        assert got is not None and got.result == b"1" and got.status == "succeeded"
        assert [e.status for e in got.history] == ["ready", "running", "succeeded"]

    def test_complete_many_and_exchange_batch(self, mycelium: Store) -> None:
        run_id = mycelium.submit(chain(2, "a"))
        mycelium.submit(fanout(6))
        first = mycelium.claim("e", "w", LEASE, limit=4)
        (head,) = mycelium.claim("a", "w", LEASE)
        accepted = mycelium.complete_many(
            "w", [(first[0].id, b"0"), ("nope", b"x"), (head.id, b"h")]
        )
        assert accepted == [True, False, True]
        done, more = mycelium.exchange("e", "w", [(c.id, b"1") for c in first[1:]], LEASE, limit=10)
        assert done == [True, True, True] and [c.key for c in more] == ["f#4", "f#5"]
        done, more = mycelium.exchange("a", "w", [], LEASE, limit=10)
        assert done == [] and [c.key for c in more] == ["c#1"]
        assert mycelium.complete(more[0].id, "w", b"t")
        assert mycelium.run_status(run_id) == "succeeded"

    # -- fail -------------------------------------------------------------------------

    def test_fail_skips_every_dependent_and_fails_the_run_once_settled(
        self, mycelium: Store
    ) -> None:
        built = run_of(
            job("a#0"), job("b#0", deps=["a#0"]), job("c#0", deps=["b#0"]), job("d#0", deps=["a#0", "c#0"]),
            job("solo#0", "solo"),
        )  # fmt: skip
        run_id = mycelium.submit(built)
        (a,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.fail(a.id, "w", BOOM)
        statuses = {j.key: j.status for j in mycelium.list_jobs(run_id)}
        assert statuses == {
            "a#0": "failed",
            "b#0": "skipped",
            "c#0": "skipped",
            "d#0": "skipped",
            "solo#0": "ready",
        }
        assert mycelium.run_status(run_id) == "running"  # solo can still run
        drain(mycelium, "solo")
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "failed" and info.finished is not None
        assert info.counts["failed"] == 1 and info.counts["skipped"] == 3 and info.error
        failed = mycelium.get_job(a.id)
        assert failed is not None and failed.failure is not None
        assert failed.failure.traceback == BOOM.traceback and failed.failure.revision == "r1"
        assert (failed.failure.elf, failed.failure.task) == ("e", "work")
        skipped = mycelium.list_jobs(run_id, status="skipped")
        assert {j.key for j in skipped} == {"b#0", "c#0", "d#0"}
        assert "a#0" in skipped[0].history[-1].note

    def test_failures_are_deduplicated_by_traceback(self, mycelium: Store) -> None:
        mycelium.submit(fanout(3))
        claimed = mycelium.claim("e", "w", LEASE, limit=3)
        other = FailureRecord("KeyError", "'k'", "Traceback:\nKeyError: 'k'", "r1")
        assert mycelium.fail(claimed[0].id, "w", BOOM)
        assert mycelium.fail(claimed[1].id, "w", BOOM)
        assert mycelium.fail(claimed[2].id, "w", other)
        failures = mycelium.list_failures()
        assert [(f.error_type, f.count) for f in failures] == [("KeyError", 1), ("ValueError", 2)]
        boom = failures[1]
        assert boom.first_seen <= boom.last_seen and boom.message == "boom"
        assert mycelium.list_failures(limit=1) == failures[:1]

    def test_fail_with_retry_at_returns_the_job_to_ready_later(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0"), job("b#0", deps=["a#0"])))
        (a,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.fail(a.id, "w", BOOM, retry_at=time.time() + 0.3)
        got = mycelium.get_job(a.id)
        assert got is not None and got.status == "ready" and got.failure is not None
        assert mycelium.claim("e", "w", LEASE) == []  # not before retry_at
        assert mycelium.run_status(run_id) == "running"
        deadline = time.monotonic() + 10
        while not (again := mycelium.claim("e", "w", LEASE)):
            assert time.monotonic() < deadline, "the retried job never came back"
            mycelium.wait_for_work("e", 0.5)
        assert again[0].id == a.id and again[0].attempts == 2
        assert mycelium.complete(a.id, "w", b"1")
        assert mycelium.list_failures()[0].count == 1
        drain(mycelium)
        assert mycelium.run_status(run_id) == "succeeded"

    def test_fail_needs_the_lease(self, mycelium: Store) -> None:
        mycelium.submit(run_of(job("a#0")))
        (a,) = mycelium.claim("e", "w", LEASE)
        assert not mycelium.fail(a.id, "intruder", BOOM)
        assert mycelium.list_failures() == []
        assert mycelium.complete(a.id, "w", b"1")
        assert not mycelium.fail(a.id, "w", BOOM)

    # -- release, leases, heartbeat, cancel -------------------------------------------------

    def test_release_gives_the_job_back_without_counting_an_attempt(self, mycelium: Store) -> None:
        mycelium.submit(run_of(job("a#0"), job("b#0")))
        first = mycelium.claim("e", "w", LEASE, limit=2)
        assert not mycelium.release(first[0].id, "someone-else")
        assert mycelium.release_many([c.id for c in first], "w") == 2
        again = mycelium.claim("e", "w2", LEASE, limit=2)
        assert [(c.key, c.attempts) for c in again] == [("a#0", 1), ("b#0", 1)]
        got = mycelium.get_job(again[0].id)
        assert got is not None and [e.status for e in got.history][-3:] == [
            "running",
            "ready",
            "running",
        ]

    def test_an_expired_lease_returns_the_job(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0")))
        (dead,) = mycelium.claim("e", "dead", lease=5.0)
        assert mycelium.expire_leases() == 0
        assert mycelium.expire_leases(now=time.time() + 10) == 1
        (alive,) = mycelium.claim("e", "alive", LEASE)
        assert alive.id == dead.id and alive.attempts == 2
        assert not mycelium.complete(dead.id, "dead", b"late")
        assert mycelium.complete(alive.id, "alive", b"1")
        assert mycelium.results(run_id, ["a#0"]) == {"a#0": b"1"}

    def test_a_job_whose_workers_keep_dying_is_failed_after_max_lost_leases(
        self, mycelium: Store
    ) -> None:
        """Each backend's lease expiry applies ``lost_leases`` and ``MAX_LOST_LEASES``: on
        SQLite in the expiring write transaction; on ArangoDB in one stream transaction whose
        EXPIRED statement reads the job's attempts and its failure edges, after which the job
        goes back to ready (EXPIRE) or is failed with ``WorkerLost`` (FAIL, SKIP_DEPENDENTS)."""
        run_id = mycelium.submit(run_of(job("a#0"), job("b#0", deps=["a#0"])))
        # A failure with a retry is not a lost lease: it does not count towards the limit.
        (a,) = mycelium.claim("e", "w-retry", LEASE)
        assert mycelium.fail(a.id, "w-retry", BOOM, retry_at=time.time() - 1)
        for i in range(MAX_LOST_LEASES):
            (a,) = mycelium.claim("e", f"w{i}", LEASE)
            assert a.attempts == i + 2
            assert mycelium.expire_leases(now=time.time() + 2 * LEASE) == 1
            got = mycelium.get_job(a.id)
            assert got is not None
            if i < MAX_LOST_LEASES - 1:
                assert got.status == "ready", got.history
        assert got.status == "failed" and got.failure is not None
        assert got.failure.error_type == "WorkerLost"
        assert f"stopped {MAX_LOST_LEASES} times" in got.failure.message
        assert f"the last was w{MAX_LOST_LEASES - 1}." in got.failure.message
        jobs = {j.key: j.status for j in mycelium.list_jobs(run_id)}
        assert jobs == {"a#0": "failed", "b#0": "skipped"}
        assert mycelium.run_status(run_id) == "failed"

    def test_claim_expires_leases_itself(self, mycelium: Store) -> None:
        mycelium.submit(run_of(job("a#0")))
        (dead,) = mycelium.claim("e", "dead", lease=0.05)
        deadline = time.monotonic() + 10
        while not (taken := mycelium.claim("e", "alive", LEASE)):
            assert time.monotonic() < deadline, "the expired lease was never reclaimed"
            mycelium.wait_for_work("e", 0.5)
        assert taken[0].id == dead.id

    def test_heartbeat_extends_leases_and_lists_jobs_to_stop(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0"), job("b#0")))
        keep_run = mycelium.submit(run_of(job("k#0")))
        start = time.time()
        a, b = mycelium.claim("e", "w", lease=2.0, limit=2)
        (k,) = mycelium.claim("e", "w", lease=2.0)
        me = WorkerInfo("w", "e", "host", 123, start)
        assert mycelium.heartbeat(me) == set()
        time.sleep(0.3)
        assert mycelium.heartbeat(me, [a.id, k.id, "unknown"]) == {"unknown"}
        extended = mycelium.get_job(a.id)
        assert extended is not None and extended.lease_until is not None
        assert extended.lease_until >= start + 2.25
        assert mycelium.expire_leases(now=start + 2.1) == 1  # b#0 was not in the heartbeat
        (b,) = mycelium.claim("e", "w", lease=2.0)
        assert mycelium.cancel_run(run_id)
        assert mycelium.heartbeat(me, [a.id, b.id, k.id]) == {a.id, b.id}
        assert mycelium.heartbeat(WorkerInfo("x", "e", "h", 1, 0.0), [k.id]) == {
            k.id
        }  # not its lease
        (worker,) = [w for w in mycelium.list_workers() if w.id == "w"]
        assert worker.heartbeat >= me.started and worker.pid == 123
        assert mycelium.run_status(keep_run) == "running"

    def test_cancel_run(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0"), job("b#0"), job("c#0", deps=["a#0"])))
        (a,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.cancel_run(run_id)
        assert not mycelium.cancel_run(run_id)
        assert mycelium.run_status(run_id) == "cancelled"
        assert mycelium.wait_for_run(run_id, 1.0) == "cancelled"
        assert mycelium.claim("e", "w", LEASE) == []
        statuses = {j.key: j.status for j in mycelium.list_jobs(run_id)}
        assert statuses == {"a#0": "running", "b#0": "cancelled", "c#0": "cancelled"}
        info = mycelium.run_info(run_id)
        assert info is not None and info.finished is None  # a#0 is still running
        assert mycelium.release(a.id, "w")
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "cancelled" and info.finished is not None
        assert info.counts["cancelled"] == 3
        assert not mycelium.cancel_run("no-such-run")

    def test_fail_run_fails_a_succeeded_run_once_with_its_reason(self, mycelium: Store) -> None:
        run_id = mycelium.submit(chain(2))
        assert not mycelium.fail_run(run_id, "ValueCrossingError", "early")  # still running
        drain(mycelium)
        settled = mycelium.run_info(run_id)
        assert settled is not None and settled.status == "succeeded" and settled.failure is None
        before = time.time()
        assert mycelium.fail_run(run_id, "ValueCrossingError", "not a valid `int`")
        # A second reader who finds the value refused too changes nothing.
        assert not mycelium.fail_run(run_id, "ValueCrossingError", "another reason")
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "failed"
        assert info.finished == settled.finished and info.counts == settled.counts
        assert info.failure is not None
        assert (info.failure.error_type, info.failure.message) == (
            "ValueCrossingError",
            "not a valid `int`",
        )
        assert before - 1 <= info.failure.time <= time.time() + 1
        assert info.error == "its value was refused: ValueCrossingError: not a valid `int`"
        assert mycelium.wait_for_run(run_id, 1.0) == "failed"
        assert [r.status for r in mycelium.find_runs(status="failed")] == ["failed"]
        (row,) = mycelium.list_run_failures()
        assert (row.run, row.task, row.revision, row.message) == (
            run_id,
            "tests:pipe",
            "p1",
            "not a valid `int`",
        )
        assert row.last_seen == info.failure.time and row.count == 1
        assert mycelium.list_failures() == []  # no job raised anything
        assert not mycelium.fail_run("no-such-run", "ValueCrossingError", "x")

    def test_fail_run_leaves_cancelled_and_job_failed_runs_alone(self, mycelium: Store) -> None:
        cancelled = mycelium.submit(run_of(job("a#0")))
        assert mycelium.cancel_run(cancelled)
        assert not mycelium.fail_run(cancelled, "ValueCrossingError", "x")
        failed = mycelium.submit(run_of(job("b#0")))
        (b,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.fail(b.id, "w", BOOM)
        assert not mycelium.fail_run(failed, "ValueCrossingError", "x")
        for run_id, status in ((cancelled, "cancelled"), (failed, "failed")):
            info = mycelium.run_info(run_id)
            assert info is not None and info.status == status and info.failure is None
        assert mycelium.list_run_failures() == []

    def test_retry_jobs_clears_a_run_failure(self, mycelium: Store) -> None:
        run_id = mycelium.submit(chain(1))
        drain(mycelium)
        assert mycelium.fail_run(run_id, "ValueCrossingError", "refused")
        (only,) = mycelium.list_jobs(run_id)
        assert mycelium.retry_jobs(run_id, {only.id: "r2"})
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "running" and info.failure is None
        assert info.error is None and mycelium.list_run_failures() == []
        drain(mycelium)
        assert mycelium.run_status(run_id) == "succeeded"

    # -- operating runs: task output and retries ----------------------------------------

    def test_logs_are_stored_per_attempt_and_listed_by_run_key_and_time(
        self, mycelium: Store
    ) -> None:
        run_id = mycelium.submit(run_of(job("a#0"), job("b#0")))
        a, b = mycelium.list_jobs(run_id)
        before = time.time()

        def log(j: Any, attempt: int, text: str, truncated: int = 0) -> LogRecord:
            return LogRecord(j.id, run_id, j.key, "e", "work", attempt, text, truncated, 1.0)

        mycelium.put_logs([log(b, 1, "b says hi\n"), log(a, 1, "a first\n")])
        mycelium.put_logs([log(a, 1, "a again\n", truncated=5), log(a, 2, "a retried\n")])
        mycelium.put_logs([])
        logs = mycelium.list_logs(run_id)
        assert sorted((x.key, x.attempt, x.text) for x in logs) == [
            ("a#0", 1, "a again\n"),
            ("a#0", 1, "a first\n"),  # appended, never replaced
            ("a#0", 2, "a retried\n"),
            ("b#0", 1, "b says hi\n"),
        ]
        assert all(x.time >= before - 1 and x.run == run_id for x in logs)
        assert [x.time for x in logs] == sorted(x.time for x in logs)
        only_a = mycelium.list_logs(run_id, key="a#0")
        assert [(x.attempt, x.truncated) for x in only_a] == [(1, 0), (1, 5), (2, 0)]
        assert mycelium.list_logs(run_id, since=time.time() + 60) == []
        assert mycelium.list_logs("no-such-run") == []
        with pytest.raises(MyceliumError):
            mycelium.put_logs([LogRecord("no-such-job", run_id, "x", "e", "work", 1, "t")])

    def test_staged_logs_are_stored_with_the_outcome_that_follows(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0")))
        (a,) = mycelium.claim("e", "w", LEASE)
        mycelium.stage_logs(
            [
                LogRecord(a.id, run_id, "a#0", "e", "work", 1, "said\n"),
                LogRecord("no-such-job", run_id, "x", "e", "work", 1, "dropped\n"),
            ]
        )
        assert mycelium.complete(a.id, "w", b"1")
        assert [(x.key, x.text) for x in mycelium.list_logs(run_id)] == [("a#0", "said\n")]

    def test_retry_jobs_reopens_a_settled_run_and_waits_for_retried_dependencies(
        self, mycelium: Store
    ) -> None:
        built = run_of(
            job("ok#0"), job("bad#0"), job("after#0", deps=["ok#0", "bad#0"]), job("solo#0", "solo")
        )
        run_id = mycelium.submit(built)
        claimed = {c.key: c for c in mycelium.claim("e", "w", LEASE, limit=2)}
        assert mycelium.complete(claimed["ok#0"].id, "w", b"1")
        assert mycelium.fail(claimed["bad#0"].id, "w", BOOM)
        drain(mycelium, "solo")
        assert mycelium.run_status(run_id) == "failed"
        jobs = {j.key: j for j in mycelium.list_jobs(run_id)}
        again = {jobs["bad#0"].id: "r2", jobs["after#0"].id: "r2"}
        assert not mycelium.retry_jobs(run_id, {})
        assert not mycelium.retry_jobs("no-such-run", again)
        with pytest.raises(MyceliumError):
            mycelium.retry_jobs(run_id, {**again, "no-such-job": "r2"})
        assert mycelium.run_status(run_id) == "failed"  # refused: nothing changed
        assert mycelium.retry_jobs(run_id, again)
        assert not mycelium.retry_jobs(run_id, again)  # running again: not settled
        info = mycelium.run_info(run_id)
        assert info is not None and info.status == "running" and info.finished is None
        assert info.counts["ready"] == 1 and info.counts["pending"] == 1
        assert info.counts["succeeded"] == 2 and info.counts["failed"] == 0
        bad = mycelium.get_job(jobs["bad#0"].id)
        assert bad is not None and (bad.status, bad.revision, bad.attempts) == ("ready", "r2", 0)
        assert bad.history[-1].note == "retried: task revision r1 -> r2"
        assert [e.status for e in bad.history].count("failed") == 1  # earlier history is kept
        (c,) = mycelium.claim("e", "w", LEASE, limit=5)
        assert (c.key, c.revision, c.attempts) == ("bad#0", "r2", 1)
        assert mycelium.complete(c.id, "w", b"2")
        (d,) = mycelium.claim("e", "w", LEASE, limit=5)
        assert d.key == "after#0" and mycelium.results(run_id, d.deps) == {
            "ok#0": b"1",
            "bad#0": b"2",
        }
        assert mycelium.complete(d.id, "w", b"3")
        assert mycelium.run_status(run_id) == "succeeded"

    def test_retry_jobs_runs_a_succeeded_job_again_without_its_old_result(
        self, mycelium: Store
    ) -> None:
        run_id = mycelium.submit(chain(2))
        drain(mycelium)
        assert mycelium.run_status(run_id) == "succeeded"
        first, second = mycelium.list_jobs(run_id)
        assert mycelium.retry_jobs(run_id, {first.id: "r1", second.id: "r1"})
        assert mycelium.results(run_id, ["c#0", "c#1"]) == {}
        assert {j.key: j.status for j in mycelium.list_jobs(run_id)} == {
            "c#0": "ready",
            "c#1": "pending",
        }
        assert mycelium.get_job(first.id).history[-1].note == "retried at task revision r1"  # type: ignore[union-attr]
        assert drain(mycelium) == ["c#0", "c#1"]
        assert mycelium.run_status(run_id) == "succeeded"

    def test_retry_jobs_runs_a_handled_job_again_without_its_stored_exception(
        self, mycelium: Store
    ) -> None:
        run_id = mycelium.submit(run_of(job("a#0"), catcher("t#0", ["a#0"])))
        a = take(mycelium, "e", "a#0")
        assert mycelium.fail(a.id, "w", CAUGHT)
        t = take(mycelium, "x", "t#0")
        assert mycelium.expand(t.id, "w", Expansion([], result=b"1", handled=["a#0"]))
        assert mycelium.run_status(run_id) == "succeeded"
        plan = retry_plan(mycelium.list_jobs(run_id), lambda j: j.revision)
        assert plan == {a.id: "r1", t.id: "r1"}  # the handled job, and what read it
        assert mycelium.retry_jobs(run_id, plan)
        assert mycelium.results(run_id, ["a#0", "t#0"]) == {}
        statuses = {j.key: (j.status, j.waiting) for j in mycelium.list_jobs(run_id)}
        assert statuses == {"a#0": ("ready", 0), "t#0": ("pending", 1)}
        assert counted(mycelium, run_id) == {"ready": 1, "pending": 1}
        assert mycelium.complete(take(mycelium, "e", "a#0").id, "w", b"2")
        again = take(mycelium, "x", "t#0")
        assert again.results == {"a#0": b"2"}
        assert mycelium.complete(again.id, "w", b"3")
        assert mycelium.run_status(run_id) == "succeeded"
        assert counted(mycelium, run_id) == {"succeeded": 2}

    def test_prune_deletes_old_settled_runs_with_what_only_they_used(self, mycelium: Store) -> None:
        mycelium.put_revisions(
            [RevisionRecord("r1", "task", "T.work", "m", "old"), RevisionRecord("p1", "pipeline", "p", "m", "")]
        )  # fmt: skip
        old = mycelium.submit(run_of(job("a#0"), job("b#0", deps=["a#0"])), template_json=b"{}")
        (a,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.fail(a.id, "w", BOOM)
        mycelium.put_logs([LogRecord(a.id, old, "a#0", "e", "work", 1, "said\n")])
        assert mycelium.run_status(old) == "failed"
        live = mycelium.submit(fanout(2))
        cutoff = time.time() + 1
        assert mycelium.prune_runs(cutoff, statuses=["succeeded"]) == 0  # only failed is old
        assert mycelium.prune_runs(time.time() - 3600) == 0  # not old enough
        assert mycelium.prune_runs(cutoff) == 1
        assert mycelium.prune_runs(cutoff) == 0
        assert mycelium.run_info(old) is None and mycelium.get_job(a.id) is None
        assert mycelium.list_logs(old) == [] and mycelium.list_failures() == []
        assert [r.id for r in mycelium.list_runs()] == [live]  # a running run is untouched
        assert mycelium.get_revision("r1") is not None  # the live run's jobs use it
        assert mycelium.get_template("p1") is not None and mycelium.get_revision("p1")
        drain(mycelium)
        assert mycelium.prune_runs(time.time() + 1, limit=1) == 1
        assert mycelium.get_revision("r1") is None and mycelium.get_template("p1") is None
        assert mycelium.get_revision("p1") is None and mycelium.list_runs() == []

    # -- caching by input ------------------------------------------------------------

    def test_a_result_recorded_with_a_cache_key_is_found_from_any_run(
        self, mycelium: Store
    ) -> None:
        first = mycelium.submit(run_of(job("a#0"), job("b#0")))
        (a, b) = mycelium.claim("e", "w", LEASE, limit=2)
        assert not a.reuse and not b.reuse
        assert mycelium.cached_result("k1") is None
        assert mycelium.complete_many("w", [(a.id, b"1"), (b.id, b"2")], keys={a.id: "k1"}) == [
            True,
            True,
        ]
        assert mycelium.cached_result("k1") == (a.id, b"1")
        assert mycelium.cached_result("k2") is None  # b was completed without a key
        stored = mycelium.get_job(a.id)
        assert stored is not None and stored.cache_key == "k1" and not stored.cached
        assert stored.history[-1].note == "w"

        second = mycelium.submit(msgspec.structs.replace(run_of(job("a#0")), reuse=True))
        (c,) = mycelium.claim("e", "w2", LEASE)
        assert c.reuse and c.run == second
        assert mycelium.complete_many("w2", [(c.id, b"1")], {c.id: "k1"}, {c.id: a.id}) == [True]
        reused = mycelium.get_job(c.id)
        assert reused is not None and reused.cached and reused.cached_from == a.id
        assert reused.result == b"1" and reused.cache_key == "k1"
        assert reused.history[-1].note == cached_note(a.id)
        assert [j.cached_from for j in mycelium.list_jobs(second)] == [a.id]
        info = mycelium.run_info(second)
        assert info is not None and info.cached == 1 and info.status == "succeeded"
        assert [(r.id, r.cached) for r in mycelium.list_runs()] == [(second, 1), (first, 0)]
        # The most recently finished job of a key is the one found.
        assert mycelium.cached_result("k1") == (c.id, b"1")

    def test_a_retried_or_pruned_job_is_no_longer_a_cached_result(self, mycelium: Store) -> None:
        old = mycelium.submit(run_of(job("a#0")))
        (a,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.complete_many("w", [(a.id, b"1")], keys={a.id: "k1"}) == [True]
        assert mycelium.retry_jobs(old, {a.id: "r2"})
        assert mycelium.cached_result("k1") is None
        retried = mycelium.get_job(a.id)
        assert retried is not None and retried.cache_key is None
        (a,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.complete_many("w", [(a.id, b"1")], keys={a.id: "k1"}) == [True]
        assert mycelium.cached_result("k1") == (a.id, b"1")

        reuser = mycelium.submit(run_of(job("a#0")))
        (c,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.complete_many("w", [(c.id, b"1")], {c.id: "k1"}, {c.id: a.id}) == [True]
        assert mycelium.prune_runs(time.time() + 1, limit=1) == 1  # the older run only
        assert mycelium.get_job(a.id) is None
        # The reusing job kept its own copy of the result, and is found under the key now.
        assert mycelium.results(reuser, ["a#0"]) == {"a#0": b"1"}
        assert mycelium.cached_result("k1") == (c.id, b"1")
        assert mycelium.prune_runs(time.time() + 1) == 1
        assert mycelium.cached_result("k1") is None

    # -- reading ------------------------------------------------------------------------

    def test_get_job_and_run_info_by_unique_prefix(self, mycelium: Store) -> None:
        run_id = mycelium.submit(fanout(40))
        jobs = mycelium.list_jobs(run_id)
        assert [j.key for j in jobs] == [f"f#{i}" for i in range(40)]
        target = jobs[7]
        prefix = next(
            target.id[:n]
            for n in range(1, len(target.id) + 1)
            if sum(j.id.startswith(target.id[:n]) for j in jobs) == 1
        )
        found = mycelium.get_job(prefix)
        assert found is not None and found.id == target.id and found.run == run_id
        assert mycelium.get_job("no-such-job") is None
        shared = next(
            (a.id[0] for a in jobs for b in jobs if a is not b and a.id[0] == b.id[0]), None
        )
        if shared is not None:
            with pytest.raises(MyceliumError, match="ambiguous"):
                mycelium.get_job(shared)
        info = mycelium.run_info(run_id[:6])
        assert info is not None and info.id == run_id
        assert mycelium.list_jobs(run_id[:6]) == jobs
        assert mycelium.run_info("no-such-run") is None and mycelium.list_jobs("no-such-run") == []

    def test_list_runs_newest_first(self, mycelium: Store) -> None:
        ids = [mycelium.submit(fanout(1)) for _ in range(3)]
        assert [r.id for r in mycelium.list_runs()] == ids[::-1]
        assert [r.id for r in mycelium.list_runs(limit=2)] == ids[:0:-1]

    # -- reads for displays of large runs: each backend's answer is the reference's --------

    def test_find_runs_filters_by_status_pipeline_and_id_prefix(self, mycelium: Store) -> None:
        done = mycelium.submit(fanout(1))
        (claimed,) = mycelium.claim("e", "w", LEASE)
        assert mycelium.complete(claimed.id, "w", b"1")
        running = [mycelium.submit(fanout(2)) for _ in range(2)]
        assert [r.id for r in mycelium.find_runs()] == [*running[::-1], done]
        assert [r.id for r in mycelium.find_runs(status="succeeded")] == [done]
        assert [r.id for r in mycelium.find_runs(pipeline="PIPE", limit=1)] == [running[1]]
        assert mycelium.find_runs(pipeline="nope") == []
        assert [r.id for r in mycelium.find_runs(prefix=done[:5])] == [done]
        assert mycelium.find_runs(prefix="zzzz") == []
        for status, prefix in ((None, ""), ("running", ""), ("succeeded", done[:3])):
            assert mycelium.find_runs(status, "pipe", prefix) == Store.find_runs(
                mycelium, status, "pipe", prefix
            )

    def test_page_jobs_reads_one_page_in_seq_order(self, mycelium: Store) -> None:
        run_id = mycelium.submit(fanout(25))
        for claimed in mycelium.claim("e", "w", LEASE, limit=3):
            assert mycelium.complete(claimed.id, "w", b"1")
        keys = [j.key for j in mycelium.page_jobs(run_id, offset=10, limit=5)]
        assert keys == [f"f#{i}" for i in range(10, 15)]
        assert [j.key for j in mycelium.page_jobs(run_id[:6], "succeeded")] == ["f#0", "f#1", "f#2"]
        assert [j.key for j in mycelium.page_jobs(run_id, "ready", 20, 100)] == ["f#23", "f#24"]
        assert mycelium.page_jobs(run_id, offset=25) == []
        assert mycelium.page_jobs("no-such-run") == []
        for args in ((None, 0, 100), ("ready", 3, 4), (None, 24, 1)):
            assert mycelium.page_jobs(run_id, *args) == Store.page_jobs(mycelium, run_id, *args)

    def test_job_spans_and_node_counts(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(job("a#0"), job("a#1"), job("b#0", deps=["a#0", "a#1"])))
        (first,) = mycelium.claim("e", "w1", LEASE)
        assert mycelium.complete(first.id, "w1", b"1")
        mycelium.claim("e", "w2", LEASE)
        spans = mycelium.job_spans(run_id[:6])
        assert [(s.key, s.status, s.worker) for s in spans] == [
            ("a#0", "succeeded", "w1"),
            ("a#1", "running", "w2"),
            ("b#0", "pending", None),
        ]
        assert spans[0].started is not None and spans[0].finished is not None
        assert spans[0].started <= spans[0].finished and spans[2].started is None
        assert spans == Store.job_spans(mycelium, run_id)
        counts = mycelium.node_counts(run_id)
        assert counts == {"a": {"succeeded": 1, "running": 1}, "b": {"pending": 1}}
        assert counts == Store.node_counts(mycelium, run_id)
        assert mycelium.job_spans("no-such-run") == [] and mycelium.node_counts("nope") == {}

    def test_job_buckets_group_started_jobs_per_worker_and_slice(self, mycelium: Store) -> None:
        run_id = mycelium.submit(fanout(6))
        for worker in ("w1", "w2"):
            for claimed in mycelium.claim("e", worker, LEASE, limit=2):
                assert mycelium.complete(claimed.id, worker, b"1")
        (failing,) = mycelium.claim("e", "w2", LEASE)
        assert mycelium.fail(failing.id, "w2", BOOM)
        mycelium.claim("e", "w1", LEASE)  # f#5 stays running
        info = mycelium.run_info(run_id)
        assert info is not None
        now = time.time() + 1
        whole = mycelium.job_buckets(run_id, info.created, 3600.0, now)
        assert [(b.worker, b.slot, b.jobs, b.status) for b in whole] == [
            ("w1", 0, 3, "running"),
            ("w2", 0, 3, "failed"),
        ]
        assert [b.key for b in whole] == ["f#0", "f#2"], whole
        assert whole[0].end == now and whole[0].busy >= 0
        fine = mycelium.job_buckets(run_id, info.created, 1e-9, now)
        assert sum(b.jobs for b in fine) == 6 and len(fine) >= 2
        for grain in (3600.0, 1e-9, 0.001):
            mine = mycelium.job_buckets(run_id, info.created, grain, now)
            reference = Store.job_buckets(mycelium, run_id, info.created, grain, now)
            assert [(b.elf, b.worker, b.slot, b.jobs, b.status, b.key) for b in mine] == [
                (b.elf, b.worker, b.slot, b.jobs, b.status, b.key) for b in reference
            ]
            for a, b in zip(mine, reference, strict=True):
                assert (a.start, a.end) == (b.start, b.end)
                assert abs(a.busy - b.busy) < 1e-6
        assert mycelium.job_buckets("no-such-run", 0.0, 1.0, now) == []

    def test_failure_jobs_are_the_jobs_whose_latest_failure_it_is(self, mycelium: Store) -> None:
        older = mycelium.submit(fanout(3))
        newer = mycelium.submit(fanout(2))
        for claimed in mycelium.claim("e", "w", LEASE, limit=5):
            assert mycelium.fail(claimed.id, "w", BOOM)
        [failure] = mycelium.list_failures()
        jobs = mycelium.failure_jobs(failure.hash)
        assert [(j.run, j.key) for j in jobs] == [
            (newer, "f#0"), (newer, "f#1"), (older, "f#0"), (older, "f#1"), (older, "f#2"),
        ]  # fmt: skip
        assert [j.key for j in mycelium.failure_jobs(failure.hash, limit=2)] == ["f#0", "f#1"]
        assert jobs == Store.failure_jobs(mycelium, failure.hash)
        assert mycelium.failure_jobs("no-such-failure") == []

    # -- expanding regions -----------------------------------------------------------

    def test_an_expansion_with_a_result_adds_placeholders_and_readies_its_dependents(
        self, mycelium: Store
    ) -> None:
        run_id = mycelium.submit(
            run_of(job("a#0"), expander("g#0", ["a#0"]), job("c#0", deps=["g#0"]))
        )
        drain(mycelium)
        g = take(mycelium, "x", "g#0")
        plan = Expansion([], not_taken=[job("t#0"), job("t#1", "other")], result=b'{"lit": 1}')
        assert mycelium.expand(g.id, "w", plan)
        assert not mycelium.expand(g.id, "w", plan)  # applied once
        assert counted(mycelium, run_id) == {"succeeded": 2, "ready": 1, "not_taken": 2}
        info = mycelium.run_info(run_id)
        assert info is not None and info.total == 5 and info.elf_counts["other"]["not_taken"] == 1
        got = mycelium.get_job(g.id)
        assert got is not None and (got.status, got.task, got.result) == (
            "succeeded",
            EXPAND,
            b'{"lit": 1}',
        )
        placeholders = mycelium.list_jobs(run_id, status="not_taken")
        assert [j.key for j in placeholders] == ["t#0", "t#1"]
        for placeholder in placeholders:
            assert placeholder.finished is not None and placeholder.seq > 2
            assert g.id in placeholder.history[-1].note
        (c,) = mycelium.claim("e", "w", LEASE)
        assert c.key == "c#0" and mycelium.results(run_id, c.deps) == {"g#0": b'{"lit": 1}'}
        assert mycelium.complete(c.id, "w", b"2")
        assert mycelium.run_status(run_id) == "succeeded"
        assert counted(mycelium, run_id) == {"succeeded": 3, "not_taken": 2}

    @pytest.mark.parametrize("n", [0, 1, 500])
    def test_an_expansion_into_jobs_becomes_a_join_ready_when_the_last_of_them_succeeds(
        self, mycelium: Store, n: int
    ) -> None:
        run_id = mycelium.submit(
            run_of(job("s#0", "slow"), expander("g#0"), job("c#0", deps=["g#0"]))
        )
        s = take(mycelium, "slow", "s#0")
        g = take(mycelium, "x", "g#0")
        made = [job(f"n#{i}", deps=["n#0"] if i else []) for i in range(n)]
        join = joining("s#0", *(j.key for j in made))
        assert mycelium.expand(g.id, "w", Expansion(made, join=join))
        info = mycelium.run_info(run_id)
        assert info is not None and info.total == 3 + n and info.status == "running"
        waiting = {j.key: (j.status, j.waiting) for j in mycelium.list_jobs(run_id)}
        assert waiting["g#0"] == ("pending", n + 1) and waiting["c#0"] == ("pending", 1)
        if n:
            assert waiting["n#0"] == ("ready", 0) and waiting[f"n#{n - 1}"][0] == (
                "pending" if n > 1 else "ready"
            )
        assert [j.key for j in mycelium.list_jobs(run_id)][3:] == [j.key for j in made]
        assert mycelium.complete(s.id, "w", b"0")
        if n:
            assert mycelium.claim("x", "w", LEASE) == []  # the join still waits
            assert drain(mycelium) == [j.key for j in made]
        joined = take(mycelium, "x", "g#0")
        assert (joined.id, joined.task, joined.args) == (g.id, JOIN, (join,))
        assert joined.deps == tuple(sorted(["s#0", *(j.key for j in made)]))
        assert mycelium.claim("e", "w", LEASE) == []  # the consumer waits for the join
        assert mycelium.complete(joined.id, "w", b'{"lit": [0]}')
        assert drain(mycelium) == ["c#0"]
        assert mycelium.run_status(run_id) == "succeeded"
        assert counted(mycelium, run_id) == {"succeeded": 3 + n}

    @pytest.mark.parametrize("state", ["running", "succeeded", "failed", "fails later"])
    def test_new_jobs_wait_for_an_external_job_or_are_skipped_when_it_failed(
        self, mycelium: Store, state: str
    ) -> None:
        run_id = mycelium.submit(
            run_of(job("s#0", "slow"), expander("g#0"), job("c#0", deps=["g#0"]))
        )
        s = take(mycelium, "slow", "s#0")
        if state == "succeeded":
            assert mycelium.complete(s.id, "w", b"0")
        elif state == "failed":
            assert mycelium.fail(s.id, "w", BOOM)
        g = take(mycelium, "x", "g#0")
        made = [job("n#0", deps=["s#0"]), job("n#1", deps=["n#0"])]
        assert mycelium.expand(g.id, "w", Expansion(made, join=joining("n#1")))
        statuses = {j.key: j.status for j in mycelium.list_jobs(run_id)}
        if state == "failed":
            assert statuses == {
                "s#0": "failed", "g#0": "skipped", "c#0": "skipped",
                "n#0": "skipped", "n#1": "skipped",
            }  # fmt: skip
            assert mycelium.run_status(run_id) == "failed"
            assert counted(mycelium, run_id) == {"failed": 1, "skipped": 4}
            info = mycelium.run_info(run_id)
            assert info is not None and info.total == 5 and info.finished is not None
            return
        first = "ready" if state == "succeeded" else "pending"
        assert (statuses["n#0"], statuses["n#1"], statuses["g#0"]) == (first, "pending", "pending")
        if state == "fails later":
            assert mycelium.fail(s.id, "w", BOOM)
            assert mycelium.run_status(run_id) == "failed"
            assert counted(mycelium, run_id) == {"failed": 1, "skipped": 4}
            return
        if state == "running":
            assert mycelium.claim("e", "w", LEASE) == []
            assert mycelium.complete(s.id, "w", b"0")
        assert drain(mycelium) == ["n#0", "n#1"]
        assert mycelium.complete(take(mycelium, "x", "g#0").id, "w", b"1")
        assert drain(mycelium) == ["c#0"]
        assert mycelium.run_status(run_id) == "succeeded"
        assert counted(mycelium, run_id) == {"succeeded": 5}

    def test_an_expansion_needs_the_lease_and_is_applied_once(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(expander("g#0"), job("c#0", deps=["g#0"])))
        (first,) = mycelium.claim("x", "w1", lease=5.0)
        plan = Expansion([job("n#0"), job("n#1")], not_taken=[job("t#0")], join=joining("n#1"))
        assert not mycelium.expand(first.id, "w2", plan)  # not the lease owner
        info = mycelium.run_info(run_id)
        assert info is not None and info.total == 2
        assert counted(mycelium, run_id) == {"running": 1, "pending": 1}
        # The lease runs out; another worker claims the job again and expands it.
        assert mycelium.expire_leases(now=time.time() + 10) == 1
        second = take(mycelium, "x", "g#0", "w2")
        assert second.id == first.id and second.attempts == 2
        assert not mycelium.expand(first.id, "w1", plan)  # its lease is gone
        assert mycelium.expand(second.id, "w2", plan)
        assert not mycelium.expand(first.id, "w1", plan)  # the first worker's is refused
        assert not mycelium.expand(second.id, "w2", plan)
        keys = [j.key for j in mycelium.list_jobs(run_id)]
        assert sorted(keys) == ["c#0", "g#0", "n#0", "n#1", "t#0"]
        info = mycelium.run_info(run_id)
        assert info is not None and info.total == 5
        assert counted(mycelium, run_id) == {"pending": 2, "ready": 2, "not_taken": 1}

    def test_an_expansion_into_keys_the_run_has_is_refused_whole(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(expander("g#0"), job("c#0", deps=["g#0"])))
        (held,) = mycelium.claim("x", "w1", lease=5.0)
        plan = Expansion([job("n#0"), job("c#0")], join=joining("n#0"))
        with pytest.raises(MyceliumError, match=r"the run (already has|has already)"):
            mycelium.expand(held.id, "w1", plan)
        assert sorted(j.key for j in mycelium.list_jobs(run_id)) == ["c#0", "g#0"]
        assert counted(mycelium, run_id) == {"running": 1, "pending": 1}

    def test_an_expansion_of_a_cancelled_run_adds_nothing(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(expander("g#0"), job("c#0", deps=["g#0"])))
        g = take(mycelium, "x", "g#0")
        assert mycelium.cancel_run(run_id)
        plan = Expansion([job("n#0")], not_taken=[job("t#0")], join=joining("n#0"))
        assert not mycelium.expand(g.id, "w", plan)
        assert [j.key for j in mycelium.list_jobs(run_id)] == ["g#0", "c#0"]
        info = mycelium.run_info(run_id)
        assert info is not None and info.total == 2 and info.status == "cancelled"
        assert info.finished is not None
        assert counted(mycelium, run_id) == {"cancelled": 2}
        assert mycelium.claim("e", "w", LEASE) == [] and mycelium.claim("x", "w", LEASE) == []

    def test_expansions_racing_completions_of_what_they_wait_for_lose_no_readiness(
        self, mycelium: Store, mycelium_url: str
    ) -> None:
        n = 30
        run_id = mycelium.submit(
            run_of(
                *(job(f"s#{i}", "slow") for i in range(n)), *(expander(f"g#{i}") for i in range(n))
            )
        )
        slow = mycelium.claim("slow", "ws", LEASE, limit=n)
        regions = mycelium.claim("x", "wx", LEASE, limit=n)
        assert len(slow) == len(regions) == n
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def complete() -> None:
            with open_mycelium(mycelium_url) as m:
                start.wait(timeout=30)
                for c in slow:
                    assert m.complete(c.id, "ws", b"1")

        def expand() -> None:
            with open_mycelium(mycelium_url) as m:
                start.wait(timeout=30)
                for g in regions:
                    i = g.key.split("#")[1]
                    made = [job(f"n#{i}", deps=[f"s#{i}"])]
                    assert m.expand(g.id, "wx", Expansion(made, join=joining(f"n#{i}")))

        def guarded(body: Any) -> Any:
            def run() -> None:
                try:
                    body()
                except BaseException as exc:  # reported by the test's thread
                    errors.append(exc)

            return run

        threads = [threading.Thread(target=guarded(f)) for f in (complete, expand)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        # Every new job's dependency succeeded: each is ready, none waits for ever.
        assert sorted(drain(mycelium)) == sorted(f"n#{i}" for i in range(n))
        joins = drain(mycelium, "x")
        assert len(joins) == n
        assert mycelium.run_status(run_id) == "succeeded"
        assert counted(mycelium, run_id) == {"succeeded": 3 * n}

    def test_a_new_expansion_job_is_expanded_in_turn(self, mycelium: Store) -> None:
        run_id = mycelium.submit(run_of(expander("g#0"), job("c#0", deps=["g#0"])))
        g = take(mycelium, "x", "g#0")
        inner = [job("n#0"), expander("h#0", ["n#0"])]
        assert mycelium.expand(g.id, "w", Expansion(inner, join=joining("h#0")))
        assert drain(mycelium) == ["n#0"]
        h = take(mycelium, "x", "h#0")
        assert h.task == EXPAND and h.deps == ("n#0",)
        assert mycelium.expand(h.id, "w", Expansion([job("m#0")], join=joining("m#0", "n#0")))
        statuses = {j.key: (j.status, j.waiting) for j in mycelium.list_jobs(run_id)}
        assert statuses["h#0"] == ("pending", 1) and statuses["g#0"] == ("pending", 1)
        assert drain(mycelium) == ["m#0"]
        h_join = take(mycelium, "x", "h#0")
        assert h_join.task == JOIN and h_join.deps == ("m#0", "n#0")
        assert mycelium.complete(h_join.id, "w", b"3")
        g_join = take(mycelium, "x", "g#0")
        assert mycelium.results(run_id, g_join.deps) == {"h#0": b"3"}
        assert mycelium.complete(g_join.id, "w", b"3")
        assert drain(mycelium) == ["c#0"]
        assert mycelium.run_status(run_id) == "succeeded"
        assert counted(mycelium, run_id) == {"succeeded": 5}
        info = mycelium.run_info(run_id)
        assert info is not None and info.total == 5
        assert [j.seq for j in mycelium.list_jobs(run_id)] == sorted(
            j.seq for j in mycelium.list_jobs(run_id)
        )

    # -- waiting ----------------------------------------------------------------------

    def test_wait_for_work_returns_at_timeout_when_idle(self, mycelium: Store) -> None:
        mycelium.wait_for_work("idle", 0.01)  # the first call may return at once
        start = time.monotonic()
        mycelium.wait_for_work("idle", 0.2)
        assert 0.15 <= time.monotonic() - start < 2.0

    def test_wait_for_work_wakes_soon_after_work_arrives(self, mycelium_url: str) -> None:
        with open_mycelium(mycelium_url) as m:
            m.wait_for_work("sleepy", 0.01)
            proc = _context().Process(target=_submit_later, args=(mycelium_url, 0.3, "sleepy"))
            proc.start()
            try:
                start = time.monotonic()
                deadline = start + 20
                while not m.claim("sleepy", "w", LEASE):
                    assert time.monotonic() < deadline, "no work arrived"
                    m.wait_for_work("sleepy", 10.0)
                waited = time.monotonic() - start
            finally:
                proc.join(timeout=20)
        assert waited < 5.0

    def test_wait_for_run_returns_when_the_run_settles(self, mycelium: Store) -> None:
        run_id = mycelium.submit(fanout(3))
        assert mycelium.wait_for_run(run_id, 0.05) == "running"
        finisher = threading.Timer(0.1, drain, args=(mycelium,))
        finisher.start()
        try:
            assert mycelium.wait_for_run(run_id, 20.0) == "succeeded"
        finally:
            finisher.join(timeout=20)
        assert mycelium.wait_for_run("no-such-run", 0.1) is None
