"""Cached jobs on the dashboard: a real ``elfc ui`` process on a mycelium where a second
``elfc run --reuse`` of a pipeline reused every job of the first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cli.test_caching import ITEMS, KITCHEN
from tests.runtime.fixtures.harness import Processes, sqlite_url, wait_until
from tests.ui.conftest import Server, free_port


@dataclass
class Reused:
    server: Server
    first: str
    second: str
    ran: dict[str, str]
    """Key -> id of the first run's jobs."""
    reused: list[dict[str, Any]]
    """The second run's job rows."""


@pytest.fixture(scope="module")
def reused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reused]:
    folder = tmp_path_factory.mktemp("cached")
    module = folder / "kitchen.py"
    module.write_text(KITCHEN, encoding="utf-8")
    url = sqlite_url(folder)
    with Processes(folder) as procs:
        for extra in (("--reuse",), ("--reuse",)):
            ran = procs.call(
                "run", f"{module}:dinner", "-a", f"items={ITEMS}", "--mycelium", url, *extra
            )
            assert ran.returncode == 0, ran.stderr
        port = free_port()
        server = Server(
            f"http://127.0.0.1:{port}", procs.elfc("ui", "--mycelium", url, "--port", str(port))
        )

        def up() -> bool:
            try:
                return server.get("/api/config")[0] == 200
            except OSError:
                return False

        wait_until(up, 20, "elfc ui to answer", every=0.1)
        second, first = (r["id"] for r in server.json("/api/runs")["runs"])  # type: ignore[index]
        jobs = server.json(f"/api/runs/{first}/jobs")["jobs"]  # type: ignore[index]
        again = server.json(f"/api/runs/{second}/jobs")["jobs"]  # type: ignore[index]
        yield Reused(server, first, second, {j["key"]: j["id"] for j in jobs}, again)


def test_runs_and_jobs_say_which_jobs_were_cached(reused: Reused) -> None:
    server = reused.server
    assert [r["cached"] for r in server.json("/api/runs")["runs"]] == [5, 0]  # type: ignore[index]
    assert {j["key"]: j["cached_from"] for j in reused.reused} == reused.ran
    assert server.json(f"/api/runs/{reused.second}")["run"]["cached"] == 5  # type: ignore[index]
    one = reused.reused[0]
    job = server.json(f"/api/jobs/{one['id']}")["job"]  # type: ignore[index]
    assert job["cached_from"] == reused.ran[one["key"]]


def test_run_and_job_pages_show_cached_jobs(reused: Reused, browser: Any) -> None:
    from tests.ui.test_browser import text, visit

    base = reused.server.base
    visit(browser, f"{base}/runs/{reused.second}", "#job-table tbody tr")
    assert text(browser, "#run-counts").endswith("5 cached")
    assert text(browser, "#job-table tbody").count("cached") == 5
    one = reused.reused[0]
    visit(browser, f"{base}/jobs/{one['id']}", "#cached-from")
    assert text(browser, "#cached-from") == f"reused the result of job {reused.ran[one['key']]}"
