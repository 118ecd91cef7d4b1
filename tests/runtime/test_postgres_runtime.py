"""Runtime scenarios written for SQLite that need none of its internals, run again on the
PostgreSQL mycelium (a server the tests start: ``tests/mycelium/pg_cluster.py``): replicas
that never run a job twice, stop signals mid-job, leases kept by queued jobs, a late
completion from a worker that lost its lease, branches and loops on task results
(expansions) and ``try``/``except`` around task calls giving Python's values."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from elfc.runtime.client import Mycelium
from tests.mycelium.pg_cluster import Cluster
from tests.runtime.fixtures.harness import ELVES_PATH, Processes, elves, wait_until
from tests.runtime.test_control_flow import (  # noqa: F401  (collected here)
    test_a_failed_assert_fails_the_run_with_its_message,
    test_a_map_makes_one_job_per_element,
    test_every_path_gives_python_s_value,
    test_not_taken_jobs_are_recorded_and_never_run,
    test_workers_give_python_s_values,
)
from tests.runtime.test_helpers import (  # noqa: F401  (collected here, renamed)
    test_an_impure_helper_runs_once_per_call_even_when_its_consumer_is_retried,
    test_print_and_logging_land_in_the_run_s_logs_in_order,
)
from tests.runtime.test_helpers import (  # noqa: F401  (collected here, renamed)
    test_workers_give_python_s_values as test_workers_give_python_s_values_with_helpers,
)
from tests.runtime.test_recovery import (  # noqa: F401  (tests and fixtures, collected here)
    started_by,
    test_a_second_sigterm_gives_the_job_back_and_another_worker_runs_it,
    test_ctrl_c_on_replicas_lets_each_finish_its_job,
    test_jobs_queued_in_a_worker_keep_their_leases,
    test_sigterm_mid_job_finishes_the_job_then_exits_0,
)
from tests.runtime.test_try_except import (  # noqa: F401  (collected here)
    test_a_handled_failure_is_recorded_and_does_not_fail_the_run,
    test_a_later_call_in_the_body_never_runs_after_a_failure,
    test_an_unhandled_failure_fails_the_run_with_the_original_error,
    test_retries_happen_before_the_handler_runs,
)
from tests.runtime.test_try_except import (  # noqa: F401  (collected here, renamed)
    test_every_path_gives_python_s_value as test_every_try_path_gives_python_s_value,
)
from tests.runtime.test_try_except import (  # noqa: F401  (collected here, renamed)
    test_workers_give_python_s_values as test_workers_give_python_s_values_around_try,
)
from tests.runtime.test_worker import test_two_replicas_never_run_a_job_twice  # noqa: F401


@pytest.fixture
def url(pg_url: str) -> str:
    return pg_url


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_a_worker_that_lost_its_lease_cannot_store_a_second_result(
    procs: Processes, mycelium: Mycelium, url: str, folder: Path, pg: Cluster
) -> None:
    """A worker frozen mid-job (as behind a cut network link) loses its lease; another finishes
    the job; the first one's late completion is refused: one stored result."""
    first = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
    run = mycelium.submit(elves().blocked, str(folder))
    wait_until(lambda: started_by(folder, first.pid), 20, "the first worker to start the job")
    first.send_signal(signal.SIGSTOP)
    try:
        second = procs.worker(ELVES_PATH, "blocker", url, "--lease", "1")
        wait_until(lambda: started_by(folder, second.pid), 20, "the second worker to take over")
        (folder / "release").touch()
        assert run.wait(timeout=20) == "done"
    finally:
        first.send_signal(signal.SIGCONT)
    [job] = mycelium.store.list_jobs(run.id)
    again = mycelium.submit(elves().blocked, str(folder), "again")
    assert again.wait(timeout=20) == "again"  # the first worker is back and serving
    full = mycelium.store.get_job(job.id)
    assert full is not None
    assert (full.status, full.attempts, full.result) == ("succeeded", 2, b'"done"')
    assert [e.status for e in full.history].count("succeeded") == 1
    assert f":{second.pid}:" in full.history[-1].note
    rows = pg.sql(
        "SELECT count(*) FROM elfc.results r JOIN elfc.jobs j ON r.job = j.no WHERE j.id = %s",
        job.id,
        db=url.rsplit("/", 1)[1],
    )
    assert rows == [(1,)]
    assert procs.stop(first) == 0, procs.output(first)
    assert procs.stop(second) == 0, procs.output(second)
