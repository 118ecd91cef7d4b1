"""Failing tasks: retries with backoff, exhaustion, skipped dependents, deduplicated failures,
timeouts, and jobs submitted for other task source (revision mismatch).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from elfc import RunFailed
from elfc.cli.main import main
from elfc.compiler.elves import elf_info
from elfc.runtime.client import Mycelium
from elfc.targets import load_module
from tests.runtime.fixtures.harness import (
    ELVES_PATH,
    Processes,
    ThreadWorkers,
    elves,
)


def job(mycelium: Mycelium, run_id: str, key: str) -> tuple[str, int]:
    [found] = [j for j in mycelium.store.list_jobs(run_id) if j.key == key]
    return found.status, found.attempts


# -- retries ----------------------------------------------------------------------------------


def test_a_task_that_fails_twice_succeeds_on_its_third_attempt(
    threads: ThreadWorkers, mycelium: Mycelium, tmp_path: Path
) -> None:
    m = elves()
    threads.start(m.flaky)
    threads.start(m.summer)
    counter = tmp_path / "attempts"

    run = mycelium.submit(m.retried, str(counter), 2)

    assert run.wait(timeout=20) == 3
    assert job(mycelium, run.id, "n1") == ("succeeded", 3)
    # retry_delay=0.05 doubles per attempt: 0.05 s, then 0.1 s.
    times = [float(t) for t in counter.read_text().split()]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05
    assert times[2] - times[1] >= 0.1
    [flaky] = [j for j in mycelium.store.list_jobs(run.id) if j.key == "n1"]
    full = mycelium.store.get_job(flaky.id)
    assert full is not None and full.failure is not None
    assert (full.failure.error_type, full.failure.count) == ("RuntimeError", 2)
    assert [e.status for e in full.history] == [
        "ready", "running", "ready", "running", "ready", "running", "succeeded",
    ]  # fmt: skip


def test_retry_exhaustion_fails_the_job_skips_its_dependents_and_fails_the_run(
    threads: ThreadWorkers,
    mycelium: Mycelium,
    url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    m = elves()
    threads.start(m.flaky)
    threads.start(m.summer)
    counter = tmp_path / "attempts"

    run = mycelium.submit(m.retried, str(counter), 5)

    with pytest.raises(RunFailed) as failed:
        run.wait(timeout=20)
    assert len(counter.read_text().split()) == 3  # the first attempt and two retries
    assert job(mycelium, run.id, "n1") == ("failed", 3)
    assert job(mycelium, run.id, "n2") == ("skipped", 0)
    info = mycelium.store.run_info(run.id)
    assert info is not None and info.status == "failed" and info.finished is not None
    [f] = failed.value.failures
    assert (f.elf, f.task, f.error_type) == ("flaky", "attempt", "RuntimeError")
    assert "failing on purpose, 5 times" in f.traceback
    assert 'raise RuntimeError(f"failing on purpose' in f.traceback  # the task's own line

    # One failure, seen three times (the same traceback each attempt).
    assert main(["failures", "--mycelium", url]) == 0
    out = capsys.readouterr().out
    assert "RuntimeError: failing on purpose, 5 times" in out
    assert "flaky.attempt" in out and "3x" in out


def test_the_same_failure_in_several_runs_is_stored_once_with_a_count(
    threads: ThreadWorkers, mycelium: Mycelium
) -> None:
    m = elves()
    threads.start(m.broken)
    threads.start(m.summer)
    runs = [mycelium.submit(m.failing, 7) for _ in range(3)]
    other = mycelium.submit(m.failing, 8)
    for run in [*runs, other]:
        with pytest.raises(RunFailed):
            run.wait(timeout=20)
        assert job(mycelium, run.id, "n2") == ("skipped", 0)

    failures = {f.message: f for f in mycelium.store.list_failures()}
    assert set(failures) == {"cannot handle 7", "cannot handle 8"}
    assert failures["cannot handle 7"].count == 3
    assert failures["cannot handle 8"].count == 1
    assert failures["cannot handle 7"].revision == elf_info(m.Broken).tasks["explode"].revision


def test_a_task_calling_sys_exit_fails_its_job_and_the_worker_goes_on(
    procs: Processes, mycelium: Mycelium, url: str
) -> None:
    worker = procs.worker(ELVES_PATH, "broken", url)
    run = mycelium.submit(elves().quitting, 3)

    with pytest.raises(RunFailed) as failed:
        run.wait(timeout=20)
    assert sorted((f.task, f.error_type, f.message) for f in failed.value.failures) == [
        ("explode", "ValueError", "cannot handle 3"),
        ("quit", "SystemExit", "3"),
    ]
    assert job(mycelium, run.id, "n1") == ("failed", 1)
    assert worker.poll() is None
    assert procs.stop(worker) == 0


# -- timeouts ---------------------------------------------------------------------------------


def test_a_job_over_its_timeout_fails_and_the_worker_goes_on(
    procs: Processes, mycelium: Mycelium, url: str
) -> None:
    worker = procs.worker(ELVES_PATH, "sleeper", url)
    t0 = time.monotonic()
    run = mycelium.submit(elves().naps, 5.0, 0.0)

    with pytest.raises(RunFailed) as failed:
        run.wait(timeout=20)
    assert time.monotonic() - t0 < 4.5  # the 5 s nap did not run to its end

    jobs = {j.key: j for j in mycelium.store.list_jobs(run.id)}
    late, next_one = jobs["n1"], jobs["n2"]
    [f] = failed.value.failures
    assert (f.job, f.error_type) == (late.id, "TimeoutError")
    assert "timeout of 0.5 s" in f.message
    assert late.status == "failed"
    assert late.started is not None and late.finished is not None
    assert late.finished - late.started < 1.5
    assert next_one.status == "succeeded"
    # The same worker process ran both: it survived the timeout.
    owners = set()
    for j in (late, next_one):
        full = mycelium.store.get_job(j.id)
        assert full is not None
        owners |= {e.note for e in full.history if e.status == "running"}
    assert len(owners) == 1 and f":{worker.pid}:sleeper:" in owners.pop()
    assert worker.poll() is None
    assert procs.stop(worker) == 0


# -- revision mismatch ------------------------------------------------------------------------

ADDER = """
from elfc import elf, named, pipeline, task


