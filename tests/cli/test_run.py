"""``elfc run``, ``elfc submit`` and ``elfc worker`` as a user runs them: real processes, a
SQLite file in tmp_path, stdout and stderr read separately.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest

from elfc import connect
from tests.runtime.fixtures.harness import (
    ELVES_PATH,
    REPO,
    Processes,
    opened,
    wait_until,
)

TARGET = str(ELVES_PATH)


def test_run_prints_the_result_as_one_json_line_and_progress_on_stderr(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    done = procs.call(
        "run", f"{TARGET}:fanout", "-a", f"path={keys}", "-a", "n=20", "--mycelium", url
    )

    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert json.loads(line) == sum(range(20))
    assert sorted(int(k) for k in keys.read_text().split()) == list(range(20))
    # Progress: the run's id, then a final line with every job done, per elf.
    with opened(url) as store:
        [info] = store.list_runs()
    assert f"run {info.id}: 21 jobs" in done.stderr
    assert f"run {info.id} succeeded: 21/21 jobs" in done.stderr
    assert "appender 20/20" in done.stderr and "summer 1/1" in done.stderr
    assert "elfc.runtime" not in done.stderr  # no log records at the default level
    # Its workers were stopped.
    assert procs.strays() == []


def test_run_at_debug_level_shows_what_its_workers_do_on_stderr(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    pipeline = [f"{TARGET}:fanout", "-a", f"path={keys}", "-a", "n=3", "--mycelium", url]
    done = procs.call("--log-level", "debug", "run", *pipeline)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 3  # logs never reach stdout
    with opened(url) as store:
        [info] = store.list_runs()
        [total] = [j for j in store.list_jobs(info.id) if j.task == "total"]
    success = f"job {total.id} (summer.total) succeeded"
    worker_lines = [line for line in done.stderr.splitlines() if "elfc.runtime.worker[" in line]
    assert any("DEBUG" in line and success in line for line in worker_lines), done.stderr
    assert "INFO elfc.runtime.supervisor[" in done.stderr and "stopping 2 worker" in done.stderr
    assert procs.strays() == []


def test_run_on_a_terminal_shows_a_live_table_per_elf(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def read_terminal() -> None:  # drained all along, so the child never blocks on it
        with suppress(OSError):
            while chunk := os.read(controller, 65536):
                chunks.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    argv = [
        sys.executable, "-m", "elfc", "run", f"{TARGET}:fanout", "-a", f"path={keys}",
        "-a", "n=30", "--mycelium", url,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "ELFC_PLAIN_PROGRESS"}
    try:
        done = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=terminal, cwd=REPO, env=env, timeout=60
        )
    finally:
        os.close(terminal)
        reader.join(5)
        os.close(controller)
    shown = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0, shown
    assert json.loads(done.stdout) == sum(range(30))
    assert "┃" in shown and "appender" in shown and "summer" in shown  # rich's table
    assert "succeeded" in shown
    assert procs.strays() == []  # (and any left would be killed by the fixture)


def test_run_of_a_failing_task_exits_1_with_the_traceback(procs: Processes, url: str) -> None:
    done = procs.call("run", f"{TARGET}:failing", "-a", "x=7", "--mycelium", url)

    assert done.returncode == 1
    assert done.stdout == ""
    assert "failed: 1 failed job(s)" in done.stderr
    assert "raised ValueError: cannot handle 7" in done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    assert 'raise ValueError(f"cannot handle {x}")' in done.stderr
    with opened(url) as store:
        [info] = store.list_runs()
        [failed] = store.list_jobs(info.id, "failed")
    assert info.status == "failed"
    assert f"elfc show {failed.id}" in done.stderr
    assert procs.strays() == []


def test_run_with_replicas_serves_an_elf_from_several_processes(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    # Two holding jobs and two replicas: both jobs can only be started if each replica holds one.
    folder = tmp_path / "work"
    folder.mkdir()
    run = procs.start(
        [
            sys.executable, "-m", "elfc", "run", f"{TARGET}:holds", "-a", f"folder={folder}",
            "-a", "n=2", "--replicas", "blocker=2", "--mycelium", url,
        ]
    )  # fmt: skip
    wait_until(lambda: len(list(folder.glob("started.*"))) == 2, 20, "both replicas to start a job")
    assert len({path.suffix for path in folder.glob("started.*")}) == 2
    (folder / "release").touch()
    assert run.wait(20) == 0, procs.output(run)
    assert json.loads(procs.output(run).splitlines()[-1]) == ["job0", "job1"]
    assert procs.strays() == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-a", "word=elves"], {"word": "elves", "times": 1, "tags": None}),
        (["-a", "word=3", "-a", "times=2"], {"word": "3", "times": 2, "tags": None}),
        (
            ["-a", "word=a=b", "-a", 'tags=["x", "y"]'],
            {"word": "a=b", "times": 1, "tags": ["x", "y"]},
        ),
        (["-a", 'word="quoted"'], {"word": "quoted", "times": 1, "tags": None}),
        # JSON that is not a str, for a str parameter: the text as given.
        (["-a", "word=null", "-a", "times=3"], {"word": "null", "times": 3, "tags": None}),
        (["-a", "word=[1]", "-a", "tags=null"], {"word": "[1]", "times": 1, "tags": None}),
    ],
)
def test_arguments_are_json_when_they_parse_else_strings(
    args: list[str], expected: object, procs: Processes, url: str
) -> None:
    done = procs.call("run", f"{TARGET}:echo", *args, "--mycelium", url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "wordd=x"], "has no parameter 'wordd'; its parameters: word, times, tags"),
        (["-a", "word=x", "-a", "times=many"], "-a times is not a valid `int`"),
        (["-a", "word=x", "-a", "tags=solo"], "-a tags"),
        (["-a", "times=2"], "missing a required argument: 'word'"),
        (["-a", "word"], "-a takes NAME=VALUE, not 'word'"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    args: list[str], message: str, procs: Processes, url: str, tmp_path: Path
) -> None:
    done = procs.call("run", f"{TARGET}:echo", *args, "--mycelium", url)
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr
    assert not (tmp_path / "m.db").exists()  # nothing was submitted


PICKY = """
import sys

