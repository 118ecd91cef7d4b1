"""Caching by input as a user meets it: ``@task(cache=True)`` and ``elfc run --reuse``, with
real ``elfc`` processes on a SQLite file in tmp_path and on a PostgreSQL server the tests
start. A job reuses a result only when its task revision, elf and argument values equal
those of a job that succeeded before; the job records (``cached_from``) say which did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elfc.model.records import JobInfo
from tests.runtime.fixtures.harness import Processes, opened, sqlite_url

KITCHEN = """
from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Kitchen:
    @task(cache=True)
    def chop(self, item: str) -> int:
        print(f"chopping {item}")
        return len(item)

    @task
    def cook(self, sizes: list[int]) -> int:
        print("cooking", len(sizes))
        return sum(sizes)


kitchen = named(Kitchen, "kitchen")


@pipeline
def dinner(items: list[str]) -> int:
    return kitchen.cook([kitchen.chop(i) for i in items])
"""

ITEMS = '["apple","fig","kiwi","plum"]'


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        pg_url: str = request.getfixturevalue("pg_url")
        return pg_url
    return sqlite_url(tmp_path)


@pytest.fixture
def kitchen(tmp_path: Path) -> Path:
    path = tmp_path / "kitchen.py"
    path.write_text(KITCHEN, encoding="utf-8")
    return path


def dinner(procs: Processes, kitchen: Path, url: str, items: str = ITEMS, *extra: str) -> str:
    """``elfc run`` the pipeline to success; the new run's id."""
    ran = procs.call("run", f"{kitchen}:dinner", "-a", f"items={items}", "--mycelium", url, *extra)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stderr.split("run ", 1)[1].split(":", 1)[0]
    value = json.loads(ran.stdout)
    assert value == sum(len(i) for i in json.loads(items))
    return run_id


def jobs_of(url: str, run_id: str, task: str) -> list[JobInfo]:
    with opened(url) as store:
        return [j for j in store.list_jobs(run_id) if j.task == task]


def ran_output(url: str, run_id: str) -> str:
    with opened(url) as store:
        return "".join(log.text for log in store.list_logs(run_id))


def test_a_second_run_reuses_every_cached_task_and_new_code_runs_again(
    procs: Processes, url: str, kitchen: Path
) -> None:
    first = dinner(procs, kitchen, url)
    chopped = {j.key: j for j in jobs_of(url, first, "chop")}
    assert len(chopped) == 4 and not any(j.cached for j in chopped.values())
    assert all(j.cache_key for j in chopped.values())  # a cache=True job records its key

    second = dinner(procs, kitchen, url)
    again = jobs_of(url, second, "chop")
    # 0 chop jobs ran: each one took the result of the first run's job of its item.
    assert [j.cached_from for j in again] == [chopped[j.key].id for j in again]
    assert all(j.status == "succeeded" for j in again)
    (cook,) = jobs_of(url, second, "cook")
    assert not cook.cached  # not a cache=True task: it ran
    output = ran_output(url, second)
    assert "chopping" not in output and "cooking 4" in output
    with opened(url) as store:
        info = store.run_info(second)
        assert info is not None and info.cached == 4 and info.counts["succeeded"] == 5

    # New code for chop (a new task revision; a comment would not make one): it runs again.
    kitchen.write_text(
        KITCHEN.replace("return len(item)", "return len(item.strip())"), encoding="utf-8"
    )
    third = dinner(procs, kitchen, url)
    rerun = jobs_of(url, third, "chop")
    assert not any(j.cached for j in rerun)
    assert {j.revision for j in rerun} != {j.revision for j in chopped.values()}
    assert ran_output(url, third).count("chopping") == 4
    fourth = dinner(procs, kitchen, url, '["fig","pear"]')
    fig, pear = jobs_of(url, fourth, "chop")
    assert fig.cached_from == next(j.id for j in rerun if j.key == "n1#1")  # fig, in run 3
    assert not pear.cached and "chopping pear" in ran_output(url, fourth)


def test_reuse_makes_every_task_of_a_run_reuse_results(
    procs: Processes, url: str, kitchen: Path
) -> None:
    first = dinner(procs, kitchen, url)
    (cook,) = jobs_of(url, first, "cook")
    assert cook.cache_key is None  # not a cache=True task: it records no key
    plain = dinner(procs, kitchen, url)
    assert not jobs_of(url, plain, "cook")[0].cached
    # --reuse: the chop jobs are reused; cook, never recorded for reuse, runs and is recorded.
    keyed = dinner(procs, kitchen, url, ITEMS, "--reuse")
    assert all(j.cached for j in jobs_of(url, keyed, "chop"))
    (cooked,) = jobs_of(url, keyed, "cook")
    assert not cooked.cached and cooked.cache_key is not None
    assert ran_output(url, keyed) == "cooking 4\n"
    reused = dinner(procs, kitchen, url, ITEMS, "--reuse")
    assert ran_output(url, reused) == ""  # nothing ran: all five jobs were reused
    assert jobs_of(url, reused, "cook")[0].cached_from == cooked.id
    assert all(j.cached for j in jobs_of(url, reused, "chop"))

    # elfc submit --reuse, served by a worker started apart.
    submitted = procs.call(
        "submit", f"{kitchen}:dinner", "-a", f"items={ITEMS}", "--reuse", "--mycelium", url
    )
    run_id = submitted.stdout.strip()
    procs.worker(kitchen, "kitchen", url, "--idle-exit", "5")
    done = procs.call("result", run_id, "--wait", "--json", "--mycelium", url)
    assert done.returncode == 0 and json.loads(done.stdout) == 16
    (served,) = jobs_of(url, run_id, "cook")
    # Taken from the latest job of that key: itself a copy, which names the one that ran.
    assert served.cached_from == jobs_of(url, reused, "cook")[0].id


