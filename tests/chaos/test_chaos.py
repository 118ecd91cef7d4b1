"""The chaos suite: real worker processes killed with SIGKILL, paused with SIGSTOP past their
leases, fed damaged rows, and orphaned by a killed ``elfc run``, each scenario asserting the
run's final value, one stored result per job, no job left running, and the time to finish.

The short version runs with the rest of the tests (well under a minute in all). The long one
runs on demand: ``ELFC_CHAOS=long pytest -s tests/chaos`` (more rounds, more jobs, more
kills); each scenario prints its figures (jobs, kills, re-executions, lost, seconds).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from elfc import connect
from elfc.errors import MyceliumError
from elfc.model.status import FINAL_RUN_STATUSES
from elfc.mycelium.common import MAX_LOST_LEASES, MAX_NESTING
from elfc.runtime.client import Mycelium
from elfc.targets import load_module
from tests.runtime.fixtures.harness import (
    ELVES_PATH,
    REPO,
    Processes,
    cpu_seconds,
    elves,
    wait_until,
)

CHAOS = REPO / "tests" / "chaos" / "elves_for_chaos.py"
LONG = os.environ.get("ELFC_CHAOS", "") == "long"

pytestmark = pytest.mark.chaos


@dataclass(frozen=True)
class Scale:
    rounds: int
    jobs: int
    """Squares per round (plus one adder job per group and a final sum)."""
    pause: float
    """Seconds each square takes."""
    kill_gap: tuple[float, float]
    """A worker is killed every so many seconds, at random in this range."""


SCALE = (
    Scale(rounds=6, jobs=5000, pause=0.002, kill_gap=(0.1, 0.4))
    if LONG
    else Scale(rounds=1, jobs=300, pause=0.02, kill_gap=(0.25, 0.6))
)
LEASE = "1"


def chaos() -> ModuleType:
    return load_module(str(CHAOS))


def report(scenario: str, **figures: object) -> None:
    """One line of figures per scenario (shown with ``pytest -s``)."""
    print(f"\nchaos {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def settled_once(mycelium: Mycelium, run_id: str) -> list[str]:
    """Check that every job of the run succeeded and stored one result; returns the job ids.

    A result is stored once per job whatever happened: the history holds one ``succeeded``
    event, and a result is there to read.
    """
    jobs = mycelium.store.list_jobs(run_id)
    assert Counter(j.status for j in jobs) == {"succeeded": len(jobs)}
    for j in jobs:
        full = mycelium.store.get_job(j.id)
        assert full is not None and full.result is not None, j
        assert [e.status for e in full.history].count("succeeded") == 1, full.history
    return [j.id for j in jobs]


def stored_results(url: str, run_id: str) -> int | None:
    """Rows of the ``results`` table for a run, read from the SQLite file (``None`` on another
    backend: ``settled_once`` checks there through the store)."""
    if not url.startswith("sqlite:///"):
        return None
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
        (n,) = con.execute(
            "SELECT count(*) FROM results r JOIN jobs j ON r.job = j.no "
            "JOIN runs u ON u.no = j.run_no WHERE u.id = ?",
            (run_id,),
        ).fetchone()
    return int(n)


def test_random_kills_of_workers_during_a_two_elf_fan_out(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    module = chaos()
    mycelium = connect(url)
    rng = random.Random(1515)
    counts = {"squarer": 3, "adder": 2}
    workers = [
        (elf, procs.worker(CHAOS, elf, url, "--lease", LEASE))
        for elf, n in counts.items()
        for _ in range(n)
    ]
    kills = jobs = executions = 0
    started = time.monotonic()
    for round_no in range(SCALE.rounds):
        log = tmp_path / f"round{round_no}.log"
        groups = max(1, SCALE.jobs // 50)
        run = mycelium.submit(module.fan, str(log), SCALE.jobs, groups, SCALE.pause)
        deadline = time.monotonic() + 60 + SCALE.jobs * SCALE.pause * 2
        while mycelium.store.run_status(run.id) not in FINAL_RUN_STATUSES:
            assert time.monotonic() < deadline, f"round {round_no} did not finish in time"
            time.sleep(rng.uniform(*SCALE.kill_gap))
            i = rng.randrange(len(workers))
            elf, victim = workers[i]
            assert victim.poll() is None, procs.output(victim)  # alive until killed
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(5) == -signal.SIGKILL
            kills += 1
            workers[i] = (elf, procs.worker(CHAOS, elf, url, "--lease", LEASE))
        assert run.wait(timeout=1) == sum(i * i for i in range(SCALE.jobs))
        ids = settled_once(mycelium, run.id)
        assert stored_results(url, run.id) in (None, len(ids))
        lines = log.read_text().split("\n")[:-1]
        squares = {int(line.split()[1]) for line in lines if line.startswith("square")}
        assert squares == set(range(SCALE.jobs))  # nothing lost
        jobs += len(ids)
        executions += len(lines)
    seconds = time.monotonic() - started
    assert kills >= SCALE.rounds  # the scenario did kill workers mid-run
    report(
        "kill -9",
        backend=url.partition(":")[0],
        rounds=SCALE.rounds,
        jobs=jobs,
        kills=kills,
        reexecutions=executions - jobs,
        duplicates_stored=0,
        lost=0,
        seconds=round(seconds, 1),
    )
    for _, w in workers:
        # A replacement started just before the last round ended may still be importing: a
        # signal before Python runs elfc's code takes the default action. Stop serving ones.
        wait_until(lambda w=w: "serving" in procs.output(w), 60, "a restarted worker to serve")
        assert procs.stop(w) == 0, procs.output(w)


def test_a_dynamic_map_survives_kills_mid_expansion_and_mid_map(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    module = chaos()
    mycelium = connect(url)
    rng = random.Random(2000)
    n = 2000 if not LONG else 10_000
    log = tmp_path / "dynamic.log"
    adders = [procs.worker(CHAOS, "adder", url, "--lease", LEASE)]
    squarers = [procs.worker(CHAOS, "squarer", url, "--lease", LEASE) for _ in range(3)]
    started = time.monotonic()
    run = mycelium.submit(module.dynamic_fan, str(log), n, 0.0005, 0.0002)

    def expanding() -> bool:
        return any(
            j.task == "@expand" and j.status == "running" for j in mycelium.store.list_jobs(run.id)
        )

    # Killed while it expands the loop (the static sleep makes the expansion last ~0.4 s).
    wait_until(expanding, 30, "the loop's expansion to start")
    adders[0].send_signal(signal.SIGKILL)
    assert adders[0].wait(5) == -signal.SIGKILL
    kills = 1
    adders[0] = procs.worker(CHAOS, "adder", url, "--lease", LEASE)
    # Then killed at random while the elements run.
    while mycelium.store.run_status(run.id) not in FINAL_RUN_STATUSES:
        assert time.monotonic() - started < 120, "the dynamic map did not finish in time"
        time.sleep(rng.uniform(0.2, 0.5))
        pool = squarers if rng.random() < 0.8 else adders
        i = rng.randrange(len(pool))
        if pool[i].poll() is None:
            pool[i].send_signal(signal.SIGKILL)
            pool[i].wait(5)
            kills += 1
        pool[i] = procs.worker(
            CHAOS, "squarer" if pool is squarers else "adder", url, "--lease", LEASE
        )
    assert run.wait(timeout=1) == sum(i * i for i in range(n))
    jobs = mycelium.store.list_jobs(run.id)
    squares = [j for j in jobs if j.task == "square"]
    assert len(squares) == n  # expanded once, whatever was killed
    assert len({j.key for j in squares}) == n
    assert Counter(j.status for j in jobs) == {"succeeded": len(jobs)}
    assert stored_results(url, run.id) in (None, len(jobs))
    lines = log.read_text().split("\n")[:-1]
    assert {int(line.split()[1]) for line in lines if line.startswith("square")} == set(range(n))
    report(
        "dynamic map", elements=n, kills=kills, executions=len(lines),
        seconds=round(time.monotonic() - started, 1),
    )  # fmt: skip


def test_a_helper_runs_once_when_the_worker_of_its_consumer_is_killed(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    module = chaos()
    mycelium = connect(url)
    log = tmp_path / "helped.log"
    adder = procs.worker(CHAOS, "adder", url, "--lease", LEASE)
    first = procs.worker(CHAOS, "squarer", url, "--lease", LEASE)
    run = mycelium.submit(module.helped, str(log), 5, 2.0)

    def squaring() -> bool:
        return any(
            j.task == "square" and j.status == "running" for j in mycelium.store.list_jobs(run.id)
        )

    wait_until(squaring, 30, "the helper's consumer to start")
    first.send_signal(signal.SIGKILL)
    assert first.wait(5) == -signal.SIGKILL
    procs.worker(CHAOS, "squarer", url, "--lease", LEASE)
    assert run.wait(timeout=90) == 100  # sum(range(5)) ** 2
    lines = log.read_text().split("\n")[:-1]
    assert lines.count("helper 5") == 1, lines  # once, though its consumer ran twice
    (square,) = [j for j in mycelium.store.list_jobs(run.id) if j.task == "square"]
    assert square.attempts == 2
    assert procs.stop(adder) == 0


def test_a_worker_paused_past_its_lease_whose_taker_is_killed_takes_the_job_back(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    # The livelock of issue 15: the paused worker remembered the job it lost and, once the
    # taker died, claimed and released it in a tight loop, forever.
    folder = tmp_path / "work"
    folder.mkdir()
    mycelium = connect(url)
    started = time.monotonic()
    first = procs.worker(ELVES_PATH, "blocker", url, "--lease", LEASE)
    run = mycelium.submit(elves().blocked, str(folder))
    marks = folder / f"started.{first.pid}"
    wait_until(marks.exists, 20, "the first worker to start the job")
    first.send_signal(signal.SIGSTOP)
    try:
        taker = procs.worker(ELVES_PATH, "blocker", url, "--lease", LEASE)
        wait_until((folder / f"started.{taker.pid}").exists, 20, "a second worker to take over")
        taker.send_signal(signal.SIGKILL)
        assert taker.wait(5) == -signal.SIGKILL
    finally:
        first.send_signal(signal.SIGCONT)
    # The taker's lease runs out; the first worker must claim the job and run it again.
    wait_until(lambda: len(marks.read_text().split()) == 2, 20, "the first worker to rerun it")
    cpu = cpu_seconds(first.pid)
    time.sleep(1.5)
    spent = cpu_seconds(first.pid) - cpu
    (folder / "release").touch()
    assert run.wait(timeout=20) == "done"
    seconds = time.monotonic() - started
    assert spent < 0.5, f"the first worker spent {spent:.2f} s of CPU holding one blocked job"
    [job] = settled_once(mycelium, run.id)
    full = mycelium.store.get_job(job)
    assert full is not None
    assert full.attempts == 3
    assert len(full.history) < 12, full.history  # no claim/release loop in the history
    assert procs.stop(first) == 0, procs.output(first)
    report(
        "SIGSTOP past lease, taker killed",
        backend=url.partition(":")[0],
        attempts=full.attempts,
        events=len(full.history),
        cpu_while_blocked=round(spent, 3),
        seconds=round(seconds, 1),
    )


def test_elfc_run_keeps_its_run_alive_through_repeated_kills_of_its_workers(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    # It used to give up after three restarts in all: seven kills in five seconds cancelled
    # the run, saying an error had been "printed above" when none had.
    log = tmp_path / "fan.log"
    n = 600
    started = time.monotonic()
    runner = procs.elfc(
        *("run", f"{CHAOS}:fan", "--mycelium", url, "-a", f"log={log}", "-a", f"n={n}"),
        *("-a", "groups=6", "-a", "pause=0.01", "--replicas", "squarer=2"),
        env={"ELFC_LEASE": LEASE},
    )
    mycelium = connect(url)
    wait_until(lambda: len(mycelium.store.list_workers()) >= 3, 30, "elfc run's workers")
    kills = 0
    rng = random.Random(7)
    while kills < 8 and runner.poll() is None:
        pids = worker_pids(procs, runner.pid)
        if pids:
            os.kill(rng.choice(pids), signal.SIGKILL)
            kills += 1
        time.sleep(0.6)
    assert runner.wait(90) == 0, procs.output(runner)
    seconds = time.monotonic() - started
    out = procs.output(runner)
    assert json.loads(out.strip().splitlines()[-1]) == sum(i * i for i in range(n)), out
    assert kills == 8
    assert "was killed by SIGKILL; restarting" in out
    [run_info] = mycelium.store.list_runs(1)
    settled_once(mycelium, run_info.id)
    report("kill -9 of elfc run's workers", kills=kills, jobs=n + 7, seconds=round(seconds, 1))


def worker_pids(procs: Processes, parent: int) -> list[int]:
    """The live worker processes ``elfc run`` (process ``parent``) started."""
    found = []
    for pid in procs.strays():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == parent and b"worker" in cmdline:
            found.append(pid)
    return found


def test_kill_9_of_elfc_run_leaves_no_orphan_workers_and_the_run_can_be_finished(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    log = tmp_path / "fan.log"
    n = 60
    runner = procs.elfc(
        *("run", f"{CHAOS}:fan", "--mycelium", url, "-a", f"log={log}", "-a", f"n={n}"),
        *("-a", "pause=0.05", "--replicas", "squarer=2"),
        env={"ELFC_LEASE": LEASE},
    )
    mycelium = connect(url)
    wait_until(log.exists, 30, "elfc run's workers to run jobs")
    orphans = worker_pids(procs, runner.pid)
    assert len(orphans) == 3
    runner.send_signal(signal.SIGKILL)
    assert runner.wait(5) == -signal.SIGKILL
    killed = time.monotonic()
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in orphans),
        15,
        "the orphaned workers to stop",
    )
    gone_after = time.monotonic() - killed
    [run_info] = mycelium.store.list_runs(1)
    assert run_info.status == "running"  # nobody cancelled it: other workers may finish it
    for elf in ("squarer", "adder"):
        procs.worker(CHAOS, elf, url, "--lease", LEASE)
    run = mycelium.run(run_info.id)
    assert run.wait(timeout=60) == sum(i * i for i in range(n))
    settled_once(mycelium, run.id)
    report("kill -9 of elfc run", orphans=len(orphans), stopped_within=round(gone_after, 2))


def test_a_job_that_kills_every_worker_fails_after_a_bounded_number_of_deaths(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    log = tmp_path / "crash.log"
    started = time.monotonic()
    result = procs.call(
        *("run", f"{CHAOS}:crashing", "--mycelium", url, "-a", f"log={log}"),
        env={"ELFC_LEASE": "0.5"},  # the shortest: each death costs a lease
        timeout=90,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "raised WorkerLost" in result.stderr
    assert f"stopped {MAX_LOST_LEASES} times" in result.stderr
    assert "was killed by SIGKILL" in result.stderr
    # The failure names the last worker, and elfc run says how that process ended.
    [lost] = [line for line in result.stderr.splitlines() if "raised WorkerLost" in line]
    pid = lost.rsplit(" the last was ", 1)[1].split(":")[1]
    assert f"    worker process {pid} was killed by SIGKILL" in result.stderr, result.stderr
    crashes = [line for line in log.read_text().splitlines() if line.startswith("crash")]
    assert len(crashes) == MAX_LOST_LEASES
    mycelium = connect(url)
    [run_info] = mycelium.store.list_runs(1)
    assert run_info.status == "failed"
    by_task = {j.task: j for j in mycelium.store.list_jobs(run_info.id)}
    assert by_task["crash"].status == "failed" and by_task["fine"].status == "succeeded"
    assert seconds < 60
    report("crash loop", deaths=len(crashes), seconds=round(seconds, 1))


# -- damaged rows (SQLite: the test writes into the file) ------------------------------------


def damage(url: str, run_id: str, key: str, args: str) -> None:
    """Overwrite the stored arguments of job ``key`` of a run, as an attacker or a disk might."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:
        (no,) = con.execute(
            "SELECT j.no FROM jobs j JOIN runs r ON r.no = j.run_no WHERE r.id = ? AND j.key = ?",
            (run_id, key),
        ).fetchone()
        con.execute("UPDATE job_payloads SET args = ? WHERE job = ?", (args, no))


