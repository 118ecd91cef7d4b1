"""The ArangoDB mycelium: the shared contract against a real server, plus what only it has.

Runs when ``ELFC_ARANGO_URL`` names a server, e.g.
``ELFC_ARANGO_URL=arango://root:pw@localhost:8529 pytest tests/mycelium`` (the database part is
ignored; the user must be allowed to create databases). Every test gets a database of its own,
created and dropped here; the password travels to the code under test (and to the processes
some tests start) in ``$ELFC_ARANGO_PASSWORD``, never in a URL that a failure could print.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from elfc.errors import MyceliumError
from elfc.mycelium.arango import aql
from elfc.mycelium.arango.url import PASSWORD_ENV, ArangoURL, parse_url
from elfc.mycelium.urls import open_mycelium

from .contract import MyceliumContract, job, run_of

URL = os.environ.get("ELFC_ARANGO_URL", "")

pytestmark = pytest.mark.skipif(
    not URL, reason="ELFC_ARANGO_URL is not set: no ArangoDB server to run the contract against"
)


@dataclasses.dataclass
class Server:
    """The server of ``ELFC_ARANGO_URL``: hands out databases and drops them afterwards."""

    target: ArangoURL
    client: Any
    prefix: str = dataclasses.field(default_factory=lambda: f"elfc_test_{secrets.token_hex(4)}")
    counter: Iterator[int] = dataclasses.field(default_factory=itertools.count)

    def db(self, name: str) -> Any:
        return self.client.db(name, username=self.target.username, password=self.target.password)

    def database(self) -> tuple[str, str]:
        """A new empty database: its name and its URL (without the password)."""
        name = f"{self.prefix}_{next(self.counter)}"
        self.db("_system").create_database(name)
        target = dataclasses.replace(self.target, database=name, password_in_url=False)
        return name, target.masked

    def drop(self, name: str) -> None:
        self.db("_system").delete_database(name, ignore_missing=True)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    arango = pytest.importorskip("arango", reason="python-arango is not installed")
    target = parse_url(URL)
    verify = (target.ca or True) if target.tls else None
    client = arango.ArangoClient(hosts=list(target.endpoints), verify_override=verify)
    found = Server(target, client)
    found.db("_system").version()
    yield found
    for name in found.db("_system").databases():
        if name.startswith(found.prefix):
            found.drop(name)
    client.close()


@pytest.fixture
def arango_database(server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    monkeypatch.setenv(PASSWORD_ENV, server.target.password)
    name, url = server.database()
    try:
        yield name, url
    finally:
        server.drop(name)


class TestArangoStore(MyceliumContract):
    @pytest.fixture
    def mycelium_url(self, arango_database: tuple[str, str]) -> str:
        return arango_database[1]


def test_set_up_is_idempotent_and_makes_browsable_graphs(
    server: Server, arango_database: tuple[str, str]
) -> None:
    name, url = arango_database
    with open_mycelium(url) as first, open_mycelium(url) as second:
        run_id = first.submit(run_of(job("a#0"), job("b#0", deps=["a#0"])))
        assert second.run_status(run_id) == "running"
    db = server.db(name)
    assert db.has_graph("elfc_runs") and db.has_graph("elfc_templates")
    edges = list(db.aql.execute("FOR e IN elfc_run_roots RETURN e._to"))
    assert len(edges) == 1  # the run reaches its only root, and through it every job


def test_another_schema_version_is_refused(
    server: Server, arango_database: tuple[str, str]
) -> None:
    name, url = arango_database
    open_mycelium(url).close()
    server.db(name).aql.execute('UPDATE "schema" WITH { version: 999 } IN elfc_meta')
    with pytest.raises(MyceliumError, match="schema version 999"):
        open_mycelium(url)


def test_a_wrong_password_is_a_clear_error_that_does_not_show_it(
    arango_database: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "certainly-not-the-password")
    with pytest.raises(MyceliumError) as caught:
        open_mycelium(arango_database[1])
    assert "refused user" in str(caught.value)
    assert "certainly-not-the-password" not in str(caught.value)


# Sample bind values by parameter name, to explain every query against the real indexes.
SAMPLES: dict[str, object] = {
    "version": 1, "docs": [], "collection": aql.JOBS, "low": "a", "high": "b", "prefix": "a",
    "elf": "e", "revision": "r", "now": 1.0, "cutoff": 1.0, "limit": 2,
    "worker": "w", "lease": 1.0, "run": "r", "keys": ["k"], "jobs": ["j"], "done": ["elfc_jobs/j"],
    "runs": ["r"], "job": "j", "hash": "h", "error_type": "E", "message": "m", "traceback": "t",
    "task": "t", "failure": "f", "note": "n", "start": "elfc_jobs/j", "attempts": 0,
    "not_before": None, "key": "k", "id": "i", "host": "h", "pid": 1, "started": 1.0,
    "status": "ready",
}  # fmt: skip


def _plan_nodes(plan: Any) -> Iterator[dict[str, Any]]:
    if isinstance(plan, dict):
        if "type" in plan:
            yield plan
        for value in plan.values():
            yield from _plan_nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _plan_nodes(value)


def test_no_query_scans_a_collection(server: Server, arango_database: tuple[str, str]) -> None:
    """Every query's plan reads collections through indexes, the ones its comment names."""
    name, url = arango_database
    open_mycelium(url).close()
    db = server.db(name)
    for query in aql.QUERIES.values():
        binds = {p: SAMPLES[p] for p in query.params}
        if query.name == "PUT_ELF":
            binds["elf"] = {"_key": "x", "name": "x"}
        plan = db.aql.explain(query.text, bind_vars=aql.bind(query, binds))
        nodes = list(_plan_nodes(plan["nodes"]))
        kinds = [node["type"] for node in nodes]
        assert "EnumerateCollectionNode" not in kinds, f"{query.name} scans a collection: {kinds}"
        used = {
            (node.get("collection"), index.get("name"))
            for node in nodes
            if node["type"] == "IndexNode"
            for index in node.get("indexes", [])
        }
        named = query.text.splitlines()[0].removeprefix("// index: ").split(", ")
        for ref in named:
            collection, _, index = ref.partition("/")
            if index not in ("primary", "edge"):
                assert (collection, index) in used, f"{query.name} does not use {ref}: {used}"