from elfc import elf, named, pipeline, task

# A worker process dies before it can claim anything (an elf whose __init__ raises fails its
# jobs instead): elfc run, which imports this module too, submits as usual.
if sys.argv[1:2] == ["worker"]:
    sys.exit("picky will not serve on this machine")


@elf
class Picky:
    @task
    def one(self) -> int:
        return 1


picky = named(Picky, "picky")


@pipeline
def one() -> int:
    return picky.one()
"""


def test_run_gives_up_on_a_worker_that_keeps_exiting(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    module = tmp_path / "picky_elf.py"
    module.write_text(PICKY)
    done = procs.call("run", f"{module}:one", "--mycelium", url)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "picky will not serve on this machine" in done.stderr
    assert "the worker for 'picky' exited with 1, its 5th exit in 60 s" in done.stderr
    assert "printed above" not in done.stderr
    assert f"Try it alone: elfc worker {module} --elf picky --mycelium {url}" in done.stderr
    assert procs.strays() == []


def test_submit_prints_the_run_id_and_workers_started_later_run_it(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    keys = tmp_path / "keys"
    done = procs.call(
        "submit", f"{TARGET}:fanout", "-a", f"path={keys}", "-a", "n=5", "--mycelium", url
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert len(done.stdout.splitlines()) == 1
    assert "6 jobs for elves appender, summer" in done.stderr

    m = connect(url)
    try:
        assert m.run(run_id).status() == "running"
        for elf in ("summer", "appender"):
            procs.worker(ELVES_PATH, elf, url)
        assert m.run(run_id).wait(timeout=20) == sum(range(5))
    finally:
        m.close()


def test_worker_for_an_unknown_elf_says_which_it_knows(procs: Processes, url: str) -> None:
    done = procs.call("worker", TARGET, "--elf", "nobody", "--mycelium", url)
    assert done.returncode == 1
    assert "defines no handle named 'nobody'" in done.stderr
    assert "appender" in done.stderr and "blocker" in done.stderr


def test_sigterm_to_run_cancels_the_run_and_stops_its_workers(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    # A short lease: the worker hears of the cancellation by heartbeat, every lease / 3 s.
    run = procs.start(
        [
            sys.executable, "-m", "elfc", "run", f"{TARGET}:blocked", "-a", f"folder={folder}",
            "--mycelium", url,
        ],
        env={"ELFC_LEASE": "1.5"},
    )  # fmt: skip
    started = wait_until(lambda: list(folder.glob("started.*")), 20, "the job to start")
    worker_pid = int(started[0].suffix[1:])

    t0 = time.monotonic()
    run.send_signal(signal.SIGTERM)
    code = run.wait(20)
    assert code == 128 + signal.SIGTERM
    assert time.monotonic() - t0 < 15
    wait_until(lambda: not _alive(worker_pid), 5, "the worker to exit")
    assert procs.strays() == []
    with opened(url) as store:
        [info] = store.list_runs()
    assert info.status == "cancelled"
    assert info.counts["cancelled"] == 1


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_run_timeout_cancels_and_exits_1(procs: Processes, url: str, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    done = procs.call(
        "run", f"{TARGET}:blocked", "-a", f"folder={folder}", "--timeout", "1", "--mycelium", url,
        env={"ELFC_LEASE": "1.5"},
    )  # fmt: skip
    assert done.returncode == 1
    assert "timed out after 1.0 s" in done.stderr
    assert procs.strays() == []
    with opened(url) as store:
        [info] = store.list_runs()
    assert info.status == "cancelled"
    assert os.listdir(folder) != []  # the job did start


def test_run_timeout_is_honoured_within_a_second_with_the_default_lease(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    run = procs.start(
        [
            sys.executable, "-m", "elfc", "run", f"{TARGET}:blocked", "-a", f"folder={folder}",
            "--timeout", "1", "--mycelium", url,
        ],
        env={"ELFC_LEASE": "30"},  # heartbeats every 5 s: too late to tell the job to stop
    )  # fmt: skip
    wait_until(lambda: list(folder.glob("started.*")), 30, "the job to start")
    started = time.monotonic()
    assert run.wait(30) == 1
    assert time.monotonic() - started < 2.0  # the 1 s timeout, then the job given back
    assert "timed out after 1.0 s" in procs.output(run)
    assert re.search(r"run \w+ cancelled: 1/1 jobs", procs.output(run))  # the last frame
    assert procs.strays() == []
    with opened(url) as store:
        [info] = store.list_runs()
    assert info.status == "cancelled" and info.counts["cancelled"] == 1


def test_run_of_a_pipeline_that_does_not_compile_shows_every_diagnostic_with_its_help(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    source = tmp_path / "branchy.py"
    source.write_text(
        "from elfc import elf, named, pipeline, task\n\n\n"
        "@elf\nclass E:\n    @task\n    def f(self, x: int) -> int:\n        return x\n\n\n"
        "e = named(E, 'e')\n\n\n"
        "@pipeline\ndef p(n: int) -> int:\n    y = e.f(n)\n    for i in range(n):\n"
        "        if e.f(i) > 2:\n            break\n"
        "    small = [i for i in range(n) if i < y]\n    return y + len(small)\n",
        encoding="utf-8",
    )
    done = procs.call("run", f"{source}:p", "-a", "n=1", "--mycelium", url)
    assert done.returncode == 1 and done.stdout == ""
    assert "the pipeline does not compile (2 problem(s))" in done.stderr
    assert done.stderr.count("ELF124") == 1 and done.stderr.count("ELF103") == 1
    assert done.stderr.count("= help:") == 2
    assert "18 |         if e.f(i) > 2:" in done.stderr
    assert "20 |     small = [i for i in range(n) if i < y]" in done.stderr


FUSSY = """
from elfc import elf, named, pipeline, task


