"""An elf name means one class and configuration per mycelium: a submission defining it
otherwise is refused, naming both definitions, instead of failing jobs with UnknownTask."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import elfc.runtime.client as client
from elfc import connect
from elfc.errors import ElfConflict
from elfc.runtime.client import check_elves
from tests.runtime.fixtures.harness import Processes, ThreadWorkers
from tests.runtime.fixtures.twins import first, second


def test_a_second_definition_of_an_elf_name_is_refused(url: str, threads: ThreadWorkers) -> None:
    threads.start(first.t)
    mycelium = connect(url)
    assert mycelium.submit(first.counted).wait(timeout=30) == 1
    with pytest.raises(ElfConflict) as refused:
        mycelium.submit(second.greeted)
    message = str(refused.value)
    assert "tests.runtime.fixtures.twins.first.Counter" in message
    assert "tests.runtime.fixtures.twins.second.Greeter" in message
    assert "second.py:15" in message
    assert mycelium.store.list_runs(10)[0].pipeline.endswith("first:counted")  # nothing written


def test_a_stale_registration_yields_to_a_run_that_starts_its_workers(
    url: str, threads: ThreadWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = threads.start(first.t)
    connect(url).submit(first.counted).wait(timeout=30)
    threads.stop_all()
    store = connect(url).store
    with pytest.raises(ElfConflict):  # the registration is there...
        check_elves(store, {"t": second.t})
    assert worker.elf == "t"
    # ...but no worker serves it now: `elfc run`, which starts its workers, may replace it.
    monkeypatch.setattr(client, "LIVE_WORKER", 0.0)
    check_elves(store, {"t": second.t}, stale_ok=True)


def test_elfc_submit_reports_the_conflict(
    url: str, procs: Processes, threads: ThreadWorkers
) -> None:
    threads.start(first.t)
    connect(url).submit(first.counted).wait(timeout=30)
    done = procs.call("submit", "tests/runtime/fixtures/twins/second.py:greeted", "--mycelium", url)
    assert done.returncode == 1
    assert "elf 't' is registered in" in done.stderr
    assert "Traceback" not in done.stderr


def test_elfc_check_warns_about_a_name_the_mycelium_knows_otherwise(
    url: str, procs: Processes, threads: ThreadWorkers, tmp_path: Path
) -> None:
    threads.start(first.t)
    connect(url).submit(first.counted).wait(timeout=30)
    second_py = "tests/runtime/fixtures/twins/second.py"
    done = procs.call("check", second_py, "--mycelium", url)
    assert done.returncode == 0, done.stdout  # a warning
    assert f"{second_py}:15:5: ELF204 elf 't' is registered in" in done.stdout
    assert "as tests.runtime.fixtures.twins.first.Counter;" in done.stdout
    assert procs.call("check", second_py, "--mycelium", url, "--strict").returncode == 1
    # Without a mycelium named, and with one that does not exist yet (never created), no warning.
    assert "ELF204" not in procs.call("check", second_py).stdout
    missing = f"sqlite:///{tmp_path}/nothing-here.db"
    assert "ELF204" not in procs.call("check", second_py, "--mycelium", missing).stdout
    assert not (tmp_path / "nothing-here.db").exists()


SCRIPT = """
import dataclasses, sys
from datetime import datetime, timezone
from elfc import connect, elf, named, pipeline, task


@dataclasses.dataclass
class Rec:
    when: datetime
    n: int


@elf
class Src:
    @task
    def rec(self) -> Rec:
        return Rec(datetime(2026, 1, 1, tzinfo=timezone.utc), 3)

    @task
    def show(self, s: str) -> str:
        return s


src = named(Src, "src")


@pipeline
def p() -> str:
    r = src.rec()
    return src.show(f"{r.when.year}-{r.n + 1}")


if __name__ == "__main__":
    assert p() == "2026-4"  # in-process, types of __main__ resolved here
    print(connect(sys.argv[1]).submit(p).id)
"""


def test_a_script_run_as_main_submits_what_its_workers_know(
    url: str, procs: Processes, tmp_path: Path
) -> None:
    script = tmp_path / "shop_script.py"
    script.write_text(SCRIPT)
    first_run = procs.start([sys.executable, str(script), url], cwd=tmp_path)
    assert first_run.wait(60) == 0, procs.output(first_run)
    procs.worker(script, "src", url)
    mycelium = connect(url)
    run_id = procs.output(first_run).split()[-1]
    # The derive reads a dataclass of the script: known to the worker as shop_script.Rec.
    assert mycelium.run(run_id).wait(timeout=60) == "2026-4"
    again = procs.start([sys.executable, str(script), url], cwd=tmp_path)
    assert again.wait(60) == 0, procs.output(again)  # the worker's registration is the same elf
    assert mycelium.run(procs.output(again).split()[-1]).wait(timeout=60) == "2026-4"
