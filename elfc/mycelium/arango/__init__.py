"""The ArangoDB mycelium: one database shared by elves on many machines.

``arango://user@host:8529/dbname`` (``arangos://`` for TLS, certificate verification on, with
``?ca=/path/bundle.pem`` for a private CA); several coordinators of a cluster as
``arango://user@h1:8529,h2:8529/dbname`` (the first that answers, until it fails). The password comes from the URL
(percent-encoded) or from ``$ELFC_ARANGO_PASSWORD``; ``url`` and every message show it masked.
Other options: ``?timeout=`` (seconds a request may take, default 60) and ``?connect_timeout=``
(seconds to reach a server, default 5), so an unreachable server fails in bounded time.
``url.py`` parses these; ``aql.py`` holds every query this module runs.

Opening a mycelium sets it up when it is new (idempotent, safe from many processes at once):
the database when the user may create it, the collections, the persistent indexes every query
relies on (``aql.py`` names them), the named graphs ``elfc_runs``, ``elfc_templates`` and
``elfc_failures`` (browsable in ArangoDB's web UI graph viewer), and a schema version
document; a mycelium of another version is refused. On a cluster the collections are created
co-located (one shard each, ``distributeShardsLike`` elfc_meta), and a sharded database whose
collections are not is refused (see ``_check_cluster``).

How it keeps the SQLite backend's behaviour across machines:

* a claim is one AQL statement (one transaction); a completion, a failure, a submission or a
  cancellation is one stream transaction of a few statements; a write-write conflict (error
  1200: two workers after the same job, two completions readying the same dependent) aborts
  one of them, which is retried with jittered backoff (so are deadlocks and a cluster's
  fail-over refusals); completions commit before a worker claims again, and a claim retried
  after a conflict skips a random few jobs at the head;
* no request is sent twice: a dropped connection after a request went out raises
  :class:`OutcomeUnknown` (python-arango would re-send it), and the store resolves it by
  reading (``_commit``: the transaction's status, else its receipt document; ``_claim``: the
  jobs leased to it); reads and ``aql.RERUNNABLE`` statements run again;
* a claimed job is decoded by ``common.decode_payload``; one it refuses is failed
  (``UndecodableJob``) before ``claim`` returns, and the claim takes the next jobs; a lease
  expiry is one stream transaction that returns each job to ready, or fails it
  (``WorkerLost``) once ``common.lost_leases`` reaches ``MAX_LOST_LEASES``;
* readiness is a counter per job decremented through the dependency edges, and a run settles
  by index probes right after the transaction that finished its jobs commits;
* results are keyed by job id, so a result is stored once even if two workers raced for it;
* there is no doorbell between hosts: ``wait_for_work`` polls with backoff (10 ms up to
  0.5 s while the elf stays idle), one read-only index probe per poll;
* leases and ``retry_at`` compare wall clocks of different hosts: keep them in sync (NTP).

The rules it shares with the SQLite backend (submission checks, run summaries, id prefixes,
failure digests, payload decoding, the lost-lease limit, write retries) are in
``elfc.mycelium.common``. python-arango is imported on first use, never by ``import elfc``;
without it, opening an ``arango://`` mycelium fails with the install hint.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import os
import random
import re
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from elfc.errors import MyceliumError
from elfc.model.ir import CATCH, BuiltRun, JobSpec, revision_of
from elfc.model.raised import HANDLED
from elfc.model.records import (
    Claimed,
    ElfRecord,
    Event,
    FailureInfo,
    FailureRecord,
    JobInfo,
    LogRecord,
    RevisionRecord,
    RunFailure,
    RunInfo,
    WorkerInfo,
)
from elfc.model.status import ACTIVE_JOB_STATUSES, FINAL_RUN_STATUSES
from elfc.mycelium.arango import aql
from elfc.mycelium.arango.url import PASSWORD_ENV, ArangoURL, parse_url
from elfc.mycelium.common import (
    FORKS,
    MAX_LOST_LEASES,
    PATIENCE,
    Expansion,
    Layout,
    Payload,
    Submission,
    Undecodable,
    abandon,
    cached_note,
    closed_error,
    decode_json,
    decode_payload,
    expanded_note,
    expansion_note,
    failure_digest,
    failure_summary,
    handled_note,
    job_history,
    lost_lease_failure,
    lost_leases,
    must_stop,
    new_ids,
    pick,
    prefix_end,
    release_note,
    rerun_note,
    retry,
    retry_note,
    run_failure,
    run_info,
    schema_mismatch,
    skip_note,
    undecodable_failure,
)
from elfc.mycelium.store import Store
from elfc.mycelium.urls import install_hint

if TYPE_CHECKING:
    from arango.client import ArangoClient
    from arango.database import Database, StandardDatabase, TransactionDatabase
    from arango.exceptions import ArangoError, ArangoServerError
    from arango.http import HTTPClient

__all__ = ["INSTALL_HINT", "PASSWORD_ENV", "ArangoStore", "ArangoURL", "parse_url"]

T = TypeVar("T")

_log = logging.getLogger(__name__)
INSTALL_HINT = install_hint("arango")
POLL_MIN, POLL_MAX = 0.01, 0.5
"""``wait_for_work`` polls after 10 ms, backing off to one probe every half second."""
RETRY_FIRST, RETRY_MAX = 0.001, 0.1
"""Jittered delays between tries of a conflicting write, in seconds."""
SPREAD = 8
"""A claim retried after a conflict skips up to this many claim-sized windows of jobs."""
MIN_SERVER = (3, 11)
BATCH_SIZE = 100_000
"""Results per round trip: every query's result fits in one batch, so no cursor outlives it."""

# ArangoDB error numbers: python-arango's arango/errno.py, ArangoDB's "Error codes and
# meanings" (https://docs.arangodb.com/stable/develop/error-codes-and-meanings/).
FORBIDDEN = 11
LOCK_TIMEOUT = 18
DEADLOCK = 29
SHUTTING_DOWN = 30
READ_ONLY = 1004
CONFLICT = 1200
DATA_SOURCE_NOT_FOUND = 1203
DUPLICATE_NAME = 1207
UNIQUE_CONSTRAINT_VIOLATED = 1210
DATABASE_NOT_FOUND = 1228
CLUSTER_TIMEOUT = 1457
CLUSTER_CONNECTION_LOST = 1465
CLUSTER_BACKEND_UNAVAILABLE = 1478
CLUSTER_SHARD_LEADER_RESIGNED = 1491
CLUSTER_NOT_LEADER = 1496
TRANSACTION_ABORTED = 1654
TRANSACTION_NOT_FOUND = 1655
GRAPH_DUPLICATE = 1925
RETRYABLE = frozenset(
    {
        CONFLICT,
        UNIQUE_CONSTRAINT_VIOLATED,  # two UPSERTs inserting the same key; a random id reused
        LOCK_TIMEOUT,
        DEADLOCK,
        SHUTTING_DOWN,  # this coordinator is going away: the next request goes elsewhere
        READ_ONLY,  # a fail-over in progress
        CLUSTER_BACKEND_UNAVAILABLE,
        CLUSTER_SHARD_LEADER_RESIGNED,
        CLUSTER_NOT_LEADER,
        TRANSACTION_ABORTED,
        TRANSACTION_NOT_FOUND,  # a stream transaction that timed out on the server
    }
)
"""Refusals: the server did not carry the request out, so it may be sent again."""
UNANSWERED = frozenset({CLUSTER_TIMEOUT, CLUSTER_CONNECTION_LOST})
"""A coordinator that lost its DB-Server mid-request: the request may or may not have been
carried out, like a dropped connection (:class:`OutcomeUnknown`)."""

_open: weakref.WeakSet[ArangoStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_open):
        store._lock = threading.Lock()  # the parent's may be held by a thread not copied


os.register_at_fork(after_in_child=_after_fork_in_child)


def _encode(value: object) -> str:
    return msgspec.json.encode(value).decode()


def _deserialize(text: str) -> Any:
    return msgspec.json.decode(text)


# -- the driver, imported on first use ---------------------------------------------------------


class OutcomeUnknown(OSError):
    """A request reached a server, and its connection dropped (or timed out) before the answer
    came back: the server may or may not have carried it out. Raised instead of
    ``requests.ConnectionError``, which python-arango answers by sending the same request again
    (``BaseConnection.process_request`` in arango/connection.py catches ``ConnectionError``
    and loops over the hosts), so a write would be applied twice. The store resolves it by
    reading (a transaction's status, a document written), never by re-sending."""

    def __init__(self, method: str, url: str, cause: BaseException) -> None:
        super().__init__(f"{method.upper()} {url}: {type(cause).__name__}: {cause}")
        self.method = method


@dataclass(frozen=True)
class _Driver:
    client: type[ArangoClient]
    error: type[ArangoError]
    server_error: type[ArangoServerError]
    http_client: Callable[[float, float], HTTPClient]