def test_damaged_and_hostile_rows_are_failed_and_never_block_the_queue(
    procs: Processes, sqlite: str, tmp_path: Path
) -> None:
    module = chaos()
    mycelium = connect(sqlite)
    log = tmp_path / "fan.log"
    run = mycelium.submit(module.fan, str(log), 20, 2, 0.0)
    keys = sorted(j.key for j in mycelium.store.list_jobs(run.id) if j.task == "square")
    deep = "[" * 5000 + "]" * 5000  # deeper than any worker can decode
    hostile = {
        keys[0]: "not JSON at all",
        keys[1]: deep,
        keys[2]: '{"an": "object, not an array"}',
        keys[3]: json.dumps([str(log), {"bin": ["**", 10, 50000000]}, 0.0]),  # hangs a GIL
        keys[4]: json.dumps([str(log), {"bin": ["*", "A", 10**9]}, 0.0]),  # 1 GB from 60 bytes
    }
    for key, args in hostile.items():
        damage(sqlite, run.id, key, args)
    started = time.monotonic()
    squarer = procs.worker(CHAOS, "squarer", sqlite, "--lease", LEASE)
    adder = procs.worker(CHAOS, "adder", sqlite, "--lease", LEASE)
    assert mycelium.store.wait_for_run(run.id, 30) == "failed"
    seconds = time.monotonic() - started
    jobs = {j.key: j for j in mycelium.store.list_jobs(run.id)}
    for key in hostile:
        assert jobs[key].status == "failed", jobs[key]
    squares = [j for j in jobs.values() if j.task == "square"]
    assert sum(j.status == "succeeded" for j in squares) == len(squares) - len(hostile)
    failures = {key: mycelium.store.get_job(jobs[key].id) for key in hostile}
    types = {key: f.failure.error_type for key, f in failures.items() if f and f.failure}
    assert types == {
        keys[0]: "UndecodableJob",
        keys[1]: "UndecodableJob",
        keys[2]: "UndecodableJob",
        keys[3]: "ExpressionError",
        keys[4]: "ExpressionError",
    }
    assert squarer.poll() is None and adder.poll() is None  # the workers live on
    # ...and serve the next run of the same elves at once.
    again = mycelium.submit(module.fan, str(log), 10, 2, 0.0)
    assert again.wait(timeout=20) == sum(i * i for i in range(10))
    assert seconds < 15
    # The damaged rows can be read, and say why they failed.
    listed = procs.call("jobs", run.id, "--mycelium", sqlite)
    assert listed.returncode == 0, listed.stderr
    assert sum(line.count("failed") for line in listed.stdout.splitlines()) >= len(hostile)
    shown = procs.call("show", jobs[keys[1]].id, "--mycelium", sqlite)
    assert shown.returncode == 0, shown.stderr
    assert "UndecodableJob" in shown.stdout and "cannot be decoded" in shown.stdout
    assert "Traceback" not in listed.stderr + shown.stderr
    report("poison rows", rows=len(hostile), seconds=round(seconds, 1))


