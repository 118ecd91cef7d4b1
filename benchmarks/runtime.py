"""Runtime benchmarks on a mycelium: FANOUT, CHAIN, submission and idle cost.

    python benchmarks/runtime.py [--runs 5] [--json out.json] [--mycelium URL] [--only-capture]

The mycelium is a new SQLite file unless ``--mycelium`` names an empty one, e.g.
``--mycelium postgresql://elfc@127.0.0.1:5432/bench`` (password in ``$PGPASSWORD``).

FANOUT: 1 source job, N trivial jobs reading it, 1 reduce reading all of them, over 2 worker
processes (one elf instance, 2 replicas): jobs/s end to end, submission included.
CAPTURE: FANOUT with the workers' task output capture off and on, with no output and with a
line printed per job (on: stored per job; off: written to the worker's stderr, /dev/null):
jobs/s and the workers' CPU time per job, the four modes interleaved run by run.
CHAIN: N dependent jobs alternating between two elves (every hop crosses processes): ms/hop.
SUBMIT: time to write a 10,000-job run. IDLE: CPU of an idle worker over 10 s.
Every figure is the median of --runs runs after a warm-up, with min and max.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_elves import chain, fanout, fanout_loud  # noqa: E402

from elfc.mycelium.urls import open_mycelium  # noqa: E402
from elfc.runtime.client import Mycelium  # noqa: E402

ELVES = str(HERE / "bench_elves.py")


def start_worker(
    url: str, elf: str, replicas: int = 1, task_output: str = "echo", elves: str = ELVES
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "elfc", "worker", elves, "--elf", elf, "--mycelium", url,
         "--replicas", str(replicas), "--task-output", task_output],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def timed_run(m: Mycelium, pipeline: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    run = m.submit(pipeline, **kwargs)
    value = run.wait(timeout=300)
    return time.perf_counter() - t0, value


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def rss_during(m: Mycelium, pids: list[int], n: int) -> dict[str, float]:
    """Workers' resident memory (MiB, the larger of the two) as a 100k-job run progresses,
    sampled before the reduce job, which alone holds all n results."""
    run = m.submit(fanout, n=n)
    samples: dict[str, float] = {}
    marks = [0.1, 0.5, 0.9]
    while True:
        info = m.store.run_info(run.id)
        assert info is not None
        done = info.counts["succeeded"] / info.total
        while marks and done >= marks[0]:
            samples[f"at_{int(marks.pop(0) * 100)}pct"] = max(rss_kib(p) for p in pids) / 1024
        if info.status != "running":
            break
        m.store.wait_for_run(run.id, 0.05)
    samples["peak_with_reduce"] = max(peak_rss_kib(p) for p in pids) / 1024
    return samples


def scale(m: Mycelium, parent: int, runs: int) -> dict[str, Any]:
    """Per-job cost (build + submit + run) at 1k and 100k jobs, and the workers' memory."""
    kids = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    pids = [int(p) for p in kids.stdout.split()]
    per_job: dict[str, list[float]] = {"1k": [], "100k": []}
    rss_after: dict[str, int] = {}
    for label, n, repeat in (("1k", 1000, runs), ("100k", 100_000, 1)):
        for _ in range(repeat):
            seconds, value = timed_run(m, fanout, n=n)
            assert value == sum(n + i for i in range(n)), value
            per_job[label].append(seconds / (n + 2) * 1e6)
        rss_after[label] = max(peak_rss_kib(p) for p in pids)
    return {
        "per_job_us_1k": summary(per_job["1k"]),
        "per_job_us_100k": summary(per_job["100k"]),
        "per_job_ratio_100k_to_1k": statistics.median(per_job["100k"])
        / statistics.median(per_job["1k"]),
        "worker_peak_rss_mib_after_1k": rss_after["1k"] / 1024,
        "worker_peak_rss_mib_after_100k": rss_after["100k"] / 1024,
        "worker_rss_mib_during_100k": rss_during(m, pids, 100_000),
    }


def capture(url: str, m: Mycelium, runs: int, n: int) -> dict[str, Any]:
    """FANOUT jobs/s with output capture off, on, and on with a line printed per job, and the
    worker processes' CPU time per job (less sensitive than jobs/s to a busy machine). The
    modes take turns run by run, so that a slow moment of the machine hits all of them."""
    modes = {
        "off": ("off", fanout),
        "on": ("store", fanout),
        "off_printing": ("off", fanout_loud),
        "on_printing": ("store", fanout_loud),
    }
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(runs):
        for mode, (task_output, pipeline) in modes.items():
            procs = [start_worker(url, "bench", 2, task_output)]
            timed_run(m, pipeline, n=200)  # warm-up
            kids = subprocess.run(["pgrep", "-P", str(procs[0].pid)], capture_output=True)
            pids = [int(p) for p in kids.stdout.split()]
            before = sum(cpu_seconds(p) for p in pids)
            seconds, value = timed_run(m, pipeline, n=n)
            used = sum(cpu_seconds(p) for p in pids) - before
            stop(procs)
            assert value == sum(n + i for i in range(n)), value
            rates[mode].append((n + 2) / seconds)
            cpu[mode].append(used / (n + 2) * 1e6)
    out: dict[str, Any] = {f"capture_{mode}_jobs_per_s": summary(r) for mode, r in rates.items()}
    out.update({f"capture_{mode}_worker_cpu_us_per_job": summary(c) for mode, c in cpu.items()})
    for quiet in ("", "_printing"):
        off, on = statistics.median(rates[f"off{quiet}"]), statistics.median(rates[f"on{quiet}"])
        out[f"capture{quiet}_throughput_cost_percent"] = 100 * (1 - on / off)
        off, on = statistics.median(cpu[f"off{quiet}"]), statistics.median(cpu[f"on{quiet}"])
        out[f"capture{quiet}_cpu_cost_percent"] = 100 * (on / off - 1)
    return out


