"""Workers claim, run and record jobs: in threads and as real processes on one SQLite file.

Jobs log what they do to files (``O_APPEND`` lines), so a test counts executions independently
of what the mycelium says, and then checks that the mycelium agrees.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from elfc.errors import RunCancelled
from elfc.runtime.client import Mycelium
from tests.runtime.fixtures.harness import (
    ELVES_PATH,
    Processes,
    ThreadWorkers,
    cpu_seconds,
    elves,
    wait_until,
)


def logged_keys(path: Path) -> Counter[int]:
    return Counter(int(line) for line in path.read_text().splitlines())


def wait_for_workers(mycelium: Mycelium, n: int) -> None:
    wait_until(lambda: len(mycelium.store.list_workers()) >= n, 20, f"{n} workers to beat")


# -- in threads ---------------------------------------------------------------------------


def test_workers_in_threads_run_a_fanout(
    threads: ThreadWorkers, mycelium: Mycelium, tmp_path: Path
) -> None:
    m = elves()
    keys = tmp_path / "keys"
    run = mycelium.submit(m.fanout, str(keys), 50)
    assert run.status() == "running"
    assert {j.status for j in mycelium.store.list_jobs(run.id)} == {"ready", "pending"}

    threads.start(m.appender)
    threads.start(m.summer)

    assert run.wait(timeout=20) == sum(range(50))
    assert run.status() == "succeeded"
    assert logged_keys(keys) == Counter(range(50))
    info = mycelium.store.run_info(run.id)
    assert info is not None and info.counts["succeeded"] == 51 and info.finished is not None
    # Each elf registered itself and its task revisions.
    assert {e.name for e in mycelium.store.list_elves()} == {"appender", "summer"}
    [add] = [j for j in mycelium.store.list_jobs(run.id) if j.key == "n1#0"]
    revision = mycelium.store.get_revision(add.revision)
    assert revision is not None and "def add(self, path: str, key: int)" in revision.source


def test_wait_times_out_while_no_worker_serves_the_run(mycelium: Mycelium, tmp_path: Path) -> None:
    run = mycelium.submit(elves().fanout, str(tmp_path / "keys"), 3)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=run.id):
        run.wait(timeout=0.3)
    assert 0.3 <= time.monotonic() - t0 < 2
    assert run.status() == "running"


def test_an_elf_runs_its_jobs_oldest_run_first_then_in_creation_order(
    threads: ThreadWorkers, mycelium: Mycelium, tmp_path: Path
) -> None:
    m = elves()
    (tmp_path / "release").touch()  # nothing holds: each job logs its tag and returns
    for tag in ("r0", "r1", "r2"):
        mycelium.submit(m.blocked, str(tmp_path), tag)
    last = mycelium.submit(m.holds, str(tmp_path), 3)

    threads.start(m.blocker)

    assert last.wait(timeout=20) == ["job0", "job1", "job2"]
    tags = [line.split()[1] for line in (tmp_path / "ran").read_text().splitlines()]
    assert tags == ["r0", "r1", "r2", "job0", "job1", "job2"]


def test_a_worker_with_idle_exit_stops_by_itself(
    procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    mycelium.submit(elves().fanout, str(keys), 3)
    worker = procs.worker(ELVES_PATH, "appender", url, "--idle-exit", "0.5")
    assert worker.wait(20) == 0, procs.output(worker)
    assert logged_keys(keys) == Counter(range(3))
    assert "stopped after 3 jobs" in procs.output(worker)


# -- replicas -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["--replicas 2", "two processes"])
def test_two_replicas_never_run_a_job_twice(
    how: str, procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    if how == "--replicas 2":
        procs.worker(ELVES_PATH, "appender", url, "--replicas", "2")
    else:
        procs.worker(ELVES_PATH, "appender", url)
        procs.worker(ELVES_PATH, "appender", url)
    procs.worker(ELVES_PATH, "summer", url)
    wait_for_workers(mycelium, 3)  # both replicas idle and listening when the jobs arrive

    keys = tmp_path / "keys"
    run = mycelium.submit(elves().fanout, str(keys), 500)

    assert run.wait(timeout=60) == sum(range(500))
    assert logged_keys(keys) == Counter(range(500))  # every key exactly once
    jobs = mycelium.store.list_jobs(run.id)
    assert len(jobs) == 501
    assert {(j.status, j.attempts) for j in jobs} == {("succeeded", 1)}
    appenders = {w.id for w in mycelium.store.list_workers() if w.elf == "appender"}
    assert len(appenders) == 2
    # Both replicas took part (each claim names its worker in the job's history).
    ran_by = Counter(
        next(e.note for e in full.history if e.status == "running")
        for j in jobs
        if j.elf == "appender" and (full := mycelium.store.get_job(j.id)) is not None
    )
    assert set(ran_by) == appenders, ran_by


def test_a_10000_job_run_completes(
    procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    procs.worker(ELVES_PATH, "appender", url)
    procs.worker(ELVES_PATH, "appender", url)
    procs.worker(ELVES_PATH, "summer", url)
    keys = tmp_path / "keys"

    t0 = time.monotonic()
    run = mycelium.submit(elves().fanout, str(keys), 10_000)
    assert run.wait(timeout=90) == sum(range(10_000))
    elapsed = time.monotonic() - t0

    info = mycelium.store.run_info(run.id)
    assert info is not None
    assert (info.status, info.total, info.counts["succeeded"]) == ("succeeded", 10_001, 10_001)
    assert info.elf_counts["appender"]["succeeded"] == 10_000
    assert logged_keys(keys) == Counter(range(10_000))
    assert elapsed < 60, f"10,000 trivial jobs took {elapsed:.1f} s"


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_stops_the_running_job_and_cancels_the_rest(
    procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    # A short lease: heartbeats (which tell a worker to stop) come every lease / 3 seconds.
    worker = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1.5")
    run = mycelium.submit(elves().held_then_more, str(folder), 3)
    started = folder / f"started.{worker.pid}"
    wait_until(started.exists, 20, "the worker to start the first job")
    assert {j.key: j.status for j in mycelium.store.list_jobs(run.id)}["n1"] == "running"

    run.cancel()

    assert run.status() == "cancelled"
    with pytest.raises(RunCancelled, match=run.id):
        run.wait(timeout=5)
    wait_until(
        lambda: not mycelium.store.list_jobs(run.id, "running"), 10, "the running job to stop"
    )
    jobs = mycelium.store.list_jobs(run.id)
    assert {j.status for j in jobs} == {"cancelled"}, [(j.key, j.status) for j in jobs]
    assert started.read_text().splitlines() == ["first"]  # nothing started after the cancel
    assert not (folder / "ran").exists()  # the running task was stopped, not finished
    [first] = [j for j in jobs if j.key == "n1"]
    full = mycelium.store.get_job(first.id)
    assert full is not None and full.result is None
    assert [e.status for e in full.history][-2:] == ["running", "cancelled"]
    info = mycelium.store.run_info(run.id)
    assert info is not None and (info.status, info.counts["cancelled"]) == ("cancelled", 5)
    assert info.finished is not None  # settled once the stopped job was given back
    assert mycelium.store.cancel_run(run.id) is False  # already settled

    # The worker is still serving: it takes the next run's job.
    (folder / "release").touch()
    again = mycelium.submit(elves().blocked, str(folder), "again")
    assert again.wait(timeout=20) == "again"
    assert (folder / "ran").read_text().splitlines() == [f"{worker.pid} again"]
    assert procs.stop(worker) == 0


# -- idle -------------------------------------------------------------------------------------


def test_an_idle_worker_uses_little_cpu_and_still_wakes_at_once(
    procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    # A coarse guard (the target is 2%; benchmarks/ measures the real figure).
    worker = procs.worker(ELVES_PATH, "appender", url)
    wait_for_workers(mycelium, 1)
    time.sleep(0.5)  # past start-up
    before, t0 = cpu_seconds(worker.pid), time.monotonic()
    time.sleep(3)
    used = (cpu_seconds(worker.pid) - before) / (time.monotonic() - t0)
    assert used < 0.05, f"an idle worker used {used:.1%} of a core"

    keys = tmp_path / "keys"
    t0 = time.monotonic()
    mycelium.submit(elves().fanout, str(keys), 3)
    wait_until(lambda: keys.exists() and len(logged_keys(keys)) == 3, 5, "the jobs to run")
    assert time.monotonic() - t0 < 1.0
    assert procs.stop(worker) == 0
