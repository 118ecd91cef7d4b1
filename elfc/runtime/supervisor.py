"""Start and stop worker processes, and follow a run's progress (what ``elfc run`` does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from elfc.errors import ElfcError
from elfc.model.status import FINAL_RUN_STATUSES, final_count
from elfc.mycelium.base import Mycelium, RunInfo, split_password

MAX_RESTARTS = 3


@dataclass
class WorkerProcess:
    elf: str
    argv: list[str]
    proc: subprocess.Popen[bytes]
    restarts: int = 0


@dataclass
class Supervisor:
    """Worker processes for the elves of a run, one per replica; restarts any that dies."""

    module: str
    url: str
    replicas: Mapping[str, int] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    log: IO[str] | None = None
    env: dict[str, str] | None = None

    def start(self, elves: Iterable[str]) -> None:
        url, self.env = child_url_and_env(self.url)
        for elf in sorted(set(elves)):
            for _ in range(max(1, self.replicas.get(elf, 1))):
                argv = [
                    sys.executable, "-m", "elfc", "worker", self.module, "--elf", elf,
                    "--mycelium", url, *self.extra,
                ]  # fmt: skip
                self.workers.append(WorkerProcess(elf, argv, self._spawn(argv)))

    def _spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        # Workers print to stderr: stdout carries only the run's result.
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,
            start_new_session=True,
            env=self.env,
        )

    def check(self) -> list[str]:
        """Restart workers that died; returns a note per restart."""
        notes = []
        for w in self.workers:
            code = w.proc.poll()
            if code is not None:
                if w.restarts >= MAX_RESTARTS:
                    raise ElfcError(
                        f"the worker for {w.elf!r} keeps exiting (last exit code {code}); "
                        f"its error is printed above. Try it alone: elfc {' '.join(w.argv[3:])}"
                    )
                w.restarts += 1
                notes.append(f"worker for {w.elf!r} exited with {code}; restarted")
                w.proc = self._spawn(w.argv)
        return notes

    def stop(self, grace: float = 10.0) -> None:
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for w in self.workers:
            try:
                w.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()


def child_url_and_env(url: str) -> tuple[str, dict[str, str] | None]:
    """The URL to put on a child's command line, and its environment.

    A password never goes on a command line (process lists show it): it travels in
    ``$ELFC_ARANGO_PASSWORD`` instead.
    """
    bare, password = split_password(url)
    if password is None:
        return url, None
    return bare, {**os.environ, "ELFC_ARANGO_PASSWORD": password}


class Progress:
    """Per-elf jobs done/total and failures on stderr: a live table on a terminal, else lines."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live: Any = None
        self.last_line = ""
        self.last_time = 0.0
        if self.stream.isatty() and not os.environ.get("ELFC_PLAIN_PROGRESS"):
            from rich.console import Console
            from rich.live import Live

            self.live = Live(
                console=Console(file=self.stream), refresh_per_second=8, transient=False
            )
            self.live.start()

    def update(self, info: RunInfo, notes: Iterable[str] = ()) -> None:
        for note in notes:
            self._print(note)
        if self.live is not None:
            self.live.update(_table(info))
            return
        line = _line(info)
        now = time.monotonic()
        final = info.status in FINAL_RUN_STATUSES
        if line != self.last_line and (final or now - self.last_time >= 1.0):
            print(line, file=self.stream, flush=True)
            self.last_line, self.last_time = line, now

    def _print(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def _line(info: RunInfo) -> str:
    parts = []
    for elf, counts in sorted(info.elf_counts.items()):
        total = sum(counts.values())
        failed = counts.get("failed", 0)
        parts.append(
            f"{elf} {final_count(counts)}/{total}" + (f" ({failed} failed)" if failed else "")
        )
    return (
        f"run {info.id} {info.status}: {final_count(info.counts)}/{info.total} jobs · "
        + ", ".join(parts)
    )


def _table(info: RunInfo) -> Any:
    from rich.table import Table

    table = Table(title=f"run {info.id} · {info.pipeline} · {info.status}", title_justify="left")
    for col in ("elf", "done", "total", "running", "failed", "skipped"):
        table.add_column(col, justify="right" if col != "elf" else "left")
    for elf, counts in sorted(info.elf_counts.items()):
        table.add_row(
            elf,
            str(final_count(counts)),
            str(sum(counts.values())),
            str(counts.get("running", 0)),
            str(counts.get("failed", 0)),
            str(counts.get("skipped", 0)),
        )
    return table


def follow(
    store: Mycelium,
    run_id: str,
    progress: Progress | None,
    supervisor: Supervisor | None = None,
    timeout: float | None = None,
) -> RunInfo:
    """Wait for the run to settle, updating progress and keeping workers alive."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        store.wait_for_run(run_id, 0.25)
        info = store.run_info(run_id)
        if info is None:
            raise KeyError(run_id)
        notes = supervisor.check() if supervisor is not None else []
        if progress is not None:
            progress.update(info, notes)
        if info.status in FINAL_RUN_STATUSES:
            return info
        if deadline is not None and time.monotonic() > deadline:
            return info
