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