def capture_in_process(n: int = 20_000) -> dict[str, float]:
    """What capture adds to one job in this process, in µs: begin/end around a job that
    prints nothing, and around one that prints a line (against printing it to /dev/null), plus
    storing a line as a row in the outcome's transaction (SQLite, batches of 32)."""
    import contextlib
    import io

    from elfc.model.ir import BuiltRun, JobSpec
    from elfc.model.records import LogRecord
    from elfc.runtime.capture import OutputCapture

    def per_job(body: Any) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            body()
            best = min(best, time.perf_counter() - t0)
        return best / n * 1e6

    capture = OutputCapture(echo=False)
    sink = io.StringIO()

    def silent() -> None:
        for _ in range(n):
            capture.begin()
            capture.end()

    def printing(captured: bool) -> None:
        for i in range(n):
            if captured:
                capture.begin()
            print(f"job {i}: adding 1 and 2")
            if captured:
                capture.end()

    with contextlib.redirect_stdout(sink):
        capture.install()
        try:
            on_silent, on_printing = per_job(silent), per_job(lambda: printing(True))
        finally:
            capture.uninstall()
        off_printing = per_job(lambda: printing(False))

    tmp = tempfile.mkdtemp(prefix="elfc-bench-")
    store = open_mycelium(f"sqlite:///{tmp}/logs.db")
    jobs = tuple(
        JobSpec(key=f"f#{i}", node="f", elf="e", task="w", revision="r", args=(), kwargs={},
                deps=(), seq=i)
        for i in range(n)
    )  # fmt: skip
    run_id = store.submit(BuiltRun("bench:logs", "r", {}, jobs, None))
    logs = [
        LogRecord(j.id, run_id, j.key, "e", "w", 1, f"job {j.key}: adding 1 and 2\n")
        for j in store.list_jobs(run_id)
    ]
    t0 = time.perf_counter()
    for i in range(0, n, 32):
        store.stage_logs(logs[i : i + 32])
        store.put_template(f"r{i}", b"{}")  # any write: the staged rows ride with it
    with_rows = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, n, 32):
        store.put_template(f"s{i}", b"{}")
    without = time.perf_counter() - t0
    store.close()
    return {
        "capture_us_per_silent_job": on_silent,
        "capture_us_per_printing_job": on_printing - off_printing,
        "capture_us_per_stored_line": (with_rows - without) / n * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fanout", type=int, default=2000)
    ap.add_argument("--chain", type=int, default=200)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--mycelium", help="an empty mycelium's URL (default: a new SQLite file)")
    ap.add_argument(
        "--no-scale", dest="scale", action="store_false", help="skip the 100,000-job run"
    )
    ap.add_argument("--only-capture", action="store_true", help="only the CAPTURE figures")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="elfc-bench-")
    url = args.mycelium or f"sqlite:///{tmp}/bench.db"
    m = Mycelium(open_mycelium(url))
    out: dict[str, Any] = capture_in_process()
    out.update(capture(url, m, args.runs, args.fanout))
    if args.only_capture:
        print(msgspec.json.format(msgspec.json.encode(out), indent=2).decode())
        return

    procs = [start_worker(url, "bench", 2)]
    timed_run(m, fanout, n=200)  # warm-up: workers up, code paths hot
    if args.scale:
        out.update(scale(m, procs[0].pid, args.runs))
    fan = []
    for _ in range(args.runs):
        seconds, value = timed_run(m, fanout, n=args.fanout)
        assert value == sum(args.fanout + i for i in range(args.fanout)), value
        fan.append((args.fanout + 2) / seconds)
    stop(procs)
    out["fanout_jobs_per_s"] = summary(fan)

    procs = [start_worker(url, "ping"), start_worker(url, "pong")]
    timed_run(m, chain, n=20)
    hops = []
    for _ in range(args.runs):
        seconds, value = timed_run(m, chain, n=args.chain)
        assert value == args.chain, value
        hops.append(seconds / args.chain * 1000)
    out["chain_ms_per_hop"] = summary(hops)

    # Idle: both chain workers now wait for work.
    time.sleep(1.0)
    pid = procs[0].pid
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True
    ).stdout.split()
    target = int(children[0]) if children else pid
    c0, t0 = cpu_seconds(target), time.monotonic()
    time.sleep(args.idle_seconds)
    out["idle_cpu_percent"] = 100 * (cpu_seconds(target) - c0) / (time.monotonic() - t0)
    # A job submitted to an idle elf: time until it has run (submission included).
    starts = [timed_run(m, chain, n=1)[0] * 1000 for _ in range(args.runs)]
    out["idle_pickup_ms"] = summary(starts)
    stop(procs)

    subs = []
    for _ in range(args.runs):
        built = fanout.build(n=10_000)
        t0 = time.perf_counter()
        m.store.submit(built)
        subs.append(time.perf_counter() - t0)
    out["submit_10k_s"] = summary(subs)
    build = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        fanout.build(n=10_000)
        build.append(time.perf_counter() - t0)
    out["build_10k_s"] = summary(build)
    print(msgspec.json.format(msgspec.json.encode(out), indent=2).decode())
    if args.json:
        args.json.write_bytes(msgspec.json.encode(out))


if __name__ == "__main__":
    main()
