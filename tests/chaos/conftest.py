"""The chaos suite's fixtures: a mycelium per test on every backend the suite can start
(SQLite always; ArangoDB when ``ELFC_ARANGO_URL`` names a server), and processes that are
always stopped, pass or fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.fixtures.harness import Processes, sqlite_url

ARANGO_URL = os.environ.get("ELFC_ARANGO_URL", "")

if ARANGO_URL:
    from tests.mycelium.test_arango import server  # noqa: F401  (the fixture, for the below)


@pytest.fixture(params=["sqlite", "arango"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    if not ARANGO_URL:
        pytest.skip("ELFC_ARANGO_URL is not set: no ArangoDB server to run the chaos suite on")
    server = request.getfixturevalue("server")
    monkeypatch = request.getfixturevalue("monkeypatch")
    from elfc.mycelium.arango.url import PASSWORD_ENV

    monkeypatch.setenv(PASSWORD_ENV, server.target.password)
    name, database_url = server.database()
    try:
        yield database_url
    finally:
        server.drop(name)


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    """A SQLite mycelium, for the scenarios that damage rows in its file."""
    return sqlite_url(tmp_path)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path) as started:
        yield started
