"""``elfc result``, ``cancel``, ``logs``, ``retry`` and ``prune`` as a user runs them: real
``elfc`` processes on a SQLite file in tmp_path and on a PostgreSQL server the tests start,
with a pipeline module written there so that a test can fix its bug and retry.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.fixtures.harness import REPO, Processes, opened, sqlite_url, wait_until

SHOP = """
from __future__ import annotations

import logging
import time

from elfc import elf, named, pipeline, task

log = logging.getLogger("shop")


@elf
class Prices:
    @task
    def price(self, item: str, pause: float = 0.0) -> int:
        time.sleep(pause)
        print(f"pricing {item}")
        log.info("priced %s", item)
        return len(item)


@elf
class Till:
    @task
    def total(self, prices: list[int]) -> int:
        print("adding up", len(prices), "prices")
        return sum(prices) // 0  # the bug

    @task
    def receipt(self, total: int) -> str:
        return f"total {total}"


prices = named(Prices, "prices")
till = named(Till, "till")


@pipeline
def basket(items: list[str], pause: float = 0.0) -> str:
    return till.receipt(till.total([prices.price(i, pause) for i in items]))


@pipeline
def priced(items: list[str], pause: float = 0.0) -> list[int]:
    return [prices.price(i, pause) for i in items]
"""

ITEMS = '["apple","fig","kiwi","plum"]'


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        pg_url: str = request.getfixturevalue("pg_url")
        return pg_url
    return sqlite_url(tmp_path)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.py"
    path.write_text(SHOP, encoding="utf-8")
    return path


def fix(shop: Path) -> None:
    text = shop.read_text(encoding="utf-8")
    shop.write_text(text.replace(" // 0  # the bug", ""), encoding="utf-8")


def latest_run(url: str) -> str:
    with opened(url) as store:
        return store.list_runs(1)[0].id


def test_result_prints_the_value_of_a_succeeded_run(procs: Processes, url: str, shop: Path) -> None:
    ran = procs.call("run", f"{shop}:priced", "-a", f"items={ITEMS}", "--mycelium", url)
    assert ran.returncode == 0, ran.stderr
    run_id = latest_run(url)
    as_json = procs.call("result", run_id[:6], "--json", "--mycelium", url)
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == [5, 3, 4, 4]
    readable = procs.call("result", run_id, "--mycelium", url)
    assert readable.returncode == 0 and json.loads(readable.stdout) == [5, 3, 4, 4]
    assert readable.stdout.count("\n") == 6  # indented: one line per item and the brackets


def test_result_of_a_failed_run_exits_1_with_its_failures(
    procs: Processes, url: str, shop: Path
) -> None:
    ran = procs.call("run", f"{shop}:basket", "-a", f"items={ITEMS}", "--mycelium", url)
    assert ran.returncode == 1
    run_id = latest_run(url)
    done = procs.call("result", run_id, "--mycelium", url)
    assert done.returncode == 1 and done.stdout == ""
    assert f"run {run_id} failed: 1 job(s) failed, 1 skipped" in done.stderr
    assert "raised ZeroDivisionError" in done.stderr and "// 0  # the bug" in done.stderr
    assert f"elfc retry {run_id}" in done.stderr


def test_result_waits_for_a_run_that_workers_finish(procs: Processes, url: str, shop: Path) -> None:
    submitted = procs.call("submit", f"{shop}:priced", "-a", 'items=["a"]', "--mycelium", url)
    run_id = submitted.stdout.strip()
    early = procs.call("result", run_id, "--mycelium", url)
    assert early.returncode == 2 and "still running (0/1 jobs settled)" in early.stderr
    waited = procs.call("result", run_id, "--wait", "0.2", "--mycelium", url)
    assert waited.returncode == 2  # nobody serves it yet
    procs.worker(shop, "prices", url, "--idle-exit", "5")
    done = procs.call("result", run_id, "--wait", "--json", "--mycelium", url)
    assert done.returncode == 0 and json.loads(done.stdout) == [1]


def test_cancel_cancels_a_waiting_run_once(procs: Processes, url: str, shop: Path) -> None:
    submitted = procs.call(
        "submit", f"{shop}:priced", "-a", ITEMS.join(["items=", ""]), "--mycelium", url
    )
    run_id = submitted.stdout.strip()
    done = procs.call("cancel", run_id[:8], "--mycelium", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"run {run_id} cancelled: 4 job(s) cancelled"
    again = procs.call("cancel", run_id, "--mycelium", url)
    assert again.returncode == 1 and "already cancelled: nothing to cancel" in again.stderr
    result = procs.call("result", run_id, "--mycelium", url)
    assert result.returncode == 1 and "was cancelled" in result.stderr
    with opened(url) as store:
        assert store.run_status(run_id) == "cancelled"


def test_cancel_stops_a_running_job_through_its_worker(
    procs: Processes, url: str, shop: Path
) -> None:
    submitted = procs.call(
        "submit", f"{shop}:priced", "-a", 'items=["slow"]', "-a", "pause=60", "--mycelium", url
    )
    run_id = submitted.stdout.strip()
    procs.worker(shop, "prices", url, "--lease", "3")
    with opened(url) as store:
        wait_until(lambda: store.run_info(run_id).counts["running"] == 1, 20, "the job to start")  # type: ignore[union-attr]
        done = procs.call("cancel", run_id, "--mycelium", url)
        assert done.returncode == 0
        assert "0 job(s) cancelled, 1 running job(s) told to stop" in done.stdout
        wait_until(lambda: store.run_info(run_id).finished is not None, 20, "the job to stop")  # type: ignore[union-attr]
        info = store.run_info(run_id)
    assert info is not None and info.counts["cancelled"] == 1


def test_logs_keep_every_line_tasks_wrote_per_job(procs: Processes, url: str, shop: Path) -> None:
    ran = procs.call("run", f"{shop}:basket", "-a", f"items={ITEMS}", "--mycelium", url)
    assert ran.returncode == 1
    run_id = latest_run(url)
    # elfc run showed them as they came, each with its elf and job key (stderr: not a tty).
    for n, item in enumerate(["apple", "fig", "kiwi", "plum"]):
        assert f"[prices n1#{n}] pricing {item}" in ran.stderr
    assert "[till n2] adding up 4 prices" in ran.stderr
    # The failure as it happened, and the final line with the time the run took.
    assert "job n2 (till.total) failed: ZeroDivisionError: integer division" in ran.stderr
    assert re.search(rf"run {run_id} failed: 6/6 jobs · \d+\.\d s · ", ran.stderr)
    logs = procs.call("logs", run_id, "--mycelium", url)
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert sorted(lines) == sorted(
        [f"[prices n1#{n}] pricing {item}" for n, item in enumerate(["apple", "fig", "kiwi", "plum"])]
        + [f"[prices n1#{n}] INFO shop: priced {item}" for n, item in enumerate(["apple", "fig", "kiwi", "plum"])]
        + ["[till n2] adding up 4 prices"]
    )  # fmt: skip
    one = procs.call("logs", f"{run_id}/n1#2", "--mycelium", url)
    assert one.stdout == "pricing kiwi\nINFO shop: priced kiwi\n"
    as_json = procs.call("logs", run_id, "--json", "--mycelium", url)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {r["key"] for r in records} == {"n1#0", "n1#1", "n1#2", "n1#3", "n2"}
    assert all(r["attempt"] == 1 and r["truncated"] == 0 for r in records)
    quiet = procs.call("run", f"{shop}:priced", "-a", f"items={ITEMS}", "-q", "--mycelium", url)
    assert quiet.returncode == 0 and "pricing" not in quiet.stderr
    stored = procs.call("logs", latest_run(url), "--mycelium", url)
    assert stored.stdout.count("pricing") == 4  # hidden, stored all the same
    missing = procs.call("logs", "nosuchrun", "--mycelium", url)
    assert missing.returncode == 1 and "no run or job 'nosuchrun'" in missing.stderr


def test_logs_follow_a_live_run_to_its_end(procs: Processes, url: str, shop: Path) -> None:
    items = json.dumps([f"item{i}" for i in range(6)])
    submitted = procs.call(
        "submit", f"{shop}:priced", "-a", f"items={items}", "-a", "pause=0.3", "--mycelium", url
    )
    run_id = submitted.stdout.strip()
    follow = procs.start(
        [sys.executable, "-m", "elfc", "logs", run_id, "-f", "--mycelium", url],
    )
    time.sleep(0.5)
    assert follow.poll() is None  # still following: nothing ran yet
    procs.worker(shop, "prices", url, "--idle-exit", "3")
    assert follow.wait(60) == 0
    shown = procs.output(follow).splitlines()
    assert [line for line in shown if "pricing" in line] == [
        f"[prices n1#{i}] pricing item{i}" for i in range(6)
    ]


TALKER = """
from __future__ import annotations