def _never_sent(exc: BaseException) -> bool:
    """Did ``requests`` fail before any byte of the request left (so another host may be
    tried)? True for a refused or timed-out connect, a name that does not resolve and a TLS
    handshake that failed: urllib3 reports those as ``NewConnectionError`` or
    ``ConnectTimeoutError`` (inside ``MaxRetryError`` once its retries, here none, run out),
    which requests wraps in ``ConnectionError``/``ConnectTimeout``/``SSLError``
    (requests/adapters.py ``HTTPAdapter.send``). A dropped connection after the request went
    out is a ``ProtocolError`` instead: never "not sent"."""
    from requests.exceptions import ConnectTimeout, SSLError
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

    if isinstance(exc, ConnectTimeout | SSLError):
        return True
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, ConnectTimeoutError)  # NewConnectionError is one too


@functools.cache
def _driver() -> _Driver:
    try:
        import requests
        from arango.client import ArangoClient
        from arango.exceptions import ArangoError, ArangoServerError
        from arango.http import DefaultHTTPClient
        from arango.response import Response
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry
    except ModuleNotFoundError as exc:
        raise MyceliumError(
            f"the arango:// mycelium needs python-arango ({exc}): {INSTALL_HINT}"
        ) from exc

    class TimedHTTPClient(DefaultHTTPClient):
        """python-arango's HTTP client with a short connect timeout and no silent re-sends.

        Its default waits ``request_timeout`` to connect and lets urllib3 retry GETs on 5xx
        answers (``DefaultHTTPClient.create_session`` in arango/http.py), so an unreachable
        server took minutes to report and a 502 from a proxy read as "cannot reach". Here
        urllib3 retries nothing and every answer comes back as it is. A request that never
        left (see :func:`_never_sent`) raises ``ConnectionError``, so python-arango tries the
        next host; one that left and lost its answer raises :class:`OutcomeUnknown`, which
        python-arango lets through."""

        def __init__(self, connect_timeout: float, read_timeout: float) -> None:
            super().__init__(request_timeout=read_timeout, retry_attempts=0, backoff_factor=0.0)
            self.connect_timeout = connect_timeout

        def create_session(self, host: str) -> requests.Session:
            retries = Retry(total=0, read=False, redirect=False, raise_on_status=False)
            adapter = HTTPAdapter(max_retries=retries)
            session = requests.Session()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            return session

        def send_request(
            self,
            session: Any,
            method: str,
            url: str,
            headers: Any = None,
            params: Any = None,
            data: Any = None,
            auth: tuple[str, str] | None = None,
        ) -> Response:
            try:
                response = session.request(
                    method=method,
                    url=url,
                    params=params,
                    data=data,
                    headers=headers,
                    auth=auth,
                    timeout=(self.connect_timeout, self.request_timeout),
                )
            except requests.ConnectionError as exc:
                if _never_sent(exc):
                    raise  # python-arango moves on to the next host
                raise OutcomeUnknown(method, url, exc) from exc
            except requests.Timeout as exc:  # the read timed out: it was sent
                raise OutcomeUnknown(method, url, exc) from exc
            # An answer of HTTP 503 with errorNum 503 still makes python-arango try the next
            # host (BaseConnection.prep_response raises ConnectionError for it): ArangoDB
            # answers so when it is starting, stopping or in maintenance, before it runs the
            # request, so sending it elsewhere is safe.
            return Response(
                method=method,
                url=response.url,
                headers=response.headers,
                status_code=response.status_code,
                status_text=response.reason,
                raw_body=response.text,
            )

    return _Driver(ArangoClient, ArangoError, ArangoServerError, TimedHTTPClient)


def _execute(db: Database, query: aql.Query, **values: object) -> list[Any]:
    """Run one statement of ``aql.py`` with its bind parameters; its whole result."""
    cursor = db.aql.execute(query.text, bind_vars=aql.bind(query, values), batch_size=BATCH_SIZE)
    try:
        return list(cursor)
    finally:
        cursor.close(ignore_missing=True)


class _Again(Exception):
    """A transaction that did not commit, found out after its commit went unanswered: run
    its body again."""


def _unanswered(exc: BaseException) -> bool:
    """Was the request sent without an answer telling whether it was carried out?"""
    if isinstance(exc, OutcomeUnknown):
        return True
    server_error = _driver().server_error
    return isinstance(exc, server_error) and exc.error_code in UNANSWERED


class _Txn:
    """One stream transaction: its queries, its clock, the runs to settle once it commits,
    and its receipt: ``(collection, keys)`` of documents only its commit creates, how a
    commit whose answer was lost is told apart once the server forgot the transaction
    (``None``: the body is idempotent, run it again)."""

    __slots__ = ("db", "now", "receipt", "settle")

    def __init__(self, db: TransactionDatabase, now: float) -> None:
        self.db = db
        self.now = now
        self.settle: set[str] = set()
        self.receipt: tuple[str, list[str]] | None = None

    def query(self, query: aql.Query, **values: object) -> list[Any]:
        return _execute(self.db, query, **values)


# -- the backend ---------------------------------------------------------------------------


