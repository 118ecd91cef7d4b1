"""elfc side by side with Huey, Celery, Ray and Dask: the same workloads, in one run.

    python benchmarks/peers.py                 # 5 rounds; writes benchmarks/results/
    python benchmarks/peers.py --quick         # 2 rounds, small sizes, writes nothing
    python benchmarks/peers.py --only elfc,huey

Workloads (trivial tasks, so orchestration is what is measured, results checked):
  FANOUT  1 source job, 2000 jobs reading it, 1 reduce reading all 2000; jobs/s end to end,
          submission included.
  CHAIN   200 dependent +1 hops; ms per hop (for elfc and Ray actors alternating between two
          named workers, so every hop crosses processes).
Each system uses 2 worker processes. A round runs every system once, in turn (elfc, huey,
celery, ray, dask, then elfc again, ...), so that noise on the machine hits all of them alike.
Each system runs in a fresh child process that starts it, warms it up (one smaller run of
each workload), measures one run of each, records the memory of the processes it needs, and
stops everything: an idle system never competes with the one being measured. The table gives
the median and min-max over the rounds, and elfc's ratio to each peer (higher: elfc faster).
A system that fails is reported with the reason; one that fails twice is not tried again.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
REPO = HERE.parent

SYSTEMS = ("elfc", "huey", "celery", "ray", "dask")
ROWS = {
    "elfc": ["elfc"],
    "huey": ["huey (fsync default)", "huey (fsync off)"],
    "celery": ["celery"],
    "ray": ["ray tasks", "ray actors"],
    "dask": ["dask"],
}
SETUP = {
    "elfc": "SQLite mycelium (WAL, synchronous=NORMAL); FANOUT: 1 worker with 2 replicas; "
    "CHAIN: ping and pong workers, hops alternate",
    "huey (fsync default)": "SqliteHuey, WAL, SQLite's default synchronous; consumer -w 2 "
    "-k process -d 0.001; chord for FANOUT, pipeline (.then) for CHAIN",
    "huey (fsync off)": "as above with fsync=False (synchronous=OFF), Huey's fastest",
    "celery": "Redis broker and backend; worker --pool prefork --concurrency 2; "
    "source | chord(work, reduce) and chain(step...), .get(follow_parents=False)",
    "ray tasks": "ray.init(num_cpus=2), remote functions, ObjectRefs as arguments",
    "ray actors": "two actors, FANOUT work alternating, CHAIN hops alternating",
    "dask": "LocalCluster(n_workers=2, threads_per_worker=1, processes=True), futures",
}
PACKAGES = ("elfc", "msgspec", "huey", "celery", "kombu", "redis", "ray", "dask",
            "distributed", "matplotlib")  # fmt: skip
MAX_FAILURES = 2


@dataclass(frozen=True)
class Plan:
    runs: int
    sizes: dict[str, int]
    systems: list[str]
    timeout: float


@dataclass
class Row:
    """Everything measured for one row of the table, round by round."""

    label: str
    system: str
    runs: list[dict[str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


# ---- the child: one system, one round -------------------------------------------------------


def child(system: str, sizes: dict[str, int], out: Path) -> None:
    sys.path[:0] = [str(PEERS), str(HERE)]
    from common import Sizes

    try:
        module = importlib.import_module(f"{system}_bench")
    except ImportError as e:
        raise ImportError(f"{e}; install the peers with: pip install -e '.[bench]'") from e
    rows = module.run_round(Sizes(**sizes))
    out.write_text(json.dumps({label: asdict(f) for label, f in rows.items()}))


# ---- the harness ----------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    path = [str(PEERS), str(HERE), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def end_group(pgid: int) -> None:
    """End whatever is left in the process group of a child we started (a stray worker)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        time.sleep(0.5)


def reason(log: str, code: int) -> str:
    """The exception a child ended with (not those Python ignored on its way out)."""
    found, in_traceback, ignored = [], False, False
    for line in log.splitlines():
        if line.startswith("Exception ignored in"):
            ignored = True
        elif line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            if not ignored:
                found.append(line.strip())
            in_traceback = ignored = False
    rest = [line.strip() for line in log.splitlines() if line.strip()]
    last = found[-1] if found else (rest[-1] if rest else "no output")
    return f"exit {code}: {last}"[:300]


