"""The floor under elfc's SQLite runtime: what the machine allows before any orchestration.

    python benchmarks/floor.py [--runs 5] [--hops 2000] [--jobs 20000] [--json out.json]

HOP: two processes take turns, as CHAIN's two elves do. Each turn is one durable
cross-process hop with nothing else in it: a write transaction on a SQLite file in WAL mode at
``synchronous=NORMAL`` (the settings elfc keeps), committed, then an empty datagram on the
other process's unix socket, which wakes from ``poll`` and reads the row. ms per hop.

PAIRS: one process claims jobs in batches of 32 from a table of queued jobs (one ``UPDATE ...
RETURNING`` statement) and completes them (status and a result row each), one transaction per
batch, the claim of the next batch in the same transaction as the completion of the last, as
elfc's ``exchange`` does. Claim+complete pairs per second: what FANOUT could reach on one core
with no task, no decoding and no Python object per job.

Both use only the standard library: they measure SQLite, the kernel and the interpreter, which
elfc cannot go below. Every figure is the median of ``--runs`` runs, with min and max.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA busy_timeout=5000")
    return con


def _side(path: Path, me: str, other: str, hops: int, first: bool) -> None:
    """One process of HOP: wait for the other's ring, read its row, write the next, ring."""
    con = _connect(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(me)
    sock.setblocking(False)
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # Both sockets exist before the first ring: wait for the other's.
    while not os.path.exists(other):
        time.sleep(0.001)
    value = 0
    turn = first
    while value < hops:
        if not turn:
            poll.poll(5000)
            while True:
                try:
                    sock.recv(16)
                except BlockingIOError:
                    break
            (value,) = con.execute("SELECT max(v) FROM hops").fetchone()
            if value >= hops:
                break
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO hops (v) VALUES (?)", (value + 1,))
        con.execute("COMMIT")
        value += 1
        out.sendto(b"", other)
        turn = False
    sock.close()
    os.unlink(me)


def hop(hops: int) -> float:
    """ms per hop between two processes (see the module)."""
    folder = Path(tempfile.mkdtemp(prefix="elfc-floor-"))
    path = folder / "hop.db"
    con = _connect(path)
    con.execute("CREATE TABLE hops (v INTEGER PRIMARY KEY)")
    con.execute("INSERT INTO hops (v) VALUES (0)")
    con.close()
    a, b = str(folder / "a.sock"), str(folder / "b.sock")
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            _side(path, b, a, hops, first=False)
        finally:
            os._exit(0)
    _side(path, a, b, hops, first=True)
    os.waitpid(pid, 0)
    seconds = time.perf_counter() - t0
    check = _connect(path).execute("SELECT max(v) FROM hops").fetchone()[0]
    assert check == hops, check
    return seconds / hops * 1000


def pairs(jobs: int, batch: int = 32) -> float:
    """Claim+complete pairs per second in one process (see the module)."""
    folder = Path(tempfile.mkdtemp(prefix="elfc-floor-"))
    con = _connect(folder / "pairs.db")
    con.executescript(
        """
        CREATE TABLE jobs (no INTEGER PRIMARY KEY, elf TEXT NOT NULL, status TEXT NOT NULL,
                           worker TEXT, lease REAL, args BLOB);
        CREATE INDEX jobs_ready ON jobs (elf, no) WHERE status = 'ready';
        CREATE TABLE results (job INTEGER PRIMARY KEY, value BLOB NOT NULL);
        """
    )
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO jobs (elf, status, args) VALUES ('bench', 'ready', ?)",
        ((f"[{i}]".encode(),) for i in range(jobs)),
    )
    con.execute("COMMIT")
    claim = (
        "UPDATE jobs SET status = 'running', worker = 'w', lease = ?"
        " WHERE no IN (SELECT no FROM jobs WHERE elf = 'bench' AND status = 'ready'"
        " ORDER BY no LIMIT ?) RETURNING no, args"
    )
    t0 = time.perf_counter()
    done: list[tuple[int, bytes]] = []
    finished = 0
    while True:
        con.execute("BEGIN IMMEDIATE")
        now = time.time()
        for no, value in done:
            con.execute(
                "UPDATE jobs SET status = 'succeeded', lease = NULL WHERE no = ? AND worker = 'w'",
                (no,),
            )
            con.execute("INSERT INTO results (job, value) VALUES (?, ?)", (no, value))
        finished += len(done)
        claimed = con.execute(claim, (now + 30, batch)).fetchall()
        con.execute("COMMIT")
        if not claimed:
            break
        done = [(no, args) for no, args in claimed]
    seconds = time.perf_counter() - t0
    assert finished == jobs, finished
    return jobs / seconds


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--hops", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    hop(200)  # warm-up
    out: dict[str, Any] = {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "hop_ms": summary([hop(args.hops) for _ in range(args.runs)]),
        "pairs_per_s": summary([pairs(args.jobs) for _ in range(args.runs)]),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
