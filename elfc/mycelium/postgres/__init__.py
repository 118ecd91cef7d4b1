"""The PostgreSQL mycelium: one database shared by workers on any number of hosts.

``postgresql://user@host:5432/dbname`` (or ``postgres://``): a libpq connection URI, handed to
libpq as it is, so everything libpq accepts works: several hosts (``host1:5432,host2:5432``
with ``?target_session_attrs=read-write``), TLS (``?sslmode=verify-full&sslrootcert=...``),
a unix socket (``postgresql:///db?host=/run/postgresql``). The password comes from the URL
(percent-encoded), else ``$PGPASSWORD``, else ``~/.pgpass`` (libpq reads both); ``url`` and
every message show it masked. Needs PostgreSQL 13 or later (``pg_xact_status``).

The tables live in the schema ``elfc`` (``schema.sql``), created on first use of an empty
database; a mycelium of an older schema version is migrated in place when opened (one
transaction), one of a newer or unknown version refused with a message.

How it works:

* a claim is one ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)`` over a partial index
  of ready jobs ordered by (elf, run, seq): concurrent claimers never wait for each other and
  never take the same job; it returns the job's payload and inlines the results it reads;
* readiness is a counter per job, decremented in the completing transaction through the
  edges' index; a completion is accepted only from the lease holder (``WHERE lease_owner``);
* job counts per (run, elf, status) are counters, so a run settles without a scan; the run's
  row is locked before the check, so two last completions in parallel cannot both miss it;
* task output a worker stages is inserted by its next write transaction (the jobs' outcome),
  as UTF-8 ``bytea`` (text refuses NUL); a retry resets the named jobs, counts each one's
  unfinished dependencies in a statement of its own and rebuilds the run's counters, under the
  run's row lock, which a prune takes too (``SKIP LOCKED``);
* wake-ups are ``NOTIFY`` on a channel per elf, sent by the committing transaction; an idle
  worker ``LISTEN``s on a second connection (no CPU while it waits) and polls instead while
  that connection is down;
* a lost connection (server restart, ``pg_terminate_backend``, a network cut) is retried with
  jittered backoff. A transaction is resent only when it certainly did not commit: if the
  connection breaks during ``COMMIT``, its transaction id is looked up with
  ``pg_xact_status`` on the next connection, and a committed one is not run again.

One connection per process and instance (reopened after ``fork``), used under a lock so a
heartbeat thread may share it, and one more for ``LISTEN`` once a worker waits. psycopg 3 is
imported on first use, never by ``import elfc``; without it opening a ``postgresql://``
mycelium fails with ``pip install 'elfc[postgres]'``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import operator
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from elfc.errors import MyceliumError
from elfc.model.ir import CATCH, BuiltRun
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
    RunInfo,
    WorkerInfo,
)
from elfc.model.status import FINAL_JOB_STATUSES, FINAL_RUN_STATUSES, JOB_STATUSES
from elfc.mycelium.common import (
    FORKS,
    MAX_LOST_LEASES,
    PATIENCE,
    Expansion,
    Payload,
    Submission,
    Undecodable,
    abandon,
    cached_note,
    closed_error,
    decode_payload,
    expanded_note,
    expansion_note,
    expiry_note,
    failure_digest,
    failure_summary,
    handled_note,
    job_info_of,
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
    run_failure_info,
    run_info,
    schema_mismatch,
    skip_note,
    undecodable_failure,
)
from elfc.mycelium.store import Store
from elfc.mycelium.urls import MASK, install_hint, mask_url, split_password

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "PASSWORD_ENV", "SCHEMA_VERSION", "PostgresStore"]

T = TypeVar("T")

SCHEMA_VERSION = 4
"""Bump on any change to ``schema.sql``, with the migration from the previous version in
:data:`MIGRATIONS`; an older mycelium is migrated when opened, a newer or unknown one refused."""
MIGRATIONS: dict[int, str] = {
    # 1 -> 2: per-job task output (`elfc logs`).
    1: "CREATE TABLE elfc.logs (no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "job bigint NOT NULL, run_no bigint NOT NULL, attempt integer NOT NULL, "
    "time float8 NOT NULL, text bytea NOT NULL, truncated bigint NOT NULL); "
    "CREATE INDEX logs_by_run ON elfc.logs (run_no, time)",
    # 2 -> 3: a run's own failure (its value refused by the return annotation).
    2: "ALTER TABLE elfc.runs ADD COLUMN error_type text, ADD COLUMN error_message text, "
    "ADD COLUMN error_time float8",
    # 3 -> 4: caching by input (`@task(cache=True)`, `elfc run --reuse`).
    3: "ALTER TABLE elfc.jobs ADD COLUMN reuse boolean NOT NULL DEFAULT false, "
    'ADD COLUMN cache_key text COLLATE "C", ADD COLUMN cached_from text; '
    "CREATE INDEX jobs_by_cache_key ON elfc.jobs (cache_key, finished) "
    "WHERE status = 'succeeded' AND cache_key IS NOT NULL; "
    "CREATE INDEX jobs_cached ON elfc.jobs (run_no) WHERE cached_from IS NOT NULL",
}
"""Schema version -> the statements that make it the next version."""
PASSWORD_ENV = "PGPASSWORD"
"""libpq's own variable: read when the URL has no password (``~/.pgpass`` after it)."""
RETRY_FIRST, RETRY_MAX = 0.005, 1.0
"""Jittered retry delays in seconds while the server is unreachable or a transaction
conflicts: a restart takes about a second, a deadlock is resolved at once."""
INLINE_RESULTS = 64
"""A claim carries the results its jobs read when there are at most this many."""
FALLBACK_POLL = 0.05
"""How often a waiter whose ``LISTEN`` connection is down checks for work, in seconds."""
RUN_POLL = 0.5
"""How often ``wait_for_run`` reads the run's status even without a notification."""
DEFAULTS = {
    "connect_timeout": "10",
    "application_name": "elfc",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}
"""libpq parameters used unless the URL sets them: connecting gives up after 10 s, and a
connection whose peer vanished (a cut network) is noticed within about 10 s, not the
kernel's 15 minutes."""
_SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
    "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000"
)
"""The same on the server's side of a connection: a session whose client was cut off in the
middle of a transaction is ended within about 11 s, and with it the row locks it held (a job,
a run's counters), which other hosts' transactions would otherwise wait for, or skip, until
the server's kernel gave up on the socket (hours). Ignored over a unix socket."""
_IDLE = 0
"""libpq's ``PQTRANS_IDLE``: no transaction open on the connection."""
_BEGIN = "BEGIN; SELECT pg_current_xact_id()::text"
_BEGIN_ASYNC = "BEGIN; SET LOCAL synchronous_commit TO off; SELECT pg_current_xact_id()::text"
_FATAL_CONNECT = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "certificate",
    "SSL",
    "invalid",
)
"""Connection failures that waiting cannot cure: reported at once, not retried."""

_encode = msgspec.json.Encoder().encode
_decode_history = msgspec.json.Decoder(tuple[Event, ...]).decode
_BUCKET = {"running": "ready"}
_COUNTED_STATUSES = tuple(s for s in JOB_STATUSES if s not in _BUCKET)
_OWNER = "{owner}"
"""Stands for the expired lease's owner in the note SQL fills in (see ``_EXPIRE``)."""


def _event(status: str, note: str = "%(note)s") -> str:
    """SQL that appends ``[now, status, note]`` to a job's history (``status`` is a literal of
    this module or a SQL expression, ``note`` a SQL expression)."""
    if status in JOB_STATUSES:
        status = f"'{status}'"
    return (
        "coalesce(j.history, '[]'::jsonb) || "
        f"jsonb_build_array(jsonb_build_array(%(now)s::float8, {status}, {note}::text))"
    )


def _count_down(hits: str) -> str:
    """SQL that drops each job's waiting counter by ``k`` for the rows ``(job, k)`` of the
    query ``hits`` (dependencies of it that settled now); a pending job at 0 becomes ready.
    It returns ``run_no, elf, status, waiting`` of each (see :meth:`_Txn.readied`)."""
    return (
        "WITH hits AS (" + hits + ") UPDATE elfc.jobs j SET waiting = j.waiting - hits.k, "
        "status = CASE WHEN j.waiting = hits.k AND j.status = 'pending' THEN 'ready' "
        "ELSE j.status END, "
        "history = CASE WHEN j.waiting = hits.k AND j.status = 'pending' THEN "
        + _event("ready", "''")
        + " ELSE j.history END "
        "FROM hits WHERE j.no = hits.job RETURNING j.run_no, j.elf, j.status, j.waiting"
    )


# -- the driver, imported on first use ----------------------------------------------------------


@dataclass(frozen=True)
class _Driver:
    psycopg: Any
    """The ``psycopg`` module."""
    conninfo_to_dict: Callable[..., dict[str, Any]]
    identifier: Callable[[str], Any]


@functools.cache
def _driver() -> _Driver:
    try:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import conninfo_to_dict
    except ModuleNotFoundError as exc:
        raise MyceliumError(
            f"the postgresql:// mycelium needs psycopg 3 ({exc}): {install_hint('postgresql')}"
        ) from exc
    return _Driver(psycopg, conninfo_to_dict, sql.Identifier)


def _schema() -> str:
    return resources.files(__name__).joinpath("schema.sql").read_text(encoding="utf-8")


def _channel(name: str) -> str:
    """The ``NOTIFY`` channel for ``name`` (``elf:NAME`` or ``runs``): an identifier of at most
    63 bytes, so long elf names are hashed."""
    channel = f"elfc:{name}"
    if len(channel.encode()) > 63:
        channel = "elfc:#" + hashlib.sha256(name.encode()).hexdigest()[:32]
    return channel


class _Unresolved(Exception):
    """A transaction's commit is still in progress on the server: look again."""


class _Changed(Exception):
    """What a transaction read before taking its locks changed meanwhile: run it again."""


