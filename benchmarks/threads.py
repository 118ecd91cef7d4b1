"""Threads against processes for an I/O-bound elf, side by side in one run.

    python benchmarks/threads.py [--rounds 3] [--n 800] [--json out.json]

IO-FANOUT: ``n`` independent jobs that each sleep 10 ms (standing for a network call) and one
sum over them, on a SQLite mycelium. The ``fetcher`` elf is served by

- 16 threads of one worker process (``elfc worker --elf fetcher --threads 16``),
- 16 worker processes (16 x ``elfc worker --elf fetcher``),
- 2 worker processes,
- and, for the marginal cost of a thread, 1 thread of one process (``--threads 1``);

the ``collector`` elf (the sum) by one more process, not counted. Throughput is jobs/s from
submission to the checked result, the median of ``--rounds`` rounds after a warm-up run.
Memory is that of the fetcher's processes after the rounds: RSS summed (each process counts
the pages it shares with the others, like the Python binary), and PSS summed (shared pages
split between their users: what the processes cost the machine together).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from io_elves import io_fanout  # noqa: E402

from elfc.runtime.client import connect  # noqa: E402

ELVES = str(HERE / "io_elves.py")

SETUPS: list[tuple[str, int, int]] = [
    ("16 threads, 1 process", 1, 16),
    ("16 processes", 16, 0),
    ("2 processes", 2, 0),
    ("1 thread, 1 process", 1, 1),
]
"""(name, worker processes, threads per process; 0: the main thread, no --threads)."""


def worker(url: str, elf: str, threads: int) -> subprocess.Popen[bytes]:
    extra = ["--threads", str(threads)] if threads else []
    return subprocess.Popen(
        [sys.executable, "-m", "elfc", "worker", ELVES, "--elf", elf, "--mycelium", url, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def kib(pid: int, path: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


def measure(name: str, processes: int, threads: int, n: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/m.db"
        m = connect(url)
        replicas = processes * max(threads, 1)
        procs = [worker(url, "fetcher", threads) for _ in range(processes)]
        helper = worker(url, "collector", 0)
        try:
            deadline = time.monotonic() + 60
            while len(m.store.list_workers()) < replicas + 1:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: the workers did not start")
                time.sleep(0.05)
            assert m.submit(io_fanout, 2 * replicas, 10.0).wait(timeout=120) == sum(
                range(2 * replicas)
            )  # warm-up: every replica has built its elf and served
            seconds = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                value = m.submit(io_fanout, n, 10.0).wait(timeout=600)
                seconds.append(time.perf_counter() - t0)
                assert value == sum(range(n)), value
            rss = sum(kib(p.pid, "status", "VmRSS:") for p in procs)
            pss = sum(kib(p.pid, "smaps_rollup", "Pss:") for p in procs)
        finally:
            for p in [*procs, helper]:
                p.terminate()
            for p in [*procs, helper]:
                p.wait(30)
            m.close()
    median = statistics.median(seconds)
    return {
        "setup": name,
        "processes": processes,
        "replicas": replicas,
        "jobs_per_s": (n + 1) / median,
        "jobs_per_s_min": (n + 1) / max(seconds),
        "jobs_per_s_max": (n + 1) / min(seconds),
        "ideal_jobs_per_s": replicas / 0.010,
        "rss_mib": rss / 1024,
        "pss_mib": pss / 1024,
        "seconds": seconds,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| setup | replicas | IO-FANOUT jobs/s (min-max) | ideal | RSS MiB | PSS MiB "
        "| PSS MiB per replica |\n|---|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['setup']} | {r['replicas']} | {r['jobs_per_s']:,.0f} "
            f"({r['jobs_per_s_min']:,.0f}-{r['jobs_per_s_max']:,.0f}) "
            f"| {r['ideal_jobs_per_s']:,.0f} | {r['rss_mib']:.1f} | {r['pss_mib']:.1f} "
            f"| {r['pss_mib'] / r['replicas']:.1f} |"
        )
    by = {r["setup"]: r for r in rows}
    one, sixteen = by["1 thread, 1 process"], by["16 threads, 1 process"]
    per_thread = (sixteen["pss_mib"] - one["pss_mib"]) / 15
    per_process = by["16 processes"]["pss_mib"] / 16
    lines.append(
        f"\nEach thread beyond the first adds {per_thread:.2f} MiB (PSS, 16 threads vs 1); "
        f"each worker process costs {per_process:.1f} MiB (PSS, 16 processes / 16)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=800, help="fetch jobs per run (800)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = [measure(name, p, t, args.n, args.rounds) for name, p, t in SETUPS]
    print(table(rows))
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    if args.json:
        meta = {
            "python": platform.python_version(), "machine": platform.machine(), "n": args.n,
            "cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg(),
        }  # fmt: skip
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
