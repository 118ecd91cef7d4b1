"""Procrastinate on the benchmark's PostgreSQL server: async tasks, 2 worker processes
(``App.run_worker(concurrency=10)``: async jobs overlap their database waits; 1 measured
about half the jobs/s), LISTEN/NOTIFY on (its default), jobs deferred by the client through
a sync connection.

Procrastinate keeps no task results, so FANOUT is ``n`` independent ``work(seed, i)`` jobs
deferred in one ``batch_defer``, finished when every one of them is ``succeeded``; the value
checked is ``sum(seed + i)`` over the succeeded jobs' stored arguments. CHAIN is a job that
defers the next hop from inside the task (``defer_async``), finished when the last hop has
succeeded; its value is the last hop's ``x + 1``. The client polls ``procrastinate_jobs``
every millisecond (Procrastinate has no way to wait for a job).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import procrastinate
from common import Figures, Sizes, measure_all, stopping
from pg_common import fresh_database

URL_ENV = "PG_PEERS_PROCRASTINATE_DB"
CONCURRENCY = int(os.environ.get("PG_PEERS_PROCRASTINATE_CONCURRENCY", "10"))
TIMEOUT = 300.0

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get(URL_ENV, ""))
)


@app.task(name="work", queue="bench")
async def work(seed: int, i: int) -> int:
    return seed + i


@app.task(name="step", queue="bench")
async def step(x: int, left: int, tag: str) -> None:
    if left > 1:
        await step.defer_async(x=x + 1, left=left - 1, tag=tag)


def serve() -> None:
    """A worker process: ``python -c 'import procrastinate_bench as b; b.serve()'``."""
    app.run_worker(queues=["bench"], concurrency=CONCURRENCY, wait=True)


def _start_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "import procrastinate_bench as b; b.serve()"],
        env={**os.environ, URL_ENV: url},
        stdin=subprocess.DEVNULL,
    )


def _poll(con: object, sql: str, params: tuple[object, ...]) -> tuple[object, ...]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        row = con.execute(sql, params).fetchone()  # type: ignore[attr-defined]
        if row is not None and row[0]:
            return tuple(row)
        if time.monotonic() > deadline:
            raise TimeoutError("procrastinate jobs did not finish")
        time.sleep(0.001)


def run_round(sizes: Sizes) -> dict[str, Figures]:
    import psycopg

    with fresh_database("procrastinate") as url:
        connector = procrastinate.PsycopgConnector(conninfo=url)
        with app.replace_connector(connector), app.open():
            app.schema_manager.apply_schema()
        with (
            app.replace_connector(procrastinate.PsycopgConnector(conninfo=url)),
            app.open(),
            psycopg.connect(url, autocommit=True) as con,
        ):

            def run_fanout(n: int) -> int:
                ids = work.batch_defer(*({"seed": n, "i": i} for i in range(n)))
                lo, hi = min(ids), max(ids)
                _poll(
                    con,
                    "SELECT count(*) FILTER (WHERE status = 'succeeded') = %s FROM "
                    "procrastinate_jobs WHERE id BETWEEN %s AND %s",
                    (n, lo, hi),
                )
                failed = con.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE id BETWEEN %s AND %s "
                    "AND status <> 'succeeded'",
                    (lo, hi),
                ).fetchone()
                assert failed == (0,), failed
                [(total,)] = con.execute(
                    "SELECT sum((args->>'seed')::bigint + (args->>'i')::bigint) "
                    "FROM procrastinate_jobs WHERE id BETWEEN %s AND %s",
                    (lo, hi),
                ).fetchall()
                return int(total)

            def run_chain(n: int) -> int:
                tag = uuid.uuid4().hex
                step.defer(x=0, left=n, tag=tag)
                (_, x) = _poll(
                    con,
                    "SELECT true, (args->>'x')::bigint FROM procrastinate_jobs "
                    "WHERE task_name = 'step' AND args->>'tag' = %s AND status = 'succeeded' "
                    "AND (args->>'left')::int = 1",
                    (tag,),
                )
                return int(x) + 1  # type: ignore[call-overload]

            launched = time.perf_counter()
            with stopping([_start_worker(url), _start_worker(url)]):
                figures = measure_all(run_fanout, run_chain, sizes, launched)
    return {"procrastinate": figures}
