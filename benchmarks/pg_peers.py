"""elfc's PostgreSQL mycelium side by side with Procrastinate and DBOS, on one server.

    python benchmarks/pg_peers.py              # 5 rounds; writes benchmarks/results/
    python benchmarks/pg_peers.py --quick      # 2 rounds, small sizes, writes nothing
    python benchmarks/pg_peers.py --only elfc_pg,dbos

The script starts one throw-away PostgreSQL server (``tests/mycelium/pg_cluster.py``: initdb
into a temporary folder, 127.0.0.1, fsync on) and gives every system a fresh database of it
per round. Workloads, rounds, children and the table are those of ``peers.py`` (FANOUT:
jobs/s end to end; CHAIN: ms per dependent hop), each system with 2 worker processes; see
benchmarks/README.md for what each configuration is.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import peers  # noqa: E402

SYSTEMS = ("elfc_pg", "procrastinate", "dbos")
ROWS = {"elfc_pg": ["elfc"], "procrastinate": ["procrastinate"], "dbos": ["dbos"]}
SETUP = {
    "elfc": "PostgreSQL mycelium; FANOUT: 1 worker with 2 replicas; CHAIN: ping and pong "
    "workers, hops alternate",
    "procrastinate": "async tasks, 2 worker processes (run_worker, concurrency 10, "
    "LISTEN/NOTIFY); FANOUT: n jobs in one batch_defer; CHAIN: each job defers the next; "
    "client polls procrastinate_jobs every 1 ms",
    "dbos": "2 DBOS processes on one queue (use_listen_notify, polling_interval_sec=0.01); "
    "FANOUT: a workflow enqueuing n steps; CHAIN: one workflow of n steps",
}
PACKAGES = ("elfc", "psycopg", "procrastinate", "dbos", "sqlalchemy")


def server_version(cluster: object) -> str:
    [(version,)] = cluster.sql("SHOW server_version")  # type: ignore[attr-defined]
    return str(version)


def main() -> None:
    args = peers.parse()
    if args.child:
        peers.child(args.child, json.loads(args.child_sizes), args.child_out)
        return
    from tests.mycelium.pg_cluster import cluster

    peers.ROWS.update(ROWS)
    systems = args.only.split(",") if args.only else list(SYSTEMS)
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        sys.exit(f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SYSTEMS)}")
    args.only = None
    plan = peers.make_plan(args)
    plan = peers.Plan(plan.runs, plan.sizes, [s for s in SYSTEMS if s in systems], plan.timeout)
    with cluster(durable=True) as pg:
        os.environ["PGPASSWORD"] = pg.password
        os.environ["PG_PEERS_URL"] = pg.url("postgres")
        version = server_version(pg)
        started = datetime.datetime.now().astimezone()
        load_before = peers.load()
        t0 = time.monotonic()
        rows = peers.run_all(plan)
        elapsed = time.monotonic() - t0
    summaries = {label: peers.summarize(row) for label, row in rows.items()}
    text = peers.table(rows, summaries, plan.runs)
    m = peers.machine()
    print(f"\n{m['cpu_model']}, {m['nproc']} CPUs, {m['mem_total_gib']} GiB; PostgreSQL "
          f"{version}; {plan.runs} rounds in {elapsed:.0f} s\n")  # fmt: skip
    print(text)
    if args.no_write or (args.quick and not args.write):
        return
    stem = f"{started:%Y-%m-%d}-postgres-{peers.machine_slug(m)}"
    args.results.mkdir(parents=True, exist_ok=True)
    found = {**peers.versions(PACKAGES), "postgresql": version}
    record = peers.run_record(plan, rows, started, load_before, elapsed, found, SETUP)
    (args.results / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    md = f"# {stem}\n\n{m['cpu_model']}, {m['nproc']} CPUs; PostgreSQL {version}.\n\n{text}\n"
    (args.results / f"{stem}.md").write_text(md)
    print(f"\nwrote {args.results / stem}.{{json,md}}")


if __name__ == "__main__":
    main()