@elf
class Adder:
    @task
    def add(self, x: int) -> int:
        return x + {step}


adder = named(Adder, "adder")


@pipeline
def plus(x: int) -> int:
    return adder.add(x)
"""


@pytest.mark.parametrize("mode", ["fail", "run"])
def test_a_worker_with_other_task_source_refuses_the_job_unless_told(
    mode: str, procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    source = tmp_path / "adder_elf.py"
    source.write_text(ADDER.format(step=1))
    submitted = load_module(str(source))
    old = elf_info(submitted.Adder).tasks["add"].revision
    run = mycelium.submit(submitted.plus, 1)
    source.write_text(ADDER.format(step=100))  # a behaviour change, after submission
    changed = tmp_path / "changed" / "adder_elf.py"
    changed.parent.mkdir()
    changed.write_text(ADDER.format(step=100))
    new = elf_info(load_module(str(changed)).Adder).tasks["add"].revision
    assert new != old

    worker = procs.worker(source, "adder", url, "--on-revision-mismatch", mode)

    if mode == "run":
        assert run.wait(timeout=20) == 101  # the worker's code ran
        assert job(mycelium, run.id, "n1") == ("succeeded", 1)
    else:
        with pytest.raises(RunFailed) as failed:
            run.wait(timeout=20)
        [f] = failed.value.failures
        assert f.error_type == "RevisionMismatch"
        assert old in f.message and new in f.message
        assert "--on-revision-mismatch run" in f.message
        assert job(mycelium, run.id, "n1") == ("failed", 1)
    # The worker stored the source it runs, so both revisions can be inspected.
    for revision, step in ((old, 1), (new, 100)):
        stored = mycelium.store.get_revision(revision)
        assert stored is not None and f"return x + {step}" in stored.source
    assert procs.stop(worker) == 0
