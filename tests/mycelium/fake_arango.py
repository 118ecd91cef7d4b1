"""A loopback HTTP server that answers python-arango as ArangoDB would, as far as the ArangoDB
mycelium's offline tests need, and drops, delays or fails chosen requests.

It runs no AQL: each cursor request is recognised as one statement of ``aql.py`` by its text,
and answered by a Python function the test gives (``answer[NAME] = lambda binds: rows``;
unanswered statements return no rows). Stream transactions are kept with their status, so
a test can see which statements ran in which transaction, and what was committed. Faults are
rules matched against each request in turn:

* ``drop="after"``: the request is carried out, then the connection is closed unanswered
  (the server did it; the client cannot know);
* ``drop="before"``: the connection is closed before the request is carried out;
* ``error=(http, errorNum)``: an ArangoDB error answer;
* ``status=(http, body)``: any other answer (a proxy's 502 page);
* ``delay=seconds`` before answering.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from elfc.mycelium.arango import aql

Answer = Callable[[dict[str, Any]], list[Any]]
_BY_TEXT = {query.text: name for name, query in aql.QUERIES.items()}


@dataclasses.dataclass
class Seen:
    """One request the server received (and, unless dropped before, carried out)."""

    method: str
    path: str
    trx: str | None
    body: Any
    query: str | None = None
    """The name of the AQL statement of a cursor request."""
    dropped: str | None = None

    @property
    def binds(self) -> dict[str, Any]:
        return dict(self.body.get("bindVars") or {}) if isinstance(self.body, dict) else {}


@dataclasses.dataclass
class Fault:
    method: str | None = None
    path: str | None = None
    """A regular expression searched in the path (after ``/_db/NAME``)."""
    query: str | None = None
    times: int = 1
    drop: str | None = None
    error: tuple[int, int] | None = None
    status: tuple[int, str] | None = None
    delay: float = 0.0

    def matches(self, seen: Seen) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == seen.method)
            and (self.path is None or re.search(self.path, seen.path) is not None)
            and (self.query is None or self.query == seen.query)
        )


class FakeArango:
    """``with FakeArango() as fake: ... fake.url ...``."""

    def __init__(self, role: str = "SINGLE", sharding: str = "") -> None:
        self.role = role
        self.sharding = sharding
        self.answer: dict[str, Answer] = {"SCHEMA": lambda binds: [aql.SCHEMA_VERSION]}
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.transactions: dict[str, str] = {}
        self.forget_transactions = False
        """Answer 1655 (not found) to every transaction status request."""
        self.collections: dict[str, dict[str, Any]] = {}
        """Collection name -> the properties it was created with."""
        self.graphs: dict[str, Any] = {}
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, database: str = "db") -> str:
        return f"arango://u@{self.host}/{database}?timeout=5&connect_timeout=1"

    def __enter__(self) -> FakeArango:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fault(self, **rule: Any) -> Fault:
        found = Fault(**rule)
        self.faults.append(found)
        return found

    # -- what the tests read --------------------------------------------------------------

    def queries(self, name: str | None = None) -> list[Seen]:
        return [s for s in self.seen if s.query is not None and name in (None, s.query)]

    def in_transaction(self, trx: str) -> list[str]:
        """The statements sent into transaction ``trx``, in order."""
        return [s.query for s in self.seen if s.trx == trx and s.query is not None]

    def committed(self) -> list[str]:
        return [t for t, status in self.transactions.items() if status == "committed"]

    def requests(self, method: str, pattern: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and re.search(pattern, s.path)]

    # -- answering -----------------------------------------------------------------------

    def handle(self, seen: Seen) -> tuple[int, Any]:
        path, method = seen.path, seen.method
        if path == "/_api/version":
            return 200, {"server": "arango", "version": "3.12.4", "license": "community"}
        if path == "/_admin/server/role":
            return 200, {"role": self.role, "mode": "default", "error": False, "code": 200}
        if path == "/_api/database/current":
            result = {"name": "db", "id": "1", "path": "", "isSystem": False}
            if self.role == "COORDINATOR":
                result["sharding"] = self.sharding
            return 200, {"error": False, "code": 200, "result": result}
        if path == "/_api/cursor" and method == "POST":
            if seen.query is None:
                return _error(400, 1501, f"the fake knows no such query: {seen.body}")
            answer = self.answer.get(seen.query, lambda binds: [])
            rows = answer(seen.binds)
            return 201, {"result": rows, "hasMore": False, "cached": False, "error": False}
        found = re.fullmatch(r"/_api/transaction(?:/(\w+))?", path)
        if found:
            return self._transaction(method, found[1])
        found = re.fullmatch(r"/_api/collection(?:/(\w+)(?:/(\w+))?)?", path)
        if found:
            return self._collection(method, found[1], found[2], seen.body)
        if path == "/_api/index" and method == "POST":
            return 201, {"id": "x/1", "isNewlyCreated": True, "error": False, "code": 201}
        if path.startswith("/_api/gharial"):
            return self._graph(method, path, seen.body)
        return _error(404, 404, f"the fake does not serve {method} {path}")

    def _transaction(self, method: str, trx: str | None) -> tuple[int, Any]:
        if trx == "begin" and method == "POST":
            trx = str(next(self._ids))
            self.transactions[trx] = "running"
            return 201, {"result": {"id": trx, "status": "running"}, "error": False}
        if (
            trx is None
            or trx not in self.transactions
            or (method == "GET" and self.forget_transactions)
        ):
            return _error(404, 1655, "transaction not found")
        status = self.transactions[trx]
        if method == "GET":
            return 200, {"result": {"id": trx, "status": status}, "error": False}
        if status != "running":
            return _error(400, 1653, f"transaction is {status}")
        self.transactions[trx] = "committed" if method == "PUT" else "aborted"
        return 200, {"result": {"id": trx, "status": self.transactions[trx]}, "error": False}

    def _collection(
        self, method: str, name: str | None, what: str | None, body: Any
    ) -> tuple[int, Any]:
        if method == "GET" and name is None:
            result = [
                {"id": n, "name": n, "system": False, "type": 2, "status": 3, "globallyUniqueId": n}
                for n in self.collections
            ]
            return 200, {"result": result, "error": False, "code": 200}
        if method == "POST" and name is None:
            self.collections[body["name"]] = body
            return 200, {**body, "id": body["name"], "status": 3, "error": False}
        if name not in self.collections:
            return _error(404, 1203, "collection or view not found")
        props = self.collections[name]
        return 200, {"id": name, "name": name, "status": 3, "type": 2, **props, "error": False}

    def _graph(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/_api/gharial":
            graphs = [{"_key": n, "name": n, **g} for n, g in self.graphs.items()]
            return 200, {"graphs": graphs, "error": False, "code": 200}
        if method == "POST" and path == "/_api/gharial":
            self.graphs[body["name"]] = body
            graph = {"_key": body["name"], "name": body["name"], **body}
            return 202, {"graph": graph, "error": False, "code": 202}
        return _error(404, 1924, "graph not found")


def _error(http: int, num: int, message: str) -> tuple[int, Any]:
    return http, {"error": True, "code": http, "errorNum": num, "errorMessage": message}


def _handler(fake: FakeArango) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # answers go out whole, not held back by Nagle's algorithm for an ACK
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = urlsplit(self.path).path
            path = re.sub(r"^/_db/[^/]+", "", path)
            query = None
            if path == "/_api/cursor" and isinstance(body, dict):
                query = _BY_TEXT.get(body.get("query", ""))
            seen = Seen(self.command, path, self.headers.get("x-arango-trx-id"), body, query)
            with fake._lock:
                fault = next((f for f in fake.faults if f.matches(seen)), None)
                if fault is not None:
                    fault.times -= 1
                fake.seen.append(seen)
                if fault is not None and fault.drop == "before":
                    seen.dropped = "before"
                    self.close_connection = True
                    return
                status, answer = fake.handle(seen)
            if fault is not None:
                time.sleep(fault.delay)
                if fault.drop == "after":
                    seen.dropped = "after"
                    self.close_connection = True
                    return
                if fault.error is not None:
                    status, answer = _error(*fault.error, "injected by the test")
                if fault.status is not None:
                    self._send(fault.status[0], fault.status[1].encode(), "text/html")
                    return
            self._send(status, json.dumps(answer).encode(), "application/json")

        def _send(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler


def statements(fake: FakeArango) -> Iterator[tuple[str | None, str]]:
    """``(transaction id or None, statement name)`` of every cursor request, in order."""
    for seen in fake.seen:
        if seen.query is not None:
            yield seen.trx, seen.query


class JobTable:
    """The job documents of a mycelium, kept in memory and served as the claim, expiry,
    failure and reading statements of ``aql.py`` say (``table.serve(fake)``), so that a test
    follows jobs through claims, lease expiries and failures over the real driver and
    transport. Each answer does what its statement's AQL does to the documents it matches;
    writes apply at once, transaction or not (no isolation, no rollback): tests that use it
    inject no faults.

    Documents are the fields ``_job_docs`` in ``arango/__init__.py`` writes, and a test may
    overwrite any of them (``table.jobs[id]["args"] = ...``) as a damaged or hostile row."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        """Job id -> its document."""
        self.runs: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, dict[str, Any]] = {}
        self.links: list[dict[str, Any]] = []
        """elfc_job_failures edges."""
        self.edges: list[tuple[str, str]] = []
        """elfc_deps as (dependency id, dependent id)."""
        self._ids = itertools.count()

    # -- making documents -------------------------------------------------------------------

    def run(self, run_id: str = "r1", no: int = 1) -> str:
        self.runs[run_id] = {
            "_key": run_id, "no": no, "pipeline": "tests:pipe", "revision": "p1",
            "arguments": "{}", "output": "null", "total": 0, "status": "running",
            "created": 1.0, "finished": None,
        }  # fmt: skip
        return run_id

    def job(self, key: str, run: str = "r1", elf: str = "e", deps: tuple[str, ...] = ()) -> str:
        """A job of ``run`` whose dependencies are the jobs of ``deps`` (keys): ready without
        any, else pending; its id."""
        job_id = f"j{next(self._ids):015x}"
        by_key = {doc["key"]: doc for doc in self.jobs.values() if doc["run"] == run}
        self.jobs[job_id] = {
            "_key": job_id, "_id": f"{aql.JOBS}/{job_id}", "run": run,
            "run_no": self.runs[run]["no"], "key": key, "node": key.split("#")[0], "elf": elf,
            "task": "work", "revision": "r1", "args": "[]", "kwargs": '{"x": 1}',
            "deps": list(deps), "seq": len(by_key), "status": "pending" if deps else "ready",
            "waiting": len(deps), "dependents": 0, "attempts": 0, "not_before": 0.0,
            "lease": None, "lease_owner": None, "lease_until": None, "created": 1.0,
            "started": None, "finished": None, "history": [], "failure": None,
        }  # fmt: skip
        for dep in deps:
            by_key[dep]["dependents"] += 1
            self.edges.append((by_key[dep]["_key"], job_id))
        self.runs[run]["total"] += 1
        return job_id

    def status(self) -> dict[str, str]:
        """Job key -> status."""
        return {doc["key"]: doc["status"] for doc in self.jobs.values()}

    def serve(self, fake: FakeArango) -> None:
        """Answer from this table every statement that submitting a run, serving it with real
        ``elfc`` worker processes and reading it need (the rest answer no rows)."""
        for name in (
            "PROBE", "CLAIM", "HELD", "RECORD_FAILURE", "INSERT", "FAIL", "SKIP_DEPENDENTS",
            "REQUEUE", "EXPIRED", "EXPIRE", "SETTLE", "RUN_STATUS", "BY_PREFIX", "LIST_JOBS",
            "JOB_EXTRAS", "NEXT_RUN_NO", "COMPLETE", "READY_DEPENDENTS", "GET_RESULTS",
            "EXTEND_LEASES", "RUN_COUNTS", "LIST_RUNS", "CANCEL_RUN", "CANCEL_JOBS",
            "LIST_JOBS_WITH_STATUS", "CACHED_RESULT", "RUN_CACHED", "PUT_RESULTS", "EXPANDING",
            "EXPAND_RUN", "EXTERNAL", "ADD_DEPENDENTS", "EXPAND_JOB", "HANDLE", "HANDLED_RESULTS",
            "LIST_FAILURES",
        ):  # fmt: skip
            fake.answer[name] = getattr(self, name.lower())

    # -- the statements -----------------------------------------------------------------

    def _ready(self, elf: str, now: float) -> list[dict[str, Any]]:
        found = [
            j
            for j in self.jobs.values()
            if j["elf"] == elf and j["status"] == "ready" and j["not_before"] <= now
        ]
        return sorted(found, key=lambda j: (j["run_no"], j["seq"]))

    def _expired(self, cutoff: float) -> list[dict[str, Any]]:
        return [
            j for j in self.jobs.values() if j["status"] == "running" and j["lease_until"] < cutoff
        ]

    def _held(self, job: str, worker: str) -> dict[str, Any] | None:
        j = self.jobs.get(job)
        if j is None or j["status"] != "running" or j["lease_owner"] != worker:
            return None
        return j

    def probe(self, b: dict[str, Any]) -> list[Any]:
        ready = bool(self._ready(b["elf"], b["now"]))
        return [{"ready": ready, "expired": bool(self._expired(b["now"]))}]

    def claim(self, b: dict[str, Any]) -> list[Any]:
        now, out = b["now"], []
        for j in self._ready(b["elf"], now)[b["skip"] : b["skip"] + b["limit"]]:
            j.update(
                status="running", attempts=j["attempts"] + 1, lease_owner=b["worker"],
                lease=b["lease"], lease_until=now + b["lease"], started=now,
            )  # fmt: skip
            j["history"] = [*j["history"], [now, "running", b["worker"]]]
            deps = j["deps"] if isinstance(j["deps"], list) else []
            results = [
                [r["key"], r["value"]]
                for r in self.results.values()
                if r["run"] == j["run"] and r["key"] in deps
            ]
            out.append(
                {
                    **{k: j[k] for k in ("run", "run_no", "seq", "key", "task", "revision")},
                    **{k: j[k] for k in ("args", "kwargs", "deps", "attempts")},
                    "id": j["_key"],
                    "results": results,
                    "reuse": j.get("reuse") is True,
                }
            )
        return out

    def held(self, b: dict[str, Any]) -> list[Any]:
        j = self._held(b["job"], b["worker"])
        if j is None:
            return []
        fields = ("run", "key", "elf", "task", "attempts", "dependents")
        return [{"id": j["_key"], **{k: j[k] for k in fields}}]

    def record_failure(self, b: dict[str, Any]) -> list[Any]:
        found = self.failures.get(b["hash"])
        if found is None:
            fields = ("error_type", "message", "traceback", "elf", "task", "revision")
            self.failures[b["hash"]] = {
                "_key": b["hash"], **{k: b[k] for k in fields},
                "count": 1, "first_seen": b["now"], "last_seen": b["now"],
            }  # fmt: skip
        else:
            found.update(count=found["count"] + 1, last_seen=b["now"], revision=b["revision"])
        return []

    def insert(self, b: dict[str, Any]) -> list[Any]:
        collection = b["@collection"]
        for doc in b["docs"]:
            if collection == aql.JOB_FAILURES:
                self.links.append(doc)
            elif collection == aql.RESULTS:
                self.results[doc["_key"]] = doc
            elif collection == aql.RUNS:
                self.runs[doc["_key"]] = dict(doc)
            elif collection == aql.JOBS:
                self.jobs[doc["_key"]] = {**doc, "_id": f"{aql.JOBS}/{doc['_key']}"}
            elif collection == aql.DEPS:
                self.edges.append((doc["_from"], doc["_to"]))
        return []

    def next_run_no(self, b: dict[str, Any]) -> list[Any]:
        return [max((r["no"] for r in self.runs.values()), default=0) + 1]

    def complete(self, b: dict[str, Any]) -> list[Any]:
        out = []
        for job in b["jobs"]:
            j = self._held(job, b["worker"])
            if j is None:
                continue
            j.update(status="succeeded", finished=b["now"], lease_until=None)
            j.update(cache_key=b["keys"].get(job), cached_from=b["reused"].get(job))
            note = b["notes"].get(job) or b["worker"]
            j["history"] = [*j["history"], [b["now"], "succeeded", note]]
            out.append({"id": job, "run": j["run"], "key": j["key"], "dependents": j["dependents"]})
        return out

    def cached_result(self, b: dict[str, Any]) -> list[Any]:
        found = [
            j
            for j in self.jobs.values()
            if j.get("cache_key") == b["key"] and j["status"] == "succeeded"
        ]
        found.sort(key=lambda j: -j["finished"])
        return [[j["_key"], self.results[j["_key"]]["value"]] for j in found[:1]]

    def _cached(self, run: str) -> int:
        return sum(1 for j in self.jobs.values() if j["run"] == run and j.get("cached_from"))

    def run_cached(self, b: dict[str, Any]) -> list[Any]:
        return [self._cached(b["run"])]

    def ready_dependents(self, b: dict[str, Any]) -> list[Any]:
        done = {d.removeprefix(f"{aql.JOBS}/") for d in b["done"]}
        hits: dict[str, int] = {}
        for source, target in self.edges:
            if source.removeprefix(f"{aql.JOBS}/") in done:
                target = target.removeprefix(f"{aql.JOBS}/")
                hits[target] = hits.get(target, 0) + 1
        return [
            {"elf": self.jobs[target]["elf"], "ready": ready}
            for target, ready in self._count_down(hits, b["now"]).items()
        ]

    def _count_down(self, hits: dict[str, int], now: float) -> dict[str, bool]:
        """Each job of ``hits`` waits for as many dependencies less; ready at 0 if pending.
        Job id -> whether it became ready."""
        out = {}
        for target, k in hits.items():
            j = self.jobs[target]
            ready = j["status"] == "pending" and j["waiting"] == k
            j["waiting"] -= k
            if ready:
                j["status"] = "ready"
                j["history"] = [*j["history"], [now, "ready", ""]]
            out[target] = ready
        return out

    def get_results(self, b: dict[str, Any]) -> list[Any]:
        return [
            [r["key"], r["value"]]
            for r in self.results.values()
            if r["run"] == b["run"] and r["key"] in b["keys"]
        ]

    def extend_leases(self, b: dict[str, Any]) -> list[Any]:
        out = []
        for job in b["jobs"]:
            j = self._held(job, b["worker"])
            if j is not None:
                j["lease_until"] = b["now"] + j["lease"]
                out.append({"id": job, "cancelled": self.runs[j["run"]]["status"] == "cancelled"})
        return out

    def _counts(self, run: str) -> list[Any]:
        counts: dict[tuple[str, str], int] = {}
        for j in self.jobs.values():
            if j["run"] == run:
                counts[j["elf"], j["status"]] = counts.get((j["elf"], j["status"]), 0) + 1
        return [[elf, status, n] for (elf, status), n in counts.items()]

    def run_counts(self, b: dict[str, Any]) -> list[Any]:
        return self._counts(b["run"])

    def list_runs(self, b: dict[str, Any]) -> list[Any]:
        runs = sorted(self.runs.values(), key=lambda r: -r["no"])[: b["limit"]]
        return [
            {**r, "counts": self._counts(r["_key"]), "cached": self._cached(r["_key"])}
            for r in runs
        ]

    def cancel_run(self, b: dict[str, Any]) -> list[Any]:
        r = self.runs.get(b["run"])
        if r is None or r["status"] != "running":
            return []
        r["status"] = "cancelled"
        return [b["run"]]

    def cancel_jobs(self, b: dict[str, Any]) -> list[Any]:
        for j in self.jobs.values():
            if j["run"] == b["run"] and j["status"] in ("pending", "ready"):
                j.update(status="cancelled", finished=b["now"])
                j["history"] = [*j["history"], [b["now"], "cancelled", "run cancelled"]]
        return []

    def fail(self, b: dict[str, Any]) -> list[Any]:
        j = self._held(b["job"], b["worker"])
        if j is None:
            return []
        now = b["now"]
        j.update(status="failed", finished=now, lease_until=None, failure=b["failure"])
        j["history"] = [*j["history"], [now, "failed", b["note"]]]
        return [j["run"]]

    def _targets(self, sources: set[str]) -> list[str]:
        """The dependents of the jobs ``sources``, once per edge."""
        return [
            t.removeprefix(f"{aql.JOBS}/")
            for s, t in self.edges
            if s.removeprefix(f"{aql.JOBS}/") in sources
        ]

    def skip_dependents(self, b: dict[str, Any]) -> list[Any]:
        start = b["start"].removeprefix(f"{aql.JOBS}/")
        seen, frontier, skipped = {start}, [start], []
        while frontier:
            nxt = [t for t in dict.fromkeys(self._targets(set(frontier))) if t not in seen]
            seen.update(nxt)
            frontier = [t for t in nxt if self.jobs[t]["task"] != b["catch"]]  # pruned there
            skipped += [t for t in frontier if self.jobs[t]["status"] == "pending"]
        hits: dict[str, int] = {}
        for target in self._targets({start, *skipped}):
            if self.jobs[target]["task"] == b["catch"]:
                hits[target] = hits.get(target, 0) + 1
        for target in skipped:
            v = self.jobs[target]
            v.update(status="skipped", finished=b["now"])
            v["history"] = [*v["history"], [b["now"], "skipped", b["note"]]]
        self._count_down(hits, b["now"])
        return [self.jobs[t]["run"] for t in [*skipped, *hits]]

    def list_failures(self, b: dict[str, Any]) -> list[Any]:
        return sorted(self.failures.values(), key=lambda f: -f["last_seen"])[: b["limit"]]

    def put_results(self, b: dict[str, Any]) -> list[Any]:
        for doc in b["docs"]:
            self.results[doc["_key"]] = dict(doc)
        return []

    def handle(self, b: dict[str, Any]) -> list[Any]:
        below = tuple(f"{k}/" for k in b["keys"])
        out = []
        for j in self.jobs.values():
            if j["run"] != b["run"] or j["status"] != "failed":
                continue
            if j["key"] in b["keys"] or j["key"].startswith(below):
                j["status"] = "handled"
                j["history"] = [*j["history"], [b["now"], "handled", b["note"]]]
                out.append(j["_key"])
        return out

    def handled_results(self, b: dict[str, Any]) -> list[Any]:
        for job in b["jobs"]:
            if job in self.results:
                self.results[job]["value"] = b["value"]
        return []

    # -- expanding regions ------------------------------------------------------------------

    def expanding(self, b: dict[str, Any]) -> list[Any]:
        j = self._held(b["job"], b["worker"])
        if j is None:
            return []
        fields = ("run", "run_no", "key", "elf", "task", "attempts", "dependents")
        return [
            {
                "id": j["_key"], **{k: j[k] for k in fields},
                "run_status": self.runs[j["run"]]["status"], "reuse": j.get("reuse") is True,
            }
        ]  # fmt: skip

    def expand_run(self, b: dict[str, Any]) -> list[Any]:
        r = self.runs.get(b["run"])
        if r is None or r["status"] != "running":
            return []
        first = r.get("next_seq")
        if first is None:
            first = max(j["seq"] for j in self.jobs.values() if j["run"] == r["_key"]) + 1
        r.update(total=r["total"] + b["added"], next_seq=first + b["added"])
        return [first]

    def external(self, b: dict[str, Any]) -> list[Any]:
        return [
            {"id": j["_key"], "key": j["key"], "status": j["status"]}
            for j in self.jobs.values()
            if j["run"] == b["run"] and j["key"] in b["keys"]
        ]

    def add_dependents(self, b: dict[str, Any]) -> list[Any]:
        for count in b["counts"]:
            self.jobs[count["id"]]["dependents"] += count["n"]
        return []

    def expand_job(self, b: dict[str, Any]) -> list[Any]:
        j = self._held(b["job"], b["worker"])
        if j is None:
            return []
        for field in ("task", "args", "kwargs", "deps"):
            if b[field] is not None:
                j[field] = b[field]
        now, status = b["now"], b["status"]
        j.update(status=status, waiting=b["waiting"], lease_until=None)
        j["finished"] = now if status in ("succeeded", "skipped") else None
        j["history"] = [*j["history"], [now, status, b["note"]]]
        return [j["_key"]]

    def _back(self, j: dict[str, Any], now: float, note: str) -> dict[str, Any]:
        status = "cancelled" if self.runs[j["run"]]["status"] == "cancelled" else "ready"
        j.update(status=status, lease_until=None, finished=now if status == "cancelled" else None)
        j["history"] = [*j["history"], [now, status, note]]
        return {"run": j["run"], "status": status}

    def requeue(self, b: dict[str, Any]) -> list[Any]:
        out = []
        for job in b["jobs"]:
            j = self._held(job, b["worker"])
            if j is None:
                continue
            j["attempts"] += b["attempts"]
            if b["not_before"] is not None:
                j["not_before"] = b["not_before"]
            if b["failure"] is not None:
                j["failure"] = b["failure"]
            out.append(self._back(j, b["now"], b["note"]))
        return out

    def expired(self, b: dict[str, Any]) -> list[Any]:
        fields = ("run", "key", "elf", "task", "revision", "attempts", "dependents", "lease_owner")
        return [
            {
                "id": j["_key"],
                **{k: j[k] for k in fields},
                "cancelled": self.runs[j["run"]]["status"] == "cancelled",
                "failures": sum(link["_from"] == j["_id"] for link in self.links),
            }
            for j in self._expired(b["cutoff"])
        ]

    def expire(self, b: dict[str, Any]) -> list[Any]:
        return [
            self._back(j, b["now"], f"lease of {j['lease_owner']} expired")
            for j in self._expired(b["cutoff"])
            if j["_key"] in b["jobs"]
        ]

    def _active(self, run: str) -> bool:
        return any(
            j["run"] == run and j["status"] in ("pending", "ready", "running")
            for j in self.jobs.values()
        )

    def settle(self, b: dict[str, Any]) -> list[Any]:
        out = []
        for run_id in b["runs"]:
            r = self.runs.get(run_id)
            if r is None or r["finished"] is not None or self._active(run_id):
                continue
            failed = any(j["run"] == run_id and j["status"] == "failed" for j in self.jobs.values())
            if r["status"] == "running":
                r["status"] = "failed" if failed else "succeeded"
            r["finished"] = b["now"]
            out.append(run_id)
        return out

    def run_status(self, b: dict[str, Any]) -> list[Any]:
        r = self.runs.get(b["run"])
        if r is None:
            return []
        return [
            {"status": r["status"], "idle": r["finished"] is None and not self._active(r["_key"])}
        ]

    def by_prefix(self, b: dict[str, Any]) -> list[Any]:
        docs = {aql.JOBS: self.jobs, aql.RUNS: self.runs}.get(b["@collection"], {})
        keys = sorted(k for k in docs if b["low"] <= k < b["high"] and k.startswith(b["prefix"]))
        return [docs[k] for k in keys[:2]]

    def list_jobs(self, b: dict[str, Any]) -> list[Any]:
        jobs = sorted(
            (
                j
                for j in self.jobs.values()
                if j["run"] == b["run"] and b.get("status", j["status"]) == j["status"]
            ),
            key=lambda j: j["seq"],
        )
        hashes = {j["failure"] for j in jobs}
        return [{"jobs": jobs, "failures": [f for h, f in self.failures.items() if h in hashes]}]

    list_jobs_with_status = list_jobs

    def job_extras(self, b: dict[str, Any]) -> list[Any]:
        result = self.results.get(b["job"])
        return [
            {
                "result": None if result is None else result["value"],
                "failure": self.failures.get(b["failure"]) if b["failure"] else None,
            }
        ]
