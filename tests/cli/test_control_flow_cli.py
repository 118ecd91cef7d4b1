"""Branches and loops on task results from the outside: `elfc run` with worker processes,
then what `elfc jobs`, `elfc show`, `elfc graph --run` and `elfc check -v` say about them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runtime.fixtures.harness import REPO, Processes, sqlite_url

FIXTURE = REPO / "tests" / "runtime" / "fixtures" / "control_flow.py"


def test_a_branch_run_by_elfc_run_shows_its_untaken_job(procs: Processes, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    done = procs.call("run", f"{FIXTURE}:if_elif_else", "-a", "n=9", "--mycelium", url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "large:72"
    [run] = json.loads(procs.call("runs", "--json", "--mycelium", url).stdout)
    assert run["status"] == "succeeded"
    jobs = json.loads(procs.call("jobs", run["id"], "--json", "--mycelium", url).stdout)
    by_status: dict[str, list[str]] = {}
    for job in jobs:
        by_status.setdefault(job["status"], []).append(job["task"])
    assert by_status["not_taken"] == ["double"]  # the `elif` arm's job, recorded, never run
    assert "@join" in by_status["succeeded"]
    shown = procs.call("show", run["id"], "--mycelium", url).stdout
    assert "1 not_taken" in shown
    graph = procs.call("graph", f"{FIXTURE}:if_elif_else", "--run", run["id"], "--format",
                       "mermaid", "--mycelium", url)  # fmt: skip
    assert graph.returncode == 0, graph.stderr
    assert "branch on a task result" in graph.stdout
    assert '["then"]' in graph.stdout and '["else"]' in graph.stdout  # the arms, labelled
    assert "1 not_taken" in graph.stdout
    assert "not shown" not in graph.stderr


def test_a_loop_over_a_task_result_expands_one_job_per_element(
    procs: Processes, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path)
    done = procs.call("run", f"{FIXTURE}:map_then_reduce", "-a", "n=30", "--mycelium", url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == sum(2 * x for x in range(30))
    [run] = json.loads(procs.call("runs", "--json", "--mycelium", url).stdout)
    jobs = json.loads(procs.call("jobs", run["id"], "--json", "--mycelium", url).stdout)
    doubles = sorted(j["key"] for j in jobs if j["task"] == "double")
    assert doubles == sorted(f"r1/n2#{i}" for i in range(30))


def test_check_v_counts_the_jobs_that_expand_at_run_time_as_a_formula(procs: Processes) -> None:
    done = procs.call("check", "-v", str(FIXTURE))
    assert done.returncode == 0, done.stderr + done.stdout
    lines = {
        line.split(": ", 1)[1].split("(")[0]: line.split(") makes ", 1)[1]
        for line in done.stdout.splitlines()
        if ": " in line and " makes " in line
    }
    tail = " as its branches, loops and calls on task results run"
    assert lines["map_then_reduce"] == "2 jobs + len(items)" + tail
    assert lines["if_without_else"] == "2 jobs + (1 or 0)" + tail
    assert lines["branch_inside_loop"] == "1 job + (2 + (1 or 0))·len(items)" + tail
    assert lines["poll_until_done"] == "2 jobs + 2 per poll" + tail
    assert lines["conditional_expression"] == "2 jobs"
    # A branch that returns takes the rest of the pipeline with it: no formula then.
    assert lines["quality_gate"] == "1 job, and more" + tail