class ArangoStore(Store):
    """The mycelium in an ArangoDB database: ``ArangoStore(parse_url("arango://..."))``."""

    schemes = ("arango", "arangos")
    supports_doorbell = False
    supports_batches = True
    password_env = PASSWORD_ENV

    def __init__(self, target: ArangoURL) -> None:
        self.target = target
        self.url = target.masked
        self._lock = threading.Lock()
        self._client: ArangoClient | None = None
        self._db: StandardDatabase | None = None
        self._fork = FORKS[0]
        self._closed = False
        self._pauses: dict[str, float] = {}
        _open.add(self)
        self._database()  # fail early: unreachable, refused, or of another schema

    @classmethod
    def from_url(cls, url: str) -> ArangoStore:
        return cls(parse_url(url))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._client is not None and self._fork == FORKS[0]:
                self._client.close()
            self._client = self._db = None

    # -- connection, retries, errors -----------------------------------------------------

    def _database(self) -> StandardDatabase:
        """The database handle; a new connection in a forked child (never the parent's)."""
        with self._lock:
            if self._closed:
                raise closed_error(self.url)
            if self._db is None or self._fork != FORKS[0]:
                if self._client is not None:
                    abandon(self._client)  # a parent's: its sockets are the parent's too
                self._client, self._db = self._connect()
                self._fork = FORKS[0]
            return self._db

    def _connect(self) -> tuple[ArangoClient, StandardDatabase]:
        driver, target = _driver(), self.target
        endpoints = target.endpoints
        client = driver.client(
            hosts=list(endpoints),
            # "fallback" stays on the coordinator that answers and moves on when it fails
            # (arango/resolver.py FallbackHostResolver); "roundrobin" kept sending every
            # Nth request to a dead one, a connect timeout each time.
            host_resolver="fallback",
            resolver_max_tries=len(endpoints) + 1,
            http_client=driver.http_client(target.connect_timeout, target.timeout),
            serializer=_encode,
            deserializer=_deserialize,
            verify_override=(target.ca or True) if target.tls else None,
        )
        try:
            db = client.db(target.database, username=target.username, password=target.password)
            self._check_server(client, db)
            self._retrying(lambda: self._check_schema(db), "set up the mycelium", rerun=True)
            self._retrying(lambda: self._check_cluster(db), "check the cluster", rerun=True)
        except BaseException:
            client.close()
            raise
        return client, db

    def _check_server(self, client: ArangoClient, db: StandardDatabase) -> None:
        """A cheap authenticated request (the server version), creating the database if the
        user may."""
        driver = _driver()
        try:
            try:
                version = db.version()
            except driver.server_error as exc:
                if exc.error_code != DATABASE_NOT_FOUND:
                    raise
                self._create_database(client)
                version = db.version()
        except (driver.error, OSError) as exc:
            raise self._error(exc, "connect") from exc
        found = re.match(r"(\d+)\.(\d+)", version)
        if found is None or (int(found[1]), int(found[2])) < MIN_SERVER:
            raise MyceliumError(
                f"the mycelium {self.url} runs ArangoDB {version}; elfc needs "
                f"{'.'.join(map(str, MIN_SERVER))} or later"
            )

    def _create_database(self, client: ArangoClient) -> None:
        target = self.target
        system = client.db("_system", username=target.username, password=target.password)
        try:
            system.create_database(target.database)
        except _driver().server_error as exc:
            if exc.error_code == DUPLICATE_NAME:
                return  # another process created it first
            if exc.http_code in (401, 403) or exc.error_code == FORBIDDEN:
                raise MyceliumError(
                    f"the database {target.database!r} does not exist on {self.url} and user "
                    f"{target.username!r} may not create it: create it and grant that user "
                    "read/write access to it (see docs/arango.md)"
                ) from exc
            raise

    def _check_schema(self, db: StandardDatabase) -> None:
        found = self._schema_version(db)
        if found is None:
            self._set_up(db)
            _execute(db, aql.PUT_SCHEMA, version=aql.SCHEMA_VERSION)
            found = self._schema_version(db)
        if found in aql.UPGRADABLE:
            self._set_up(db)  # idempotent: adds only what the newer layout has more
            _execute(db, aql.UPGRADE_SCHEMA, version=aql.SCHEMA_VERSION)
            found = self._schema_version(db)
        if found != aql.SCHEMA_VERSION:
            raise schema_mismatch(self.url, found, aql.SCHEMA_VERSION, "another database")

    def _check_cluster(self, db: StandardDatabase) -> None:
        """Refuse a cluster database whose transactions would not be atomic.

        A transaction (or AQL query) that touches shards on several DB-Servers may commit on
        some and not on others ("Transactions" in the ArangoDB manual,
        https://docs.arangodb.com/stable/develop/transactions/). elfc's are atomic when the
        database is OneShard (``sharding: "single"``, reported by ``GET
        /_api/database/current``) or when every elfc collection has one shard placed like
        ``elfc_meta``'s (what :meth:`_set_up` creates on a cluster)."""
        if db.role() != "COORDINATOR" or db.properties().get("sharding") == "single":
            return
        first = aql.COLLECTIONS[0]
        loose = []
        for name in aql.COLLECTIONS:
            found = db.collection(name).properties()
            if name == first:
                placed = found.get("shard_count") == 1
            else:
                placed = found.get("shard_like") == first
            if not placed:
                loose.append(name)
        if loose:
            raise MyceliumError(
                f"the mycelium {self.url} is a sharded cluster database whose collections "
                f"{', '.join(loose)} are not co-located with {first}, so a transaction could "
                "commit on some DB-Servers and not on others: point elfc at a new database "
                "(elfc creates its collections co-located) or a OneShard one "
                '(db._createDatabase(name, {sharding: "single"})); see docs/arango.md'
            )

    def _schema_version(self, db: StandardDatabase) -> object:
        try:
            rows = _execute(db, aql.SCHEMA)
        except _driver().server_error as exc:
            if exc.error_code == DATA_SOURCE_NOT_FOUND:
                return None  # a new mycelium
            raise
        return rows[0] if rows else None

    def _set_up(self, db: StandardDatabase) -> None:
        """Create what is missing; every step tolerates another process doing it too."""
        server_error = _driver().server_error
        cluster = db.role() == "COORDINATOR"
        for name in aql.COLLECTIONS:
            if not db.has_collection(name):
                # On a cluster every collection gets one shard, placed like elfc_meta's
                # (distributeShardsLike): all of elfc's data on one DB-Server, so that its
                # transactions stay atomic without a OneShard database (see _check_cluster).
                # https://docs.arangodb.com/stable/develop/http-api/collections/#create-a-collection
                first = name == aql.COLLECTIONS[0]
                try:
                    db.create_collection(
                        name,
                        edge=name in aql.EDGE_COLLECTIONS,
                        shard_count=1 if cluster and first else None,
                        shard_like=aql.COLLECTIONS[0] if cluster and not first else None,
                    )
                except server_error as exc:
                    if exc.error_code != DUPLICATE_NAME:
                        raise
        for index in aql.INDEXES:
            db.collection(index.collection).add_index(index.definition())
        for name, definitions in aql.GRAPHS.items():
            if not db.has_graph(name):
                try:
                    db.create_graph(
                        name,
                        edge_definitions=[
                            {
                                "edge_collection": edges,
                                "from_vertex_collections": list(sources),
                                "to_vertex_collections": list(targets),
                            }
                            for edges, sources, targets in definitions
                        ],
                    )
                except server_error as exc:
                    if exc.error_code not in (GRAPH_DUPLICATE, DUPLICATE_NAME):
                        raise
                continue
            graph = db.graph(name)
            for edges, sources, targets in definitions:
                if not graph.has_edge_definition(edges):
                    graph.create_edge_definition(edges, list(sources), list(targets))

    def _retrying(self, attempt: Callable[[], T], doing: str, rerun: bool = False) -> T:
        """Run ``attempt`` until it stops failing with a write-write conflict or another
        refusal (jittered backoff, for ``PATIENCE`` seconds); an unanswered request
        (:func:`_unanswered`) is tried again only when ``rerun`` says that doing it twice is
        harmless. Any other failure of the driver becomes a :class:`MyceliumError` that
        names the URL, never the password."""
        driver = _driver()

        def transient(exc: Exception) -> bool:
            if isinstance(exc, _Again):
                return True
            if _unanswered(exc):
                return rerun
            return isinstance(exc, driver.server_error) and exc.error_code in RETRYABLE

        def gave_up(exc: Exception) -> MyceliumError:
            if isinstance(exc, OutcomeUnknown):
                return MyceliumError(
                    f"mycelium {self.url}: could not {doing}: no answer from ArangoDB for "
                    f"{PATIENCE:.0f} s ({exc}); check the server and the network"
                )
            reason = exc.error_message if isinstance(exc, driver.server_error) else exc
            return MyceliumError(
                f"mycelium {self.url}: could not {doing}: still conflicting with other "
                f"writers after {PATIENCE:.0f} s ({reason})"
            )

        try:
            return retry(attempt, transient, gave_up, RETRY_FIRST, RETRY_MAX, PATIENCE)
        except (driver.error, OSError) as exc:
            raise self._error(exc, doing) from exc

    def _error(self, exc: BaseException, doing: str) -> MyceliumError:
        """A message a user can act on. The driver's own messages hold no credentials
        (python-arango sends them as an auth header, never in a URL)."""
        target, driver = self.target, _driver()
        if isinstance(exc, driver.server_error):
            code, http = exc.error_code, exc.http_code
            if http == 401:
                return MyceliumError(
                    f"ArangoDB at {self.url} refused user {target.username!r}: wrong password "
                    f"(set it in the URL or ${PASSWORD_ENV}) or no access to database "
                    f"{target.database!r}"
                )
            if code == FORBIDDEN or http == 403:
                return MyceliumError(
                    f"user {target.username!r} may not {doing} in {self.url}: grant it "
                    f"read/write access to database {target.database!r} (see docs/arango.md)"
                )
            if code == DATABASE_NOT_FOUND:
                return MyceliumError(f"the database of the mycelium {self.url} does not exist")
            if exc.error_message is None:  # no ArangoDB error body: something else answered
                return MyceliumError(
                    f"{', '.join(target.endpoints)} answered HTTP {http} when asked to {doing} "
                    f"for the mycelium {self.url}, not as ArangoDB answers: check the host and "
                    "port, arango:// vs arangos://, and any HTTP proxy in between (NO_PROXY)"
                )
            return MyceliumError(
                f"mycelium {self.url}: could not {doing}: [ERR {code}] {exc.error_message}"
            )
        if isinstance(exc, driver.error):
            return MyceliumError(f"mycelium {self.url}: could not {doing}: {exc}")
        if isinstance(exc, OutcomeUnknown):
            return MyceliumError(
                f"mycelium {self.url}: could not {doing}: the connection to ArangoDB broke "
                f"after the request was sent ({exc}), so whether it was carried out is "
                "unknown; nothing was sent again. Check the server and the network, then look "
                "at the run with `elfc jobs`"
            )
        hosts = ", ".join(target.endpoints)
        return MyceliumError(
            f"cannot reach ArangoDB for the mycelium {self.url} at {hosts} "
            f"({type(exc).__name__}: {exc}); check the host and port, arango:// vs arangos://, "
            f"and that the network lets this machine in (connect timeout "
            f"{target.connect_timeout:g} s, request timeout {target.timeout:g} s)"
        )

    def _run(self, query: aql.Query, **values: object) -> list[Any]:
        """One statement, atomic on its own, retried on conflicts; when its answer is lost,
        run again only if it reads (or is in ``aql.RERUNNABLE``)."""
        rerun = not query.writes or query.name in aql.RERUNNABLE
        return self._retrying(
            lambda: _execute(self._database(), query, **values), query.name, rerun
        )

    def _transaction(
        self,
        write: Sequence[str],
        body: Callable[[_Txn], T],
        doing: str,
        read: Sequence[str] = (),
    ) -> T:
        """Run ``body``'s statements in one stream transaction, retried as a whole on
        conflicts; then settle the runs it finished jobs of (after the commit, see SETTLE).

        No request is ever sent twice into one transaction. A statement whose answer is lost
        leaves a transaction that is never committed: it is aborted and ``body`` runs again
        in a new one. A commit whose answer is lost is resolved by :meth:`_commit`."""
        settle: set[str] = set()

        def attempt() -> T:
            txn = self._database().begin_transaction(
                read=list(read), write=list(write), allow_implicit=True
            )
            t = _Txn(txn, time.time())
            try:
                out = body(t)
            except BaseException:
                with contextlib.suppress(Exception):
                    txn.abort_transaction()
                raise
            self._commit(txn, t)
            settle.clear()
            settle.update(t.settle)
            return out

        out = self._retrying(attempt, doing, rerun=True)
        self._settle(settle)
        return out

    def _commit(self, txn: TransactionDatabase, t: _Txn) -> None:
        """Commit ``txn``; when the answer is lost (or a coordinator timed out), find out by
        reading what happened instead of sending the commit blindly again.

        The transaction's status (``GET /_api/transaction/{id}``, python-arango's
        ``TransactionDatabase.transaction_status``; "running", "committed" or "aborted", see
        https://docs.arangodb.com/stable/develop/http-api/transactions/stream-transactions/)
        decides: committed is done, aborted runs the body again (:class:`_Again`), running
        means the commit never arrived, so it is sent (a server commits a transaction once).
        A server that no longer knows the transaction (1655) is asked whether the
        transaction's receipt (``t.receipt``, a document only its commit creates) exists;
        a transaction without one is idempotent and runs again."""
        driver = _driver()
        try:
            txn.commit_transaction()
            return
        except Exception as exc:
            if not _unanswered(exc):
                with contextlib.suppress(Exception):
                    txn.abort_transaction()
                raise
        deadline = time.monotonic() + PATIENCE
        delay = RETRY_FIRST
        while True:
            try:
                status = txn.transaction_status()
            except driver.server_error as exc:
                if exc.error_code != TRANSACTION_NOT_FOUND:
                    status = "unknown"
                elif t.receipt is None:
                    raise _Again("an idempotent transaction of unknown outcome") from exc
                elif self._exists(*t.receipt):
                    return
                else:
                    raise _Again("the transaction is gone and wrote nothing") from exc
            except (driver.error, OSError):
                status = "unknown"
            if status == "committed":
                return
            if status == "aborted":
                raise _Again("the transaction was aborted")
            if status == "running":
                with contextlib.suppress(driver.error, OSError):
                    txn.commit_transaction()
                    return
            if time.monotonic() > deadline:
                raise MyceliumError(
                    f"mycelium {self.url}: the commit of a transaction went unanswered and its "
                    f"outcome could not be read for {PATIENCE:.0f} s; check the server and the "
                    "network, then look at the run with `elfc jobs`"
                )
            time.sleep(random.uniform(0.0, delay))
            delay = min(delay * 2, RETRY_MAX)

    def _exists(self, collection: str, keys: Sequence[str]) -> bool:
        """Do the documents ``keys`` of ``collection`` exist (all of them, or none asked)?"""
        if not keys:
            return True
        found = self._run(aql.EXISTING, collection=collection, keys=list(keys))
        return len(found) == len(set(keys))

    def _settle(self, runs: Iterable[str]) -> bool:
        """Settle each run of ``runs`` that has no active job left; True if any did.

        Never raises: it runs after the work it follows has committed (a completion must not
        be reported failed when only settling failed), and a reader may lack write access.
        The next reader of an unsettled run settles it (RUN_STATUS reports it idle)."""
        ids = sorted(set(runs))
        if not ids:
            return False
        try:
            return bool(self._run(aql.SETTLE, runs=ids, now=time.time()))
        except MyceliumError as exc:
            _log.info("not settled now (a reader will): %s", exc)
            return False

    # -- revisions, elves, templates ---------------------------------------------------

    def put_revisions(self, records: Iterable[RevisionRecord]) -> None:
        docs = [
            {
                "_key": r.hash,
                "kind": r.kind,
                "qualname": r.qualname,
                "module": r.module,
                "source": r.source,
                "doc": r.doc,
                "signature": r.signature,
            }
            for r in records
        ]
        if docs:
            self._run(aql.INSERT_NEW, collection=aql.REVISIONS, docs=docs)

    def get_revision(self, hash_or_prefix: str) -> RevisionRecord | None:
        doc = self._by_prefix(aql.REVISIONS, hash_or_prefix, "revision")
        if doc is None:
            return None
        return RevisionRecord(
            doc["_key"],
            doc["kind"],
            doc["qualname"],
            doc["module"],
            doc["source"],
            doc.get("doc"),
            doc.get("signature"),
        )

    def put_elf(self, record: ElfRecord) -> None:
        self._run(
            aql.PUT_ELF,
            elf={
                "_key": revision_of(record.name),
                "name": record.name,
                "cls": record.cls,
                "module": record.module,
                "config": record.config,
                "revision": record.revision,
                "doc": record.doc,
                "last_seen": time.time(),
            },
        )

    def list_elves(self) -> list[ElfRecord]:
        elves = [
            ElfRecord(
                d["name"],
                d["cls"],
                d["module"],
                d["config"],
                d["revision"],
                d.get("doc"),
                float(d["last_seen"]),
            )
            for d in self._run(aql.LIST_ELVES)
        ]
        return sorted(elves, key=lambda e: e.name)  # byte order, as SQLite sorts

    def put_template(self, revision: str, template_json: bytes) -> None:
        docs = _template_docs(revision, template_json)
        self._transaction(
            [aql.TEMPLATES, aql.TEMPLATE_NODES, aql.TEMPLATE_EDGES, aql.TEMPLATE_ROOTS],
            lambda t: _put_template(t, docs),
            "store a template",
        )

    def get_template(self, revision: str) -> bytes | None:
        rows = self._run(aql.GET_TEMPLATE, revision=revision)
        return rows[0].encode() if rows else None

    # -- submitting ------------------------------------------------------------------

    def submit(self, built: BuiltRun, template_json: bytes | None = None) -> str:
        plan = Submission(built)  # checked and encoded before the transaction starts
        docs = _job_docs(plan)
        template = None if template_json is None else _template_docs(built.revision, template_json)

        # The run number is taken in a statement of its own, not in the submit transaction,
        # which would hold the counter's write lock (and so every other submission) while it
        # inserts its jobs. A number skipped by a failed submission leaves a harmless gap.
        (no,) = self._run(aql.NEXT_RUN_NO)

        def write(t: _Txn) -> str:
            # Ids are drawn on each attempt: a clash with a stored one (1210) is a retry.
            run_id, job_ids = new_ids(len(docs))
            t.receipt = (aql.RUNS, [run_id])
            t.query(aql.INSERT, collection=aql.RUNS, docs=[_run_doc(plan, run_id, no, t.now)])
            if docs:
                _insert_jobs(t, plan, docs, run_id, no, job_ids)
            if template is not None:
                _put_template(t, template)
            return run_id

        written = [aql.RUNS, aql.JOBS, aql.DEPS, aql.RUN_ROOTS]
        if template is not None:
            written += [aql.TEMPLATES, aql.TEMPLATE_NODES, aql.TEMPLATE_EDGES, aql.TEMPLATE_ROOTS]
        return self._transaction(written, write, "submit a run")

    # -- claiming and completing -----------------------------------------------------

    def claim(self, elf: str, worker_id: str, lease: float, limit: int = 1) -> list[Claimed]:
        if limit <= 0 or not self._due(elf):
            return []
        while True:
            claimed, damaged = _claimed(elf, self._claim(elf, worker_id, lease, limit))
            # A job whose stored arguments cannot be decoded is quarantined: failed now,
            # under the lease this claim took, before the claim returns, so it never reaches
            # (or kills) a worker and never stays first in line. CLAIM is one statement
            # outside a stream transaction (so that a lost answer is read back, see _claim),
            # hence the failure commits in a transaction of its own right after it; should
            # this process die in between, the lease expires and the next claim fails it.
            for row, error in damaged:
                failure = undecodable_failure(str(row["id"]), str(row.get("revision")), error)
                self.fail(str(row["id"]), worker_id, failure)
            if claimed or not damaged:
                return claimed
            # Every job taken was damaged: the worker goes on to the next ones.

    def _claim(self, elf: str, worker_id: str, lease: float, limit: int) -> list[Any]:
        """One CLAIM statement, tried again on conflicts: the first try takes the FIFO head,
        a try after a conflict skips a random number of jobs (up to ``SPREAD`` times
        ``limit``, widening with each conflict), so that workers that raced for the head do
        not all queue on it again. A CLAIM whose answer was lost is never sent again: the
        jobs it took are read back (CLAIMED)."""
        server_error = _driver().server_error
        window = [0]  # how many claim-sized windows a retry may skip

        def attempt() -> list[Any]:
            skip = random.randint(1, limit * window[0]) if window[0] else 0
            now = time.time()
            try:
                rows = _execute(
                    self._database(),
                    aql.CLAIM,
                    elf=elf,
                    worker=worker_id,
                    lease=lease,
                    now=now,
                    skip=skip,
                    limit=limit,
                )
            except server_error as exc:
                if exc.error_code in RETRYABLE:
                    window[0] = min(window[0] + 1, SPREAD)
                if exc.error_code not in UNANSWERED:
                    raise
                return self._run(aql.CLAIMED, worker=worker_id, lease=lease, now=now)
            except OutcomeUnknown:
                return self._run(aql.CLAIMED, worker=worker_id, lease=lease, now=now)
            if not rows and skip:
                window[0] = 0  # skipped past the last ready job: take the head again
                raise _Again("skipped every ready job")
            return rows

        return self._retrying(attempt, "claim jobs")

    def _due(self, elf: str) -> bool:
        """Read-only probe: is a job of ``elf`` ready? Expired leases are returned first."""
        (probe,) = self._run(aql.PROBE, elf=elf, now=time.time())
        if probe["expired"]:
            self.expire_leases()
        return bool(probe["ready"] or probe["expired"])

    def results(self, run_id: str, keys: Iterable[str]) -> dict[str, bytes]:
        rows = self._run(aql.GET_RESULTS, run=run_id, keys=list(keys))
        return {key: value.encode() for key, value in rows}

    def complete_many(
        self,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        keys: Mapping[str, str] | None = None,
        reused: Mapping[str, str] | None = None,
    ) -> list[bool]:
        if not done:
            return []
        return self._transaction(
            _COMPLETE_WRITES,
            lambda t: _complete(t, worker_id, done, keys or {}, reused or {}),
            "complete jobs",
            _READS,
        )

    def cached_result(self, key: str) -> tuple[str, bytes] | None:
        rows = self._run(aql.CACHED_RESULT, key=key)
        return None if not rows else (str(rows[0][0]), str(rows[0][1]).encode())

    # exchange is Store's: complete_many, then claim. The completions commit first, in a
    # transaction of their own, so a claim that conflicts with another worker's (1200) never
    # rolls them back with it (when both shared one transaction, a busy elf's workers redid
    # finished jobs after 60 s of such conflicts).

    # -- expanding regions ------------------------------------------------------------------

    def expand(self, job_id: str, worker_id: str, expansion: Expansion) -> bool:
        """One stream transaction (see ``aql.py``, "expanding regions"). What orders it
        against other writers are the documents it writes: the expansion job (which a
        cancellation writes too), the run (another expansion of it), each unfinished job
        the new jobs wait for (its completion or failure); a conflict (1200) retries it."""
        plan = expansion

        def write(t: _Txn) -> bool:
            held = t.query(aql.EXPANDING, job=job_id, worker=worker_id)
            if not held:
                return False
            job = held[0]
            run_id = job["run"]
            count = len(plan.jobs) + len(plan.not_taken)
            first = (
                t.query(aql.EXPAND_RUN, run=run_id, added=count)
                if job["run_status"] == "running"
                else []
            )
            if not first:
                back = t.query(
                    aql.REQUEUE, jobs=[job_id], worker=worker_id, attempts=-1,
                    not_before=None, failure=None, now=t.now, note=release_note(worker_id),
                )  # fmt: skip
                t.settle.update(r["run"] for r in back if r["status"] == "cancelled")
                return False
            existing = {
                row["key"]: (row["id"], row["status"])
                for row in (
                    t.query(aql.EXTERNAL, run=run_id, keys=plan.external) if plan.external else []
                )
            }
            ids = new_ids(count)[1]  # drawn on each attempt: a clash (1210) is a retry
            rows = plan.layout(existing, ids, job_id)
            if count:
                t.receipt = (aql.JOBS, list(ids))
                docs = _expansion_docs(plan, rows, ids, job, int(first[0]), t.now, job_id)
                t.query(aql.INSERT, collection=aql.JOBS, docs=docs)
                roots = [
                    {"_from": f"{aql.RUNS}/{run_id}", "_to": f"{aql.JOBS}/{d['_key']}"}
                    for d in docs
                    if not d["deps"]
                ]
                if roots:
                    t.query(aql.INSERT, collection=aql.RUN_ROOTS, docs=roots)
            edges = [
                {"_from": f"{aql.JOBS}/{dep}", "_to": f"{aql.JOBS}/{dependent}"}
                for dep, dependent in rows.edges
            ]
            if edges:
                t.query(aql.INSERT, collection=aql.DEPS, docs=edges)
            if rows.outside:
                t.query(
                    aql.ADD_DEPENDENTS,
                    counts=[{"id": k, "n": n} for k, n in sorted(rows.outside.items())],
                )
            if plan.handled:
                taken = t.query(
                    aql.HANDLE, run=run_id, keys=plan.handled, now=t.now,
                    note=handled_note(job_id),
                )  # fmt: skip
                if taken:
                    t.query(aql.HANDLED_RESULTS, jobs=taken, value=HANDLED.decode())
            note = expanded_note(plan)
            if plan.result is not None:
                t.query(
                    aql.EXPAND_JOB, job=job_id, worker=worker_id, task=None, args=None,
                    kwargs=None, deps=None, status="succeeded", waiting=0, now=t.now, note=note,
                )  # fmt: skip
                if t.receipt is None:
                    t.receipt = (aql.RESULTS, [job_id])  # results are keyed by job id
                result = {"_key": job_id, "run": run_id, "key": job["key"]}
                t.query(
                    aql.INSERT, collection=aql.RESULTS,
                    docs=[{**result, "value": plan.result.decode()}],
                )  # fmt: skip
                if job["dependents"]:
                    t.query(aql.READY_DEPENDENTS, done=[f"{aql.JOBS}/{job_id}"], now=t.now)
            else:
                assert plan.join_payload is not None
                args, kwargs, _ = plan.join_payload
                t.query(
                    aql.EXPAND_JOB, job=job_id, worker=worker_id, task=plan.join_task,
                    args=args.decode(), kwargs=kwargs.decode(), deps=list(plan.join_deps),
                    status=rows.join_status, waiting=rows.join_waiting, now=t.now, note=note,
                )  # fmt: skip
                if rows.join_status == "skipped" and job["dependents"]:
                    _skip_dependents(t, job)
            t.settle.add(run_id)
            return True

        return self._transaction(
            [aql.JOBS, aql.DEPS, aql.RUN_ROOTS, aql.RUNS, aql.RESULTS], write, "expand a region"
        )

    # -- failing, releasing, leases ------------------------------------------------------

    def fail(
        self,
        job_id: str,
        worker_id: str,
        failure: FailureRecord,
        retry_at: float | None = None,
    ) -> bool:
        digest = failure_digest(failure)

        def write(t: _Txn) -> bool:
            held = t.query(aql.HELD, job=job_id, worker=worker_id)
            if not held:
                return False
            job = held[0]
            _record_failure(t, job, digest, failure)
            if retry_at is not None:
                rows = t.query(
                    aql.REQUEUE,
                    jobs=[job_id],
                    worker=worker_id,
                    attempts=0,
                    not_before=retry_at,
                    failure=digest,
                    now=t.now,
                    note=retry_note(retry_at, failure),
                )
                t.settle.update(r["run"] for r in rows if r["status"] == "cancelled")
                return True
            _fail_held(t, job, worker_id, failure, recorded=True)
            return True

        return self._transaction(
            [aql.FAILURES, aql.JOB_FAILURES, aql.JOBS, aql.RESULTS],
            write,
            "record a failure",
            _READS,
        )

    def release_many(self, job_ids: Iterable[str], worker_id: str) -> int:
        ids = sorted(set(job_ids))
        if not ids:
            return 0
        rows = self._run(
            aql.REQUEUE,
            jobs=ids,
            worker=worker_id,
            attempts=-1,
            not_before=None,
            failure=None,
            now=time.time(),
            note=release_note(worker_id),
        )
        self._settle(r["run"] for r in rows if r["status"] == "cancelled")
        return len(rows)

    def expire_leases(self, now: float | None = None) -> int:
        """Return the jobs whose lease ended to ready (cancelled in a cancelled run), and
        fail those whose workers died under them :data:`MAX_LOST_LEASES` times
        (:func:`lost_leases`): ``WorkerLost``, dependents skipped. One stream transaction
        reads them (EXPIRED) and writes each (EXPIRE, or the statements of a failure), so a
        job is expired once even when several claimers expire at the same time: the second
        conflicts on the job documents (1200) and finds nothing left on its retry. Stream
        transactions: https://docs.arango.ai/docs/stable/develop/transactions/stream-transactions/
        """

        def write(t: _Txn) -> int:
            cutoff = t.now if now is None else now
            rows = t.query(aql.EXPIRED, cutoff=cutoff)
            back, lost = [], []
            for row in rows:
                times = lost_leases(int(row["attempts"]), int(row["failures"] or 0))
                if times >= MAX_LOST_LEASES and not row["cancelled"]:
                    lost.append((row, times))
                else:
                    back.append(row["id"])
            if back:
                moved = t.query(aql.EXPIRE, jobs=back, cutoff=cutoff, now=t.now)
                t.settle.update(r["run"] for r in moved if r["status"] == "cancelled")
            for row, times in lost:
                failure = lost_lease_failure(str(row["lease_owner"]), times, row["revision"])
                _fail_held(t, row, row["lease_owner"], failure)
            return len(rows)

        return self._transaction(
            [aql.FAILURES, aql.JOB_FAILURES, aql.JOBS], write, "return expired leases", _READS
        )

    def heartbeat(self, worker: WorkerInfo, running: Iterable[str] = ()) -> set[str]:
        ids = list(running)
        self._run(
            aql.BEAT,
            key=revision_of(worker.id),
            id=worker.id,
            elf=worker.elf,
            host=worker.host,
            pid=worker.pid,
            started=worker.started,
            now=time.time(),
        )
        if not ids:
            return set()
        kept = self._run(aql.EXTEND_LEASES, jobs=ids, worker=worker.id, now=time.time())
        return must_stop(ids, ((row["id"], row["cancelled"]) for row in kept))

    def cancel_run(self, run_id: str) -> bool:
        def write(t: _Txn) -> bool:
            if not t.query(aql.CANCEL_RUN, run=run_id):
                return False
            t.query(aql.CANCEL_JOBS, run=run_id, now=t.now)
            t.settle.add(run_id)
            return True

        return self._transaction([aql.RUNS, aql.JOBS], write, "cancel a run")

    def fail_run(self, run_id: str, error_type: str, message: str) -> bool:
        failure = {"error_type": error_type, "message": message, "time": time.time()}
        return bool(self._run(aql.FAIL_RUN, run=run_id, failure=failure))

    # -- operating runs: task output, retries ---------------------------------------------

    def put_logs(self, logs: Sequence[LogRecord]) -> None:
        self._put_logs(logs, strict=True)

    def stage_logs(self, logs: Sequence[LogRecord]) -> None:
        self._put_logs(logs, strict=False)  # at once: a stream transaction of its own

    def _put_logs(self, logs: Sequence[LogRecord], strict: bool) -> None:
        if not logs:
            return

        def write(t: _Txn) -> None:
            ids = sorted({log.job for log in logs})
            jobs = {row["id"]: row for row in t.query(aql.JOBS_FOR_LOGS, jobs=ids)}
            missing = [job_id for job_id in ids if job_id not in jobs]
            if missing and strict:
                raise MyceliumError(f"cannot store the output of job {missing[0]}: no such job")
            kept = [log for log in logs if log.job in jobs]
            if not kept:
                return
            _, keys = new_ids(len(kept))  # a clash with a stored key (1210) is retried
            docs = [
                _log_doc(log, jobs[log.job], t.now, key, n)
                for n, (log, key) in enumerate(zip(kept, keys, strict=True))
            ]
            t.query(aql.PUT_LOGS, docs=docs)

        self._transaction([aql.LOGS], write, "store task output", (aql.JOBS,))

    def list_logs(
        self, run_id: str, key: str | None = None, since: float | None = None
    ) -> list[LogRecord]:
        rows = self._run(aql.LIST_LOGS, run=run_id, key=key, since=since or 0.0)
        return [_log_record(doc) for doc in rows]

    def retry_jobs(self, run_id: str, revisions: Mapping[str, str]) -> bool:
        wanted = dict(revisions)
        if not wanted:
            return False

        def write(t: _Txn) -> bool:
            if not t.query(aql.RETRY_RUN, run=run_id):
                return False
            ids = sorted(wanted)
            reset = t.query(aql.RESET_JOBS, jobs=ids, run=run_id, revisions=wanted)
            if len(reset) != len(ids):
                missing = sorted(set(ids) - {row["id"] for row in reset})
                raise MyceliumError(  # raised inside the transaction: it is aborted
                    f"cannot retry job(s) {', '.join(missing[:3])}: not settled jobs of run "
                    f"{run_id}"
                )
            t.query(aql.DELETE_RESULTS, jobs=ids)
            notes = {row["id"]: rerun_note(row["old"], wanted[row["id"]]) for row in reset}
            waiting = [
                {**row, "note": notes[row["id"]]} for row in t.query(aql.COUNT_WAITING, jobs=ids)
            ]
            t.query(aql.REREADY, waiting=waiting, now=t.now)
            return True

        return self._transaction(
            [aql.RUNS, aql.JOBS, aql.RESULTS], write, "retry jobs", (aql.DEPS,)
        )

    def prune_runs(
        self, finished_before: float, statuses: Iterable[str] = FINAL_RUN_STATUSES, limit: int = 100
    ) -> int:
        wanted = sorted(set(statuses) & FINAL_RUN_STATUSES)

        def write(t: _Txn) -> int:
            picked = t.query(aql.PRUNE_PICK, before=finished_before, statuses=wanted, limit=limit)
            if not picked:
                return 0
            runs = [row["id"] for row in picked]
            run_ids = [f"{aql.RUNS}/{run}" for run in runs]
            (found,) = t.query(aql.PRUNE_JOBS_OF, runs=runs)
            jobs = found["jobs"]
            t.query(aql.PRUNE_DEPS, jobs=jobs)
            t.query(aql.PRUNE_JOB_FAILURES, jobs=jobs)
            t.query(aql.PRUNE_RUN_ROOTS, runs=run_ids)
            t.query(aql.PRUNE_RESULTS, runs=runs)
            t.query(aql.PRUNE_LOGS, runs=runs)
            t.query(aql.PRUNE_JOBS, runs=runs)
            t.query(aql.PRUNE_RUNS, runs=runs)
            t.query(aql.PRUNE_FAILURES, failures=found["failures"])
            pipelines = sorted({row["revision"] for row in picked})
            gone = t.query(aql.PRUNE_TEMPLATES, revisions=pipelines)
            t.query(aql.PRUNE_TEMPLATE_NODES, revisions=gone)
            t.query(aql.PRUNE_TEMPLATE_EDGES, revisions=gone)
            t.query(aql.PRUNE_TEMPLATE_ROOTS, revisions=gone)
            t.query(aql.PRUNE_REVISIONS, revisions=sorted({*pipelines, *found["revisions"]}))
            return len(runs)

        written = [
            aql.RUNS, aql.JOBS, aql.DEPS, aql.RUN_ROOTS, aql.RESULTS, aql.LOGS, aql.FAILURES,
            aql.JOB_FAILURES, aql.TEMPLATES, aql.TEMPLATE_NODES, aql.TEMPLATE_EDGES,
            aql.TEMPLATE_ROOTS, aql.REVISIONS,
        ]  # fmt: skip
        return self._transaction(written, write, "prune runs", (aql.ELVES,))

    # -- reading -------------------------------------------------------------------

    def _by_prefix(self, collection: str, prefix: str, what: str) -> dict[str, Any] | None:
        """The document whose key is ``prefix`` or the only one starting with it (see
        :func:`pick`)."""
        end = prefix_end(prefix)
        if end is None:
            return None
        rows = self._run(aql.BY_PREFIX, collection=collection, low=prefix, high=end, prefix=prefix)
        row = pick(rows, prefix, what, operator.itemgetter("_key"))
        return None if row is None else dict(row)

    def run_info(self, run_id: str) -> RunInfo | None:
        doc = self._by_prefix(aql.RUNS, run_id, "run")
        if doc is None:
            return None
        cached = self._run(aql.RUN_CACHED, run=doc["_key"])
        counted = self._run(aql.RUN_COUNTS, run=doc["_key"])
        info = _run_info(doc, counted, int(cached[0]) if cached else 0)
        if _idle(info) and self._settle([info.id]):
            return self.run_info(info.id)
        return info

    def run_status(self, run_id: str) -> str | None:
        rows = self._run(aql.RUN_STATUS, run=run_id)
        if not rows:
            return None
        if rows[0]["idle"] and self._settle([run_id]):
            rows = self._run(aql.RUN_STATUS, run=run_id)
        return str(rows[0]["status"])

    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        def listed() -> list[RunInfo]:
            return [
                _run_info(doc, doc["counts"], int(doc.get("cached") or 0))
                for doc in self._run(aql.LIST_RUNS, limit=limit)
            ]

        runs = listed()
        if self._settle(r.id for r in runs if _idle(r)):
            runs = listed()
        return runs

    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobInfo]:
        run = self._by_prefix(aql.RUNS, run_id, "run")
        if run is None:
            return []
        if status is None:
            (found,) = self._run(aql.LIST_JOBS, run=run["_key"])
        else:
            (found,) = self._run(aql.LIST_JOBS_WITH_STATUS, run=run["_key"], status=status)
        failures = {f["_key"]: _failure(f) for f in found["failures"]}
        return [_job_info(doc, failures, None) for doc in found["jobs"]]

    def get_job(self, job_id: str) -> JobInfo | None:
        doc = self._by_prefix(aql.JOBS, job_id, "job")
        if doc is None:
            return None
        (extras,) = self._run(aql.JOB_EXTRAS, job=doc["_key"], failure=doc["failure"])
        failure = extras["failure"]
        failures = {} if failure is None else {failure["_key"]: _failure(failure)}
        result = extras["result"]
        return _job_info(doc, failures, None if result is None else result.encode())

    def list_failures(self, limit: int = 20) -> list[FailureInfo]:
        return [_failure(doc) for doc in self._run(aql.LIST_FAILURES, limit=limit)]

    def list_workers(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                d["id"],
                d["elf"],
                d["host"],
                int(d["pid"]),
                float(d["started"]),
                float(d["heartbeat"]),
            )
            for d in self._run(aql.LIST_WORKERS)
        ]

    # -- waiting ---------------------------------------------------------------------

    def wait_for_work(self, elf: str, timeout: float) -> None:
        """Poll (no doorbell reaches across hosts): a read-only probe after 10 ms, backing
        off to one every 0.5 s while the elf stays idle, across calls; returns as soon as a
        probe finds a job of ``elf`` ready or a lease ended."""
        deadline = time.monotonic() + max(timeout, 0.0)
        pause = self._pauses.get(elf)
        if pause is None:
            self._pauses[elf] = POLL_MIN
            return  # the first call: work may have been readied before the caller asked
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._pauses[elf] = pause
                return
            time.sleep(min(pause, left))
            (probe,) = self._run(aql.PROBE, elf=elf, now=time.time())
            if probe["ready"] or probe["expired"]:
                self._pauses[elf] = POLL_MIN
                return
            pause = min(pause * 2, POLL_MAX)