class PostgresStore(Store):
    """The mycelium in a PostgreSQL database: ``PostgresStore("postgresql://u@host/db")``."""

    schemes = ("postgresql", "postgres")
    supports_doorbell = True
    supports_batches = True
    password_env = PASSWORD_ENV

    def __init__(self, url: str) -> None:
        driver = _driver()
        self.url = mask_url(url)
        _, password = split_password(url)
        try:
            params = driver.conninfo_to_dict(url)
        except driver.psycopg.Error as exc:
            message = str(exc) if not password else str(exc).replace(password, MASK)
            raise MyceliumError(
                f"bad PostgreSQL mycelium URL {self.url!r}: {message}; use "
                "postgresql://user@host:5432/dbname"
            ) from exc
        if "password" in params and password is None:
            raise MyceliumError(
                f"PostgreSQL mycelium URL {self.url.split('?', 1)[0]!r}: a password in the query "
                "string (?password=) would be shown wherever the URL is; put it in the URL's "
                "user part (postgresql://user:pw@host/db), $PGPASSWORD or ~/.pgpass"
            )
        self._params = {**{k: v for k, v in DEFAULTS.items() if k not in params}, **params}
        self._lock = threading.RLock()
        self._listen_lock = threading.Lock()
        self._con: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None
        self._listening: set[str] = set()
        self._fork = FORKS[0]
        self._closed = False
        self._run_ids: dict[int, str] = {}
        self._staged: list[LogRecord] = []
        """Task output that the next write transaction stores (``stage_logs``)."""
        with self._lock:
            self._connection()  # fail early on a bad URL, a refused login or another schema

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        if not url.startswith(tuple(f"{s}://" for s in cls.schemes)):
            raise MyceliumError(
                f"bad PostgreSQL mycelium URL {mask_url(url)!r}: use "
                "postgresql://user@host:5432/dbname"
            )
        return cls(url)

    def close(self) -> None:
        self._guard()
        with self._lock:
            self._closed = True
            self._drop(self._con)
            self._con = None
        with self._listen_lock:
            self._drop(self._listener)
            self._listener = None

    # -- connections and transactions -------------------------------------------------

    def _guard(self) -> None:
        """Forget what a parent process left us: its connections and lock state."""
        if self._fork != FORKS[0]:
            abandon(self._con, self._listener)
            self._con = self._listener = None
            self._listening = set()
            self._lock = threading.RLock()
            self._listen_lock = threading.Lock()
            self._fork = FORKS[0]

    def _connect(self) -> psycopg.Connection[Any]:
        driver = _driver()
        try:
            con: psycopg.Connection[Any] = driver.psycopg.connect(autocommit=True, **self._params)
        except driver.psycopg.Error as exc:
            raise self._error(exc, "cannot connect to") from exc
        return con

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise closed_error(self.url)
        con = self._con
        if con is None or con.closed:
            con = self._connect()
            try:
                con.execute(_SERVER_KEEPALIVES)
                self._check_schema(con)
            except BaseException:
                self._drop(con)
                raise
            self._con = con
        return con

    def _drop(self, con: psycopg.Connection[Any] | None) -> None:
        if con is not None and not con.closed:
            with contextlib.suppress(Exception):  # a broken one may fail to say goodbye
                con.close()

    def _error(self, exc: Exception, doing: str = "error in") -> MyceliumError:
        text = str(exc).strip()
        secret = self._params.get("password")
        if secret:
            text = text.replace(str(secret), MASK)
        return MyceliumError(f"{doing} the mycelium {self.url}: {text}")

    def _check_schema(self, con: psycopg.Connection[Any]) -> None:
        found = self._schema_version(con)
        if found is None:
            with con.transaction():
                # One creator at a time; the others find the schema made when they get the lock.
                con.execute("SELECT pg_advisory_xact_lock(hashtext('elfc schema'))")
                found = self._schema_version(con)
                if found is None:
                    con.execute(_schema())
                    con.execute(
                        "INSERT INTO elfc.meta (key, value) VALUES ('schema', %s)",
                        (str(SCHEMA_VERSION),),
                    )
                    found = SCHEMA_VERSION
        if found is not None and found < SCHEMA_VERSION and found in MIGRATIONS:
            found = self._migrate(con)
        if found != SCHEMA_VERSION:
            raise schema_mismatch(self.url, found, SCHEMA_VERSION, "another database")

    def _migrate(self, con: psycopg.Connection[Any]) -> int | None:
        """Bring an older schema to this one, a version per step, all in one transaction, by
        one process at a time (the others find it migrated); the version it ends at."""
        psycopg = _driver().psycopg
        try:
            with con.transaction():
                con.execute("SELECT pg_advisory_xact_lock(hashtext('elfc schema'))")
                found = self._schema_version(con)
                while found is not None and found < SCHEMA_VERSION and found in MIGRATIONS:
                    con.execute(MIGRATIONS[found])
                    found += 1
                    con.execute(
                        "UPDATE elfc.meta SET value = %s WHERE key = 'schema'", (str(found),)
                    )
        except psycopg.errors.InsufficientPrivilege as exc:
            raise MyceliumError(
                f"the mycelium {self.url} has an older schema that this elfc migrates to "
                f"version {SCHEMA_VERSION} when opened, and this role may not change it "
                f"({str(exc).strip().splitlines()[0]}): open it once as the role that owns "
                "the schema elfc (e.g. `elfc runs --mycelium postgresql://OWNER@...`)"
            ) from exc
        return found

    def _schema_version(self, con: psycopg.Connection[Any]) -> int | None:
        tables = con.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'elfc' AND c.relkind = 'r'"
        ).fetchall()
        if not tables:
            return None
        if ("meta",) not in tables:
            raise MyceliumError(
                f"the database of {self.url} has a schema elfc that is not an elfc mycelium; "
                "point elfc at another database"
            )
        row = con.execute("SELECT value FROM elfc.meta WHERE key = 'schema'").fetchone()
        try:
            return int(row[0]) if row is not None else None
        except ValueError as exc:
            raise MyceliumError(f"{self.url}: unreadable schema version {row!r}") from exc

    def _transient(self, exc: Exception) -> bool:
        """An error that waiting and trying again can cure: a conflict between transactions,
        a lost connection, a server starting up or shutting down."""
        if isinstance(exc, _Unresolved | _Changed):
            return True
        if isinstance(exc, MyceliumError) and isinstance(exc.__cause__, Exception):
            exc = exc.__cause__  # a failed reconnection
        psycopg = _driver().psycopg
        if not isinstance(exc, psycopg.Error):
            return False
        state = exc.sqlstate
        if state is not None:
            return state in ("40001", "40P01", "55P03") or state[:2] in ("08", "57")
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return not any(text in str(exc) for text in _FATAL_CONNECT)
        return False

    def _gave_up(self, exc: Exception) -> MyceliumError:
        return MyceliumError(
            f"the mycelium {self.url} stayed unreachable or busy for {PATIENCE:.0f} s: "
            f"{self._error(exc, 'last error from')}"
        )

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until it stops failing transiently (see :meth:`_transient`),
        reconnecting after a lost connection. A unique violation propagates as it is
        (``submit`` draws new ids on one); any other database error becomes a
        :class:`MyceliumError`."""
        psycopg = _driver().psycopg

        def once() -> T:
            try:
                return attempt()
            except psycopg.Error as exc:
                con = self._con
                # A connection-level failure may leave a connection that looks alive in a
                # state it cannot be used in (a half-finished pipeline): start afresh.
                lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
                if con is not None and (lost or con.closed or con.broken):
                    self._drop(con)
                    self._con = None
                raise

        try:
            return retry(once, self._transient, self._gave_up, RETRY_FIRST, RETRY_MAX, PATIENCE)
        except psycopg.errors.UniqueViolation:
            raise
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _read(self, body: Callable[[psycopg.Connection[Any]], T], snapshot: bool = False) -> T:
        """Run ``body``'s queries; in one read-only snapshot if ``snapshot``."""

        def attempt() -> T:
            con = self._connection()
            if not snapshot:
                return body(con)
            con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                return body(con)
            finally:
                if not con.broken and not con.closed:
                    con.execute("ROLLBACK")

        self._guard()
        with self._lock:
            return self._retry(attempt)

    def _write(self, body: Callable[[_Txn], T], durable: bool = True) -> T:
        """Run ``body`` in one transaction, committed once: when the connection breaks during
        ``COMMIT`` the outcome is read back (``pg_xact_status``), never guessed by resending.

        Not ``durable`` (a worker's claims, completions, heartbeats): committed without waiting
        for the WAL flush (``synchronous_commit = off``), so a crash of the server itself may
        lose the last fraction of a second of them; those jobs run again, as after a lost
        lease. Submissions and cancellations always wait for the flush."""
        unknown: tuple[str, T] | None = None
        begin = _BEGIN if durable else _BEGIN_ASYNC

        def attempt() -> T:
            nonlocal unknown
            con = self._connection()
            if unknown is not None:
                sent, out = unknown
                try:
                    row = con.execute("SELECT pg_xact_status(%s::xid8)", (sent,)).fetchone()
                    status = None if row is None else row[0]
                except _driver().psycopg.errors.InvalidParameterValue:
                    # "transaction ID ... is in the future": the server crashed before the
                    # transaction reached its WAL, so it never committed.
                    status = None
                if status == "in progress":
                    raise _Unresolved(sent)
                unknown = None
                if status == "committed":
                    return out
            cur = con.execute(begin)  # one round trip: BEGIN, its settings, its id
            while cur.nextset():
                pass
            xid = _one(cur.fetchone())
            committing = False
            try:
                txn = _Txn(con, time.time())
                out = body(txn)
                if staged:
                    _insert_logs(txn, staged)
                committing = True
                txn.commit()
            except BaseException:
                if committing:
                    # COMMIT was on its way: whatever the error (a lost connection, or the
                    # server terminating this session), look its outcome up, never resend.
                    unknown = (xid, out)
                if con.broken or con.closed:
                    pass
                elif con.info.transaction_status != _IDLE:
                    try:
                        con.execute("ROLLBACK")
                    except Exception:  # a connection in a state we cannot use: start afresh
                        self._drop(con)
                        self._con = None
                raise
            return out

        self._guard()
        with self._lock:
            staged = self._staged
            out = self._retry(attempt)
            self._staged = [] if staged is self._staged else self._staged[len(staged) :]
        return out

    # -- revisions, elves, templates ---------------------------------------------------

    def put_revisions(self, records: Iterable[RevisionRecord]) -> None:
        rows = [
            (r.hash, r.kind, r.qualname, r.module, r.source, r.doc, r.signature) for r in records
        ]
        if not rows:
            return
        self._write(
            lambda t: t.cur.executemany(
                "INSERT INTO elfc.revisions (hash, kind, qualname, module, source, doc, "
                "signature) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )
        )

    def get_revision(self, hash_or_prefix: str) -> RevisionRecord | None:
        sql = (
            "SELECT hash, kind, qualname, module, source, doc, signature FROM elfc.revisions "
            "WHERE hash >= %s AND hash < %s ORDER BY hash LIMIT 2"
        )
        row = self._read(lambda con: _by_prefix(con, sql, hash_or_prefix, "revision"))
        return None if row is None else RevisionRecord(*row)

    def put_elf(self, record: ElfRecord) -> None:
        self._write(
            lambda t: t.execute(
                "INSERT INTO elfc.elves (name, cls, module, config, revision, doc, last_seen) "
                "VALUES (%(name)s, %(cls)s, %(module)s, %(config)s, %(revision)s, %(doc)s, "
                "%(now)s) ON CONFLICT (name) DO UPDATE SET cls = excluded.cls, "
                "module = excluded.module, config = excluded.config, "
                "revision = excluded.revision, doc = excluded.doc, last_seen = excluded.last_seen",
                name=record.name,
                cls=record.cls,
                module=record.module,
                config=record.config,
                revision=record.revision,
                doc=record.doc,
            )
        )

    def list_elves(self) -> list[ElfRecord]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT name, cls, module, config, revision, doc, last_seen FROM elfc.elves "
                'ORDER BY name COLLATE "C"'
            ).fetchall()
        )
        return [ElfRecord(*row) for row in rows]

    def put_template(self, revision: str, template_json: bytes) -> None:
        self._write(lambda t: _put_template(t, revision, template_json))

    def get_template(self, revision: str) -> bytes | None:
        row = self._read(
            lambda con: con.execute(
                "SELECT template FROM elfc.graphs WHERE revision = %s", (revision,)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    # -- submitting ------------------------------------------------------------------

    def submit(self, built: BuiltRun, template_json: bytes | None = None) -> str:
        plan = _Rows(built)  # validated and encoded before any transaction starts
        unique = _driver().psycopg.errors.UniqueViolation
        for _ in range(3):
            run_id, ids = new_ids(len(built.jobs))
            try:
                return self._write(
                    functools.partial(self._insert_run, plan, template_json, run_id, ids)
                )
            except unique:
                continue  # a random id collided: draw new ones
        raise MyceliumError("could not draw unique run and job ids")

    def _insert_run(
        self, plan: _Rows, template_json: bytes | None, run_id: str, ids: list[str], t: _Txn
    ) -> str:
        built, cur = plan.built, t.cur
        if template_json is not None:
            _put_template(t, built.revision, template_json)
        row = t.execute(
            "INSERT INTO elfc.runs (id, pipeline, revision, arguments, output, status, total, "
            "created, finished) VALUES (%(id)s, %(pipeline)s, %(revision)s, %(arguments)s, "
            "%(output)s, %(status)s, %(total)s, %(now)s, %(finished)s) RETURNING no",
            id=run_id,
            pipeline=built.pipeline,
            revision=built.revision,
            arguments=plan.arguments,
            output=plan.output,
            status=plan.run_status,
            total=len(built.jobs),
            finished=None if built.jobs else t.now,
        ).fetchone()
        run_no = _one(row)
        if built.jobs:
            nos = [
                r[0]
                for r in cur.execute(
                    "SELECT nextval('elfc.job_no') FROM generate_series(1, %s)", (len(ids),)
                )
            ]
            _copy(
                cur,
                "elfc.jobs (no, id, run_no, key, node, elf, task, revision, seq, status, "
                "waiting, dependents, created, reuse)",
                plan.job_rows(nos, run_no, ids, t.now),
            )
            _copy(cur, "elfc.job_payloads (job, args, kwargs, deps)", plan.payload_rows(nos))
            _copy(cur, "elfc.edges (dep, dependent)", plan.edge_rows(nos))
            _copy(cur, "elfc.run_counts (run_no, elf, status, n)", plan.count_rows(run_no))
        t.rings.update(f"elf:{elf}" for elf in plan.ready_elves)
        if not built.jobs:
            t.rings.add("runs")
        return run_id

    # -- claiming and completing -----------------------------------------------------

    _CLAIM = (
        "WITH picked AS (SELECT no FROM elfc.jobs WHERE elf = %(elf)s AND status = 'ready' "
        "AND not_before <= %(now)s ORDER BY run_no, seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
        "UPDATE elfc.jobs j SET status = 'running', attempts = j.attempts + 1, "
        "lease_owner = %(worker)s, lease = %(lease)s, lease_until = %(until)s, "
        "started = %(now)s, history = " + _event("running", "%(worker)s") + " "
        "FROM picked, elfc.job_payloads p, elfc.runs r "
        "WHERE j.no = picked.no AND p.job = j.no AND r.no = j.run_no "
        "RETURNING j.run_no, j.seq, j.id, r.id, j.key, j.task, j.revision, p.args, p.kwargs, "
        "p.deps, j.attempts, j.no, j.reuse"
    )
    _INPUTS = (
        "SELECT w.i, d.key, r.value FROM unnest(%s::int[], %s::bigint[], %s::text[]) "
        "AS w (i, run_no, key) JOIN elfc.jobs d ON d.run_no = w.run_no AND d.key = w.key "
        "JOIN elfc.results r ON r.job = d.no"
    )

    def claim(self, elf: str, worker_id: str, lease: float, limit: int = 1) -> list[Claimed]:
        if limit <= 0:
            return []
        return self._write(lambda t: self._claim(t, elf, worker_id, lease, limit), durable=False)

    def _claim(self, t: _Txn, elf: str, worker_id: str, lease: float, limit: int) -> list[Claimed]:
        with t.cur.connection.pipeline():  # the three statements in one round trip
            expired, worn = self._expire_queries(t)
            claim = t.execute(
                self._CLAIM,
                cursor=True,
                elf=elf,
                worker=worker_id,
                lease=lease,
                until=t.now + lease,
                limit=limit,
            )
        self._expired(t, expired.fetchall(), worn.fetchall())
        rows = claim.fetchall()
        rows.sort(key=operator.itemgetter(0, 1))
        payloads: list[Payload | Undecodable] = []
        for _, _, _, _, _, _, _, args, kwargs, deps_json, _, _, _ in rows:
            try:
                payloads.append(decode_payload(args, kwargs, deps_json))
            except Undecodable as exc:
                payloads.append(exc)
        deps = [() if isinstance(p, Undecodable) else p[2] for p in payloads]
        inputs: dict[int, dict[str, bytes]] = {
            i: {} for i, keys in enumerate(deps) if 0 < len(keys) <= INLINE_RESULTS
        }
        wanted = [(i, rows[i][0], key) for i in inputs for key in deps[i]]
        if wanted:
            ii, runs, keys = zip(*wanted, strict=True)
            for i, key, value in t.cur.execute(self._INPUTS, (list(ii), list(runs), list(keys))):
                inputs[i][key] = bytes(value)
        claimed = []
        for i, (
            run_no,
            _,
            job_id,
            run_id,
            key,
            task,
            revision,
            _,
            _,
            _,
            attempts,
            no,
            reuse,
        ) in enumerate(rows):
            t.move(run_no, elf, "ready", "running")
            payload = payloads[i]
            if isinstance(payload, Undecodable):
                # Quarantined: failed here, so it neither kills a worker nor blocks the queue.
                failure = undecodable_failure(job_id, revision, payload)
                self._fail_held(t, no, run_no, elf, task, attempts, failure)
                continue
            args, kwargs, _ = payload
            claimed.append(
                Claimed(
                    job_id,
                    run_id,
                    key,
                    elf,
                    task,
                    revision,
                    args,
                    kwargs,
                    deps[i],
                    attempts,
                    inputs.get(i),
                    bool(reuse),
                )
            )
        return claimed

    def results(self, run_id: str, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = list(keys)
        rows = self._read(
            lambda con: con.execute(
                "SELECT j.key, r.value FROM elfc.jobs j JOIN elfc.results r ON r.job = j.no "
                "WHERE j.run_no = (SELECT no FROM elfc.runs WHERE id = %s) "
                "AND j.key = ANY(%s::text[])",
                (run_id, wanted),
            ).fetchall()
        )
        return {key: bytes(value) for key, value in rows}

    _SUCCEED = (
        "UPDATE elfc.jobs j SET status = 'succeeded', finished = %(now)s, lease_until = NULL, "
        "history = " + _event("succeeded", "%(worker)s") + " "
        "WHERE j.id = ANY(%(ids)s::text[]) AND j.status = 'running' "
        "AND j.lease_owner = %(worker)s RETURNING j.id, j.no, j.run_no, j.elf, j.dependents"
    )
    _SUCCEED_KEYED = (
        "UPDATE elfc.jobs j SET status = 'succeeded', finished = %(now)s, lease_until = NULL, "
        "history = " + _event("succeeded", "coalesce(w.note, %(worker)s)") + ", "
        "cache_key = w.key, cached_from = w.source "
        "FROM unnest(%(ids)s::text[], %(keys)s::text[], %(sources)s::text[], %(notes)s::text[]) "
        "AS w (id, key, source, note) "
        "WHERE j.id = w.id AND j.status = 'running' "
        "AND j.lease_owner = %(worker)s RETURNING j.id, j.no, j.run_no, j.elf, j.dependents"
    )
    _CACHED_RESULT = (
        "SELECT j.id, r.value FROM elfc.jobs j JOIN elfc.results r ON r.job = j.no "
        "WHERE j.cache_key = %s AND j.status = 'succeeded' ORDER BY j.finished DESC LIMIT 1"
    )
    _READY_DEPENDENTS = _count_down(
        "SELECT dependent AS job, count(*)::int AS k FROM elfc.edges "
        "WHERE dep = ANY(%(up)s::bigint[]) GROUP BY dependent ORDER BY dependent"
    )

    def complete_many(
        self,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        keys: Mapping[str, str] | None = None,
        reused: Mapping[str, str] | None = None,
    ) -> list[bool]:
        if not done:
            return []
        return self._write(
            lambda t: self._complete(t, worker_id, done, keys, reused), durable=False
        )

    def exchange(
        self,
        elf: str,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        lease: float,
        limit: int,
        keys: Mapping[str, str] | None = None,
        reused: Mapping[str, str] | None = None,
    ) -> tuple[list[bool], list[Claimed]]:
        if not done:
            return [], self.claim(elf, worker_id, lease, limit)

        def both(t: _Txn) -> tuple[list[bool], list[Claimed]]:
            accepted = self._complete(t, worker_id, done, keys, reused)
            return accepted, self._claim(t, elf, worker_id, lease, limit) if limit > 0 else []

        return self._write(both, durable=False)

    def cached_result(self, key: str) -> tuple[str, bytes] | None:
        row = self._read(lambda con: con.execute(self._CACHED_RESULT, (key,)).fetchone())
        return None if row is None else (str(row[0]), bytes(row[1]))

    def _complete(
        self,
        t: _Txn,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        keys: Mapping[str, str] | None = None,
        reused: Mapping[str, str] | None = None,
    ) -> list[bool]:
        first: dict[str, bytes] = {}
        for job_id, result in done:
            first.setdefault(job_id, result)
        if keys or reused:
            keys, reused = keys or {}, reused or {}
            ids = list(first)
            sources = [reused.get(i) for i in ids]
            rows = t.execute(
                self._SUCCEED_KEYED,
                worker=worker_id,
                ids=ids,
                keys=[keys.get(i) for i in ids],
                sources=sources,
                notes=[None if s is None else cached_note(s) for s in sources],
            ).fetchall()
        else:
            rows = t.execute(self._SUCCEED, worker=worker_id, ids=list(first)).fetchall()
        stored = {row[0]: row for row in rows}
        upstream = []
        for _, job_no, run_no, elf, dependents in rows:
            t.move(run_no, elf, "running", "succeeded")
            if dependents:
                upstream.append(job_no)
        readied = None
        if rows:
            with t.cur.connection.pipeline():  # both statements in one round trip
                t.execute(
                    "INSERT INTO elfc.results (job, value) SELECT * FROM unnest(%(nos)s::bigint[], "
                    "%(values)s::bytea[]) " + _REPLACE_RESULT,
                    cursor=True,
                    nos=[row[1] for row in rows],
                    values=[first[row[0]] for row in rows],
                )
                if upstream:
                    readied = t.execute(self._READY_DEPENDENTS, cursor=True, up=upstream)
        if readied:
            t.readied(readied.fetchall())
        accepted = []
        for job_id, _ in done:
            accepted.append(stored.pop(job_id, None) is not None)
        return accepted

    # -- failing, releasing, leases ------------------------------------------------------

    _REQUEUE = (
        "UPDATE elfc.jobs j SET "
        "status = CASE WHEN r.status = 'cancelled' THEN 'cancelled' ELSE 'ready' END, "
        "attempts = j.attempts + %(delta)s, not_before = coalesce(%(not_before)s, j.not_before), "
        "lease_until = NULL, "
        "finished = CASE WHEN r.status = 'cancelled' THEN %(now)s::float8 END, "
        "history = "
        + _event(
            "CASE WHEN r.status = 'cancelled' THEN 'cancelled' ELSE 'ready' END",
            "replace(%(note)s, '" + _OWNER + "', j.lease_owner)",
        )
        + " FROM elfc.runs r WHERE r.no = j.run_no AND "
    )
    _REQUEUED = " RETURNING j.run_no, j.elf, j.status"
    _HELD = "j.id = ANY(%(ids)s::text[]) AND j.status = 'running' AND j.lease_owner = %(worker)s"
    _LOST = "(j.attempts - (SELECT count(*) FROM elfc.job_failures f WHERE f.job = j.no))"
    """How many times the job's lease ran out under a worker (see ``common.lost_leases``)."""
    _EXPIRE = (
        _REQUEUE + "j.no IN (SELECT no FROM elfc.jobs WHERE status = 'running' "
        "AND lease_until < %(before)s FOR UPDATE SKIP LOCKED) "
        "AND (r.status = 'cancelled' OR " + _LOST + " < %(max_lost)s)" + _REQUEUED
    )
    _WORN = (
        "SELECT j.no, j.run_no, j.elf, j.task, j.attempts, j.lease_owner, j.revision, "
        "(SELECT count(*) FROM elfc.job_failures f WHERE f.job = j.no) FROM elfc.jobs j JOIN elfc.runs r ON r.no = j.run_no "
        "WHERE j.status = 'running' AND j.lease_until < %(before)s "
        "AND r.status <> 'cancelled' AND " + _LOST + " >= %(max_lost)s "
        "FOR NO KEY UPDATE OF j SKIP LOCKED"
    )
    """Expired jobs whose workers died under them ``MAX_LOST_LEASES`` times: failed, not
    requeued."""
    _RELEASE = _REQUEUE + _HELD + _REQUEUED

    def fail(
        self,
        job_id: str,
        worker_id: str,
        failure: FailureRecord,
        retry_at: float | None = None,
    ) -> bool:
        def write(t: _Txn) -> bool:
            held = t.execute(
                "SELECT j.no, j.run_no, j.elf, j.task, j.attempts FROM elfc.jobs j WHERE "
                + self._HELD
                + " FOR NO KEY UPDATE",
                ids=[job_id],
                worker=worker_id,
            ).fetchone()
            if held is None:
                return False
            job_no, run_no, elf, task, attempts = held
            self._record_failure(t, job_no, elf, task, attempts, failure)
            if retry_at is not None:
                self._requeue(
                    t,
                    self._RELEASE,
                    ids=[job_id],
                    worker=worker_id,
                    delta=0,
                    not_before=retry_at,
                    note=retry_note(retry_at, failure),
                )
                return True
            self._mark_failed(t, job_no, run_no, elf, failure)
            return True

        return self._write(write, durable=False)

    def _fail_held(
        self,
        t: _Txn,
        job_no: int,
        run_no: int,
        elf: str,
        task: str,
        attempts: int,
        failure: FailureRecord,
    ) -> None:
        """A running job becomes ``failed`` with ``failure``; its dependents are skipped."""
        self._record_failure(t, job_no, elf, task, attempts, failure)
        self._mark_failed(t, job_no, run_no, elf, failure)

    def _mark_failed(
        self, t: _Txn, job_no: int, run_no: int, elf: str, failure: FailureRecord
    ) -> None:
        t.execute(
            "UPDATE elfc.jobs j SET status = 'failed', finished = %(now)s, "
            "lease_until = NULL, history = " + _event("failed") + " WHERE j.no = %(no)s",
            note=failure_summary(failure),
            no=job_no,
        )
        if failure.raised is not None:
            _put_result(t, job_no, failure.raised)
        t.move(run_no, elf, "running", "failed")
        self._skip_dependents(t, job_no)

    def _record_failure(
        self, t: _Txn, job_no: int, elf: str, task: str, attempt: int, failure: FailureRecord
    ) -> None:
        digest = failure_digest(failure)
        t.execute(
            "INSERT INTO elfc.failures AS f (hash, error_type, message, traceback, count, "
            "first_seen, last_seen, elf, task, revision) VALUES (%(hash)s, %(type)s, "
            "%(message)s, %(traceback)s, 1, %(now)s, %(now)s, %(elf)s, %(task)s, %(revision)s) "
            "ON CONFLICT (hash) DO UPDATE SET count = f.count + 1, "
            "last_seen = excluded.last_seen, revision = excluded.revision",
            hash=digest,
            type=failure.error_type,
            message=failure.message,
            traceback=failure.traceback,
            elf=elf,
            task=task,
            revision=failure.revision,
        )
        t.execute(
            "INSERT INTO elfc.job_failures (job, failure, time, attempt) "
            "VALUES (%(job)s, %(hash)s, %(now)s, %(attempt)s)",
            job=job_no,
            hash=digest,
            attempt=attempt,
        )

    _SKIP = (
        # Down the edges, but neither into nor through a `try`'s job (CATCH).
        "WITH RECURSIVE down (no) AS (SELECT e.dependent FROM elfc.edges e "
        "JOIN elfc.jobs d ON d.no = e.dependent WHERE e.dep = %(no)s AND d.task <> %(catch)s "
        "UNION SELECT e.dependent FROM elfc.edges e JOIN down ON e.dep = down.no "
        "JOIN elfc.jobs d ON d.no = e.dependent WHERE d.task <> %(catch)s) "
        "UPDATE elfc.jobs j SET status = 'skipped', finished = %(now)s, history = "
        + _event("skipped")
        + " WHERE j.no IN (SELECT no FROM down) AND j.status = 'pending' "
        "RETURNING j.no, j.run_no, j.elf"
    )
    _READY_CATCHERS = _count_down(
        # The CATCH jobs that wait for the jobs of %(up)s to settle.
        "SELECT e.dependent AS job, count(*)::int AS k FROM elfc.edges e "
        "JOIN elfc.jobs d ON d.no = e.dependent WHERE e.dep = ANY(%(up)s::bigint[]) "
        "AND d.task = %(catch)s GROUP BY e.dependent ORDER BY e.dependent"
    )

    def _skip_dependents(self, t: _Txn, job_no: int) -> None:
        """Job ``job_no`` can never succeed: its dependents are skipped, transitively, up to
        the ``@catch`` jobs, for which it and every job skipped now have settled."""
        key = _one(t.execute("SELECT key FROM elfc.jobs WHERE no = %(no)s", no=job_no).fetchone())
        rows = t.execute(self._SKIP, no=job_no, catch=CATCH, note=skip_note(key)).fetchall()
        for _, run_no, elf in rows:
            t.move(run_no, elf, "pending", "skipped")
        settled = [job_no, *(no for no, _, _ in rows)]
        t.readied(t.execute(self._READY_CATCHERS, up=settled, catch=CATCH).fetchall())

    def _requeue(self, t: _Txn, sql: str, **values: Any) -> int:
        """Running jobs back to ready, or to cancelled when their run was cancelled."""
        values.setdefault("not_before", None)
        return self._requeued(t, t.execute(sql, **values).fetchall())

    def _requeued(self, t: _Txn, rows: list[tuple[Any, ...]]) -> int:
        """Count the moves of requeued jobs (rows of ``_REQUEUED``)."""
        for run_no, elf, status in rows:
            t.move(run_no, elf, "running", status)
            if status == "ready":
                t.rings.add(f"elf:{elf}")
        return len(rows)

    def release_many(self, job_ids: Iterable[str], worker_id: str) -> int:
        ids = list(dict.fromkeys(job_ids))
        if not ids:
            return 0
        return self._write(
            lambda t: self._requeue(
                t, self._RELEASE, ids=ids, worker=worker_id, delta=-1, note=release_note(worker_id)
            ),
            durable=False,
        )

    def expire_leases(self, now: float | None = None) -> int:
        return self._write(lambda t: self._expire(t, now), durable=False)

    def _expire(self, t: _Txn, now: float | None = None) -> int:
        with t.cur.connection.pipeline():
            expired, worn = self._expire_queries(t, now)
        return self._expired(t, expired.fetchall(), worn.fetchall())

    def _expire_queries(
        self, t: _Txn, now: float | None = None
    ) -> tuple[psycopg.Cursor[Any], psycopg.Cursor[Any]]:
        """Requeue the expired jobs (``_EXPIRE``), and find those to fail (``_WORN``)."""
        before = t.now if now is None else now
        expired = t.execute(
            self._EXPIRE,
            cursor=True,
            before=before,
            delta=0,
            note=expiry_note(_OWNER),
            not_before=None,
            max_lost=MAX_LOST_LEASES,
        )
        worn = t.execute(self._WORN, cursor=True, before=before, max_lost=MAX_LOST_LEASES)
        return expired, worn

    def _expired(self, t: _Txn, requeued: list[Any], worn: list[Any]) -> int:
        """Count the requeued jobs' moves; fail the worn ones. How many jobs lost a lease."""
        self._requeued(t, requeued)
        for job_no, run_no, elf, task, attempts, owner, revision, failures in worn:
            failure = lost_lease_failure(owner, lost_leases(attempts, failures), revision)
            self._fail_held(t, job_no, run_no, elf, task, attempts, failure)
        return len(requeued) + len(worn)

    # -- expanding regions ------------------------------------------------------------------

    _EXPANDING = (
        "SELECT j.no, j.run_no, j.elf, j.dependents, r.status, j.reuse FROM elfc.jobs j "
        "JOIN elfc.runs r ON r.no = j.run_no WHERE " + _HELD + " FOR NO KEY UPDATE OF j"
    )
    _EXTERNAL = (
        # In job number order, as a completion locks a job before the dependents it readies.
        "SELECT key, no, status FROM elfc.jobs WHERE run_no = %(run)s "
        "AND key = ANY(%(keys)s::text[]) ORDER BY no FOR NO KEY UPDATE"
    )
    _EXPANDED = (
        "UPDATE elfc.jobs j SET task = coalesce(%(task)s::text, j.task), status = %(status)s, "
        "waiting = %(waiting)s, "
        "lease_until = NULL, finished = CASE WHEN %(status)s IN ('succeeded', 'skipped') "
        "THEN %(now)s::float8 END, history = " + _event("%(status)s::text") + " "
        "WHERE j.no = %(no)s"
    )
    _COUNTERS = (
        "INSERT INTO elfc.run_counts (run_no, elf, status, n) "
        "SELECT %(run)s, e, s, 0 FROM unnest(%(elves)s::text[]) AS e, "
        "unnest(%(statuses)s::text[]) AS s ON CONFLICT DO NOTHING"
    )
    _LOCK_COUNTS = (
        # The order _Txn._flush updates counters in (Python sorts str by code point, as the
        # "C" collation sorts UTF-8): a completion locks counters, then the run.
        "SELECT 1 FROM elfc.run_counts WHERE run_no = %(run)s "
        'ORDER BY elf COLLATE "C", status COLLATE "C" FOR NO KEY UPDATE'
    )

    def expand(self, job_id: str, worker_id: str, expansion: Expansion) -> bool:
        unique = _driver().psycopg.errors.UniqueViolation
        for _ in range(3):
            ids = new_ids(len(expansion.jobs) + len(expansion.not_taken))[1]
            try:
                return self._write(
                    functools.partial(
                        self._expand, job_id=job_id, worker_id=worker_id, plan=expansion, ids=ids
                    ),
                    durable=False,
                )
            except unique as exc:
                if exc.diag.constraint_name == "jobs_by_run_key":
                    raise MyceliumError(
                        f"expansion job {job_id}: it made a job whose key the run has already "
                        f"({str(exc).strip().splitlines()[-1]}); nothing was stored"
                    ) from exc
                continue  # a random id collided: draw new ones
        raise MyceliumError("could not draw unique job ids")

    def _expand(
        self, t: _Txn, *, job_id: str, worker_id: str, plan: Expansion, ids: list[str]
    ) -> bool:
        """Locks are taken in a completion's order (jobs, then the run's counters, then the
        run), so that an expansion and the completions of its run never deadlock: the
        expansion job, the external jobs, the expansion job's dependents, the counters, the
        run. The run's status read first is checked again under the run's lock."""
        held = t.execute(self._EXPANDING, ids=[job_id], worker=worker_id).fetchone()
        if held is None:
            return False
        job_no, run_no, elf, dependents, run_status, reuse = held
        if run_status != "running":
            self._requeue(
                t, self._RELEASE, ids=[job_id], worker=worker_id, delta=-1,
                note=release_note(worker_id),
            )  # fmt: skip
            return False
        existing: dict[str, tuple[int, str]] = {
            key: (no, status)
            for key, no, status in t.execute(
                self._EXTERNAL, run=run_no, keys=plan.external
            ).fetchall()
        }
        count = len(plan.jobs) + len(plan.not_taken)
        nos = (
            [r[0] for r in t.cur.execute(
                "SELECT nextval('elfc.job_no') FROM generate_series(1, %s)", (count,)
            ).fetchall()]
            if count
            else []
        )  # fmt: skip
        rows = plan.layout(existing, nos, job_no)
        # The expansion job becomes what it is now (locking its dependents), then the rest.
        if plan.result is not None:
            t.execute(
                self._EXPANDED, task=None, status="succeeded", waiting=0,
                note=expanded_note(plan), no=job_no,
            )  # fmt: skip
            _put_result(t, job_no, plan.result)
            t.move(run_no, elf, "running", "succeeded")
            if dependents:
                t.readied(t.execute(self._READY_DEPENDENTS, up=[job_no]).fetchall())
        else:
            assert plan.join_payload is not None
            args, kwargs, deps = plan.join_payload
            t.execute(
                "UPDATE elfc.job_payloads SET args = %(args)s, kwargs = %(kwargs)s, "
                "deps = %(deps)s WHERE job = %(no)s",
                args=args, kwargs=kwargs, deps=deps, no=job_no,
            )  # fmt: skip
            t.execute(
                self._EXPANDED, task=plan.join_task, status=rows.join_status,
                waiting=rows.join_waiting, note=expanded_note(plan), no=job_no,
            )  # fmt: skip
            t.move(run_no, elf, "running", rows.join_status)
            if rows.join_status == "ready":
                t.rings.add(f"elf:{elf}")
            elif rows.join_status == "skipped":
                self._skip_dependents(t, job_no)
        elves = sorted({e for e, _ in rows.added})
        if elves:
            t.execute(self._COUNTERS, run=run_no, elves=elves, statuses=list(_COUNTED_STATUSES))
        if plan.handled:
            self._handle(t, run_no, plan.handled, job_id)
        t.execute(self._LOCK_COUNTS, run=run_no)
        status = _one(
            t.execute(
                "SELECT status FROM elfc.runs WHERE no = %(run)s FOR NO KEY UPDATE", run=run_no
            ).fetchone()
        )
        if status != "running":
            raise _Changed(f"run {run_no} became {status} during an expansion")
        seq = _one(
            t.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM elfc.jobs WHERE run_no = %(run)s",
                run=run_no,
            ).fetchone()
        )
        if count:
            note = expansion_note(job_id)
            _copy(
                t.cur,
                "elfc.jobs (no, id, run_no, key, node, elf, task, revision, seq, status, "
                "waiting, dependents, created, finished, history, reuse)",
                (
                    (
                        nos[i], ids[i], run_no, job.key, job.node, job.elf, job.task,
                        job.revision, seq + i, status, rows.waiting[i],
                        plan.dependents[job.key], t.now, t.now if rows.finished(i) else None,
                        _encode([[t.now, status, note]]).decode(), bool(reuse),
                    )
                    for i, (job, status) in enumerate(zip(rows.jobs, rows.statuses, strict=True))
                ),
            )  # fmt: skip
            _copy(
                t.cur,
                "elfc.job_payloads (job, args, kwargs, deps)",
                (
                    (nos[i], *payload)
                    for i, payload in enumerate([*plan.payloads, *plan.placeholder_payloads])
                ),
            )
        if rows.edges:
            t.execute(
                "INSERT INTO elfc.edges (dep, dependent) SELECT * FROM "
                "unnest(%(deps)s::bigint[], %(dependents)s::bigint[]) ON CONFLICT DO NOTHING",
                deps=[d for d, _ in rows.edges],
                dependents=[d for _, d in rows.edges],
            )
        if rows.outside:
            t.execute(
                "UPDATE elfc.jobs j SET dependents = j.dependents + d.n "
                "FROM unnest(%(nos)s::bigint[], %(ns)s::int[]) AS d (no, n) WHERE j.no = d.no",
                nos=list(rows.outside),
                ns=list(rows.outside.values()),
            )
        t.execute(
            "UPDATE elfc.runs SET total = total + %(n)s WHERE no = %(run)s", n=count, run=run_no
        )
        for (e, status), n in rows.added.items():
            t.add(run_no, e, status, n)
            if status == "ready":
                t.rings.add(f"elf:{e}")
        t.touched.add(run_no)
        return True

    _HANDLE = (
        "UPDATE elfc.jobs j SET status = 'handled', history = " + _event("handled") + " "
        "WHERE j.run_no = %(run)s AND j.status = 'failed' AND (j.key = ANY(%(keys)s::text[]) "
        "OR EXISTS (SELECT 1 FROM unnest(%(keys)s::text[]) AS k (key) "
        "WHERE starts_with(j.key, k.key || '/'))) RETURNING j.no, j.elf"
    )

    def _handle(self, t: _Txn, run_no: int, keys: list[str], catcher: str) -> None:
        """The ``failed`` jobs ``keys`` of run ``run_no`` (and the failed jobs of their
        expansions, below ``key/``) were taken by a handler."""
        rows = t.execute(self._HANDLE, run=run_no, keys=keys, note=handled_note(catcher)).fetchall()
        if not rows:
            return
        t.execute(
            "UPDATE elfc.results SET value = %(value)s WHERE job = ANY(%(nos)s::bigint[])",
            value=HANDLED,
            nos=[no for no, _ in rows],
        )
        elves = sorted({elf for _, elf in rows})
        # A run stored before `handled` existed has no counter of it yet.
        t.execute(self._COUNTERS, run=run_no, elves=elves, statuses=["handled"])
        for _, elf in rows:
            t.move(run_no, elf, "failed", "handled")

    def heartbeat(self, worker: WorkerInfo, running: Iterable[str] = ()) -> set[str]:
        ids = list(running)

        def write(t: _Txn) -> set[str]:
            t.execute(
                "INSERT INTO elfc.workers (id, elf, host, pid, started, heartbeat) "
                "VALUES (%(id)s, %(elf)s, %(host)s, %(pid)s, %(started)s, %(now)s) "
                "ON CONFLICT (id) DO UPDATE SET elf = excluded.elf, host = excluded.host, "
                "pid = excluded.pid, heartbeat = excluded.heartbeat",
                id=worker.id,
                elf=worker.elf,
                host=worker.host,
                pid=worker.pid,
                started=worker.started,
            )
            if not ids:
                return set()
            kept = t.execute(
                "UPDATE elfc.jobs j SET lease_until = %(now)s + j.lease FROM elfc.runs r "
                "WHERE r.no = j.run_no AND " + self._HELD + " RETURNING j.id, r.status",
                ids=ids,
                worker=worker.id,
            ).fetchall()
            return must_stop(ids, ((job_id, status == "cancelled") for job_id, status in kept))

        return self._write(write, durable=False)

    def cancel_run(self, run_id: str) -> bool:
        def write(t: _Txn) -> bool:
            row = t.execute(
                "UPDATE elfc.runs SET status = 'cancelled' WHERE id = %(id)s "
                "AND status = 'running' RETURNING no",
                id=run_id,
            ).fetchone()
            if row is None:
                return False
            # Running jobs are left to their workers, whom heartbeat tells to stop.
            for elf, old in t.execute(
                "WITH old AS (SELECT no, status FROM elfc.jobs WHERE run_no = %(run)s "
                "AND status IN ('pending', 'ready') ORDER BY no FOR NO KEY UPDATE) "
                "UPDATE elfc.jobs j SET status = 'cancelled', finished = %(now)s, history = "
                + _event("cancelled")
                + " FROM old WHERE j.no = old.no RETURNING j.elf, old.status",
                run=row[0],
                note="run cancelled",
            ).fetchall():
                t.move(row[0], elf, old, "cancelled")
            t.touched.add(row[0])
            t.rings.add("runs")
            return True

        return self._write(write)

    def fail_run(self, run_id: str, error_type: str, message: str) -> bool:
        def write(t: _Txn) -> bool:
            row = t.execute(
                "UPDATE elfc.runs SET status = 'failed', error_type = %(type)s, "
                "error_message = %(message)s, error_time = %(now)s "
                "WHERE id = %(id)s AND status = 'succeeded' RETURNING no",
                id=run_id,
                type=error_type,
                message=message,
            ).fetchone()
            if row is None:
                return False
            t.rings.add("runs")  # the run was settled already: nothing to recount
            return True

        return self._write(write)

    # -- operating runs: task output, retries ---------------------------------------------

    def put_logs(self, logs: Sequence[LogRecord]) -> None:
        if not logs:
            return

        def write(t: _Txn) -> None:
            if _insert_logs(t, logs) != len(logs):
                known = {row[0] for row in t.execute(
                    "SELECT id FROM elfc.jobs WHERE id = ANY(%(ids)s::text[])",
                    ids=[log.job for log in logs],
                )}  # fmt: skip
                missing = next(log.job for log in logs if log.job not in known)
                raise MyceliumError(f"cannot store the output of job {missing}: no such job")

        self._write(write)

    def stage_logs(self, logs: Sequence[LogRecord]) -> None:
        # Stored by the next write (the worker's next is the jobs' outcome): one transaction,
        # and one WAL flush, less per batch of jobs that printed.
        self._guard()
        with self._lock:
            self._staged = [*self._staged, *logs]

    def list_logs(
        self, run_id: str, key: str | None = None, since: float | None = None
    ) -> list[LogRecord]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT j.id, r.id, j.key, j.elf, j.task, l.attempt, l.text, l.truncated, l.time "
                "FROM elfc.logs l JOIN elfc.runs r ON r.no = l.run_no "
                "JOIN elfc.jobs j ON j.no = l.job WHERE r.id = %(run)s "
                "AND (%(key)s::text IS NULL OR j.key = %(key)s) "
                "AND l.time >= coalesce(%(since)s::float8, 0) "
                "ORDER BY l.time, j.seq, l.attempt, l.no",
                {"run": run_id, "key": key, "since": since},
            ).fetchall()
        )
        return [
            LogRecord(job, run, k, elf, task, attempt, _text(text), truncated, at)
            for job, run, k, elf, task, attempt, text, truncated, at in rows
        ]

    _RERUN = (
        "UPDATE elfc.jobs j SET status = 'pending', revision = w.revision, attempts = 0, "
        "not_before = 0, lease = NULL, lease_owner = NULL, lease_until = NULL, started = NULL, "
        "finished = NULL, cache_key = NULL, cached_from = NULL FROM unnest(%(nos)s::bigint[], %(revisions)s::text[]) "
        "AS w (no, revision) WHERE j.no = w.no"
    )
    _RERUN_STATUS = "CASE WHEN w.n = 0 THEN 'ready' ELSE 'pending' END"
    _RERUN_WAITING = (
        # A statement of its own: its snapshot sees every named job pending (``_RERUN``), so a
        # dependency retried too is waited for.
        "UPDATE elfc.jobs j SET waiting = w.n, status = " + _RERUN_STATUS + ", "
        "history = " + _event(_RERUN_STATUS, "w.note") + " "
        "FROM (SELECT x.no, x.note, (SELECT count(*)::int FROM elfc.edges e "
        "JOIN elfc.jobs d ON d.no = e.dep WHERE e.dependent = x.no "
        "AND d.status <> 'succeeded') AS n "
        "FROM unnest(%(nos)s::bigint[], %(notes)s::text[]) AS x (no, note)) AS w "
        "WHERE j.no = w.no RETURNING j.elf, j.status"
    )
    _RECOUNT = (
        "INSERT INTO elfc.run_counts (run_no, elf, status, n) "
        "SELECT %(run)s, e.elf, s.status, (SELECT count(*)::int FROM elfc.jobs j "
        "WHERE j.run_no = %(run)s AND j.elf = e.elf AND "
        "(CASE j.status WHEN 'running' THEN 'ready' ELSE j.status END) = s.status) "
        "FROM (SELECT DISTINCT elf FROM elfc.jobs WHERE run_no = %(run)s) AS e, "
        "unnest(%(statuses)s::text[]) AS s (status)"
    )

    def retry_jobs(self, run_id: str, revisions: Mapping[str, str]) -> bool:
        wanted = dict(revisions)
        return bool(wanted) and self._write(lambda t: self._retry_jobs(t, run_id, wanted))

    def _retry_jobs(self, t: _Txn, run_id: str, wanted: dict[str, str]) -> bool:
        # The run's row lock orders a retry after a cancellation, another retry or a prune.
        run = t.execute(
            "SELECT no, status FROM elfc.runs WHERE id = %(id)s FOR UPDATE", id=run_id
        ).fetchone()
        if run is None or run[1] not in FINAL_RUN_STATUSES:
            return False
        run_no = run[0]
        rows = t.execute(
            "SELECT no, id, status, revision FROM elfc.jobs WHERE run_no = %(run)s "
            "AND id = ANY(%(ids)s::text[]) ORDER BY no FOR NO KEY UPDATE",
            run=run_no,
            ids=list(wanted),
        ).fetchall()
        settled = [row for row in rows if row[2] in FINAL_JOB_STATUSES]
        if len(settled) != len(wanted):
            missing = sorted(set(wanted) - {row[1] for row in settled})
            raise MyceliumError(
                f"cannot retry job(s) {', '.join(missing[:3])}: not settled jobs of run {run_id}"
            )
        nos = [row[0] for row in rows]
        t.execute("DELETE FROM elfc.results WHERE job = ANY(%(nos)s::bigint[])", nos=nos)
        t.execute(self._RERUN, nos=nos, revisions=[wanted[row[1]] for row in rows])
        reset = t.execute(
            self._RERUN_WAITING,
            nos=nos,
            notes=[rerun_note(old, wanted[job_id]) for _, job_id, _, old in rows],
        ).fetchall()
        t.execute("DELETE FROM elfc.run_counts WHERE run_no = %(run)s", run=run_no)
        t.execute(self._RECOUNT, run=run_no, statuses=list(_COUNTED_STATUSES))
        t.execute(
            "UPDATE elfc.runs SET status = 'running', finished = NULL, error_type = NULL, "
            "error_message = NULL, error_time = NULL WHERE no = %(run)s",
            run=run_no,
        )
        t.rings.update(f"elf:{elf}" for elf, status in reset if status == "ready")
        t.rings.add("runs")
        return True

    def prune_runs(
        self, finished_before: float, statuses: Iterable[str] = FINAL_RUN_STATUSES, limit: int = 100
    ) -> int:
        wanted = sorted(set(statuses) & FINAL_RUN_STATUSES)
        if not wanted or limit <= 0:
            return 0
        return self._write(lambda t: self._prune(t, finished_before, wanted, limit))

    def _prune(self, t: _Txn, before: float, statuses: list[str], limit: int) -> int:
        # Locked, skipping a run a retry holds: a retried run is running, not pruned.
        runs = [
            row[0]
            for row in t.execute(
                "SELECT no FROM elfc.runs WHERE finished IS NOT NULL AND finished < %(before)s "
                "AND status = ANY(%(statuses)s::text[]) ORDER BY no LIMIT %(limit)s "
                "FOR UPDATE SKIP LOCKED",
                before=before,
                statuses=statuses,
                limit=limit,
            )
        ]
        if not runs:
            return 0
        jobs = [
            row[0]
            for row in t.execute(
                "SELECT no FROM elfc.jobs WHERE run_no = ANY(%(runs)s::bigint[])", runs=runs
            )
        ]
        failures = [
            row[0]
            for row in t.execute(
                "SELECT DISTINCT failure FROM elfc.job_failures WHERE job = ANY(%(jobs)s::bigint[])",
                jobs=jobs,
            )
        ]
        revisions = [
            row[0]
            for row in t.execute(
                "SELECT revision FROM elfc.jobs WHERE run_no = ANY(%(runs)s::bigint[]) UNION "
                "SELECT revision FROM elfc.runs WHERE no = ANY(%(runs)s::bigint[])",
                runs=runs,
            )
        ]
        for table, column, ids in (
            ("edges", "dep", jobs),  # a run's edges join two of its own jobs
            ("results", "job", jobs),
            ("job_payloads", "job", jobs),
            ("job_failures", "job", jobs),
            ("logs", "run_no", runs),
            ("jobs", "run_no", runs),
            ("run_counts", "run_no", runs),
            ("runs", "no", runs),
        ):
            t.execute(f"DELETE FROM elfc.{table} WHERE {column} = ANY(%(ids)s::bigint[])", ids=ids)
        t.execute(
            "DELETE FROM elfc.failures f WHERE f.hash = ANY(%(hashes)s::text[]) AND NOT EXISTS "
            "(SELECT 1 FROM elfc.job_failures l WHERE l.failure = f.hash)",
            hashes=failures,
        )
        t.execute(
            "DELETE FROM elfc.graphs g WHERE g.revision = ANY(%(revisions)s::text[]) "
            "AND NOT EXISTS (SELECT 1 FROM elfc.runs r WHERE r.revision = g.revision)",
            revisions=revisions,
        )
        t.execute(
            "DELETE FROM elfc.revisions v WHERE v.hash = ANY(%(revisions)s::text[]) "
            "AND NOT EXISTS (SELECT 1 FROM elfc.jobs j WHERE j.revision = v.hash) "
            "AND NOT EXISTS (SELECT 1 FROM elfc.runs r WHERE r.revision = v.hash) "
            "AND NOT EXISTS (SELECT 1 FROM elfc.elves e WHERE e.revision = v.hash)",
            revisions=revisions,
        )
        self._run_ids.clear()
        return len(runs)

    # -- reading -------------------------------------------------------------------

    _RUN_COLUMNS = (
        "SELECT no, id, pipeline, revision, arguments, status, created, finished, total, output, "
        "error_type, error_message, error_time FROM elfc.runs "
    )

    def run_info(self, run_id: str) -> RunInfo | None:
        def read(con: psycopg.Connection[Any]) -> RunInfo | None:
            sql = self._RUN_COLUMNS + "WHERE id >= %s AND id < %s ORDER BY id LIMIT 2"
            row = _by_prefix(con, sql, run_id, "run", column=1)
            return None if row is None else _run_info(con, row)

        return self._read(read, snapshot=True)

    def run_status(self, run_id: str) -> str | None:
        row = self._read(
            lambda con: con.execute(
                "SELECT status FROM elfc.runs WHERE id = %s", (run_id,)
            ).fetchone()
        )
        return None if row is None else str(row[0])

    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        def read(con: psycopg.Connection[Any]) -> list[RunInfo]:
            rows = con.execute(self._RUN_COLUMNS + "ORDER BY no DESC LIMIT %s", (limit,)).fetchall()
            return [_run_info(con, row) for row in rows]

        return self._read(read, snapshot=True)

    _JOB_COLUMNS = (
        "SELECT j.no, j.id, r.id, j.key, j.node, j.elf, j.task, j.revision, p.args, p.kwargs, "
        "p.deps, j.seq, j.status, j.waiting, j.attempts, j.not_before, j.lease_owner, "
        "j.lease_until, j.created, j.started, j.finished, j.history::text, j.cache_key, "
        "j.cached_from, (SELECT failure FROM elfc.job_failures WHERE job = j.no ORDER BY no DESC LIMIT 1) "
        "FROM elfc.jobs j JOIN elfc.runs r ON r.no = j.run_no "
        "JOIN elfc.job_payloads p ON p.job = j.no "
    )

    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobInfo]:
        def read(con: psycopg.Connection[Any]) -> list[JobInfo]:
            sql = "SELECT id FROM elfc.runs WHERE id >= %s AND id < %s ORDER BY id LIMIT 2"
            run = _by_prefix(con, sql, run_id, "run")
            if run is None:
                return []
            rows = con.execute(
                self._JOB_COLUMNS + "WHERE r.id = %(run)s "
                "AND (%(status)s::text IS NULL OR j.status = %(status)s) ORDER BY j.seq",
                {"run": run[0], "status": status},
            ).fetchall()
            return _job_infos(con, rows, with_results=False)

        return self._read(read, snapshot=True)

    def get_job(self, job_id: str) -> JobInfo | None:
        def read(con: psycopg.Connection[Any]) -> JobInfo | None:
            sql = self._JOB_COLUMNS + "WHERE j.id >= %s AND j.id < %s ORDER BY j.id LIMIT 2"
            row = _by_prefix(con, sql, job_id, "job", column=1)
            return None if row is None else _job_infos(con, [row], with_results=True)[0]

        return self._read(read, snapshot=True)

    _FAILURE_COLUMNS = (
        "SELECT hash, error_type, message, traceback, count, first_seen, last_seen, elf, task, "
        "revision FROM elfc.failures "
    )

    def list_failures(self, limit: int = 20) -> list[FailureInfo]:
        rows = self._read(
            lambda con: con.execute(
                self._FAILURE_COLUMNS + "ORDER BY last_seen DESC LIMIT %s", (limit,)
            ).fetchall()
        )
        return [FailureInfo(*row) for row in rows]

    def list_run_failures(self, limit: int = 20) -> list[FailureInfo]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT id, pipeline, revision, error_type, error_message, error_time FROM elfc.runs "
                "WHERE error_type IS NOT NULL ORDER BY error_time DESC LIMIT %s",
                (limit,),
            ).fetchall()
        )
        found = [(row, run_failure(*row[3:])) for row in rows]
        return [
            run_failure_info(row[0], row[1], row[2], failure)
            for row, failure in found
            if failure is not None
        ]

    def list_workers(self) -> list[WorkerInfo]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT id, elf, host, pid, started, heartbeat FROM elfc.workers "
                "ORDER BY heartbeat DESC"
            ).fetchall()
        )
        return [WorkerInfo(*row) for row in rows]

    # -- waiting ---------------------------------------------------------------------

    def _listen(self, channel: str) -> tuple[psycopg.Connection[Any] | None, bool]:
        """The ``LISTEN`` connection, listening on ``channel`` (``None`` while it cannot be
        had), and whether it was not listening on it before. Called under ``_listen_lock``."""
        psycopg = _driver().psycopg
        con = self._listener
        try:
            if con is None or con.closed or con.broken:
                self._drop(con)
                self._listener = None
                self._listening = set()
                con = self._listener = self._connect()
            fresh = channel not in self._listening
            if fresh:
                con.execute(
                    _driver().psycopg.sql.SQL("LISTEN {}").format(_driver().identifier(channel))
                )
                self._listening.add(channel)
            return con, fresh
        except (psycopg.Error, MyceliumError):
            self._drop(con)
            self._listener = None
            return None, True

    def wait_for_work(self, elf: str, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        self._guard()
        channel = _channel(f"elf:{elf}")
        if not self._listen_lock.acquire(timeout=max(timeout, 0.0)):
            return  # another thread of this process is waiting: it will claim for both
        try:
            con, fresh = self._listen(channel)
            if fresh and con is not None:
                return  # work readied before we listened sent no notification
            due = self._read(
                lambda c: c.execute(
                    "SELECT (SELECT min(not_before) FROM elfc.jobs WHERE elf = %(elf)s "
                    "AND status = 'ready'), (SELECT min(lease_until) FROM elfc.jobs "
                    "WHERE status = 'running' AND elf = %(elf)s)",
                    {"elf": elf},
                ).fetchone()
            )
            for at in due or ():
                if at is not None:
                    deadline = min(deadline, time.monotonic() + max(0.0, at - time.time()) + 0.001)
            if con is None:
                self._poll_for_work(elf, deadline)
            else:
                self._notified(con, {channel}, deadline)
        finally:
            self._listen_lock.release()

    def _notified(self, con: psycopg.Connection[Any], channels: set[str], deadline: float) -> bool:
        """Wait for a notification on one of ``channels`` until ``deadline``; ``True`` if one
        came. A broken connection ends the wait early (the caller claims, then waits again)."""
        psycopg = _driver().psycopg
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                for note in con.notifies(timeout=left, stop_after=1):
                    if note.channel in channels:
                        return True
            except psycopg.Error:
                self._drop(con)
                self._listener = None
                return False

    def _poll_for_work(self, elf: str, deadline: float) -> None:
        """Without a ``LISTEN`` connection: look for ready work every ``FALLBACK_POLL``."""
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, FALLBACK_POLL))
            try:
                found = self._read(
                    lambda c: c.execute(
                        "SELECT EXISTS (SELECT 1 FROM elfc.jobs WHERE elf = %s "
                        "AND status = 'ready' AND not_before <= %s)",
                        (elf, time.time()),
                    ).fetchone()
                )
            except MyceliumError:
                return
            if found and found[0]:
                return

    def wait_for_run(self, run_id: str, timeout: float) -> str | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        self._guard()
        channel = _channel("runs")
        while True:
            status = self.run_status(run_id)
            if status is None or status in FINAL_RUN_STATUSES or time.monotonic() >= deadline:
                return status
            pause = min(deadline, time.monotonic() + RUN_POLL)
            if not self._listen_lock.acquire(timeout=RUN_POLL):
                continue
            try:
                con, fresh = self._listen(channel)
                if con is None:
                    time.sleep(max(0.0, min(FALLBACK_POLL, pause - time.monotonic())))
                elif not fresh:
                    self._notified(con, {channel}, pause)
            finally:
                self._listen_lock.release()


