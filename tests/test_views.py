"""The read model: what the command line (and later the dashboard) shows, as data, on a
mycelium filled by real runs (workers in threads)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from elfc import RunFailed, connect
from elfc.errors import NotFound, UsageError
from elfc.model.records import JobSpan
from elfc.model.status import final_count
from elfc.mycelium.sqlite import SQLiteStore
from elfc.mycelium.store import Store
from elfc.mycelium.urls import open_mycelium
from elfc.views import (
    ElfProgress,
    Frame,
    elf_progress,
    elves_view,
    failure_groups,
    find_job,
    find_revision,
    find_run,
    job_detail,
    job_page,
    job_view,
    missing_sqlite_file,
    node_states,
    run_list,
    run_picture,
    run_summary,
    timeline_of,
    user_frames,
)
from tests.mycelium.contract import BOOM, LEASE, drain, job, run_of
from tests.runtime.fixtures.harness import ThreadWorkers, elves, sqlite_url


@dataclass(frozen=True)
class Filled:
    url: str
    ok: str
    """``fanout(n=3)``: three appender jobs and a sum, all succeeded."""
    failed: str
    """``failing(7)``: ``broken.explode`` failed, ``summer.total`` skipped."""


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    folder = tmp_path_factory.mktemp("views")
    url = sqlite_url(folder)
    m = elves()
    mycelium = connect(url)
    try:
        with ThreadWorkers(url) as threads:
            for handle in (m.appender, m.summer, m.broken):
                threads.start(handle)
            ok = mycelium.submit(m.fanout, str(folder / "keys"), 3)
            failed = mycelium.submit(m.failing, 7)
            assert ok.wait(timeout=20) == 3
            with pytest.raises(RunFailed):
                failed.wait(timeout=20)
        yield Filled(url, ok.id, failed.id)
    finally:
        mycelium.close()


@pytest.fixture
def store(filled: Filled) -> Iterator[Store]:
    with open_mycelium(filled.url) as opened:
        yield opened


def test_a_missing_sqlite_file_is_named_and_other_urls_are_never_missing(tmp_path: Path) -> None:
    assert missing_sqlite_file(f"sqlite:///{tmp_path}/none.db?mode=rw") == tmp_path / "none.db"
    (tmp_path / "there.db").touch()
    assert missing_sqlite_file(f"sqlite:///{tmp_path}/there.db") is None
    assert missing_sqlite_file("arango://u@h:8529/db") is None


def test_ids_resolve_by_prefix_and_a_miss_says_how_to_find_one(
    filled: Filled, store: Store
) -> None:
    assert find_run(store, filled.ok[:6]).id == filled.ok
    with pytest.raises(NotFound, match="list runs with `elfc runs`"):
        find_run(store, "ffffffffff")
    with pytest.raises(NotFound, match="list jobs with `elfc jobs RUN`"):
        find_job(store, "nope")
    with pytest.raises(NotFound, match="no revision '0000zz'"):
        find_revision(store, "0000zz")


def test_a_job_is_found_by_run_and_key_as_run_failed_names_it(filled: Filled, store: Store) -> None:
    [failed] = store.list_jobs(filled.failed, "failed")
    assert find_job(store, f"{filled.failed[:6]}/{failed.key}").id == failed.id
    assert find_job(store, failed.id[:-1]).id == failed.id


def test_counts_come_from_the_status_sets(filled: Filled, store: Store) -> None:
    ok, failed = find_run(store, filled.ok), find_run(store, filled.failed)
    assert (run_summary(ok).done, run_summary(ok).total, run_summary(ok).failed) == (4, 4, 0)
    assert (run_summary(failed).done, run_summary(failed).failed) == (2, 1)
    assert run_summary(failed).done == final_count(failed.counts)
    assert elf_progress(failed) == [
        ElfProgress("broken", done=1, total=1, running=0, failed=1, skipped=0),
        ElfProgress("summer", done=1, total=1, running=0, failed=0, skipped=1),
    ]


def test_a_job_view_has_the_pipeline_line_that_made_it_and_its_task_source(
    filled: Filled, store: Store
) -> None:
    [failed] = store.list_jobs(filled.failed, "failed")
    view = job_view(store, failed.id)
    assert view.job.failure is not None and "cannot handle 7" in view.job.failure.message
    assert view.origin is not None and not view.origin.inlined
    assert view.origin.source == "broken.explode(x)"
    assert view.origin.path is not None and view.origin.path.endswith("elves_for_tests.py")
    line = Path(view.origin.path).read_text().splitlines()[(view.origin.line or 0) - 1]
    assert "broken.explode(x)" in line
    assert view.task_source is not None and "def explode" in view.task_source.source


def test_a_run_picture_counts_job_states_per_node_with_a_title(
    filled: Filled, store: Store
) -> None:
    picture = run_picture(store, filled.failed)
    assert picture.warnings == ()
    assert sorted(picture.states.values(), key=str) == [{"failed": 1}, {"skipped": 1}]
    assert picture.states == node_states(store, filled.failed)
    assert set(picture.states) <= {node.id for node in picture.template.nodes}
    assert picture.title.startswith(f"failing(x=7) · run {filled.failed} · failed\n")
    assert picture.arguments == {"x": 7}


def test_a_run_drawn_over_another_pipeline_says_so(filled: Filled, store: Store) -> None:
    local = elves().fanout.graph()
    picture = run_picture(store, filled.failed, local)
    assert any("not " + local.pipeline in w for w in picture.warnings)
    assert picture.template.pipeline == find_run(store, filled.failed).pipeline


# -- the dashboard's reads ------------------------------------------------------------------


def test_runs_are_listed_by_status_pipeline_and_prefix_with_their_counts(
    filled: Filled, store: Store
) -> None:
    failed = run_list(store, status="failed")
    assert [(r.id, r.counts) for r in failed] == [(filled.failed, {"failed": 1, "skipped": 1})]
    assert failed[0].error and failed[0].duration() >= 0
    assert [r.id for r in run_list(store, prefix=filled.ok[:6])] == [filled.ok]
    with pytest.raises(UsageError, match="running, succeeded, failed, cancelled"):
        run_list(store, status="done")


def test_a_job_page_is_one_slice_and_counts_the_filtered_total(
    filled: Filled, store: Store
) -> None:
    page = job_page(store, filled.ok[:6], offset=1, limit=2)
    assert (page.run, page.total, [j.key for j in page.jobs]) == (
        filled.ok,
        4,
        [j.key for j in store.list_jobs(filled.ok)][1:3],
    )
    skipped = job_page(store, filled.failed, status="skipped")
    assert (skipped.total, [j.status for j in skipped.jobs]) == (1, ["skipped"])
    with pytest.raises(UsageError, match="1 to 1000"):
        job_page(store, filled.ok, limit=0)


def test_a_failed_job_has_one_attempt_by_its_worker_and_the_pipeline_line_lit(
    filled: Filled, store: Store
) -> None:
    [bad] = store.list_jobs(filled.failed, "failed")
    detail = job_detail(store, bad.id)
    [attempt] = detail.attempts
    assert (attempt.outcome, attempt.worker) == ("failed", bad.lease_owner)
    assert detail.pipeline is not None and detail.pipeline.highlight is not None
    assert detail.origin is not None and detail.origin.source
    lines = detail.pipeline.record.source.splitlines()
    assert detail.origin.source in lines[detail.pipeline.highlight - detail.pipeline.first_line]


def test_a_timeline_merges_close_bars_only_past_its_budget() -> None:
    spans = [JobSpan(f"k#{i}", "e", "t", "succeeded", "w1", 10.0 + i, 10.5 + i) for i in range(10)]
    spans += [
        JobSpan("x", "e", "t", "failed", "w2", 12.0, 13.0),
        JobSpan("r", "e", "t", "running", "w2", 14.0, None),
        JobSpan("p", "e", "t", "pending", None, None, None),
    ]
    whole = timeline_of(spans, created=9.0, max_bars=100, now=16.0)
    assert (whole.start, whole.end, whole.waiting, whole.merged) == (9.0, 19.5, 1, False)
    w1, w2 = whole.lanes
    assert (w1.worker, w1.jobs, len(w1.bars), w1.busy) == ("w1", 10, 10, 5.0)
    assert [(b.key, b.status, b.end) for b in w2.bars] == [
        ("x", "failed", 13.0),
        ("r", "running", 16.0),
    ]
    merged = timeline_of(spans, created=9.0, max_bars=4, now=16.0)
    assert merged.merged
    assert sum(b.jobs for lane in merged.lanes for b in lane.bars) == 12
    assert len(merged.lanes[0].bars) < 10
    assert merged.lanes[1].bars[0].status == "failed"  # the worst status of what it merges


def test_elves_list_their_workers_and_mark_stale_ones(filled: Filled, store: Store) -> None:
    views = {e.name: e for e in elves_view(store)}
    assert {"appender", "summer", "broken"} <= set(views)
    appender = views["appender"]
    assert appender.record is not None and appender.workers
    later = elves_view(store, now=max(w.info.heartbeat for w in appender.workers) + 3600)
    assert all(w.stale for e in later for w in e.workers) and all(e.live == 0 for e in later)


def test_a_retry_note_reads_as_a_local_time_with_its_zone() -> None:
    import time

    from elfc.views import readable_note

    at = time.mktime((2026, 12, 2, 13, 4, 5, 0, 0, -1)) + 0.25
    note = readable_note(f"retry at {at:.3f} after ValueError: boom")
    assert note == f"retry at 2026-12-02 13:04:05.250 {time.strftime('%Z')} after ValueError: boom"
    assert readable_note("released by w1") == "released by w1"


TRACEBACK = """\
Traceback (most recent call last):
  File "/work/app/elfc/runtime/execute.py", line 77, in invoke
    value = method(*args, **kwargs)
            ^^^^^^^^^^^^^^^^^^^^^^^
  File "/home/me/shop/tasks.py", line 12, in total
    return parse(text)
  File "/home/me/shop/parsing.py", line 3, in parse
    return json.loads(text)
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
  File "/home/me/.venv/lib/python3.11/site-packages/lib/x.py", line 9, in f
    raise ValueError(s)
