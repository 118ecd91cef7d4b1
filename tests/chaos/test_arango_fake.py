"""Two scenarios of the chaos suite on the ArangoDB backend without an ArangoDB server: real
``elfc`` processes (``elfc run``, ``elfc worker``) against the loopback fake server, whose
:class:`JobTable` serves every statement they run. A job that kills every worker is failed
with ``WorkerLost`` after ``MAX_LOST_LEASES`` deaths; damaged job documents are failed by the
claims that take them while the workers live on and finish the rest. (With
``ELFC_ARANGO_URL`` set, ``test_chaos.py`` runs its scenarios against a real server too.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from elfc import connect
from elfc.mycelium.common import MAX_LOST_LEASES
from tests.mycelium.fake_arango import FakeArango, JobTable
from tests.runtime.fixtures.harness import Processes

from .test_chaos import CHAOS, LEASE, chaos, report

pytestmark = pytest.mark.chaos
pytest.importorskip("arango", reason="python-arango is not installed")


@pytest.fixture
def served() -> Iterator[tuple[str, JobTable]]:
    """The fake server's URL and the table of documents it serves."""
    with FakeArango() as fake:
        table = JobTable()
        table.serve(fake)
        yield fake.url(), table


def test_a_job_that_kills_every_worker_fails_after_max_lost_leases_on_arango(
    procs: Processes, served: tuple[str, JobTable], tmp_path: Path
) -> None:
    url, table = served
    log = tmp_path / "crash.log"
    started = time.monotonic()
    result = procs.call(
        *("run", f"{CHAOS}:crashing", "--mycelium", url, "-a", f"log={log}"),
        env={"ELFC_LEASE": "0.5"},
        timeout=90,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    [lost] = [line for line in result.stderr.splitlines() if "raised WorkerLost" in line]
    assert f"stopped {MAX_LOST_LEASES} times" in lost
    pid = lost.rsplit(" the last was ", 1)[1].split(":")[1]
    assert f"    worker process {pid} was killed by SIGKILL" in result.stderr, result.stderr
    crashes = [line for line in log.read_text().splitlines() if line.startswith("crash")]
    assert len(crashes) == MAX_LOST_LEASES
    by_task = {j["task"]: j for j in table.jobs.values()}
    assert by_task["crash"]["status"] == "failed" and by_task["fine"]["status"] == "succeeded"
    assert by_task["crash"]["attempts"] == MAX_LOST_LEASES
    (run,) = table.runs.values()
    assert run["status"] == "failed"
    assert seconds < 60
    report("crash loop (arango, fake server)", deaths=len(crashes), seconds=round(seconds, 1))


def test_damaged_job_documents_are_failed_and_never_block_the_queue_on_arango(
    procs: Processes, served: tuple[str, JobTable], tmp_path: Path
) -> None:
    url, table = served
    module = chaos()
    mycelium = connect(url)
    log = tmp_path / "fan.log"
    run = mycelium.submit(module.fan, str(log), 20, 2, 0.0)
    squares = sorted(
        (j for j in table.jobs.values() if j["task"] == "square"), key=lambda j: j["seq"]
    )
    hostile = {
        squares[0]["key"]: "not JSON at all",
        squares[1]["key"]: "[" * 5000 + "]" * 5000,
        squares[2]["key"]: '{"an": "object, not an array"}',
        squares[3]["key"]: json.dumps([str(log), {"bin": ["**", 10, 50000000]}, 0.0]),
    }
    for doc in squares[:4]:
        doc["args"] = hostile[doc["key"]]
    started = time.monotonic()
    squarer = procs.worker(CHAOS, "squarer", url, "--lease", LEASE)
    adder = procs.worker(CHAOS, "adder", url, "--lease", LEASE)
    assert mycelium.store.wait_for_run(run.id, 30) == "failed"
    seconds = time.monotonic() - started
    jobs = {j.key: j for j in mycelium.store.list_jobs(run.id)}
    types = {}
    for key in hostile:
        got = mycelium.store.get_job(jobs[key].id)
        assert got is not None and got.status == "failed" and got.failure is not None
        types[key] = got.failure.error_type
    assert sorted(types.values()) == ["ExpressionError"] + ["UndecodableJob"] * 3
    done = [j for j in jobs.values() if j.task == "square" and j.status == "succeeded"]
    assert len(done) == len(squares) - len(hostile)
    assert squarer.poll() is None and adder.poll() is None  # the workers live on
    again = mycelium.submit(module.fan, str(log), 10, 2, 0.0)
    assert again.wait(timeout=20) == sum(i * i for i in range(10))
    assert seconds < 15
    mycelium.close()
    report("poison documents (arango, fake server)", rows=len(hostile), seconds=round(seconds, 1))