_READS = (aql.RUNS, aql.DEPS)
_COMPLETE_WRITES = (aql.JOBS, aql.RESULTS)


# -- transaction bodies ----------------------------------------------------------------------


def _complete(
    t: _Txn,
    worker_id: str,
    done: Sequence[tuple[str, bytes]],
    keys: Mapping[str, str],
    reused: Mapping[str, str],
) -> list[bool]:
    results = dict(reversed(done))  # the first result given for a job id wins
    rows = t.query(
        aql.COMPLETE,
        jobs=list(results),
        worker=worker_id,
        now=t.now,
        keys=dict(keys),
        reused=dict(reused),
        notes={job_id: cached_note(source) for job_id, source in reused.items()},
    )
    accepted = {row["id"]: row for row in rows}
    t.receipt = (aql.RESULTS, list(accepted))  # results are keyed by job id
    if accepted:
        docs = [
            {
                "_key": job_id,
                "run": row["run"],
                "key": row["key"],
                "value": results[job_id].decode(),
            }
            for job_id, row in accepted.items()
        ]
        t.query(aql.INSERT, collection=aql.RESULTS, docs=docs)
    upstream = [f"{aql.JOBS}/{job_id}" for job_id, row in accepted.items() if row["dependents"]]
    if upstream:
        t.query(aql.READY_DEPENDENTS, done=upstream, now=t.now)
    t.settle.update(row["run"] for row in rows)
    out, seen = [], set()
    for job_id, _ in done:
        out.append(job_id in accepted and job_id not in seen)
        seen.add(job_id)
    return out