import os
import time

from elfc import elf, named, pipeline, task


@elf
class Talker:
    @task
    def talk(self, gate: str) -> int:
        print("first line")
        print("half a line", end="")
        while not os.path.exists(gate):
            time.sleep(0.02)
        print(", then the rest")
        print("last line")
        return 1


talker = named(Talker, "talker")


@pipeline
def chat(gate: str) -> int:
    return talker.talk(gate)
"""


def test_logs_follow_shows_a_running_jobs_lines_as_they_come(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    module = tmp_path / "talker.py"
    module.write_text(TALKER, encoding="utf-8")
    gate = tmp_path / "gate"
    submitted = procs.call("submit", f"{module}:chat", "-a", f"gate={gate}", "--mycelium", url)
    run_id = submitted.stdout.strip()
    follow = procs.start([sys.executable, "-m", "elfc", "logs", run_id, "-f", "--mycelium", url])
    procs.worker(module, "talker", url, "--idle-exit", "3")
    # The job waits for the gate: its first line is stored and shown while it runs, the
    # half line only once it is whole.
    wait_until(lambda: "[talker n1] first line" in procs.output(follow), 20, "the first line")
    with opened(url) as store:
        assert store.run_status(run_id) == "running"
        assert [log.text for log in store.list_logs(run_id)] == ["first line\n"]
    assert "half a line" not in procs.output(follow)
    gate.touch()
    assert follow.wait(30) == 0
    shown = [line for line in procs.output(follow).splitlines() if line.startswith("[talker")]
    assert shown == [
        "[talker n1] first line",
        "[talker n1] half a line, then the rest",
        "[talker n1] last line",
    ]
    one = procs.call("logs", f"{run_id}/n1", "--mycelium", url)
    assert one.stdout == "first line\nhalf a line, then the rest\nlast line\n"


def test_retry_runs_only_the_failed_part_with_the_fixed_code(
    procs: Processes, url: str, shop: Path
) -> None:
    ran = procs.call("run", f"{shop}:basket", "-a", f"items={ITEMS}", "--mycelium", url)
    assert ran.returncode == 1
    run_id = latest_run(url)
    with opened(url) as store:
        before = {j.key: j for j in store.list_jobs(run_id)}
    assert before["n2"].status == "failed" and before["n3"].status == "skipped"

    refused = procs.call("retry", run_id, str(shop), "--mycelium", url)
    assert refused.returncode == 1  # the same bug again: it fails again
    fix(shop)
    retried = procs.call("retry", run_id[:8], str(shop), "--mycelium", url)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout) == "total 16"
    assert f"run {run_id}: 2 job(s) run again, 1 at a changed task revision: n2, n3" in (
        retried.stderr
    )
    assert "pricing" not in retried.stderr  # the price jobs did not run again
    with opened(url) as store:
        info = store.run_info(run_id)
        after = {j.key: j for j in store.list_jobs(run_id)}
        total = store.get_job(after["n2"].id)
        assert total is not None
        old, new = before["n2"].revision, total.revision
        assert old != new and store.get_revision(old) and store.get_revision(new)
    assert info is not None and info.status == "succeeded" and info.counts["succeeded"] == 6
    for n in range(4):  # each price job ran once, in the first run
        price = after[f"n1#{n}"]
        assert price.finished == before[f"n1#{n}"].finished and price.attempts == 1
    notes = [e.note for e in total.history]
    assert f"retried at task revision {old}" in notes  # the retry before the fix
    assert notes.count(f"retried: task revision {old} -> {new}") == 1  # and the one with it
    shown = procs.call("show", f"{run_id}/n2", "--mycelium", url)
    assert old in shown.stdout and new in shown.stdout
    result = procs.call("result", run_id, "--json", "--mycelium", url)
    assert json.loads(result.stdout) == "total 16"
    logs = procs.call("logs", f"{run_id}/n2", "--mycelium", url)
    assert logs.stdout.count("adding up 4 prices") == 3  # every attempt's output is kept


def test_retry_refuses_a_run_with_nothing_to_do_and_from_reruns_downstream(
    procs: Processes, url: str, shop: Path
) -> None:
    fix(shop)
    assert (
        procs.call("run", f"{shop}:basket", "-a", f"items={ITEMS}", "--mycelium", url).returncode
        == 0
    )
    run_id = latest_run(url)
    nothing = procs.call("retry", run_id, str(shop), "--mycelium", url)
    assert nothing.returncode == 1 and "nothing to retry" in nothing.stderr
    detached = procs.call(
        "retry", run_id, str(shop), "--from", "n1#1", "--detach", "--mycelium", url
    )
    assert detached.returncode == 0 and detached.stdout.strip() == run_id
    assert "3 job(s) run again" in detached.stderr and "n1#1, n2, n3" in detached.stderr
    with opened(url) as store:
        assert store.run_status(run_id) == "running"
    busy = procs.call("retry", run_id, str(shop), "--mycelium", url)
    assert busy.returncode == 1 and "still running" in busy.stderr
    procs.worker(shop, "prices", url, "--idle-exit", "3")
    procs.worker(shop, "till", url, "--idle-exit", "3")
    done = procs.call("result", run_id, "--wait", "60", "--json", "--mycelium", url)
    assert done.returncode == 0 and json.loads(done.stdout) == "total 16"
    unknown = procs.call("retry", run_id, str(shop), "--from", "n9#9", "--mycelium", url)
    assert unknown.returncode == 1 and "no job 'n9#9'" in unknown.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux to look at a terminal")
def test_task_output_under_the_live_display_stays_on_screen(
    procs: Processes, url: str, shop: Path, tmp_path: Path
) -> None:
    """A real terminal (tmux) shows what the live table leaves of the task output."""
    items = json.dumps([f"item{i}" for i in range(8)])
    session = f"elfc-test-{tmp_path.name}"
    done_flag = tmp_path / "done"
    script = tmp_path / "run.sh"
    script.write_text(
        f"unset ELFC_PLAIN_PROGRESS\n{sys.executable} -m elfc run {shop}:priced "
        f"-a 'items={items}' -a pause=0.15 --mycelium {url} > {tmp_path / 'value'}\n"
        f"touch {done_flag}\nsleep 600\n",
        encoding="utf-8",
    )
    tmux = ["tmux", "-L", session]
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", "100", "-y", "50", "-c", str(REPO),
         f"bash {script}"],
        check=True, timeout=30,
    )  # fmt: skip
    try:
        wait_until(done_flag.exists, 90, "elfc run to finish in tmux")
        screen = subprocess.run(
            [*tmux, "capture-pane", "-p", "-S", "-200", "-t", session],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=30, check=False)
    assert "┃" in screen or "━" in screen, screen  # the live table was drawn
    for i in range(8):
        assert f"[prices n1#{i}] pricing item{i}" in screen, screen
    assert json.loads((tmp_path / "value").read_text()) == [5] * 8
    with opened(url) as store:
        assert len(store.list_logs(store.list_runs(1)[0].id)) == 8


def test_prune_deletes_settled_runs_by_age_and_status_and_leaves_running_ones(
    procs: Processes, url: str, shop: Path
) -> None:
    fix(shop)
    items = "items=" + ITEMS
    assert procs.call("run", f"{shop}:priced", "-a", items, "--mycelium", url).returncode == 0
    kept = procs.call("submit", f"{shop}:priced", "-a", items, "--mycelium", url).stdout.strip()
    cancelled = procs.call("submit", f"{shop}:priced", "-a", items, "--mycelium", url)
    assert procs.call("cancel", cancelled.stdout.strip(), "--mycelium", url).returncode == 0
    young = procs.call("prune", "--older-than", "1d", "--mycelium", url)
    assert young.returncode == 0 and young.stdout.startswith("pruned 0 run(s)")
    only = procs.call("prune", "--older-than", "0s", "--status", "succeeded", "--mycelium", url)
    assert only.stdout.startswith("pruned 1 run(s) (succeeded)")
    rest = procs.call("prune", "--older-than", "0s", "--batch", "1", "--mycelium", url)
    assert rest.stdout.startswith("pruned 1 run(s) (cancelled, failed, succeeded)")
    with opened(url) as store:
        assert [r.id for r in store.list_runs()] == [kept]  # still running: never pruned
        assert len(store.list_jobs(kept)) == 4
    bad = procs.call("prune", "--older-than", "soon", "--mycelium", url)
    assert bad.returncode == 2 and "is not an age" in bad.stderr
