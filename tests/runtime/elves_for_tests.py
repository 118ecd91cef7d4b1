"""Elves and pipelines that the runtime and CLI tests run in real worker processes.

Workers import this file by path (``elfc worker tests/runtime/elves_for_tests.py --elf NAME``),
and the tests load it the same way (``elfc.targets.load_module``), so both sides see one module
named ``elves_for_tests`` and the same task revisions.

The tasks talk to the tests through files only, in a folder that the pipeline passes them as an
argument: ``started.<pid>`` says a task has begun (so a test knows a worker is mid-job), a
``release`` file unblocks it, and append-only files count how many times something ran.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TypedDict

from elfc import elf, named, pipeline, task

PATIENCE = 60.0
"""Longest a blocked task waits for its release file before giving up (a test's own deadline
is shorter: this only keeps a forgotten worker from blocking forever)."""


def append_line(path: str | Path, text: str) -> None:
    """Append ``text`` as one line with a single ``O_APPEND`` write (atomic between processes)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text}\n".encode())
    finally:
        os.close(fd)


@elf
class Blocker:
    """Runs until told to stop, so a test can act on a worker that is mid-job."""

    @task
    def hold(self, folder: str, tag: str) -> str:
        """Mark ``started.<pid>``, wait for ``folder/release``, log ``<pid>`` to ``ran``."""
        here = Path(folder)
        append_line(here / f"started.{os.getpid()}", tag)
        deadline = time.monotonic() + PATIENCE
        while not (here / "release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody created {here / 'release'}")
            time.sleep(0.01)
        append_line(here / "ran", f"{os.getpid()} {tag}")
        return tag


@elf
class Appender:
    """Logs each key it is given to a file, one ``O_APPEND`` line per call."""

    @task
    def add(self, path: str, key: int) -> int:
        append_line(path, str(key))
        return key


@elf
class Summer:
    @task
    def total(self, values: list[int]) -> int:
        return sum(values)

    @task
    def positive(self, values: list[int]) -> list[bool]:
        return [v > 0 for v in values]


@elf
class Flaky:
    """Fails its first ``fail_times`` attempts (counted in a file), then succeeds."""

    @task(retries=2, retry_delay=0.05)
    def attempt(self, counter: str, fail_times: int) -> int:
        append_line(counter, str(time.time()))
        n = len(Path(counter).read_text(encoding="utf-8").splitlines())
        if n <= fail_times:
            raise RuntimeError(f"failing on purpose, {fail_times} times")
        return n


