"""``elfc run``'s progress: counts per elf from the run's record, elapsed time and time left."""

from __future__ import annotations

from elfc.cli.progress import eta, progress_line, progress_table
from elfc.model.records import RunInfo
from elfc.model.status import JOB_STATUSES


def info(done: int, total: int, status: str = "running") -> RunInfo:
    counts = dict.fromkeys(JOB_STATUSES, 0)
    counts["succeeded"], counts["ready"] = done, total - done
    return RunInfo("4f37", "m:p", "r", {}, status, 0.0, None, total, counts, {"w": counts}, None)


def test_the_time_left_goes_at_the_pace_of_the_jobs_done() -> None:
    assert eta(0, 10, 3.0) is None  # nothing done yet: no pace
    assert eta(5, 10, 3.0) == 3.0
    assert eta(2, 10, 1.0) == 4.0
    assert eta(10, 10, 3.0) is None  # all done: nothing left to estimate


def test_a_progress_line_has_the_counts_and_with_the_elapsed_time_the_time_left() -> None:
    assert progress_line(info(5, 10)) == "run 4f37 running: 5/10 jobs · w 5/10"
    assert progress_line(info(5, 10), 3.0) == (
        "run 4f37 running: 5/10 jobs · 3.0 s, about 3.0 s left · w 5/10"
    )
    assert progress_line(info(10, 10, "succeeded"), 6.0) == (
        "run 4f37 succeeded: 10/10 jobs · 6.0 s · w 10/10"
    )


def test_the_live_table_has_a_time_left_per_elf() -> None:
    table = progress_table(info(2, 10), 1.0)
    assert [c.header for c in table.columns][-1] == "left"
    assert list(table.columns[-1].cells) == ["4.0 s"]
    assert "1.0 s" in str(table.title)