def test_nested_derives_run_up_to_the_limit_and_beyond_it_are_refused_at_submission(
    procs: Processes, sqlite: str, tmp_path: Path
) -> None:
    log = tmp_path / "deep.log"
    ok = procs.call("run", f"{CHAOS}:chained", "--mycelium", sqlite, "-a", f"log={log}")
    assert (ok.returncode, ok.stdout.strip()) == (0, str(151 * 151)), ok.stderr
    refused = procs.call("run", f"{CHAOS}:too_deep", "--mycelium", sqlite, "-a", f"log={log}")
    assert refused.returncode == 1
    assert f"more than the {MAX_NESTING} a worker decodes" in refused.stderr, refused.stderr
    assert "RecursionError" not in refused.stderr and "Traceback" not in refused.stderr
    mycelium = connect(sqlite)
    assert len(mycelium.store.list_runs()) == 1  # nothing of the refused run was written
    mycelium.close()


def test_a_stopped_replica_parent_exits_0_even_before_its_workers_handle_signals(
    procs: Processes, sqlite: str
) -> None:
    # It used to exit 241 (-15): a replica killed by the forwarded SIGTERM before it could
    # handle it counted as a failure.
    parent = procs.worker(CHAOS, "squarer", sqlite, "--replicas", "2")
    wait_until(lambda: worker_pids(procs, parent.pid), 20, "the first replica", every=0.001)
    parent.send_signal(signal.SIGTERM)  # the replica is starting: no handler of its own yet
    assert parent.wait(20) == 0, procs.output(parent)
    assert procs.strays() == []