class _Txn:
    """One write transaction: its cursor and clock, the job status moves to add to the run
    counters, and the channels to notify when it commits."""

    __slots__ = ("added", "cur", "moves", "now", "rings", "touched")

    _MOVE = (
        "UPDATE elfc.run_counts c SET n = c.n + d.k "
        "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[]) AS d (run_no, elf, status, k) "
        "WHERE c.run_no = d.run_no AND c.elf = d.elf AND c.status = d.status"
    )
    _LOCK_RUNS = (
        "SELECT no FROM elfc.runs WHERE no = ANY(%s::bigint[]) AND finished IS NULL "
        "ORDER BY no FOR NO KEY UPDATE"
    )
    _SETTLE = (
        "WITH settled AS (UPDATE elfc.runs r SET finished = %(now)s, status = CASE "
        "WHEN r.status <> 'running' THEN r.status "
        "WHEN EXISTS (SELECT 1 FROM elfc.run_counts c WHERE c.run_no = r.no "
        "AND c.status = 'failed' AND c.n > 0) THEN 'failed' ELSE 'succeeded' END "
        "WHERE r.no = ANY(%(runs)s::bigint[]) AND r.finished IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM elfc.run_counts c WHERE c.run_no = r.no "
        "AND c.status IN ('pending', 'ready') AND c.n > 0) RETURNING r.no) "
        "SELECT pg_notify(%(channel)s, '') FROM (SELECT 1 FROM settled LIMIT 1) AS s"
    )

    def __init__(self, con: psycopg.Connection[Any], now: float) -> None:
        self.cur = con.cursor()
        self.now = now
        self.moves: Counter[tuple[int, str, str, str]] = Counter()
        self.added: Counter[tuple[int, str, str]] = Counter()
        self.rings: set[str] = set()
        self.touched: set[int] = set()

    def execute(self, sql: str, cursor: bool = False, **values: Any) -> psycopg.Cursor[Any]:
        """``sql`` with named parameters; ``now`` is this transaction's clock. With ``cursor``
        on a cursor of its own (several statements' results read after one pipeline)."""
        cur = self.cur.connection.cursor() if cursor else self.cur
        return cur.execute(sql, {"now": self.now, **values})

    def move(self, run_no: int, elf: str, old: str, new: str) -> None:
        # run_counts keeps running jobs in the ready bucket, so that claims, releases and
        # expiries leave it alone; readers count running jobs from their (small) index.
        old, new = _BUCKET.get(old, old), _BUCKET.get(new, new)
        if old != new:
            self.moves[run_no, elf, old, new] += 1

    def readied(self, rows: Iterable[Sequence[Any]]) -> None:
        """Count the moves of the jobs a statement of :func:`_count_down` made ready, and
        wake their elves."""
        for run_no, elf, status, waiting in rows:
            if status == "ready" and waiting == 0:
                self.move(run_no, elf, "pending", "ready")
                self.rings.add(f"elf:{elf}")

    def add(self, run_no: int, elf: str, status: str, k: int) -> None:
        """Count ``k`` jobs added to the run in ``status`` (an expansion's)."""
        self.added[run_no, elf, _BUCKET.get(status, status)] += k
        if status in FINAL_JOB_STATUSES:
            self.touched.add(run_no)

    def commit(self) -> None:
        """Apply the counted moves; settle every run that may have no active job left; send
        the notifications (delivered on commit); commit. All in one round trip."""
        con = self.cur.connection
        with con.pipeline():
            self._flush()
            con.execute("COMMIT")

    def _flush(self) -> None:
        if self.moves or self.added:
            deltas: Counter[tuple[int, str, str]] = Counter(self.added)
            for (run_no, elf, old, new), k in self.moves.items():
                deltas[run_no, elf, old] -= k
                deltas[run_no, elf, new] += k
            rows = sorted(deltas.items())  # one lock order for every writer (see _LOCK_COUNTS)
            self.cur.execute(
                self._MOVE,
                (
                    [r for (r, _, _), _ in rows],
                    [e for (_, e, _), _ in rows],
                    [s for (_, _, s), _ in rows],
                    [k for _, k in rows],
                ),
            )
            self.touched.update(r for (r, _, _, new) in self.moves if new in FINAL_JOB_STATUSES)
        if self.touched:
            runs = sorted(self.touched)
            # The run's row lock orders the completions that may settle it: the check below,
            # a statement of its own with a snapshot taken once the lock is held, then sees
            # every counter the other writers committed.
            self.cur.execute(self._LOCK_RUNS, (runs,))
            self.execute(self._SETTLE, runs=runs, channel=_channel("runs"))
        if self.rings:
            self.cur.execute(
                "SELECT pg_notify(c, '') FROM unnest(%s::text[]) AS c",
                ([_channel(name) for name in sorted(self.rings)],),
            )