def run_child(system: str, plan: Plan, logs: Path) -> dict[str, dict[str, float]] | str:
    """Run one round of one system in a fresh process group; its rows, or why it failed."""
    out = logs / f"{system}.json"
    out.unlink(missing_ok=True)
    log_path = logs / f"{system}.log"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", system,
            "--child-out", str(out), "--child-sizes", json.dumps(plan.sizes)]  # fmt: skip
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            argv, env=child_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=REPO,
        )  # fmt: skip
        try:
            code = proc.wait(plan.timeout)
        except subprocess.TimeoutExpired:
            end_group(proc.pid)
            proc.wait()
            return f"timed out after {plan.timeout:.0f} s"
        except BaseException:
            end_group(proc.pid)
            raise
        end_group(proc.pid)
    if code != 0 or not out.exists():
        return reason(log_path.read_text(errors="replace"), code)
    rows: dict[str, dict[str, float]] = json.loads(out.read_text())
    return rows


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_all(plan: Plan) -> dict[str, Row]:
    rows = {label: Row(label, s) for s in plan.systems for label in ROWS[s]}
    with tempfile.TemporaryDirectory(prefix="peers-logs-") as tmp:
        for r in range(plan.runs):
            for system in plan.systems:
                mine = [rows[label] for label in ROWS[system]]
                if len(mine[0].failures) >= MAX_FAILURES:
                    continue
                t0 = time.monotonic()
                got = run_child(system, plan, Path(tmp))
                took = time.monotonic() - t0
                if isinstance(got, str):
                    for row in mine:
                        row.failures.append(got)
                    progress(f"round {r + 1}/{plan.runs} {system}: FAILED {got} ({took:.0f} s)")
                    continue
                for row in mine:
                    row.runs.append(got[row.label])
                    f = got[row.label]
                    progress(
                        f"round {r + 1}/{plan.runs} {row.label}: FANOUT "
                        f"{f['fanout_jobs_per_s']:,.0f} jobs/s, CHAIN "
                        f"{f['chain_ms_per_hop']:.3f} ms/hop ({took:.0f} s)"
                    )
    return rows


# ---- summaries ------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(row: Row) -> dict[str, Any]:
    if not row.runs:
        return {}
    pick = {k: [run[k] for run in row.runs] for k in row.runs[0]}
    return {
        "fanout_jobs_per_s": summary(pick["fanout_jobs_per_s"]),
        "chain_ms_per_hop": summary(pick["chain_ms_per_hop"]),
        "start_s": statistics.median(pick["start_s"]),
        "processes": max(pick["processes"]),
        "rss_mib": statistics.median(pick["rss_mib"]),
        "pss_mib": statistics.median(pick["pss_mib"]),
        "client_rss_mib": statistics.median(pick["client_rss_mib"]),
    }


