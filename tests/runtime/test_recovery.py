"""Workers that die or are told to stop lose nothing: real worker processes on a real SQLite file.

The ``blocker`` elf's task marks ``started.<pid>`` in a folder and then holds its worker until the
test creates ``release``, so a test knows exactly which worker is mid-job when it kills or
signals it; ``ran`` logs each finished execution.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from elfc.runtime.client import Mycelium
from tests.runtime.fixtures.harness import (
    ELVES_PATH,
    Processes,
    elves,
    wait_until,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def started_by(folder: Path, pid: int) -> bool:
    return (folder / f"started.{pid}").exists()


def ran(folder: Path) -> list[str]:
    path = folder / "ran"
    return path.read_text().splitlines() if path.exists() else []


def stored_results(db: Path, job_id: str) -> int:
    """Rows in the ``results`` table for one job, read straight from the SQLite file."""
    with sqlite3.connect(db) as con:
        row = con.execute(
            "SELECT count(*) FROM results r JOIN jobs j ON r.job = j.no WHERE j.id = ?", (job_id,)
        ).fetchone()
    return int(row[0])


def test_a_worker_killed_mid_job_loses_nothing(
    procs: Processes, mycelium: Mycelium, url: str, folder: Path, tmp_path: Path
) -> None:
    first = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    run = mycelium.submit(elves().blocked, str(folder))
    wait_until(lambda: started_by(folder, first.pid), 20, "the first worker to start the job")

    first.send_signal(signal.SIGKILL)
    assert first.wait(5) == -signal.SIGKILL
    second = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    wait_until(lambda: started_by(folder, second.pid), 20, "a second worker to take the job over")
    (folder / "release").touch()

    assert run.wait(timeout=20) == "done"
    [job] = mycelium.store.list_jobs(run.id)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert ran(folder) == [f"{second.pid} done"]
    assert stored_results(tmp_path / "m.db", job.id) == 1
    full = mycelium.store.get_job(job.id)
    assert full is not None and full.result == b'"done"'
    notes = [event.note for event in full.history]
    assert any(f":{first.pid}:blocker:" in n and "expired" in n for n in notes), notes
    assert procs.stop(second) == 0


def test_a_paused_worker_that_lost_its_lease_cannot_store_a_second_result(
    procs: Processes, mycelium: Mycelium, url: str, folder: Path, tmp_path: Path
) -> None:
    first = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    run = mycelium.submit(elves().blocked, str(folder))
    wait_until(lambda: started_by(folder, first.pid), 20, "the first worker to start the job")

    first.send_signal(signal.SIGSTOP)  # alive, but silent: its lease runs out
    try:
        second = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
        wait_until(lambda: started_by(folder, second.pid), 20, "the second worker to take over")
        (folder / "release").touch()
        assert run.wait(timeout=20) == "done"
    finally:
        first.send_signal(signal.SIGCONT)
    [job] = mycelium.store.list_jobs(run.id)

    # The first worker wakes up, finishes (or is told to drop) its copy, and stores nothing.
    again = mycelium.submit(elves().blocked, str(folder), "again")
    assert again.wait(timeout=20) == "again"
    full = mycelium.store.get_job(job.id)
    assert full is not None
    assert (full.status, full.attempts, full.result) == ("succeeded", 2, b'"done"')
    assert [e.status for e in full.history].count("succeeded") == 1
    assert [e.note for e in full.history if e.status == "succeeded"] == [
        next(e.note for e in reversed(full.history) if e.status == "running")
    ]
    assert f":{second.pid}:" in full.history[-1].note
    assert stored_results(tmp_path / "m.db", job.id) == 1
    assert first.poll() is None and second.poll() is None
    assert procs.stop(first) == 0, procs.output(first)
    assert procs.stop(second) == 0, procs.output(second)


def test_jobs_queued_in_a_worker_keep_their_leases(
    procs: Processes, mycelium: Mycelium, url: str, folder: Path
) -> None:
    # A worker may claim a few jobs at once; those waiting behind its running job are leased
    # to it too, and must stay so while it is busy, or a spare worker would run them as well.
    worker = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    run = mycelium.submit(elves().holds, str(folder), 2)
    wait_until(lambda: started_by(folder, worker.pid), 20, "the worker to start a job")
    procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")  # a spare, idle worker
    wait_until(
        lambda: len(mycelium.store.list_workers()) >= 2, 20, "the spare worker's first heartbeat"
    )

    def held() -> dict[str, int]:
        """Jobs leased to the first worker: key -> attempts."""
        jobs = mycelium.store.list_jobs(run.id, "running")
        return {j.key: j.attempts for j in jobs if f":{worker.pid}:" in (j.lease_owner or "")}

    before = held()
    time.sleep(2.5)  # more than two leases
    assert held() == before
    assert (folder / f"started.{worker.pid}").read_text().splitlines() == ["job0"]
    (folder / "release").touch()

    assert run.wait(timeout=20) == ["job0", "job1"]
    assert all(j.attempts == 1 for j in mycelium.store.list_jobs(run.id))
    lines = ran(folder)
    assert sorted(line.split()[1] for line in lines) == ["job0", "job1"]
    # The jobs it held were run by it, once each; the spare may have taken the others.
    assert {f"{worker.pid} job{key[-1]}" for key in before} <= set(lines)


def test_sigterm_mid_job_finishes_the_job_then_exits_0(
    procs: Processes, mycelium: Mycelium, url: str, folder: Path
) -> None:
    # Short leases and an idle second worker: if the stopping worker let its lease lapse while
    # it finishes, the second one would take the job and run it again.
    worker = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    run = mycelium.submit(elves().blocked, str(folder))
    wait_until(lambda: started_by(folder, worker.pid), 20, "the worker to start the job")
    spare = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    wait_until(
        lambda: len(mycelium.store.list_workers()) >= 2, 20, "the spare worker's first heartbeat"
    )

    worker.send_signal(signal.SIGTERM)
    time.sleep(2.5)  # more than two leases: the job must stay with the stopping worker
    assert worker.poll() is None, procs.output(worker)
    assert not started_by(folder, spare.pid)
    (folder / "release").touch()

    assert worker.wait(10) == 0, procs.output(worker)
    assert run.wait(timeout=10) == "done"
    [job] = mycelium.store.list_jobs(run.id)
    assert (job.status, job.attempts) == ("succeeded", 1)
    assert ran(folder) == [f"{worker.pid} done"]
    assert procs.stop(spare) == 0


def test_a_second_sigterm_gives_the_job_back_and_another_worker_runs_it(
    procs: Processes, mycelium: Mycelium, url: str, folder: Path
) -> None:
    worker = procs.worker(ELVES_PATH, "blocker", url)
    run = mycelium.submit(elves().blocked, str(folder))
    wait_until(lambda: started_by(folder, worker.pid), 20, "the worker to start the job")

    worker.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # let the first signal land: the second means "now"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(10) == 0, procs.output(worker)
    [job] = mycelium.store.list_jobs(run.id)
    assert (job.status, job.attempts) == ("ready", 0)
    assert ran(folder) == []

    (folder / "release").touch()
    other = procs.worker(ELVES_PATH, "blocker", url)
    assert run.wait(timeout=20) == "done"
    [job] = mycelium.store.list_jobs(run.id)
    assert (job.status, job.attempts) == ("succeeded", 1)
    assert ran(folder) == [f"{other.pid} done"]
    assert procs.stop(other) == 0


def test_ctrl_c_on_replicas_lets_each_finish_its_job(
    procs: Processes, mycelium: Mycelium, url: str, folder: Path
) -> None:
    parent = procs.worker(ELVES_PATH, "blocker", url, "--replicas", "2")
    wait_until(lambda: len(mycelium.store.list_workers()) == 2, 20, "both replicas to serve")
    run = mycelium.submit(elves().blocked, str(folder))
    [started] = wait_until(lambda: list(folder.glob("started.*")), 20, "a replica to start")

    # Ctrl-C in a terminal signals the whole foreground process group.
    os.killpg(parent.pid, signal.SIGINT)
    time.sleep(0.5)
    assert parent.poll() is None, procs.output(parent)
    (folder / "release").touch()

    assert parent.wait(10) == 0, procs.output(parent)
    assert run.wait(timeout=10) == "done"
    [job] = mycelium.store.list_jobs(run.id)
    assert (job.status, job.attempts) == ("succeeded", 1)
    assert ran(folder) == [f"{started.suffix[1:]} done"]
    assert procs.strays() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_idle_worker_exits_0_on_a_stop_signal(
    signum: signal.Signals, procs: Processes, url: str
) -> None:
    worker = procs.worker(ELVES_PATH, "summer", url)
    wait_until(lambda: "serving" in procs.output(worker), 20, "the worker to start")
    t0 = time.monotonic()
    worker.send_signal(signum)
    assert worker.wait(10) == 0, procs.output(worker)
    assert time.monotonic() - t0 < 3
    assert "stopped after 0 jobs" in procs.output(worker)
