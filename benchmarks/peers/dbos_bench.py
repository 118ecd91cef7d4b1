"""DBOS Transact on the benchmark's PostgreSQL server (its system database): 2 worker
processes, each a DBOS application (unique ``executor_id``) serving one queue with LISTEN/NOTIFY
on (``use_listen_notify``) and the queue (``DBOS.register_queue``) polled every 10 ms (``polling_interval_sec``; the
default, 1 s, would dominate every figure); the client enqueues with ``DBOSClient``. Results
are awaited with ``get_result(polling_interval_sec=0.01)`` (default 1 s) in the client and in
the fan-out workflow.

FANOUT is DBOS's documented fan-out: a workflow that enqueues ``n`` steps on the queue (any
process runs them) and returns the sum of their results. CHAIN is a workflow of ``n``
steps, each checkpointed before the next starts: DBOS's unit of durable sequential work.
It runs in the process that runs the workflow, so its hops do not cross processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import Figures, Sizes, measure_all, stopping, temp_dir, wait_for
from dbos import DBOS, DBOSClient
from pg_common import fresh_database

URL_ENV = "PG_PEERS_DBOS_DB"
READY_ENV = "PG_PEERS_DBOS_READY"
QUEUE = "bench"
POLL = 0.01


@DBOS.step()
def work(seed: int, i: int) -> int:
    return seed + i


@DBOS.workflow()
def fanout(n: int) -> int:
    handles = [DBOS.enqueue_workflow(QUEUE, work, n, i) for i in range(n)]
    return sum(h.get_result(polling_interval_sec=POLL) for h in handles)


@DBOS.step()
def step(x: int) -> int:
    return x + 1


@DBOS.workflow()
def chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = step(x)
    return x


def serve() -> None:
    """A worker process: ``python -c 'import dbos_bench as b; b.serve()'``."""
    DBOS(
        config={
            "name": "pgpeers",
            "system_database_url": os.environ[URL_ENV],
            "executor_id": uuid.uuid4().hex,
            "use_listen_notify": True,
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    DBOS.register_queue(QUEUE, polling_interval_sec=POLL)
    Path(os.environ[READY_ENV]).touch()
    while True:
        time.sleep(3600)


def _start_worker(url: str, ready: Path) -> subprocess.Popen[bytes]:
    """A worker, started once the one before it (which migrates the schema) is serving."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import dbos_bench as b; b.serve()"],
        env={**os.environ, URL_ENV: url, READY_ENV: str(ready)},
        stdin=subprocess.DEVNULL,
    )
    wait_for(lambda: ready.exists() or proc.poll() is not None, "a DBOS worker", 60)
    return proc


def _sqlalchemy(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def run_round(sizes: Sizes) -> dict[str, Figures]:
    with fresh_database("dbos") as url, temp_dir("peers-dbos-") as tmp:
        launched = time.perf_counter()
        workers: list[subprocess.Popen[bytes]] = []
        with stopping(workers):
            workers.append(_start_worker(url, tmp / "one"))
            workers.append(_start_worker(url, tmp / "two"))
            client = DBOSClient(system_database_url=url, use_listen_notify=True)

            def run(name: str, n: int) -> int:
                options = {"queue_name": QUEUE, "workflow_name": name}
                handle = client.enqueue(options, n)  # type: ignore[arg-type]
                return int(handle.get_result(polling_interval_sec=POLL))

            figures = measure_all(
                lambda n: run("fanout", n), lambda n: run("chain", n), sizes, launched
            )
            client.destroy()
    return {"dbos": figures}