def _run_doc(plan: Submission, run_id: str, no: int, now: float) -> dict[str, Any]:
    built = plan.built
    return {
        "_key": run_id,
        "no": no,
        "pipeline": built.pipeline,
        "revision": built.revision,
        "arguments": plan.arguments.decode(),
        "output": plan.output.decode(),
        "total": len(built.jobs),
        "status": plan.run_status,
        "created": now,
        "finished": None if built.jobs else now,
    }


def _job_doc(
    job: JobSpec, payload: tuple[bytes, bytes, bytes], deps: Sequence[str], **fields: Any
) -> dict[str, Any]:
    """A job document but for ``fields`` (its status, counters, seq and history, its id, run
    and times); ``payload`` is its encoded ``(args, kwargs, deps)``."""
    args, kwargs, _ = payload
    return {
        "key": job.key,
        "node": job.node,
        "elf": job.elf,
        "task": job.task,
        "revision": job.revision,
        "args": args.decode(),
        "kwargs": kwargs.decode(),
        "deps": list(deps),
        "attempts": 0,
        "not_before": 0.0,
        "lease": None,
        "lease_owner": None,
        "lease_until": None,
        "started": None,
        "finished": None,
        "history": [],
        "failure": None,
        "reuse": False,
        "cache_key": None,
        "cached_from": None,
        **fields,
    }


