"""Control-flow benchmarks on a SQLite mycelium, in one invocation so ratios are fair.

DYNAMIC FANOUT against FANOUT: the same ``n`` trivial jobs and reduce, once known at
submission and once expanded from a list a task returns; alternating rounds, medians.
EXPANSION: for 10,000 and 100,000 elements, the time from the list's job completing to the
last element job being ready, and the cost per element.
BRANCH: a chain of hops with a branch on each hop's result, against the same chain without
(the branch's cost on the critical path, per hop). HELPER: the same chain with a plain function
called on each hop's result (a call region) before the next hop.

    python benchmarks/control_flow.py [--runs 5] [--fanout 2000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from elfc.mycelium.urls import open_mycelium
from elfc.runtime.client import Mycelium

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import control_elves as ce  # noqa: E402
from runtime import start_worker, stop  # noqa: E402

ELVES = str(HERE / "control_elves.py")


def start(url: str, elf: str, replicas: int = 1) -> subprocess.Popen[bytes]:
    return start_worker(url, elf, replicas, task_output="off", elves=ELVES)


def timed(m: Mycelium, p: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    run = m.submit(p, **kwargs)
    value = run.wait(timeout=600)
    return time.perf_counter() - t0, (value, run.id)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def expansion(m: Mycelium, n: int) -> dict[str, float]:
    """Seconds from the list's job finishing to the last element job becoming ready."""
    seconds, (_, run_id) = timed(m, ce.dynamic_fanout, n=n)
    jobs = {j.key: j for j in m.store.list_jobs(run_id)}
    items = next(j for j in jobs.values() if j.task == "items")
    works = [j for j in jobs.values() if j.task == "work"]
    assert len(works) == n
    ready = []
    for j in works[:: max(1, n // 200)] + works[-1:]:
        full = m.store.get_job(j.id)
        assert full is not None
        ready += [e.time for e in full.history if e.status in ("ready", "pending")][:1]
    assert items.finished is not None
    return {
        "elements": n,
        "producer_to_last_ready_s": round(max(ready) - items.finished, 4),
        "run_s": round(seconds, 3),
        "run_us_per_element": round(seconds / n * 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fanout", type=int, default=2000)
    ap.add_argument("--chain", type=int, default=40)
    ap.add_argument("--big", type=int, nargs="*", default=[10_000, 100_000])
    args = ap.parse_args()
    url = f"sqlite:///{tempfile.mkdtemp(prefix='elfc-cf-')}/bench.db"
    m = Mycelium(open_mycelium(url))
    out: dict[str, Any] = {}

    procs = [start(url, "mapper", 2)]
    timed(m, ce.dynamic_fanout, n=200)  # warm-up: workers up, pipeline compiled there
    static, dynamic = [], []
    for _ in range(args.runs):
        s, (v1, _) = timed(m, ce.static_fanout, n=args.fanout)
        d, (v2, _) = timed(m, ce.dynamic_fanout, n=args.fanout)
        assert v1 == v2 == sum(args.fanout + i for i in range(args.fanout)), (v1, v2)
        static.append((args.fanout + 2) / s)
        dynamic.append((args.fanout + 3) / d)
    out["fanout_jobs_per_s"] = median(static)
    out["dynamic_fanout_jobs_per_s"] = median(dynamic)
    out["dynamic_over_static"] = round(median(dynamic) / median(static), 3)
    out["expansions"] = [expansion(m, n) for n in args.big]
    stop(procs)

    procs = [start(url, "tick"), start(url, "tock")]
    timed(m, ce.branchy_chain, n=4)
    timed(m, ce.helper_chain, n=4)
    plain, branchy, helped = [], [], []
    for _ in range(args.runs):
        p, (v1, _) = timed(m, ce.plain_chain, n=args.chain)
        b, (v2, _) = timed(m, ce.branchy_chain, n=args.chain)
        h, (v3, _) = timed(m, ce.helper_chain, n=args.chain)
        assert v1 == v2 == v3 == args.chain, (v1, v2, v3)
        plain.append(p / args.chain * 1000)
        branchy.append(b / args.chain * 1000)
        helped.append(h / args.chain * 1000)
    stop(procs)
    out["chain_ms_per_hop"] = median(plain)
    out["branchy_chain_ms_per_hop"] = median(branchy)
    out["branch_ms_on_critical_path"] = round(median(branchy) - median(plain), 4)
    out["helper_chain_ms_per_hop"] = median(helped)
    out["helper_ms_on_critical_path"] = round(median(helped) - median(plain), 4)
    print(msgspec.json.format(msgspec.json.encode(out), indent=2).decode())


if __name__ == "__main__":
    main()