class _Rows(Submission):
    """A checked submission (see :class:`Submission`) as rows of this schema's tables."""

    def __init__(self, built: BuiltRun) -> None:
        super().__init__(built)
        self.counts = Counter(zip((job.elf for job in built.jobs), self.statuses, strict=True))
        """(elf, status) -> how many jobs start so: the run's initial ``run_counts``."""
        self.ready_elves = {elf for elf, status in self.counts if status == "ready"}

    def job_rows(
        self, nos: Sequence[int], run_no: int, ids: Sequence[str], now: float
    ) -> Iterator[tuple[Any, ...]]:
        reuse = self.built.reuse
        for i, job in enumerate(self.built.jobs):
            yield (
                nos[i],
                ids[i],
                run_no,
                job.key,
                job.node,
                job.elf,
                job.task,
                job.revision,
                job.seq,
                self.statuses[i],
                len(self.deps[i]),
                self.dependents[job.key],
                now,
                reuse,
            )

    def payload_rows(self, nos: Sequence[int]) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        for i, (args, kwargs, dep_keys) in enumerate(self.payloads):
            yield nos[i], args, kwargs, dep_keys

    def edge_rows(self, nos: Sequence[int]) -> Iterator[tuple[int, int]]:
        position = self.position
        for i, deps in enumerate(self.deps):
            for dep in deps:
                yield nos[position[dep]], nos[i]

    def count_rows(self, run_no: int) -> Iterator[tuple[int, str, str, int]]:
        for elf in sorted({elf for elf, _ in self.counts}):
            for status in _COUNTED_STATUSES:
                yield run_no, elf, status, self.counts[elf, status]


