"""Fixtures shared by the runtime and command-line tests: a SQLite mycelium in the test's own
folder, and worker processes and threads that are always stopped when the test ends; ``pg`` and
``pg_url`` (``tests/mycelium/pg_cluster.py``) start a PostgreSQL server when a test asks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from elfc import connect
from elfc.runtime.client import Mycelium
from tests.mycelium.pg_cluster import pg, pg_url  # noqa: F401  (a PostgreSQL server, on demand)
from tests.runtime.fixtures.harness import Processes, ThreadWorkers, sqlite_url

# Hypothesis's explain phase re-runs a failing example under a line tracer to say which lines
# only failing cases run: over these property tests (compiling and running pipelines) that
# took longer than a CI run has, so a failure is reported as soon as it is shrunk instead.
settings.register_profile("elfc", phases=[p for p in Phase if p is not Phase.explain])
settings.load_profile("elfc")


@pytest.fixture
def url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path) as started:
        yield started


@pytest.fixture
def threads(url: str) -> Iterator[ThreadWorkers]:
    with ThreadWorkers(url) as started:
        yield started


@pytest.fixture
def mycelium(url: str) -> Iterator[Mycelium]:
    m = connect(url)
    yield m
    m.close()
