"""Elves served as threads: ``elfc.serve(...)`` in this process, and ``elfc worker --threads N``
/ ``elfc run --threads ELF=N`` as real processes killed and signalled for real.

Timeouts and cancellation are checked both for tasks running Python code (stopped by an
exception raised in their thread) and for tasks blocked in C code (``time.sleep``), whose job
the watchdog settles while their thread is abandoned.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from elfc import ElfcError, RunFailed, elf, named, serve, task
from elfc.errors import ElfStartFailed, RunCancelled, ServeError
from elfc.runtime.client import Mycelium
from elfc.targets import load_module
from tests.runtime.fixtures.harness import ELVES_PATH, Processes, ThreadWorkers, elves, wait_until
from tests.runtime.test_failures import ADDER, job


def owners(mycelium: Mycelium, run_id: str) -> dict[str, list[str]]:
    """Job key -> the worker of each attempt, from the jobs' histories."""
    out = {}
    for j in mycelium.store.list_jobs(run_id):
        full = mycelium.store.get_job(j.id)
        assert full is not None
        out[j.key] = [e.note for e in full.history if e.status == "running"]
    return out


# -- results --------------------------------------------------------------------------------


def test_serve_runs_a_fanout_from_several_threads_each_job_once(
    mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    m = elves()
    keys = tmp_path / "keys"
    with serve(m.appender, m.summer, mycelium=url, threads={"appender": 4}) as serving:
        assert len(serving.workers) == 5
        run = mycelium.submit(m.fanout, str(keys), 300)
        assert run.wait(timeout=30) == sum(range(300))
    assert Counter(int(k) for k in keys.read_text().split()) == Counter(range(300))
    assert {(j.status, j.attempts) for j in mycelium.store.list_jobs(run.id)} == {("succeeded", 1)}
    appenders = {w.id for w in serving.workers if w.elf == "appender"}
    ran_by = {n for key, notes in owners(mycelium, run.id).items() if key != "n2" for n in notes}
    assert ran_by <= appenders and len(ran_by) >= 2, ran_by  # several threads took part
    assert all(f":{os.getpid()}:appender:" in w for w in appenders)  # all in this process


def test_each_thread_knows_which_job_it_is_running(mycelium: Mycelium, url: str) -> None:
    m = elves()
    with serve(m.introspector, mycelium=url, threads=4):
        run = mycelium.submit(m.whoami, 24, 0.02)
        reports = run.wait(timeout=30)
    by_key = {j.key: j.id for j in mycelium.store.list_jobs(run.id)}
    ran = owners(mycelium, run.id)
    for i, (job_id, worker, task_name) in enumerate(reports):
        key = f"n1#{i}"
        assert (job_id, task_name) == (by_key[key], "whoami")
        assert ran[key] == [worker]  # the worker the mycelium says ran it
    assert len({worker for _, worker, _ in reports}) >= 2


def test_serve_checks_its_arguments(url: str) -> None:
    m = elves()
    with pytest.raises(ElfcError, match="at least one elf handle"):
        serve(mycelium=url)
    with pytest.raises(ElfcError, match="elf handles made by named"):
        serve(m.Summer, mycelium=url)
    with pytest.raises(ElfcError, match="not among the served elves"):
        serve(m.summer, mycelium=url, threads={"appender": 2})
    with pytest.raises(ElfcError, match="at least 1"):
        serve(m.summer, mycelium=url, threads=0)


# -- timeouts -------------------------------------------------------------------------------


def test_a_thread_running_python_past_its_timeout_is_stopped_and_serves_on(
    threads: ThreadWorkers, mycelium: Mycelium
) -> None:
    worker = threads.start(elves().sleeper)
    run = mycelium.submit(elves().spins, 5.0, 0.0)
    with pytest.raises(RunFailed) as failed:
        run.wait(timeout=20)
    jobs = {j.key: j for j in mycelium.store.list_jobs(run.id)}
    late = jobs["n1"]
    [f] = failed.value.failures
    assert (f.job, f.error_type) == (late.id, "TimeoutError")
    assert "timeout of 0.5 s" in f.message
    assert late.started is not None and late.finished is not None
    assert late.finished - late.started < 1.0  # stopped at its timeout, without the grace
    assert jobs["n2"].status == "succeeded"
    # The same thread ran both: it was interrupted, not abandoned.
    assert owners(mycelium, run.id) == {"n1": [worker.id], "n2": [worker.id]}
    assert not worker.abandoned.is_set()


def test_a_thread_blocked_in_c_past_its_timeout_is_abandoned_and_its_result_dropped(
    mycelium: Mycelium, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    m = elves()
    with serve(m.sleeper, mycelium=url, grace=0.3) as serving:
        first = serving.workers[0]
        t0 = time.monotonic()
        run = mycelium.submit(m.naps, 2.0, 0.0)
        with pytest.raises(RunFailed) as failed:
            run.wait(timeout=20)
        assert time.monotonic() - t0 < 1.8  # before the 2 s nap returned
        [f] = failed.value.failures
        assert f.error_type == "TimeoutError" and "timeout of 0.5 s" in f.message
        assert "its thread was abandoned here" in f.traceback
        assert "time.sleep(seconds)" in f.traceback  # where it was blocked
        assert first.abandoned.is_set()
        ran = owners(mycelium, run.id)
        assert ran["n1"] == [first.id]
        assert ran["n2"] != [first.id]  # a replacement thread ran the next job
        # The abandoned thread wakes from its nap; nothing it does reaches the mycelium.
        [abandoned] = serving.replicas[0].abandoned
        abandoned.join(10)
        assert not abandoned.is_alive()
        [late] = [j for j in mycelium.store.list_jobs(run.id) if j.key == "n1"]
        full = mycelium.store.get_job(late.id)
        assert full is not None and (full.status, full.result) == ("failed", None)
        assert [e.status for e in full.history] == ["ready", "running", "failed"]
    assert any(
        "abandoned" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


def test_a_job_abandoned_at_its_timeout_is_retried_as_its_task_says(
    mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    m = elves()
    counter = tmp_path / "attempts"
    with serve(m.sleeper, mycelium=url, grace=0.2):
        run = mycelium.submit(m.nap_retried, str(counter), 3.0)
        assert run.wait(timeout=20) == 2  # the second attempt's value
    [retried] = mycelium.store.list_jobs(run.id)
    full = mycelium.store.get_job(retried.id)
    assert full is not None and full.failure is not None
    assert (full.attempts, full.failure.error_type, full.failure.count) == (2, "TimeoutError", 1)
    assert [e.status for e in full.history] == [
        "ready", "running", "ready", "running", "succeeded",
    ]  # fmt: skip


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_stops_a_running_task_in_its_thread_and_the_thread_serves_on(
    mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    m = elves()
    folder = tmp_path / "work"
    folder.mkdir()
    with serve(m.blocker, m.summer, mycelium=url, lease=1.5) as serving:
        worker = serving.workers[0]
        run = mycelium.submit(m.held_then_more, str(folder), 3)
        started = folder / f"started.{os.getpid()}"
        wait_until(started.exists, 20, "the thread to start the first job")
        run.cancel()
        with pytest.raises(RunCancelled):
            run.wait(timeout=5)
        wait_until(lambda: not mycelium.store.list_jobs(run.id, "running"), 10, "the job to stop")
        assert {j.status for j in mycelium.store.list_jobs(run.id)} == {"cancelled"}
        assert started.read_text().splitlines() == ["first"]
        assert not (folder / "ran").exists()  # stopped, not finished
        assert not worker.abandoned.is_set()  # its task returned to Python: interrupted
        (folder / "release").touch()
        again = mycelium.submit(m.blocked, str(folder), "again")
        assert again.wait(timeout=20) == "again"
    assert owners(mycelium, again.id) == {"n1": [worker.id]}


def test_cancel_of_a_task_blocked_in_c_releases_its_job_and_replaces_the_thread(
    mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    m = elves()
    with serve(m.sleeper, mycelium=url, lease=1.5, grace=0.3) as serving:
        first = serving.workers[0]
        run = mycelium.submit(m.dozing, str(tmp_path), 8.0)
        wait_until(lambda: (tmp_path / f"started.{os.getpid()}").exists(), 20, "the doze")
        t0 = time.monotonic()
        run.cancel()
        wait_until(lambda: first.abandoned.is_set(), 10, "the thread to be abandoned")
        [cancelled] = mycelium.store.list_jobs(run.id)
        assert cancelled.status == "cancelled"
        assert time.monotonic() - t0 < 3  # a heartbeat (0.5 s) plus the grace, not 8 s
        wait_until(lambda: serving.workers[0] is not first, 5, "a replacement thread")
        again = mycelium.submit(m.naps, 0.0, 0.0)
        assert again.wait(timeout=20) == [0.0, 0.0]
        ran = {worker for notes in owners(mycelium, again.id).values() for worker in notes}
        assert ran == {serving.workers[0].id}


# -- revisions ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fail", "run"])
def test_threads_of_a_worker_with_other_task_source_refuse_the_job_unless_told(
    mode: str, procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    source = tmp_path / "adder_elf.py"
    source.write_text(ADDER.format(step=1))
    run = mycelium.submit(load_module(str(source)).plus, 1)
    source.write_text(ADDER.format(step=100))  # a behaviour change, after submission
    worker = procs.worker(source, "adder", url, "--threads", "2", "--on-revision-mismatch", mode)
    if mode == "run":
        assert run.wait(timeout=20) == 101
    else:
        with pytest.raises(RunFailed) as failed:
            run.wait(timeout=20)
        [f] = failed.value.failures
        assert f.error_type == "RevisionMismatch" and "--on-revision-mismatch run" in f.message
    assert job(mycelium, run.id, "n1") == ("succeeded" if mode == "run" else "failed", 1)
    assert procs.stop(worker) == 0


# -- processes of threads: killed, signalled ------------------------------------------------


def test_a_killed_process_of_threads_loses_nothing(
    procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    first = procs.worker(ELVES_PATH, "blocker", url, "--threads", "2", "--lease", "1")
    run = mycelium.submit(elves().holds, str(folder), 2)
    started = folder / f"started.{first.pid}"
    wait_until(lambda: started.exists() and len(started.read_text().split()) == 2, 20, "both")

    first.send_signal(signal.SIGKILL)
    assert first.wait(5) == -signal.SIGKILL
    second = procs.worker(ELVES_PATH, "blocker", url, "--threads", "2", "--lease", "1")
    again = folder / f"started.{second.pid}"
    wait_until(lambda: again.exists() and len(again.read_text().split()) == 2, 20, "takeover")
    (folder / "release").touch()

    assert run.wait(timeout=20) == ["job0", "job1"]
    jobs = mycelium.store.list_jobs(run.id)
    assert {(j.status, j.attempts) for j in jobs} == {("succeeded", 2)}
    assert sorted((folder / "ran").read_text().splitlines()) == [
        f"{second.pid} job0", f"{second.pid} job1",
    ]  # fmt: skip
    assert procs.stop(second) == 0


def test_sigterm_lets_each_thread_finish_its_job_a_second_gives_them_back(
    procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    worker = procs.worker(ELVES_PATH, "blocker", url, "--threads", "2", "--lease", "1")
    run = mycelium.submit(elves().holds, str(folder), 2)
    started = folder / f"started.{worker.pid}"
    wait_until(lambda: started.exists() and len(started.read_text().split()) == 2, 20, "both")

    worker.send_signal(signal.SIGTERM)
    time.sleep(2.5)  # more than two leases: the stopping threads keep their jobs
    assert worker.poll() is None, procs.output(worker)
    assert {j.status for j in mycelium.store.list_jobs(run.id)} == {"running"}
    (folder / "release").touch()
    assert worker.wait(10) == 0, procs.output(worker)
    assert run.wait(timeout=10) == ["job0", "job1"]
    assert "2 thread(s) stopped after 2 jobs" in procs.output(worker)

    (folder / "release").unlink()
    second = procs.worker(ELVES_PATH, "blocker", url, "--threads", "2")
    more = mycelium.submit(elves().holds, str(folder), 2)
    started = folder / f"started.{second.pid}"
    wait_until(lambda: started.exists() and len(started.read_text().split()) == 2, 20, "both")
    second.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # let the first signal land: the second means "now"
    second.send_signal(signal.SIGTERM)
    assert second.wait(10) == 0, procs.output(second)
    assert {(j.status, j.attempts) for j in mycelium.store.list_jobs(more.id)} == {("ready", 0)}


def test_run_with_threads_serves_an_elf_from_threads_of_one_process(
    procs: Processes, mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    target = f"{ELVES_PATH}:fanout"
    done = procs.call(
        "run", target, "-a", f"path={keys}", "-a", "n=200", "--threads", "appender=3",
        "--mycelium", url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sum(range(200)))
    appenders = [w for w in mycelium.store.list_workers() if w.elf == "appender"]
    assert len(appenders) == 3 and len({w.pid for w in appenders}) == 1
    bad = procs.call(
        "run", target, "-a", f"path={keys}", "--threads", "appender=0", "--mycelium", url
    )
    assert bad.returncode == 2 and "--threads takes ELF=N with N >= 1" in bad.stderr


# -- threads that die -----------------------------------------------------------------------


@elf
class Fragile:
    """Its constructor raises the first ``failures`` times (counted in a file)."""

    def __init__(self, counter: str, failures: int) -> None:
        with open(counter, "a") as f:
            f.write("x")
        if len(Path(counter).read_text()) <= failures:
            raise RuntimeError("cannot start yet")

    @task
    def double(self, x: int) -> int:
        return 2 * x


def test_a_thread_whose_loop_dies_is_restarted_and_the_death_logged(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    counter = tmp_path / "starts"
    fragile = named(Fragile, "fragile", counter=str(counter), failures=1)
    with serve(fragile, mycelium=url) as serving:
        [replica] = serving.replicas
        wait_until(lambda: counter.exists() and len(counter.read_text()) == 2, 10, "a restart")
        time.sleep(0.5)
        assert replica.restarts == 1 and replica.thread.is_alive()  # serving since
    # The elf's own error, as the cause of the one line a worker that cannot start raises.
    assert [type(e) for e in serving.errors] == [ElfStartFailed]
    assert type(serving.errors[0].__cause__) is RuntimeError
    dead = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert dead and "died" in dead[0].getMessage() and dead[0].exc_info is not None


def test_a_thread_that_keeps_dying_is_given_up_on_and_reported(url: str, tmp_path: Path) -> None:
    counter = tmp_path / "starts"
    fragile = named(Fragile, "fragile", counter=str(counter), failures=100)
    serving = serve(fragile, mycelium=url)
    assert serving.wait(timeout=20) is False  # it gives up rather than ending
    with pytest.raises(ServeError, match="cannot start yet"):
        serving.stop()
    assert len(counter.read_text()) == 4  # the first start and three restarts


def test_stop_waits_for_the_running_task_then_gives_it_back_after_its_grace(
    mycelium: Mycelium, url: str, tmp_path: Path
) -> None:
    m = elves()
    serving = serve(m.blocker, mycelium=url, threads=2)
    run = mycelium.submit(m.holds, str(tmp_path), 2)
    started = tmp_path / f"started.{os.getpid()}"
    wait_until(lambda: started.exists() and len(started.read_text().split()) == 2, 20, "both")
    t0 = time.monotonic()
    serving.stop(grace=0.5)
    assert 0.5 <= time.monotonic() - t0 < 3
    assert all(not r.thread.is_alive() for r in serving.replicas)
    assert not (tmp_path / "ran").exists()  # stopped, not finished
    jobs = mycelium.store.list_jobs(run.id)
    assert {(j.status, j.attempts) for j in jobs} == {("ready", 0)}  # given back whole
    (tmp_path / "release").touch()
    with serve(m.blocker, mycelium=url):
        assert run.wait(timeout=20) == ["job0", "job1"]