# -- helpers ---------------------------------------------------------------------------


def _one(row: tuple[Any, ...] | None) -> Any:
    """The first column of a row that a statement always returns."""
    assert row is not None
    return row[0]


def _copy(cur: psycopg.Cursor[Any], target: str, rows: Iterable[Sequence[Any]]) -> None:
    with cur.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_logs(t: _Txn, logs: Sequence[LogRecord]) -> int:
    """Insert task output rows in the order given; a record of a job that is not stored adds
    none. Returns how many rows were added."""
    return t.execute(
        "INSERT INTO elfc.logs (job, run_no, attempt, time, text, truncated) "
        "SELECT j.no, j.run_no, w.attempt, %(now)s, w.text, w.truncated "
        "FROM unnest(%(ids)s::text[], %(attempts)s::int[], %(texts)s::bytea[], "
        "%(truncated)s::bigint[]) WITH ORDINALITY AS w (id, attempt, text, truncated, i) "
        "JOIN elfc.jobs j ON j.id = w.id ORDER BY w.i",
        ids=[log.job for log in logs],
        attempts=[log.attempt for log in logs],
        texts=[log.text.encode("utf-8", "surrogatepass") for log in logs],
        truncated=[log.truncated for log in logs],
    ).rowcount


_REPLACE_RESULT = "ON CONFLICT (job) DO UPDATE SET value = excluded.value"
"""A job's result replaces what it stored before (a failure's exception, for a handler)."""


