"""What workers and the supervisor log (stdlib ``logging``, records only: the library never
prints and never configures a handler; the command line does)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from elfc import RunFailed
from elfc.runtime.client import Mycelium
from elfc.runtime.supervisor import Supervisor, WorkerCommand, WorkerProcess, spawn_worker
from elfc.targets import load_module
from tests.runtime.fixtures.harness import ThreadWorkers, elves

WORKER = "elfc.runtime.worker"
SUPERVISOR = "elfc.runtime.supervisor"


def logged(caplog: pytest.LogCaptureFixture, name: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == name]


def test_a_worker_at_debug_level_logs_each_claim_and_success(
    caplog: pytest.LogCaptureFixture, threads: ThreadWorkers, mycelium: Mycelium
) -> None:
    m = elves()
    with caplog.at_level(logging.DEBUG, logger=WORKER):
        worker = threads.start(m.summer)
        run = mycelium.submit(m.signs, [3, -1])
        assert run.wait(timeout=20) == [True, False]
        threads.stop_all()
    [job] = mycelium.store.list_jobs(run.id)
    records = logged(caplog, WORKER)
    assert (logging.DEBUG, f"claimed {job.id}") in records
    assert (logging.DEBUG, f"job {job.id} (summer.positive) succeeded") in records
    [started] = [text for level, text in records if "serving elf" in text]
    assert started.startswith(f"worker {worker.id} serving elf 'summer'")
    assert (logging.INFO, f"worker {worker.id} stopped after 1 jobs") in records


def test_at_the_default_level_a_successful_run_logs_nothing(
    caplog: pytest.LogCaptureFixture, threads: ThreadWorkers, mycelium: Mycelium
) -> None:
    m = elves()
    with caplog.at_level(logging.WARNING, logger="elfc"):
        threads.start(m.summer)
        assert mycelium.submit(m.signs, [1]).wait(timeout=20) == [True]
        threads.stop_all()
    assert [r for r in caplog.records if r.name.startswith("elfc")] == []


def test_failures_and_retries_are_logged_at_info(
    caplog: pytest.LogCaptureFixture, threads: ThreadWorkers, mycelium: Mycelium, tmp_path: Path
) -> None:
    m = elves()
    with caplog.at_level(logging.INFO, logger=WORKER):
        for handle in (m.flaky, m.summer, m.broken):
            threads.start(handle)
        assert mycelium.submit(m.retried, str(tmp_path / "counter"), 1).wait(timeout=20) == 2
        with pytest.raises(RunFailed):
            mycelium.submit(m.failing, 7).wait(timeout=20)
        threads.stop_all()
    texts = [text for level, text in logged(caplog, WORKER) if level == logging.INFO]
    assert any(
        "(flaky.attempt) raised RuntimeError: failing on purpose, 1 times; attempt 2 in" in t
        for t in texts
    )
    assert any(t.endswith("(broken.explode) failed: ValueError: cannot handle 7") for t in texts)


ADDER = """
from elfc import elf, named, pipeline, task


@elf
class Adder:
    @task
    def add(self, x: int) -> int:
        return x + {step}


adder = named(Adder, "adder")


@pipeline
def pluses(xs: list[int]) -> list[int]:
    return [adder.add(x) for x in xs]
"""


def test_a_revision_mismatch_is_one_warning_however_many_jobs_it_refuses(
    caplog: pytest.LogCaptureFixture, threads: ThreadWorkers, mycelium: Mycelium, tmp_path: Path
) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1" / "adder_logged.py").write_text(ADDER.format(step=1))
    (tmp_path / "v2" / "adder_logged.py").write_text(ADDER.format(step=100))
    submitted = load_module(str(tmp_path / "v1" / "adder_logged.py"))
    run = mycelium.submit(submitted.pluses, [1, 2, 3])
    changed = load_module(str(tmp_path / "v2" / "adder_logged.py"))
    with caplog.at_level(logging.DEBUG, logger=WORKER):
        threads.start(changed.adder)
        with pytest.raises(RunFailed):
            run.wait(timeout=20)
        threads.stop_all()
    refusals = [(lv, t) for lv, t in logged(caplog, WORKER) if t.startswith("refusing job")]
    assert [lv for lv, _ in refusals] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "adder.add revision" in refusals[0][1]


def test_the_supervisor_logs_restarting_and_reaping_its_workers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quits = WorkerCommand("quitter", (sys.executable, "-c", "pass"))
    waits = WorkerCommand("waiter", (sys.executable, "-c", "import time; time.sleep(60)"))
    supervisor = Supervisor(module="unused.py", url="sqlite:///unused.db")
    with caplog.at_level(logging.DEBUG, logger=SUPERVISOR):
        for command in (quits, waits):
            proc = spawn_worker(command, stdin=subprocess.DEVNULL)
            supervisor.workers.append(WorkerProcess(command, proc))
        supervisor.workers[0].proc.wait(20)
        assert supervisor.check() == ["worker for 'quitter' exited with 0; restarting"]
        time.sleep(0.15)  # the first restart's backoff is 0.1 s
        assert supervisor.check() == []
        supervisor.workers[0].proc.wait(20)
        supervisor.stop(grace=10)
    texts = [text for _, text in logged(caplog, SUPERVISOR)]
    assert sum("started worker process" in t for t in texts) == 3
    assert any("for elf 'quitter' exited with 0; restarting it in 0.1 s" in t for t in texts)
    assert "stopping 1 worker process(es)" in texts
    assert any(t.endswith("for elf 'waiter' exited with -15") for t in texts)