@elf
class Fussy:
    def __init__(self, path: str) -> None:
        self.data = open(path).read()

    @task
    def size(self, n: int) -> int:
        return len(self.data) + n


fussy = named(Fussy, "fussy_for_tests", path="/nonexistent/fussy.txt")


@pipeline
def sizes(n: int = 2) -> list[int]:
    return [fussy.size(i) for i in range(n)]
"""


def test_an_elf_that_cannot_start_fails_its_jobs_with_its_traceback_in_one_line(
    procs: Processes, url: str, tmp_path: Path
) -> None:
    source = tmp_path / "fussy.py"
    source.write_text(FUSSY, encoding="utf-8")
    done = procs.call("run", f"{source}:sizes", "--mycelium", url)
    assert done.returncode == 1
    assert "failed: 2 failed job(s)" in done.stderr
    assert "elf 'fussy_for_tests' (Fussy) could not start: [Errno 2]" in done.stderr
    assert 'fussy.py", line 8, in __init__' in done.stderr  # the user's frame, stored
    with opened(url) as store:
        [info] = store.list_runs()
        (failure,) = store.list_failures()
    assert info.status == "failed" and info.counts["failed"] == 2 and failure.count == 2
    assert failure.error_type == "FileNotFoundError" and "runpy" not in failure.traceback

    submitted = procs.call("submit", f"{source}:sizes", "--mycelium", url)
    alone = procs.call("worker", str(source), "--elf", "fussy_for_tests", "--mycelium", url)
    assert alone.returncode == 1
    assert (
        alone.stderr.strip()
        .splitlines()[-1]
        .startswith("elfc worker: error: elf 'fussy_for_tests' (Fussy) could not start")
    )
    assert "Traceback" not in alone.stderr and "runpy" not in alone.stderr
    with opened(url) as store:
        assert store.run_status(submitted.stdout.strip()) == "failed"
