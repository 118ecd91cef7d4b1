"""An ETL over daily sales exports, with the control flow such pipelines have.

- ``Source`` lists the day's export files and reads one (made-up rows, deterministic; one
  till's share is offline, its backup is not).
- ``Cleaner`` drops malformed rows of one file and totals it.
- ``Warehouse`` loads cleaned totals, starts an export of the day's report, and is polled
  until the export is ready.

The pipeline lists the files with a task, so the loop over them is a *dynamic* loop: it is
expanded when the list exists, one ``clean`` job per file, which run in parallel on the
``Cleaner`` replicas; a file whose till is offline is read from the backup instead (a
``try``/``except`` around the read: the failed job is recorded ``handled`` and the run goes
on). It branches on a quality check of the cleaned files (a task result),
returns early when there is nothing to load, and polls the export with ``while`` until its
state says ``ready``.

Run it in this process::

    python -c "from examples.etl.pipeline import daily_sales; print(daily_sales('2026-12-01'))"

or on the default mycelium, each elf in its own worker processes::

    elfc run examples/etl/pipeline.py:daily_sales -a day=2026-12-01 --replicas cleaner=3
"""

from __future__ import annotations

import hashlib
import time
from typing import TypedDict

from elfc import elf, named, pipeline, task


class Cleaned(TypedDict):
    file: str
    rows: int
    dropped: int
    total_cents: int


def _digits(text: str, n: int) -> list[int]:
    """``n`` deterministic small numbers derived from ``text``."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i % len(digest)] for i in range(n)]


@elf
class Source:
    """The day's export files of the shop's tills (made up from the day's name)."""

    @task
    def files(self, day: str) -> list[str]:
        count = _digits(day, 1)[0] % 5 + 3  # 3 to 7 tills report each day
        return [f"{day}/till-{i}.csv" for i in range(count)] if day != "holiday" else []

    @task
    def read(self, file: str) -> list[str]:
        if file.endswith("till-2.csv"):
            raise ConnectionError(f"{file}: the till's share is offline")
        return self.read_backup(file)

    @task
    def read_backup(self, file: str) -> list[str]:
        """The same rows, from the nightly backup (slower, always there)."""
        return [f"{file},{n},{n * 7 % 300}" if n % 11 else "garbage" for n in _digits(file, 40)]


@elf
class Cleaner:
    """Parses one file's rows, dropping the malformed ones."""

    @task(retries=2, retry_delay=0.05)
    def clean(self, file: str, lines: list[str]) -> Cleaned:
        kept = [line.split(",") for line in lines if line.count(",") == 2]
        return {
            "file": file,
            "rows": len(kept),
            "dropped": len(lines) - len(kept),
            "total_cents": sum(int(cents) for _, _, cents in kept),
        }


@elf
class Warehouse:
    """Loads totals and exports the day's report (the export takes a few polls)."""

    def __init__(self, polls_needed: int = 2) -> None:
        self.polls_needed = polls_needed

    @task
    def load(self, day: str, files: list[Cleaned]) -> int:
        return sum(f["total_cents"] for f in files)

    @task
    def start_export(self, day: str, cents: int) -> str:
        return f"export-{day}-{cents}"

    @task
    def export_state(self, export: str, poll: int) -> str:
        return "ready" if poll >= self.polls_needed else "running"

    @task
    def quarantine(self, day: str, bad_files: list[str]) -> str:
        return f"{len(bad_files)} file(s) of {day} quarantined"


source = named(Source, "source")
cleaner = named(Cleaner, "cleaner")
warehouse = named(Warehouse, "warehouse", polls_needed=2)


@pipeline
def daily_sales(day: str = "2026-12-01", max_dropped: float = 0.2, poll_every: float = 0.0) -> str:
    files = source.files(day)
    if not files:
        return f"{day}: nothing to load"

    cleaned: list[Cleaned] = []
    for file in files:  # a loop over a task result: one read and one clean job per file
        try:
            lines = source.read(file)
        except ConnectionError:  # a handled failure: read the backup instead
            lines = source.read_backup(file)
        cleaned.append(cleaner.clean(file, lines))

    good = [c for c in cleaned if c["dropped"] <= max_dropped * (c["rows"] + c["dropped"])]
    bad = [c["file"] for c in cleaned if c["dropped"] > max_dropped * (c["rows"] + c["dropped"])]
    # A branch on task results: the quarantine job runs only when a file is bad.
    note = warehouse.quarantine(day, bad) if bad else "all files clean"

    cents = warehouse.load(day, good)
    export = warehouse.start_export(day, cents)
    poll = 0
    state = warehouse.export_state(export, poll)
    while state != "ready":  # one expansion per poll, until the export is ready
        time.sleep(poll_every)  # runs where the loop is expanded, before the next poll
        poll += 1
        state = warehouse.export_state(export, poll)
    return f"{day}: {cents / 100:.2f} loaded from {len(good)} file(s), {note}; {export} ready"
