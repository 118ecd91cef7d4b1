"""The rules every backend shares (``elfc.mycelium.common``), without a database."""

from __future__ import annotations

import sys

import pytest

from elfc.errors import MyceliumError
from elfc.model.ir import BuiltRun, JobSpec
from elfc.model.records import Event, JobInfo
from elfc.mycelium.common import (
    MAX_NESTING,
    Submission,
    Undecodable,
    decode_payload,
    job_history,
    must_stop,
    nesting,
    new_ids,
    pick,
    rerun_note,
    retry,
    retry_plan,
    run_info,
)

from .contract import job, run_of


def test_a_submission_is_checked_before_anything_is_written() -> None:
    with pytest.raises(MyceliumError, match="duplicate job keys"):
        Submission(run_of(job("a#0"), job("a#0")))
    with pytest.raises(MyceliumError, match="not a job of the run"):
        Submission(run_of(job("a#0", deps=["z#0"])))
    with pytest.raises(MyceliumError, match="not JSON-encodable"):
        Submission(run_of(job("a#0"), output=object()))


def test_a_submission_counts_each_dependency_once() -> None:
    plan = Submission(run_of(job("a#0"), job("b#0", deps=["a#0", "a#0"])))
    assert plan.deps == [(), ("a#0",)]
    assert plan.statuses == ["ready", "pending"]
    assert plan.dependents["a#0"] == 1 and plan.dependents["b#0"] == 0
    assert plan.run_status == "running" and Submission(run_of()).run_status == "succeeded"


def test_ids_are_hex_and_distinct() -> None:
    run_id, job_ids = new_ids(3)
    assert len(run_id) == 16 and len(job_ids) == 3 and len(set(job_ids)) == 3
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in job_ids)


def test_a_prefix_picks_the_exact_id_first_and_refuses_ambiguity() -> None:
    def key(row: str) -> str:
        return row

    assert pick(["ab", "abc"], "ab", "run", key) == "ab"
    assert pick(["abc"], "ab", "run", key) == "abc"
    assert pick([], "ab", "run", key) is None
    with pytest.raises(MyceliumError, match="ambiguous"):
        pick(["abc", "abd"], "ab", "run", key)


def test_a_run_summary_counts_every_status_and_says_why_it_failed() -> None:
    counted = [("e", "failed", 1), ("e", "skipped", 2), ("f", "succeeded", 3)]
    info = run_info("r", "m:p", "rev", b"{}", "failed", 1.0, 2.0, 6, b"null", counted)
    assert info.counts["failed"] == 1 and info.counts["pending"] == 0
    assert info.elf_counts["f"]["succeeded"] == 3 and info.elf_counts["f"]["failed"] == 0
    assert info.error == "1 job(s) failed, 2 skipped"
    assert run_info("r", "m:p", "rev", "{}", "succeeded", 1.0, 2.0, 0, "1", []).error is None


def test_a_history_begins_with_the_submission() -> None:
    later = [Event(2.0, "running", "w")]
    assert job_history(1.0, ("a#0",), later) == (Event(1.0, "pending", "submitted"), *later)
    assert job_history(1.0, (), [])[0].status == "ready"


def test_a_worker_stops_jobs_it_lost_or_whose_run_was_cancelled() -> None:
    assert must_stop(["a", "b", "c"], [("a", False), ("b", True)]) == {"b", "c"}


def test_retries_give_up_after_their_patience() -> None:
    tries: list[int] = []

    def attempt() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise TimeoutError("busy")
        return "done"

    def gave_up(exc: Exception) -> Exception:
        return MyceliumError(f"gave up: {exc}")

    def transient(exc: Exception) -> bool:
        return isinstance(exc, TimeoutError)

    def busy() -> str:
        raise TimeoutError("busy")

    assert retry(attempt, transient, gave_up, 0.0001, 0.001) == "done" and len(tries) == 3
    with pytest.raises(MyceliumError, match="gave up: busy"):
        retry(busy, transient, gave_up, 0.0001, 0.001, patience=-1)
    with pytest.raises(ValueError):
        retry(lambda: int("x"), transient, gave_up, 0.0001, 0.001)


# -- operating runs ---------------------------------------------------------------------------


def _job(key: str, status: str, deps: tuple[str, ...] = (), revision: str = "r1") -> JobInfo:
    seq = int(key.split("#")[1]) + 10 * (ord(key[0]) - ord("a"))
    return JobInfo(
        f"id-{key}", "run", key, key.split("#")[0], "e", "work", revision, (), {}, deps, seq,
        status, 0, 1, 0.0, None, None, 0.0, None, None,
    )  # fmt: skip


def _diamond(*statuses: str) -> list[JobInfo]:
    """a#0 -> b#0, a#0 -> c#0, (b#0, c#0) -> d#0, and e#0 on its own."""
    a, b, c, d, e = statuses
    return [
        _job("a#0", a),
        _job("b#0", b, ("a#0",)),
        _job("c#0", c, ("a#0",)),
        _job("d#0", d, ("b#0", "c#0")),
        _job("e#0", e),
    ]