def ratios(summaries: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """elfc's advantage over each peer: its jobs/s over theirs, their ms/hop over its."""
    mine = summaries.get("elfc")
    if not mine:
        return {}
    out = {}
    for label, s in summaries.items():
        if label != "elfc" and s:
            out[label] = {
                "fanout": mine["fanout_jobs_per_s"]["median"] / s["fanout_jobs_per_s"]["median"],
                "chain": s["chain_ms_per_hop"]["median"] / mine["chain_ms_per_hop"]["median"],
            }
    return out


def table(rows: dict[str, Row], summaries: dict[str, dict[str, Any]], runs: int) -> str:
    ratio = ratios(summaries)
    head = [
        f"| system | FANOUT jobs/s (median of {runs}) | min-max | elfc x | "
        f"CHAIN ms/hop (median of {runs}) | min-max | elfc x | processes | RSS MiB | start s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines = []
    for label, row in rows.items():
        s = summaries[label]
        if not s:
            lines.append(f"| {label} | failed: {row.failures[-1]} | | | | | | | | |")
            continue
        fan, hop = s["fanout_jobs_per_s"], s["chain_ms_per_hop"]
        r = ratio.get(label)
        x_fan, x_hop = (f"{r['fanout']:.1f}", f"{r['chain']:.1f}") if r else ("-", "-")
        note = f" ({len(row.failures)} failed)" if row.failures else ""
        lines.append(
            f"| {label}{note} | {fan['median']:,.0f} | {fan['min']:,.0f}-{fan['max']:,.0f} | "
            f"{x_fan} | {hop['median']:.3f} | {hop['min']:.3f}-{hop['max']:.3f} | {x_hop} | "
            f"{s['processes']} | {s['rss_mib']:,.0f} | {s['start_s']:.1f} |"
        )
    return "\n".join(head + lines)


# ---- the machine and the versions -----------------------------------------------------------


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text()
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "mem_total_gib": round(int(mem.group(1)) / 1024**2, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def machine_slug(m: dict[str, Any]) -> str:
    cpu = re.sub(r"\((R|TM|tm)\)|\bCPU\b|\bProcessor\b|@.*", "", m["cpu_model"])
    cpu = re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-")
    return f"{cpu}-{m['nproc']}cpu-{round(m['mem_total_gib'] or 0)}gib"


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    if "redis" not in packages:
        return out
    with contextlib.suppress(OSError):
        text = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        found = re.search(r"v=(\S+)", text.stdout)
        out["redis-server"] = found.group(1) if found else text.stdout.strip()
    return out


def source_state() -> dict[str, Any]:
    """The elfc commit measured, and any uncommitted change to the package under it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    changed = [ln[3:] for ln in git("status", "--porcelain", "--", "elfc").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted_in_elfc": changed}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_record(
    plan: Plan,
    rows: dict[str, Row],
    started: datetime.datetime,
    load_before: list[float],
    elapsed: float,
    found_versions: dict[str, str],
    setup: dict[str, str],
) -> dict[str, Any]:
    """Everything a run measured and what it ran on, for its JSON file."""
    summaries = {label: summarize(row) for label, row in rows.items()}
    return {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "load_average": {"before": load_before, "after": load()},
        "machine": machine(),
        "versions": found_versions,
        "elfc_source": source_state(),
        "plan": asdict(plan),
        "setup": {label: setup[label] for label in rows},
        "summary": summaries,
        "elfc_ratio": ratios(summaries),
        "runs": {label: row.runs for label, row in rows.items()},
        "failures": {label: row.failures for label, row in rows.items() if row.failures},
    }


# ---- the chart ------------------------------------------------------------------------------


def chart(summaries: dict[str, dict[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import StrMethodFormatter

    labels = [label for label, s in summaries.items() if s][::-1]  # elfc on top
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.55 * len(labels) + 1.8), sharey=True)
    panels = [
        ("fanout_jobs_per_s", "FANOUT: jobs/s (higher is better)", "{:,.0f}"),
        ("chain_ms_per_hop", "CHAIN: ms per hop (lower is better)", "{:.2f}"),
    ]
    for ax, (key, name, fmt) in zip(axes, panels, strict=True):
        med = [summaries[label][key]["median"] for label in labels]
        lo = [m - summaries[label][key]["min"] for label, m in zip(labels, med, strict=True)]
        hi = [summaries[label][key]["max"] - m for label, m in zip(labels, med, strict=True)]
        colors = ["#2a7d4f" if label == "elfc" else "#8c8c8c" for label in labels]
        ax.barh(labels, med, xerr=[lo, hi], color=colors, capsize=3, ecolor="#333333")
        for y, (m, h) in enumerate(zip(med, hi, strict=True)):
            ax.text(m + h + max(med) * 0.015, y, fmt.format(m), va="center", fontsize=9)
        ax.set_title(name, fontsize=11)
        ax.set_xlim(0, max(m + h for m, h in zip(med, hi, strict=True)) * 1.18)
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}" if "," in fmt else "{x:g}"))
        ax.grid(axis="x", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main -----------------------------------------------------------------------------------


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, help="measured rounds (5; --quick: 2)")
    ap.add_argument("--fanout", type=int, help="FANOUT width (2000; --quick: 500)")
    ap.add_argument("--chain", type=int, help="CHAIN hops (200; --quick: 50)")
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller sizes, no files")
    ap.add_argument("--only", help=f"comma-separated systems out of {','.join(SYSTEMS)}")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per system and round")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="where files go")
    ap.add_argument("--write", action="store_true", help="write result files even with --quick")
    ap.add_argument("--no-write", action="store_true", help="only print the table")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-sizes", help=argparse.SUPPRESS)
    return ap.parse_args()


def make_plan(args: argparse.Namespace) -> Plan:
    systems = args.only.split(",") if args.only else list(SYSTEMS)
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        sys.exit(f"--only: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SYSTEMS)}")
    fanout = args.fanout or (500 if args.quick else 2000)
    chain = args.chain or (50 if args.quick else 200)
    sizes = {"fanout": fanout, "chain": chain,
             "warm_fanout": max(1, fanout // 4), "warm_chain": max(1, chain // 4)}  # fmt: skip
    runs = args.runs or (2 if args.quick else 5)
    return Plan(runs, sizes, [s for s in SYSTEMS if s in systems], args.timeout)


def main() -> None:
    args = parse()
    if args.child:
        child(args.child, json.loads(args.child_sizes), args.child_out)
        return
    plan = make_plan(args)
    started = datetime.datetime.now().astimezone()
    load_before = load()
    t0 = time.monotonic()
    rows = run_all(plan)
    elapsed = time.monotonic() - t0
    summaries = {label: summarize(row) for label, row in rows.items()}
    text = table(rows, summaries, plan.runs)
    m = machine()
    print(f"\n{m['cpu_model']}, {m['nproc']} CPUs, {m['mem_total_gib']} GiB; "
          f"{plan.runs} rounds in {elapsed:.0f} s\n")  # fmt: skip
    print(text)
    if args.no_write or (args.quick and not args.write):
        return
    stem = f"{started:%Y-%m-%d}-{machine_slug(m)}"
    args.results.mkdir(parents=True, exist_ok=True)
    record = run_record(plan, rows, started, load_before, elapsed, versions(), SETUP)
    (args.results / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    title = (f"elfc and its peers, {started:%Y-%m-%d}: {m['cpu_model']}, {m['nproc']} CPUs, "
             f"2 worker processes each; median of {plan.runs} rounds, bars min-max")  # fmt: skip
    chart(summaries, title, args.results / f"{stem}.png")
    md = f"# {stem}\n\n{m['cpu_model']}, {m['nproc']} CPUs, {m['mem_total_gib']} GiB.\n\n{text}\n"
    (args.results / f"{stem}.md").write_text(md)
    print(f"\nwrote {args.results / stem}.{{json,png,md}}")


if __name__ == "__main__":
    main()
