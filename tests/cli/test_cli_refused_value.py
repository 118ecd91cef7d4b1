"""A run whose value its pipeline's return annotation refuses, as a user sees it: real ``elfc``
processes on a SQLite file and on a PostgreSQL server. ``elfc run`` fails it, and ``runs``,
``show``, ``failures`` and ``result`` say so afterwards, from the mycelium."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runtime.fixtures.harness import Processes, opened, sqlite_url

MODULE = """
from typing import Any

from elfc import elf, named, pipeline, task


@elf
class Loose:
    @task
    def make(self) -> Any:
        return "x"


loose = named(Loose, "loose")


@pipeline
def count() -> int:
    return loose.make()
"""

MESSAGE = "the result of pipeline bad:count is not a valid `int`: Expected `int`, got `str`"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        pg_url: str = request.getfixturevalue("pg_url")
        return pg_url
    return sqlite_url(tmp_path)


def test_elfc_run_fails_the_run_and_every_command_shows_why(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(MODULE, encoding="utf-8")
    ran = procs.call("run", f"{bad}:count", "--mycelium", url)
    assert ran.returncode == 1 and ran.stdout == ""
    with opened(url) as store:
        run_id = store.list_runs(1)[0].id
    reason = f"its value was refused: ValueCrossingError: {MESSAGE}"
    assert f"elfc run: error: run {run_id} failed: {reason}" in ran.stderr

    runs = procs.call("runs", "--json", "--mycelium", url)
    (listed,) = json.loads(runs.stdout)
    assert (listed["id"], listed["status"], listed["error"]) == (run_id, "failed", reason)
    assert listed["counts"]["succeeded"] == 1 and listed["counts"]["failed"] == 0
    assert listed["failure"]["error_type"] == "ValueCrossingError"
    assert listed["failure"]["message"] == MESSAGE
    table = procs.call("runs", "--mycelium", url)
    assert run_id in table.stdout and "failed" in table.stdout

    show = procs.call("show", run_id, "--mycelium", url)
    assert show.returncode == 0, show.stderr
    assert f"run {run_id}  bad:count  failed" in show.stdout
    assert f"failure    ValueCrossingError: {MESSAGE}" in show.stdout
    shown = json.loads(procs.call("show", run_id[:8], "--json", "--mycelium", url).stdout)
    assert shown["id"] == run_id and shown["failure"]["message"] == MESSAGE

    failures = procs.call("failures", "--json", "--mycelium", url)
    (row,) = json.loads(failures.stdout)
    assert (row["run"], row["error_type"], row["message"]) == (
        run_id,
        "ValueCrossingError",
        MESSAGE,
    )
    assert row["task"] == "bad:count" and row["count"] == 1
    readable = procs.call("failures", "--mycelium", url)
    assert f"run {run_id} (bad:count): its value was refused" in readable.stdout

    result = procs.call("result", run_id, "--mycelium", url)
    assert result.returncode == 1 and result.stdout == ""
    assert f"elfc result: run {run_id} failed: {reason}" in result.stderr
    with opened(url) as store:
        info = store.run_info(run_id)
        assert info is not None and info.failure is not None and info.status == "failed"


def test_the_worker_that_finishes_a_submitted_run_fails_it_unread(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    """``elfc submit`` and a worker of the pipeline's module: nobody reads the value, yet the
    run is recorded failed (the worker evaluates it once the run has succeeded)."""
    bad = tmp_path / "bad.py"
    bad.write_text(MODULE, encoding="utf-8")
    submitted = procs.call("submit", f"{bad}:count", "--mycelium", url)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    worker = procs.worker(bad, "loose", url, "--idle-exit", "1")
    assert worker.wait(timeout=60) == 0
    with opened(url) as store:
        info = store.run_info(run_id)
    assert info is not None and info.status == "failed" and info.failure is not None
    assert info.failure.message == MESSAGE
    result = procs.call("result", run_id, "--json", "--mycelium", url)
    assert result.returncode == 1 and result.stdout == ""
    assert f"run {run_id} failed: its value was refused: ValueCrossingError" in result.stderr
