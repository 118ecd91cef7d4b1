"""``elfc run``'s progress on stderr: a live table per elf on a terminal, else a line of text.

The lines are for logs and CI: one at most every second while the run changes, and always the
final one. ``ELFC_PLAIN_PROGRESS=1`` asks for lines on a terminal too. The numbers come from
:mod:`elfc.views`; this module only lays them out.

Usage::

    progress = Progress()
    try:
        info = follow(store, run_id, supervisor=supervisor, on_update=progress.update)
    finally:
        progress.close()
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from elfc.model.status import FINAL_RUN_STATUSES
from elfc.views import elf_progress, run_summary

if TYPE_CHECKING:
    from rich.table import Table

    from elfc.model.records import LogRecord, RunInfo

__all__ = ["Progress", "output_lines", "progress_line", "progress_table"]

LINE_EVERY = 1.0
"""Seconds between two progress lines (the final line is never held back)."""


class Progress:
    """Per-elf jobs done/total and failures on ``stream`` (stderr by default)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.live: Any = None
        self.last_line = ""
        self.last_time = 0.0
        if self.stream.isatty() and not os.environ.get("ELFC_PLAIN_PROGRESS"):
            # rich only when it draws: piped runs never import it.
            from rich.console import Console
            from rich.live import Live

            self.live = Live(
                console=Console(file=self.stream), refresh_per_second=8, transient=False
            )
            self.live.start()

    def update(self, info: RunInfo, notes: Iterable[str] = ()) -> None:
        """Show the run as it now is, after ``notes`` (such as a restarted worker)."""
        for note in notes:
            self._print(note)
        elapsed = time.monotonic() - self.started
        if self.live is not None:
            self.live.update(progress_table(info, elapsed))
            return
        line = progress_line(info, elapsed)
        now = time.monotonic()
        final = info.status in FINAL_RUN_STATUSES
        if line != self.last_line and (final or now - self.last_time >= LINE_EVERY):
            print(line, file=self.stream, flush=True)
            self.last_line, self.last_time = line, now

    def output(self, lines: Iterable[str]) -> None:
        """Task output: above the live table (which is redrawn below it), else as lines."""
        for line in lines:
            self._print(line)

    def _print(self, text: str) -> None:
        if self.live is not None:
            # Task text and notes are printed as they are: never markup, never highlighted.
            self.live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def progress_line(info: RunInfo, elapsed: float | None = None) -> str:
    """``run 4f37 running: 12/21 jobs · 3.1 s, about 2.0 s left · appender 11/20, summer 0/1
    (1 failed)`` (the times when ``elapsed``, the seconds since the run started, is given)."""
    parts = [
        f"{e.elf} {e.done}/{e.total}" + (f" ({e.failed} failed)" if e.failed else "")
        for e in elf_progress(info)
    ]
    run = run_summary(info)
    times = ""
    if elapsed is not None:
        left = eta(run.done, run.total, elapsed)
        times = f" · {elapsed:.1f} s" + ("" if left is None else f", about {left:.1f} s left")
    cached = f" ({run.cached} cached)" if run.cached else ""
    return f"run {run.id} {run.status}: {run.done}/{run.total} jobs{cached}{times} · " + ", ".join(
        parts
    )


def eta(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left if the jobs left go at the pace of those done; ``None`` before any is
    done and once all are."""
    if done <= 0 or done >= total:
        return None
    return elapsed / done * (total - done)


def progress_table(info: RunInfo, elapsed: float | None = None) -> Table:
    """A row per elf: done, total, running, failed, skipped, and the time left at its pace."""
    from rich.table import Table

    title = f"run {info.id} · {info.pipeline} · {info.status}"
    if info.cached:
        title += f" · {info.cached} cached"
    if elapsed is not None:
        title += f" · {elapsed:.1f} s"
    table = Table(title=title, title_justify="left")
    for col in ("elf", "done", "total", "running", "failed", "skipped", "left"):
        table.add_column(col, justify="right" if col != "elf" else "left")
    for e in elf_progress(info):
        left = None if elapsed is None else eta(e.done, e.total, elapsed)
        table.add_row(
            e.elf, str(e.done), str(e.total), str(e.running), str(e.failed), str(e.skipped),
            "-" if left is None else f"{left:.1f} s",
        )  # fmt: skip
    return table


def output_lines(log: LogRecord) -> list[str]:
    """A record's lines, each prefixed with its elf and job key (``[sensors n1#0] text``):
    how ``elfc logs RUN`` and ``elfc run`` show task output."""
    prefix = f"[{log.elf} {log.key}]"
    return [f"{prefix} {line}" if line else prefix for line in log.text.splitlines()]