ValueError: Expecting value: line 1 column 1 (char 0)
"""


def test_user_frames_are_the_traceback_lines_of_the_users_code() -> None:
    assert user_frames(TRACEBACK) == (
        Frame("/home/me/shop/tasks.py", 12, "total"),
        Frame("/home/me/shop/parsing.py", 3, "parse"),
    )
    # Without a frame of the user's (a task of an installed package), every frame counts.
    library = '  File "/v/lib/python3.12/site-packages/p/m.py", line 4, in run\n'
    assert user_frames(library) == (Frame("/v/lib/python3.12/site-packages/p/m.py", 4, "run"),)
    assert user_frames("") == ()


def test_a_run_whose_value_was_refused_is_a_failure_group_of_its_own(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as m:
        m.submit(run_of(job("a#0")))
        (claimed,) = m.claim("e", "w", LEASE)
        assert m.fail(claimed.id, "w", BOOM)
        refused = m.submit(run_of(job("b#0", "f")))
        drain(m, "f")
        assert m.fail_run(refused, "ValueCrossingError", "refused by int")
        newest, raised = failure_groups(m, 10, 5)
        assert (newest.run, newest.error_type, newest.message) == (
            refused,
            "ValueCrossingError",
            "refused by int",
        )
        assert newest.task == "tests:pipe" and newest.jobs == () and newest.frames == ()
        assert raised.run is None and raised.error_type == "ValueError"
        assert [j.id for j in raised.jobs] == [claimed.id]
        assert failure_groups(m, 1, 5) == [newest]  # the limit counts both kinds