@elf
class Sleeper:
    @task(timeout=0.5)
    def nap(self, seconds: float) -> float:
        """Blocks in C (``time.sleep``) for ``seconds``: past its timeout when > 0.5."""
        time.sleep(seconds)
        return seconds

    @task(timeout=0.5)
    def spin(self, seconds: float) -> float:
        """Runs Python code for ``seconds``: past its timeout when > 0.5."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return seconds

    @task(timeout=0.5, retries=1, retry_delay=0.05)
    def nap_once(self, counter: str, seconds: float) -> int:
        """Blocks in C for ``seconds`` on its first attempt (counted in a file), not after."""
        append_line(counter, str(time.time()))
        attempt = len(Path(counter).read_text(encoding="utf-8").splitlines())
        if attempt == 1:
            time.sleep(seconds)
        return attempt

    @task
    def doze(self, folder: str, seconds: float) -> float:
        """Marks ``started.<pid>``, then blocks in C for ``seconds``, then logs to ``ran``."""
        append_line(Path(folder) / f"started.{os.getpid()}", "doze")
        time.sleep(seconds)
        append_line(Path(folder) / "ran", f"{os.getpid()} doze")
        return seconds


@elf
class Introspector:
    @task
    def whoami(self, pause: float) -> list[str]:
        """The job and worker ``current_job()`` names in the thread running this task."""
        from elfc.runtime.context import current_job

        before = current_job()
        time.sleep(pause)  # let other threads run their tasks meanwhile
        job = current_job()
        assert job is not None and job == before
        return [job.job, job.worker, job.task]


@elf
class Broken:
    @task
    def explode(self, x: int) -> int:
        raise ValueError(f"cannot handle {x}")

    @task
    def reject(self, text: str) -> str:
        raise ValueError(f"rejected {text}")

    @task
    def quit(self, code: int) -> int:
        sys.exit(code)


blocker = named(Blocker, "blocker")
appender = named(Appender, "appender")
summer = named(Summer, "summer")
flaky = named(Flaky, "flaky")
sleeper = named(Sleeper, "sleeper")
broken = named(Broken, "broken")
introspector = named(Introspector, "introspector")


@pipeline
def blocked(folder: str, tag: str = "done") -> str:
    """One job that holds its worker until ``folder/release`` exists."""
    return blocker.hold(folder, tag)


@pipeline
def holds(folder: str, n: int = 2) -> list[str]:
    """``n`` holding jobs on one elf, tagged ``job0``, ``job1``, ..."""
    return [blocker.hold(folder, f"job{i}") for i in range(n)]


@pipeline
def held_then_more(folder: str, more: int = 3) -> int:
    """A holding job, ``more`` jobs queued behind it on the same elf, and a reduce waiting."""
    first = blocker.hold(folder, "first")
    queued = [blocker.hold(folder, f"queued{i}") for i in range(more)]
    return summer.total([len(first), *[len(q) for q in queued]])


@pipeline
def fanout(path: str, n: int = 500) -> int:
    """``n`` independent jobs that each log their key, and one sum over all of them."""
    keys = [appender.add(path, i) for i in range(n)]
    return summer.total(keys)


@pipeline
def retried(counter: str, fail_times: int = 2) -> int:
    """A task that fails ``fail_times`` times (it has two retries), and a job that reads it."""
    return summer.total([flaky.attempt(counter, fail_times)])


@pipeline
def naps(first: float = 5.0, second: float = 0.0) -> list[float]:
    """Two naps on one elf: the first may overrun its 0.5 s timeout."""
    return [sleeper.nap(first), sleeper.nap(second)]


@pipeline
def spins(first: float = 5.0, second: float = 0.0) -> list[float]:
    """Two busy loops on one elf: the first may overrun its 0.5 s timeout."""
    return [sleeper.spin(first), sleeper.spin(second)]


@pipeline
def nap_retried(counter: str, seconds: float = 3.0) -> int:
    """A task whose first attempt overruns its timeout in C code; it has one retry."""
    return sleeper.nap_once(counter, seconds)


@pipeline
def dozing(folder: str, seconds: float = 30.0) -> float:
    """One task that blocks in C code for ``seconds`` (no timeout)."""
    return sleeper.doze(folder, seconds)


@pipeline
def whoami(n: int = 10, pause: float = 0.02) -> list[list[str]]:
    """``n`` jobs that each report the job their thread says it is running."""
    return [introspector.whoami(pause) for _ in range(n)]


@pipeline
def failing(x: int = 7) -> int:
    """A task that raises, and a job that would read its result."""
    return summer.total([broken.explode(x)])


@pipeline
def quitting(code: int = 3) -> list[int]:
    """A task that calls ``sys.exit(code)``, then one that fails as usual."""
    return [broken.quit(code), broken.explode(code)]


@pipeline
def rejecting(text: str) -> str:
    """A task that raises with ``text`` in its message (for markup-like text)."""
    return broken.reject(text)


@pipeline
def signs(values: list[int]) -> list[bool]:
    """One job whose result is a JSON list of booleans."""
    return summer.positive(values)


class Echoed(TypedDict):
    word: str
    times: int
    tags: list[str] | None


@pipeline
def echo(word: str, times: int = 1, tags: list[str] | None = None) -> Echoed:
    """No jobs: the arguments come back as the result (for ``-a`` parsing)."""
    return {"word": word, "times": times, "tags": tags}
