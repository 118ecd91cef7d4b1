"""The dashboard on a 100,000-job run: first view of the run page, paging, and idle cost.

    python benchmarks/ui.py [--jobs 100000] [--runs 5] [--json out.json]

Makes a real run (``fanout(n)`` of bench_elves.py: 1 source, n work jobs, 1 reduce, run by
two worker processes), starts ``elfc ui`` on it and measures:

- API: the three requests of the run page's first view (the run with its graph, the first
  page of jobs, the timeline) and pages deep in the run (offset n/2, the last page, a status
  filter): milliseconds (median of --runs, with min-max) and bytes;
- BROWSER: Debian's headless Chromium (Selenium) opening the run page until its job table and
  timeline are drawn: seconds from navigation start and bytes transferred (every request);
- IDLE: CPU of the server over 20 s with one browser on the finished run's page, then on a
  running run's live page (the server checks for changes once a second).

Needs the ui extra and Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ELVES = str(HERE / "bench_elves.py")
GATED = str(HERE.parent / "tests" / "ui" / "dash_elves.py")


def elfc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "elfc", *args], capture_output=True, text=True, check=True
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fetch(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        size = len(answer.read())
    return (time.perf_counter() - start) * 1000, size


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def first_view(driver: Any, url: str) -> tuple[float, int, float]:
    """Seconds from navigation start until the first view is drawn (the run's header, its
    graph and its first page of jobs), the bytes of every response loaded by then, and the
    seconds until the timeline, which the page asks for after the first view, is drawn too."""
    driver.get("about:blank")
    driver.get(url)
    deadline = time.monotonic() + 60

    def wait(check: str) -> float:
        while not driver.execute_script("return " + check):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the run page did not draw in 60 s ({check})")
            time.sleep(0.002)
        took: float = driver.execute_script("return performance.now()") / 1000
        return took

    took = wait(
        "!!document.querySelector('#job-table tbody tr') && !!document.querySelector('#graph svg')"
    )
    size = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return n.transferSize + performance.getEntriesByType('resource')"
        ".reduce((s, r) => s + r.transferSize, 0)"
    )
    whole = wait("!!document.querySelector('#gantt svg, #gantt p')")
    return took, int(size), whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="elfc-ui-bench-"))
    url = f"sqlite:///{folder}/m.db"
    started = time.perf_counter()
    run = elfc("submit", f"{ELVES}:fanout", "-a", f"n={args.jobs}", "--mycelium", url)
    run_id = run.stdout.strip()
    workers = subprocess.Popen(
        [sys.executable, "-m", "elfc", "worker", ELVES, "--elf", "bench", "--replicas", "2",
         "--mycelium", url, "--idle-exit", "3"],
    )  # fmt: skip
    workers.wait()
    made = time.perf_counter() - started
    total = args.jobs + 2
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "elfc", "ui", "--mycelium", url, "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"jobs": total, "run_made_s": round(made, 1)}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch(base + "/api/config")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        driver = browser()
        try:
            # The first visit is cold: nothing cached by the server or the browser.
            views = [first_view(driver, f"{base}/runs/{run_id}") for _ in range(args.runs + 1)]
            results["browser_first_view_cold"] = {
                "s": round(views[0][0], 2),
                "bytes": views[0][1],
                "with_timeline_s": round(views[0][2], 2),
            }
            results["browser_first_view"] = {
                "s": spread([v[0] for v in views[1:]]),
                "bytes": spread([float(v[1]) for v in views[1:]]),
                "with_timeline_s": spread([v[2] for v in views[1:]]),
            }
            api = {
                "run (graph, counts)": f"/api/runs/{run_id}",
                "jobs page 1": f"/api/runs/{run_id}/jobs?offset=0&limit=100",
                "timeline": f"/api/runs/{run_id}/timeline",
                f"jobs at offset {args.jobs // 2}": f"/api/runs/{run_id}/jobs?offset={args.jobs // 2}",
                "jobs last page": f"/api/runs/{run_id}/jobs?offset={total - 100}",
                "jobs status=succeeded, offset 90000": (
                    f"/api/runs/{run_id}/jobs?status=succeeded&offset={min(90_000, total - 100)}"
                ),
            }
            results["api"] = {}
            for name, path in api.items():
                first = fetch(base + path)  # the first request fills the caches (a finished run's)
                samples = [fetch(base + path) for _ in range(args.runs)]
                results["api"][name] = {
                    "first_ms": round(first[0], 1),
                    "ms": spread([ms for ms, _ in samples]),
                    "bytes": samples[-1][1],
                }
            time.sleep(2)
            before, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(20)
            idle = (cpu_seconds(server.pid) - before) / (time.monotonic() - t0)
            results["idle_cpu_percent_finished_page"] = round(idle * 100, 2)
            gate = folder / "gate"
            live = elfc("submit", f"{GATED}:gated", "-a", f"gate={gate}", "--mycelium", url)
            holder = subprocess.Popen(
                [sys.executable, "-m", "elfc", "worker", GATED, "--elf", "holder",
                 "--mycelium", url],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            first_view(driver, f"{base}/runs/{live.stdout.strip()}")
            time.sleep(2)
            before, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(20)
            idle = (cpu_seconds(server.pid) - before) / (time.monotonic() - t0)
            results["idle_cpu_percent_live_page"] = round(idle * 100, 2)
            gate.touch()
            holder.terminate()
            holder.wait(20)
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(20)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