def _put_result(t: _Txn, job_no: int, value: bytes) -> None:
    t.execute(
        "INSERT INTO elfc.results (job, value) VALUES (%(no)s, %(value)s) " + _REPLACE_RESULT,
        no=job_no,
        value=value,
    )


def _text(stored: bytes) -> str:
    """Task output as ``_insert_logs`` stored it."""
    return bytes(stored).decode("utf-8", "surrogatepass")


def _put_template(t: _Txn, revision: str, template_json: bytes) -> None:
    t.execute(
        "INSERT INTO elfc.graphs (revision, template) VALUES (%(revision)s, %(template)s) "
        "ON CONFLICT DO NOTHING",
        revision=revision,
        template=template_json,
    )


def _by_prefix(
    con: psycopg.Connection[Any], sql: str, prefix: str, what: str, column: int = 0
) -> tuple[Any, ...] | None:
    """The row whose id (at ``column``) is ``prefix`` or the only one starting with it (see
    :func:`pick`); ``sql`` takes the two ends of the id range."""
    end = prefix_end(prefix)
    if end is None:
        return None
    rows: list[tuple[Any, ...]] = con.execute(sql, (prefix, end)).fetchall()
    return pick(rows, prefix, what, operator.itemgetter(column))


def _run_info(con: psycopg.Connection[Any], row: tuple[Any, ...]) -> RunInfo:
    no, run_id, pipeline, revision, arguments, status, created, finished, total, output = row[:10]
    return run_info(
        run_id,
        pipeline,
        revision,
        bytes(arguments),
        status,
        created,
        finished,
        total,
        bytes(output),
        _counted(con, no),
        _one(
            con.execute(
                "SELECT count(*)::int FROM elfc.jobs WHERE run_no = %s AND cached_from IS NOT NULL",
                (no,),
            ).fetchone()
        ),
        run_failure(*row[10:13]),
    )