def _job_docs(plan: Submission) -> list[dict[str, Any]]:
    """The run's job documents, all but their ids, run and creation time (see ``submit``)."""
    return [
        _job_doc(
            job,
            payload,
            deps,
            seq=job.seq,
            status=status,
            waiting=len(deps),
            dependents=plan.dependents[job.key],
            reuse=plan.built.reuse,
        )
        for job, deps, status, payload in zip(
            plan.built.jobs, plan.deps, plan.statuses, plan.payloads, strict=True
        )
    ]


def _expansion_docs(
    plan: Expansion,
    rows: Layout[str],
    ids: Sequence[str],
    expander: Mapping[str, Any],
    first: int,
    now: float,
    job_id: str,
) -> list[dict[str, Any]]:
    """The documents of an expansion's new jobs, then its placeholders, numbered from
    ``first`` in the run of ``expander`` (an ``EXPANDING`` row)."""
    payloads = [*plan.payloads, *plan.placeholder_payloads]
    deps = [*plan.deps, *([()] * len(plan.not_taken))]
    note = expansion_note(job_id)
    return [
        _job_doc(
            job,
            payloads[i],
            deps[i],
            _key=ids[i],
            run=expander["run"],
            run_no=expander["run_no"],
            seq=first + i,
            status=status,
            waiting=rows.waiting[i],
            dependents=plan.dependents[job.key],
            created=now,
            finished=now if rows.finished(i) else None,
            history=[[now, status, note]],
            reuse=bool(expander.get("reuse", False)),
        )
        for i, (job, status) in enumerate(zip(rows.jobs, rows.statuses, strict=True))
    ]