def test_damaged_run_rows_and_templates_read_as_messages_not_tracebacks(
    procs: Processes, sqlite: str, tmp_path: Path
) -> None:
    log = tmp_path / "fan.log"
    done = procs.call("run", f"{CHAOS}:fan", "--mycelium", sqlite, "-a", f"log={log}", "-a", "n=4")
    assert done.returncode == 0, done.stderr
    mycelium = connect(sqlite)
    [info] = mycelium.store.list_runs()
    [job, *_] = mycelium.store.list_jobs(info.id)
    with sqlite3.connect(sqlite.removeprefix("sqlite:///")) as con:
        con.execute("UPDATE runs SET arguments = '{not json', output = x'ff'")
        con.execute("UPDATE graphs SET template = '[[[['")
    runs = procs.call("runs", "--json", "--mycelium", sqlite)
    assert runs.returncode == 0, runs.stderr
    [row] = json.loads(runs.stdout)
    assert "stored arguments or output are damaged" in row["error"], row
    shown = procs.call("show", job.id, "--mycelium", sqlite)
    assert shown.returncode == 0, shown.stderr  # without the line that made it
    graph = procs.call("graph", "--run", info.id, "--mycelium", sqlite)
    assert graph.returncode == 1
    assert "a stored graph template is damaged" in graph.stderr, graph.stderr
    with pytest.raises(MyceliumError, match="output are damaged"):
        mycelium.output(info.id)
    for done in (runs, shown, graph):
        assert "Traceback" not in done.stderr
    mycelium.close()
