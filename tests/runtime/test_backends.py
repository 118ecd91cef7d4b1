"""The runtime end to end on every mycelium backend: SQLite always, ArangoDB when
``ELFC_ARANGO_URL`` names a server (each test then gets a database of its own, dropped after).

Real worker processes, a killed worker, a failing task, and workers in threads (of this
process through ``elfc.serve``, and of worker processes through ``--threads``, killed too): the
same scenarios as the SQLite-only runtime tests, through ``connect(url)`` on each backend.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from elfc import RunFailed, connect, serve
from elfc.mycelium.urls import open_mycelium
from tests.runtime.fixtures.harness import (
    ELVES_PATH,
    Processes,
    ThreadWorkers,
    elves,
    sqlite_url,
    wait_until,
)

ARANGO_URL = os.environ.get("ELFC_ARANGO_URL", "")


@pytest.fixture(params=["sqlite", "arango"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    if not ARANGO_URL:
        pytest.skip("ELFC_ARANGO_URL is not set: no ArangoDB server to run the runtime against")
    server = request.getfixturevalue("server")
    monkeypatch = request.getfixturevalue("monkeypatch")
    from elfc.mycelium.arango.url import PASSWORD_ENV

    monkeypatch.setenv(PASSWORD_ENV, server.target.password)
    name, database_url = server.database()
    try:
        yield database_url
    finally:
        server.drop(name)


if ARANGO_URL:
    from tests.mycelium.test_arango import server  # noqa: F401  (the fixture, for the above)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path) as p:
        yield p


def test_fanout_through_worker_processes(url: str, tmp_path: Path, procs: Processes) -> None:
    module = elves()
    log = tmp_path / "keys.log"
    run = connect(url).submit(module.fanout, str(log), n=200)
    procs.worker(ELVES_PATH, "appender", url, "--replicas", "2")
    procs.worker(ELVES_PATH, "summer", url)
    assert run.wait(timeout=120) == sum(range(200))
    keys = log.read_text().split()
    assert sorted(map(int, keys)) == list(range(200))  # each job ran exactly once


def test_a_killed_worker_loses_nothing(url: str, tmp_path: Path, procs: Processes) -> None:
    module = elves()
    run = connect(url).submit(module.blocked, str(tmp_path), tag="survived")
    first = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    wait_until(lambda: list(tmp_path.glob("started.*")), 60, "the first worker to start the job")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    wait_until(lambda: len(list(tmp_path.glob("started.*"))) == 2, 60, "the second worker")
    (tmp_path / "release").write_text("")
    assert run.wait(timeout=60) == "survived"
    with open_mycelium(url) as store:
        (job,) = store.list_jobs(run.id)
        assert job.status == "succeeded" and job.attempts == 2
        assert store.results(run.id, [job.key]) == {job.key: b'"survived"'}


def test_a_failing_task_fails_the_run_with_its_traceback(url: str) -> None:
    module = elves()
    run = connect(url).submit(module.failing, x=7)
    with ThreadWorkers(url) as workers:
        workers.start(module.broken)
        workers.start(module.summer)
        with pytest.raises(RunFailed) as failed:
            run.wait(timeout=60)
    (failure,) = failed.value.failures
    assert failure.task == "explode" and "Traceback" in failure.traceback
    with open_mycelium(url) as store:
        statuses = sorted(j.status for j in store.list_jobs(run.id))
        assert statuses == ["failed", "skipped"]
        assert any(f.task == "explode" for f in store.list_failures())


# -- the same, with elves served as threads --------------------------------------------------


def test_fanout_through_threads_of_one_worker_process(
    url: str, tmp_path: Path, procs: Processes
) -> None:
    module = elves()
    log = tmp_path / "keys.log"
    run = connect(url).submit(module.fanout, str(log), n=200)
    procs.worker(ELVES_PATH, "appender", url, "--threads", "4")
    procs.worker(ELVES_PATH, "summer", url, "--threads", "1")
    assert run.wait(timeout=120) == sum(range(200))
    assert sorted(map(int, log.read_text().split())) == list(range(200))


def test_a_killed_process_of_threads_loses_nothing(
    url: str, tmp_path: Path, procs: Processes
) -> None:
    module = elves()
    run = connect(url).submit(module.blocked, str(tmp_path), tag="survived")
    first = procs.worker(ELVES_PATH, "blocker", url, "--threads", "2", "--lease", "1")
    wait_until(lambda: list(tmp_path.glob("started.*")), 60, "a thread to start the job")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    procs.worker(ELVES_PATH, "blocker", url, "--threads", "2", "--lease", "1")
    wait_until(lambda: len(list(tmp_path.glob("started.*"))) == 2, 60, "the second process")
    (tmp_path / "release").write_text("")
    assert run.wait(timeout=60) == "survived"
    with open_mycelium(url) as store:
        (job,) = store.list_jobs(run.id)
        assert job.status == "succeeded" and job.attempts == 2


def test_timeouts_and_cancel_stop_tasks_in_threads(url: str, tmp_path: Path) -> None:
    module = elves()
    mycelium = connect(url)
    with serve(module.sleeper, module.blocker, mycelium=url, lease=1.5, grace=0.3):
        timed = mycelium.submit(module.spins, 5.0, 0.0)
        with pytest.raises(RunFailed) as failed:
            timed.wait(timeout=20)
        assert [f.error_type for f in failed.value.failures] == ["TimeoutError"]
        held = mycelium.submit(module.blocked, str(tmp_path))
        wait_until(lambda: list(tmp_path.glob("started.*")), 20, "the held job to start")
        held.cancel()
        wait_until(lambda: not mycelium.store.list_jobs(held.id, "running"), 10, "it to stop")
        assert [j.status for j in mycelium.store.list_jobs(held.id)] == ["cancelled"]
        assert not (tmp_path / "ran").exists()
    mycelium.close()