def _insert_jobs(
    t: _Txn,
    plan: Submission,
    docs: list[dict[str, Any]],
    run_id: str,
    no: int,
    job_ids: list[str],
) -> None:
    """The jobs, their dependency edges, and an edge from the run to each job that starts
    ready (so the graph viewer reaches every job from the run)."""
    shared = {"run": run_id, "run_no": no, "created": t.now}
    rows = [{**d, **shared, "_key": k} for d, k in zip(docs, job_ids, strict=True)]
    t.query(aql.INSERT, collection=aql.JOBS, docs=rows)
    position = plan.position
    edges = [
        {"_from": f"{aql.JOBS}/{job_ids[position[dep]]}", "_to": f"{aql.JOBS}/{k}"}
        for k, deps in zip(job_ids, plan.deps, strict=True)
        for dep in deps
    ]
    if edges:
        t.query(aql.INSERT, collection=aql.DEPS, docs=edges)
    roots = [
        {"_from": f"{aql.RUNS}/{run_id}", "_to": f"{aql.JOBS}/{k}"}
        for k, deps in zip(job_ids, plan.deps, strict=True)
        if not deps
    ]
    t.query(aql.INSERT, collection=aql.RUN_ROOTS, docs=roots)


def _record_failure(t: _Txn, job: Mapping[str, Any], digest: str, failure: FailureRecord) -> None:
    """Store the failure (deduplicated by ``digest``) and link the job (a ``HELD`` row) to it."""
    t.query(
        aql.RECORD_FAILURE,
        hash=digest,
        error_type=failure.error_type,
        message=failure.message,
        traceback=failure.traceback,
        now=t.now,
        elf=job["elf"],
        task=job["task"],
        revision=failure.revision,
    )
    key = secrets.token_hex(8)
    # Every link this transaction writes is its receipt (an expiry may fail several jobs).
    earlier = t.receipt[1] if t.receipt is not None and t.receipt[0] == aql.JOB_FAILURES else []
    t.receipt = (aql.JOB_FAILURES, [*earlier, key])
    link = {
        "_key": key,
        "_from": f"{aql.JOBS}/{job['id']}",
        "_to": f"{aql.FAILURES}/{digest}",
        "time": t.now,
        "attempt": job["attempts"],
    }
    t.query(aql.INSERT, collection=aql.JOB_FAILURES, docs=[link])