def test_a_retry_runs_what_did_not_succeed_and_everything_downstream() -> None:
    jobs = _diamond("succeeded", "failed", "succeeded", "skipped", "succeeded")
    plan = retry_plan(jobs, lambda job: "r1")
    assert plan == {"id-b#0": "r1", "id-d#0": "r1"}
    assert retry_plan(jobs, lambda job: "r2" if job.key == "b#0" else "r1") == {
        "id-b#0": "r2",
        "id-d#0": "r1",
    }


def test_a_retry_runs_succeeded_jobs_whose_task_changed_and_their_dependents() -> None:
    jobs = _diamond("succeeded", "succeeded", "succeeded", "succeeded", "succeeded")
    assert retry_plan(jobs, lambda job: "r1") == {}
    changed = retry_plan(jobs, lambda job: "r2" if job.key == "c#0" else "r1")
    assert list(changed) == ["id-c#0", "id-d#0"] and changed["id-c#0"] == "r2"


def test_a_retry_from_a_key_or_of_everything() -> None:
    jobs = _diamond("succeeded", "succeeded", "succeeded", "succeeded", "cancelled")
    assert list(retry_plan(jobs, lambda job: "r1", from_keys=["a#0"])) == [
        "id-a#0",
        "id-b#0",
        "id-c#0",
        "id-d#0",
        "id-e#0",
    ]
    assert len(retry_plan(jobs, lambda job: "r1", everything=True)) == 5
    with pytest.raises(MyceliumError, match="no job 'z#9'"):
        retry_plan(jobs, lambda job: "r1", from_keys=["z#9"])


def test_a_retry_never_runs_a_branch_that_was_not_taken() -> None:
    jobs = _diamond("succeeded", "failed", "succeeded", "skipped", "not_taken")
    assert list(retry_plan(jobs, lambda job: "r1")) == ["id-b#0", "id-d#0"]
    everything = retry_plan(jobs, lambda job: "r1", everything=True)
    assert list(everything) == ["id-a#0", "id-b#0", "id-c#0", "id-d#0"]
    assert list(retry_plan(jobs, lambda job: "r1", from_keys=["e#0"])) == ["id-b#0", "id-d#0"]


def test_a_retry_of_a_run_with_active_jobs_is_refused() -> None:
    jobs = _diamond("succeeded", "running", "succeeded", "pending", "succeeded")
    with pytest.raises(MyceliumError, match=r"2 job.*still active"):
        retry_plan(jobs, lambda job: "r1")


def test_a_retried_job_notes_its_revisions() -> None:
    assert rerun_note("a", "b") == "retried: task revision a -> b"
    assert rerun_note("a", "a") == "retried at task revision a"


def test_submission_refuses_arguments_nested_deeper_than_a_worker_decodes() -> None:
    deep: object = 1
    for _ in range(100_000):  # far past Python's recursion limit: measured without recursion
        deep = {"bin": ["+", deep, 1]}
    assert nesting(deep) == 200_000
    spec = JobSpec(
        key="n1#0", node="n1", elf="e", task="t", revision="r", args=(deep,), kwargs={},
        deps=(), seq=0,
    )  # fmt: skip
    with pytest.raises(
        MyceliumError, match=f"nest 200001 levels deep, more than the {MAX_NESTING}"
    ):
        Submission(BuiltRun("p:pipe", "p1", {}, (spec,), None))
    shallow = JobSpec(**{**{f: getattr(spec, f) for f in spec.__struct_fields__}, "args": (1,)})
    assert Submission(BuiltRun("p:pipe", "p1", {}, (shallow,), None)).payloads


def test_decode_payload_turns_every_bad_row_into_undecodable() -> None:
    assert decode_payload(b'[1, {"ref": "a#0"}]', b'{"x": 2}', b'["a#0"]') == (
        (1, {"ref": "a#0"}),
        {"x": 2},
        ("a#0",),
    )
    for args, kwargs, deps in [
        (b"not json", b"{}", b"[]"),
        (b"[]", b"[]", b"[]"),  # kwargs must be an object
        (b"[]", b"{}", b"[1]"),  # dependency keys are strings
        (b"\xff\xfe", b"{}", b"[]"),
    ]:
        with pytest.raises(Undecodable):
            decode_payload(args, kwargs, deps)


def test_decode_payload_refuses_nesting_past_the_recursion_limit() -> None:
    # A worker runs with Python's default limit; other tests in this process may raise it.
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        with pytest.raises(Undecodable, match="RecursionError"):
            decode_payload(b"[" * 5000 + b"]" * 5000, b"{}", b"[]")
    finally:
        sys.setrecursionlimit(saved)