PANTRY = """
from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Pantry:
    @task
    def shelf(self, n: int) -> list[str]:
        print("listing", n)
        return ["apple", "fig", "kiwi", "plum"][:n]

    @task
    def peel(self, item: str) -> int:
        print(f"peeling {item}")
        return len(item)


pantry = named(Pantry, "pantry")


@pipeline
def peeled(n: int) -> list[int]:
    return [pantry.peel(i) for i in pantry.shelf(n)]
"""


def test_jobs_an_expansion_makes_reuse_results_as_the_run_s_jobs_do(
    procs: Processes, tmp_path: Path
) -> None:
    """A loop over a task result is expanded once the result exists: the jobs it makes
    belong to the run, so with ``--reuse`` they reuse results too. The expansion and join
    jobs themselves are never keyed or reused (SQLite: the backend that expands regions)."""
    url = sqlite_url(tmp_path)
    path = tmp_path / "pantry.py"
    path.write_text(PANTRY, encoding="utf-8")
    runs = []
    for _ in range(2):
        ran = procs.call("run", f"{path}:peeled", "-a", "n=3", "--reuse", "--mycelium", url)
        assert ran.returncode == 0, ran.stderr
        assert json.loads(ran.stdout) == [5, 3, 4]
        runs.append(ran.stderr.split("run ", 1)[1].split(":", 1)[0])
    first, second = runs
    assert ran_output(url, first).count("peeling") == 3
    assert ran_output(url, second) == ""  # the shelf and every peel job were reused
    peels = {j.key: j for j in jobs_of(url, first, "peel")}
    assert len(peels) == 3 and all(j.cache_key for j in peels.values())
    again = jobs_of(url, second, "peel")
    assert sorted(j.cached_from or "" for j in again) == sorted(j.id for j in peels.values())
    with opened(url) as store:
        system = [j for j in store.list_jobs(second) if j.task.startswith("@")]
    assert system and all(j.cache_key is None and not j.cached for j in system)


def test_cached_jobs_are_shown_as_cached(procs: Processes, kitchen: Path, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    first = dinner(procs, kitchen, url)
    second = procs.call("run", f"{kitchen}:dinner", "-a", f"items={ITEMS}", "--mycelium", url)
    assert "4 cached" in second.stderr  # the progress says so
    run_id = second.stderr.split("run ", 1)[1].split(":", 1)[0]
    source = jobs_of(url, first, "chop")[0]

    table = procs.call("jobs", run_id, "--mycelium", url).stdout
    assert table.count("succeeded (cached)") == 4
    shown = procs.call("show", f"{run_id}/n1#0", "--mycelium", url).stdout
    assert "succeeded (cached)" in shown
    assert f"cached     the result of job {source.id}, reused without running" in shown
    assert f"reused the result of job {source.id}" in shown  # its history note
    as_json = json.loads(procs.call("show", f"{run_id}/n1#0", "--json", "--mycelium", url).stdout)
    assert as_json["cached"] is True and as_json["cached_from"] == source.id
    assert as_json["result"] == 5
    listed = json.loads(procs.call("jobs", run_id, "--json", "--mycelium", url).stdout)
    assert [j["cached_from"] is not None for j in listed] == [True] * 4 + [False]
    runs = procs.call("runs", "--mycelium", url).stdout
    assert "5/5 (4 cached)" in runs
    assert (
        "jobs       5 succeeded (4 cached)" in procs.call("show", run_id, "--mycelium", url).stdout
    )
    runs_json = json.loads(procs.call("runs", "--json", "--mycelium", url).stdout)
    assert [r["cached"] for r in runs_json] == [4, 0]


def test_a_pruned_result_is_no_longer_reused(
    procs: Processes, kitchen: Path, tmp_path: Path
) -> None:
    url = sqlite_url(tmp_path)
    dinner(procs, kitchen, url)
    pruned = procs.call("prune", "--older-than", "0s", "--mycelium", url)
    assert pruned.returncode == 0 and "pruned 1 run(s)" in pruned.stdout, pruned.stderr
    after = dinner(procs, kitchen, url)
    assert not any(j.cached for j in jobs_of(url, after, "chop"))
    assert ran_output(url, after).count("chopping") == 4


def test_in_process_runs_always_run_cached_tasks(
    kitchen: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An in-process run has no mycelium to look results up in: ``cache=True`` changes nothing."""
    from elfc.targets import load_pipeline

    pipeline = load_pipeline(f"{kitchen}:dinner")
    assert pipeline(["fig"]) == 3 and pipeline(["fig"]) == 3
    assert capfd.readouterr().out.count("chopping fig") == 2