def _fail_held(
    t: _Txn,
    job: Mapping[str, Any],
    owner: str | None,
    failure: FailureRecord,
    recorded: bool = False,
) -> None:
    """A running job leased to ``owner`` (a ``HELD`` or ``EXPIRED`` row) becomes ``failed``
    with ``failure`` (recorded first unless ``recorded``); its pending dependents, transitively,
    become ``skipped``."""
    digest = failure_digest(failure)
    if not recorded:
        _record_failure(t, job, digest, failure)
    note = failure_summary(failure)
    t.query(aql.FAIL, job=job["id"], worker=owner, now=t.now, failure=digest, note=note)
    if failure.raised is not None:
        value = failure.raised.decode()
        t.query(
            aql.PUT_RESULTS,
            docs=[{"_key": job["id"], "run": job["run"], "key": job["key"], "value": value}],
        )
    if job["dependents"]:
        _skip_dependents(t, job)
    t.settle.add(job["run"])


def _skip_dependents(t: _Txn, job: Mapping[str, Any]) -> None:
    """Job ``job`` (a ``HELD``, ``EXPIRED`` or ``EXPANDING`` row) can never succeed: its
    dependents are skipped, transitively, up to the ``@catch`` jobs, for which it and every
    job skipped now have settled."""
    t.query(
        aql.SKIP_DEPENDENTS,
        start=f"{aql.JOBS}/{job['id']}",
        catch=CATCH,
        now=t.now,
        note=skip_note(job["key"]),
    )


def _template_docs(revision: str, template_json: bytes) -> dict[str, list[dict[str, Any]]]:
    """The template as text, and as vertices and edges for ArangoDB's graph viewer when it
    has the shape of a compiled template (``nodes`` with ids, ``edges`` between them)."""
    out: dict[str, list[dict[str, Any]]] = {
        aql.TEMPLATES: [{"_key": revision, "template": template_json.decode()}],
        aql.TEMPLATE_NODES: [],
        aql.TEMPLATE_EDGES: [],
        aql.TEMPLATE_ROOTS: [],
    }
    try:
        data = decode_json(template_json)
    except msgspec.DecodeError:
        return out
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, list):
        return out
    keys: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            key = keys[node["id"]] = f"{revision}-{revision_of(node['id'])[:12]}"
            fields = {k: v for k, v in node.items() if not k.startswith("_")}
            out[aql.TEMPLATE_NODES].append({**fields, "_key": key, "revision": revision})
    edges = data.get("edges")
    fed = set()
    for edge in edges if isinstance(edges, list) else []:
        if not isinstance(edge, dict):
            continue
        source, target, label = edge.get("source"), edge.get("target"), edge.get("label")
        if source in keys and target in keys:
            out[aql.TEMPLATE_EDGES].append(
                {
                    "_key": f"{revision}-{revision_of(source, target, str(label))[:12]}",
                    "_from": f"{aql.TEMPLATE_NODES}/{keys[source]}",
                    "_to": f"{aql.TEMPLATE_NODES}/{keys[target]}",
                    "label": label,
                }
            )
            fed.add(target)
    out[aql.TEMPLATE_ROOTS] = [
        {"_key": key, "_from": f"{aql.TEMPLATES}/{revision}", "_to": f"{aql.TEMPLATE_NODES}/{key}"}
        for node_id, key in keys.items()
        if node_id not in fed
    ]
    return out


def _put_template(t: _Txn, docs: Mapping[str, list[dict[str, Any]]]) -> None:
    for collection, batch in docs.items():
        if batch:
            t.query(aql.INSERT_NEW, collection=collection, docs=batch)


# -- decoding ----------------------------------------------------------------------------


def _idle(run: RunInfo) -> bool:
    """No job of the run can progress, yet it is not settled: its last writer died before
    settling it (readers repair that)."""
    return (
        run.finished is None
        and run.total > 0
        and not any(run.counts[s] for s in ACTIVE_JOB_STATUSES)
    )


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _payload(doc: Mapping[str, Any]) -> Payload:
    """A job document's ``(args, kwargs, dependency keys)``, decoded by the shared rule
    (:func:`decode_payload`). ``args`` and ``kwargs`` are stored as JSON text, ``deps`` as a
    JSON list (re-encoded for the decoder, which checks its shape). Raises
    :class:`Undecodable` (never anything else) for a document that is damaged or was written
    by something other than elfc."""
    args, kwargs = doc.get("args"), doc.get("kwargs")
    if not isinstance(args, str) or not isinstance(kwargs, str):
        found = ", ".join(type(v).__name__ for v in (args, kwargs))
        raise Undecodable(f"its args and kwargs fields are {found}, not JSON text")
    return decode_payload(args, kwargs, _encode(doc.get("deps")))


def _claimed(elf: str, rows: list[Any]) -> tuple[list[Claimed], list[tuple[Any, Undecodable]]]:
    """The jobs CLAIM (or CLAIMED) returned, in FIFO order, and the rows among them whose
    payload cannot be decoded, with why (the claim fails those)."""
    claimed, damaged = [], []
    for r in sorted(rows, key=lambda r: (r["run_no"], r["seq"])):
        try:
            args, kwargs, deps = _payload(r)
        except Undecodable as exc:
            damaged.append((r, exc))
            continue
        claimed.append(
            Claimed(
                r["id"],
                r["run"],
                r["key"],
                elf,
                r["task"],
                r["revision"],
                args,
                kwargs,
                deps,
                int(r["attempts"]),
                _inputs(deps, r["results"], r["task"] == CATCH),
                bool(r.get("reuse")),
            )
        )
    return claimed, damaged


def _inputs(
    deps: Sequence[str], rows: Sequence[Sequence[str]], settles: bool = False
) -> dict[str, bytes] | None:
    """The results a claimed job reads, as CLAIM fetched them; ``None`` (ask ``results``)
    if one is missing, which a ready job's dependencies never are, but for a ``@catch``
    job's (``settles``): a dependency of it that was skipped left none."""
    found = {key: value.encode() for key, value in rows}
    return found if settles or len(found) == len(set(deps)) else None


def _failure(doc: Mapping[str, Any]) -> FailureInfo:
    return FailureInfo(
        doc["_key"],
        doc["error_type"],
        doc["message"],
        doc["traceback"],
        int(doc["count"]),
        float(doc["first_seen"]),
        float(doc["last_seen"]),
        doc["elf"],
        doc["task"],
        doc["revision"],
    )


def _run_info(doc: Mapping[str, Any], counted: Iterable[Sequence[Any]], cached: int = 0) -> RunInfo:
    return run_info(
        doc["_key"],
        doc["pipeline"],
        doc["revision"],
        doc["arguments"],
        doc["status"],
        float(doc["created"]),
        _f(doc["finished"]),
        int(doc["total"]),
        doc["output"],
        counted,
        cached,
        _run_failure(doc.get("failure")),
    )


def _run_failure(stored: object) -> RunFailure | None:
    """A run document's own failure (a field only failed runs have)."""
    if not isinstance(stored, Mapping):
        return None
    return run_failure(stored.get("error_type"), stored.get("message"), stored.get("time"))


def _job_info(
    doc: Mapping[str, Any], failures: Mapping[str, FailureInfo], result: bytes | None
) -> JobInfo:
    # A damaged document reads as a job without arguments (a claim fails it, saying why), or
    # without stored history, rather than making the whole run unreadable.
    try:
        args, kwargs, deps = _payload(doc)
    except Undecodable:
        args, kwargs, deps = (), {}, ()
    created = float(doc["created"])
    try:
        stored = tuple(
            Event(float(at), str(status), str(note)) for at, status, note in doc["history"]
        )
    except (TypeError, ValueError):
        stored = ()
    history = job_history(created, deps, stored)
    failure = doc["failure"]
    return JobInfo(
        doc["_key"],
        doc["run"],
        doc["key"],
        doc["node"],
        doc["elf"],
        doc["task"],
        doc["revision"],
        args,
        kwargs,
        deps,
        int(doc["seq"]),
        doc["status"],
        int(doc["waiting"]),
        int(doc["attempts"]),
        float(doc["not_before"]),
        doc["lease_owner"],
        _f(doc["lease_until"]),
        created,
        _f(doc["started"]),
        _f(doc["finished"]),
        result,
        None if failure is None else failures.get(failure),
        history,
        _str_or_none(doc.get("cache_key")),
        _str_or_none(doc.get("cached_from")),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _log_doc(
    log: LogRecord, job: Mapping[str, Any], now: float, key: str, n: int
) -> dict[str, Any]:
    """A log document; ``n`` orders the records one ``put_logs`` stores at the same time."""
    return {
        "_key": key,
        "n": n,
        "job": log.job,
        "run": job["run"],
        "seq": job["seq"],
        "key": log.key,
        "elf": log.elf,
        "task": log.task,
        "attempt": log.attempt,
        "text": log.text,
        "truncated": log.truncated,
        "time": now,
    }


def _log_record(doc: Mapping[str, Any]) -> LogRecord:
    return LogRecord(
        doc["job"],
        doc["run"],
        doc["key"],
        doc["elf"],
        doc["task"],
        int(doc["attempt"]),
        doc["text"],
        int(doc["truncated"]),
        float(doc["time"]),
    )