def _counted(con: psycopg.Connection[Any], run_no: int) -> list[tuple[str, str, int]]:
    """``(elf, status, n)`` for the jobs of a run. ``run_counts`` keeps running jobs in the
    ready bucket (see :meth:`_Txn.move`): they are counted from their index instead."""
    running: dict[str, int] = dict(
        con.execute(
            "SELECT elf, count(*)::int FROM elfc.jobs WHERE status = 'running' AND run_no = %s "
            "GROUP BY elf",
            (run_no,),
        ).fetchall()
    )
    counted = [
        (elf, status, n - running.get(elf, 0) if status == "ready" else n)
        for elf, status, n in con.execute(
            "SELECT elf, status, n FROM elfc.run_counts WHERE run_no = %s", (run_no,)
        )
    ]
    counted += [(elf, "running", n) for elf, n in running.items()]
    return counted


def _job_infos(
    con: psycopg.Connection[Any], rows: list[tuple[Any, ...]], with_results: bool
) -> list[JobInfo]:
    failures = _failures(con, {row[-1] for row in rows if row[-1] is not None})
    return [
        job_info_of(row, _result(con, row[0]) if with_results else None, failures.get(row[-1]))
        for row in rows
    ]


def _failures(con: psycopg.Connection[Any], hashes: set[str]) -> dict[str, FailureInfo]:
    if not hashes:
        return {}
    rows = con.execute(
        PostgresStore._FAILURE_COLUMNS + "WHERE hash = ANY(%s::text[])", (sorted(hashes),)
    )
    return {row[0]: FailureInfo(*row) for row in rows}


def _result(con: psycopg.Connection[Any], job_no: int) -> bytes | None:
    found = con.execute("SELECT value FROM elfc.results WHERE job = %s", (job_no,)).fetchone()
    return None if found is None else bytes(found[0])
