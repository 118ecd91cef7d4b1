"""``elfc runs``, ``jobs``, ``show``, ``failures`` and ``source`` on a mycelium filled by real
runs (workers in threads), called through ``elfc.cli.main.main`` as the command line calls it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from elfc import RunFailed, connect
from elfc.cli.main import main
from elfc.compiler.elves import elf_info
from tests.runtime.fixtures.harness import ThreadWorkers, elves, sqlite_url

MARKUP = "[/bold] [red]not red[/red] [true]"
"""Text that rich would take for markup: inspection must print it as it is."""


@dataclass(frozen=True)
class Filled:
    url: str
    ok: str
    """A succeeded fan-out run (5 jobs and a sum)."""
    failed: str
    """A run of ``failing(7)``: ``n1`` failed, ``n2`` skipped."""
    rejected: str
    """A failed run whose failure message holds ``MARKUP``."""
    signs: str
    """A succeeded run whose result is ``[true, false]``."""


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    folder = tmp_path_factory.mktemp("inspect")
    url = sqlite_url(folder)
    m = elves()
    mycelium = connect(url)
    try:
        with ThreadWorkers(url) as threads:
            for handle in (m.appender, m.summer, m.broken):
                threads.start(handle)
            ok = mycelium.submit(m.fanout, str(folder / "keys"), 5)
            failed = mycelium.submit(m.failing, 7)
            rejected = mycelium.submit(m.rejecting, MARKUP)
            signs = mycelium.submit(m.signs, [3, -1])
            assert ok.wait(timeout=20) == 10
            assert signs.wait(timeout=20) == [True, False]
            for run in (failed, rejected):
                with pytest.raises(RunFailed):
                    run.wait(timeout=20)
        yield Filled(url, ok.id, failed.id, rejected.id, signs.id)
    finally:
        mycelium.close()


def elfc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def job_id(url: str, run_id: str, key: str) -> str:
    mycelium = connect(url)
    try:
        [found] = [j.id for j in mycelium.store.list_jobs(run_id) if j.key == key]
    finally:
        mycelium.close()
    return found


# -- runs and jobs ---------------------------------------------------------------------------


def test_runs_lists_each_run_with_its_status_and_counts(
    filled: Filled, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = elfc(capsys, "runs", "--mycelium", filled.url)
    assert code == 0
    rows = {line.split()[1]: line for line in out.splitlines() if line.split()[1:2]}
    assert "succeeded" in rows[filled.ok] and "6/6" in rows[filled.ok]
    assert "failed" in rows[filled.failed] and "2/2" in rows[filled.failed]
    assert "elves_for_tests:fanout" in rows[filled.ok]

    code, out, _ = elfc(capsys, "runs", "--json", "--limit", "2", "--mycelium", filled.url)
    assert code == 0
    runs = json.loads(out)
    assert [r["id"] for r in runs] == [filled.signs, filled.rejected]  # newest first


def test_runs_on_an_80_column_terminal_keeps_whole_ids_and_times_with_their_zone(
    filled: Filled, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = elfc(capsys, "runs", "--mycelium", filled.url)
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)  # a terminal gets styles
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80, out
    for run_id in (filled.ok, filled.failed, filled.signs):
        assert run_id in out  # whole, on one line
    code, out, _ = elfc(capsys, "jobs", filled.ok, "--mycelium", filled.url)
    assert all(job.id in out for job in connect(filled.url).store.list_jobs(filled.ok))
    zone = time.strftime("%Z")
    code, out, _ = elfc(capsys, "show", f"{filled.ok}/n2", "--mycelium", filled.url)
    assert re.search(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {zone}  succeeded", out), out


def test_runs_on_an_empty_mycelium_says_how_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from elfc.mycelium.urls import open_mycelium

    open_mycelium(sqlite_url(tmp_path)).close()  # created, and empty
    code, out, _ = elfc(capsys, "runs", "--mycelium", sqlite_url(tmp_path))
    assert code == 0
    assert "no runs yet" in out


def test_jobs_lists_a_runs_jobs_by_prefix_and_status(
    filled: Filled, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = elfc(capsys, "jobs", filled.failed[:6], "--mycelium", filled.url)
    assert code == 0
    assert f"run {filled.failed}" in out and "failed" in out
    assert "broken.explode" in out and "summer.total" in out and "skipped" in out

    code, out, _ = elfc(
        capsys, "jobs", filled.ok, "--status", "succeeded", "--json", "--mycelium", filled.url
    )
    jobs = json.loads(out)
    assert len(jobs) == 6 and {j["status"] for j in jobs} == {"succeeded"}

    # The key column: the name `elfc show RUN/KEY` and "waits on" use.
    code, out, _ = elfc(capsys, "jobs", filled.ok, "--mycelium", filled.url)
    (total_row,) = [line for line in out.splitlines() if "summer.total" in line]
    assert " n2 " in total_row and "n1#0" in total_row
    with pytest.raises(SystemExit) as refused:
        elfc(capsys, "jobs", filled.ok, "--status", "bogus", "--mycelium", filled.url)
    assert refused.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err

    code, _, err = elfc(capsys, "jobs", "ffffffffff", "--mycelium", filled.url)
    assert code == 1
    assert "no run 'ffffffffff'" in err and "elfc runs" in err


# -- show ----------------------------------------------------------------------------------


def test_show_a_failed_job_has_its_traceback_its_source_and_its_pipeline_line(
    filled: Filled, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = elfc(capsys, "show", f"{filled.failed}/n1", "--mycelium", filled.url)
    assert code == 0
    assert "broken.explode" in out and "failed" in out
    assert "arguments  [7]" in out
    assert "ValueError: cannot handle 7" in out
    assert "Traceback (most recent call last)" in out
    assert 'raise ValueError(f"cannot handle {x}")' in out
    revision = elf_info(elves().Broken).tasks["explode"].revision
    assert f"task source at revision {revision}" in out
    assert "def explode(self, x: int) -> int:" in out
    assert "created by" in out and "elves_for_tests.py:" in out and "broken.explode(x)" in out
    # The status history, from submission to the failure.
    history = out[out.index("history") : out.index("failure")]
    assert [word for word in ("ready", "running", "failed") if word in history] == [
        "ready", "running", "failed",
    ]  # fmt: skip


def test_show_a_succeeded_job_has_its_arguments_and_result(
    filled: Filled, capsys: pytest.CaptureFixture[str]
) -> None:
    job = job_id(filled.url, filled.ok, "n2")
    code, out, _ = elfc(capsys, "show", job[:10], "--mycelium", filled.url)
    assert code == 0
    assert f"job {job}" in out and "summer.total" in out and "succeeded" in out
    assert "result     10" in out
    assert '{"ref":"n1#0"}' in out  # its argument, an expression over upstream results

    code, out, _ = elfc(capsys, "show", job, "--json", "--mycelium", filled.url)
    shown: dict[str, Any] = json.loads(out)
    assert (shown["id"], shown["status"], shown["attempts"]) == (job, "succeeded", 1)
    assert shown["result"] == 10  # the value, not base64 of its JSON


def test_show_and_failures_print_markup_like_text_as_it_is(
    filled: Filled, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = elfc(capsys, "show", f"{filled.rejected}/n1", "--mycelium", filled.url)
    assert code == 0
    assert f"ValueError: rejected {MARKUP}" in out
    assert json.dumps([MARKUP], separators=(",", ":")) in out  # the arguments

    code, out, _ = elfc(capsys, "show", f"{filled.signs}/n1", "--mycelium", filled.url)
    assert code == 0
    assert "result     [true,false]" in out

    code, out, _ = elfc(capsys, "failures", "--mycelium", filled.url)
    assert code == 0
    assert f"ValueError: rejected {MARKUP}" in out


def test_show_an_unknown_job_exits_1(filled: Filled, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = elfc(capsys, "show", "nope", "--mycelium", filled.url)
    assert code == 1
    assert "no job 'nope'" in err and "elfc jobs RUN" in err


# -- failures and source ---------------------------------------------------------------------


def test_failures_lists_each_failure_with_its_traceback_and_count(
    filled: Filled, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = elfc(capsys, "failures", "--mycelium", filled.url)
    assert code == 0
    block = out[out.index("ValueError: cannot handle 7") :]
    assert "broken.explode" in block.splitlines()[0]
    assert "1x" in block.splitlines()[0]
    assert 'raise ValueError(f"cannot handle {x}")' in block

    code, out, _ = elfc(capsys, "failures", "--json", "--mycelium", filled.url)
    failures = {f["message"]: f for f in json.loads(out)}
    assert failures["cannot handle 7"]["count"] == 1
    assert failures["cannot handle 7"]["task"] == "explode"


def test_source_prints_a_revision_by_hash_or_prefix(
    filled: Filled, capsys: pytest.CaptureFixture[str]
) -> None:
    revision = elf_info(elves().Broken).tasks["explode"].revision
    for given in (revision, revision[:8]):
        code, out, _ = elfc(capsys, "source", given, "--mycelium", filled.url)
        assert code == 0
        first, *body = out.splitlines()
        assert first == f"# task elves_for_tests.Broken.explode at revision {revision}"
        assert body[:2] == ["@task", "def explode(self, x: int) -> int:"]

    code, _, err = elfc(capsys, "source", "0000zz", "--mycelium", filled.url)
    assert code == 1
    assert "no revision '0000zz'" in err


def test_reading_commands_never_create_a_mycelium(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ELFC_MYCELIUM"}
    for command, code in ((["runs"], 0), (["failures"], 0), (["show", "abc"], 1)):
        proc = subprocess.run(
            [sys.executable, "-m", "elfc", *command],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == code, proc.stderr
        assert "no mycelium at .elfc/mycelium.db yet" in proc.stderr
    for listing in ("runs", "failures"):  # machines get an empty list, not nothing
        proc = subprocess.run(
            [sys.executable, "-m", "elfc", listing, "--json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert list(tmp_path.iterdir()) == []


def test_failures_group_one_bug_whatever_its_messages_with_run_and_job_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three runs raise at the same line of ``explode`` with three messages: one entry, with
    each run's job; ``reject`` raises elsewhere: an entry of its own."""
    url = sqlite_url(tmp_path)
    m = elves()
    mycelium = connect(url)
    try:
        with ThreadWorkers(url) as threads:
            for handle in (m.summer, m.broken):
                threads.start(handle)
            runs = [mycelium.submit(m.failing, x) for x in (1, 2, 3)]
            rejected = mycelium.submit(m.rejecting, "no")
            for run in (*runs, rejected):
                with pytest.raises(RunFailed):
                    run.wait(timeout=20)
    finally:
        mycelium.close()
    code, out, _ = elfc(capsys, "failures", "--json", "--mycelium", url)
    assert code == 0
    groups = {g["task"]: g for g in json.loads(out)}
    assert set(groups) == {"explode", "reject"}
    explode = groups["explode"]
    assert explode["count"] == 3 and len(explode["hashes"]) == 3
    assert explode["messages"] == ["cannot handle 3", "cannot handle 2", "cannot handle 1"]
    assert {(j["run"], j["key"]) for j in explode["jobs"]} == {(r.id, "n1") for r in runs}
    file, line, function = explode["frames"][-1]
    assert file.endswith("elves_for_tests.py") and function == "explode"
    assert all("/elfc/runtime/" not in f[0] for f in explode["frames"])
    assert groups["reject"]["count"] == 1

    code, out, _ = elfc(capsys, "failures", "--jobs", "2", "--mycelium", url)
    block = out[out.index("ValueError: cannot handle 3") :].split("\n\n")[0]
    assert "3x in 3 stored failures, last" in block.splitlines()[0]
    assert "  also: cannot handle 2" in block and "  also: cannot handle 1" in block
    assert f"raised at {file}:{line} in explode" in block
    job = next(j for j in explode["jobs"] if j["run"] == runs[2].id)
    assert f"{runs[2].id}/n1 (job {job['id']})" in block
    assert "(the latest 2: --jobs N for more)" in block
