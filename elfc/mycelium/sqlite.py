"""The SQLite mycelium: one database file shared by every process on one machine.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``. The file is opened in WAL
mode with ``synchronous=NORMAL``: a killed process loses nothing; a power loss can lose the
last transactions committed before it, never the database's consistency.

How it stays fast (per-job cost independent of run size):

* readiness is a counter per job, decremented through an index of edges by dependency;
* a claim is one ``UPDATE ... RETURNING`` over a partial index of ready jobs ordered by
  (elf, run, seq), and completions run in batches, one transaction per batch;
* job counts per (run, elf, status) are counters too, so a run settles without a scan;
* a job's status history is a JSON array in its own row (no extra table to write);
* idle workers sleep on a unix datagram socket (a doorbell, one per waiter, in a folder next
  to the database) that writers ring after committing work for their elf; ``PRAGMA
  data_version`` polling is the fallback when a doorbell cannot be used.

One connection per process and instance (reopened after ``fork``), used under a lock so a
heartbeat thread may share it; writes are ``BEGIN IMMEDIATE`` transactions retried with
jittered backoff, because SQLite's own busy handler sleeps in coarse, unfair steps.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import random
import secrets
import select
import socket
import sqlite3
import stat
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from elfc.errors import MyceliumError
from elfc.model.ir import BuiltRun, revision_of
from elfc.model.status import FINAL_JOB_STATUSES, FINAL_RUN_STATUSES, JOB_STATUSES
from elfc.mycelium.base import (
    Claimed,
    ElfRecord,
    Event,
    FailureInfo,
    FailureRecord,
    JobInfo,
    Mycelium,
    RevisionRecord,
    RunInfo,
    WorkerInfo,
)

T = TypeVar("T")

SCHEMA_VERSION = 3
"""Bump on any change to SCHEMA; a database of another version is refused, never migrated."""

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE elves (
    name TEXT PRIMARY KEY, cls TEXT NOT NULL, module TEXT NOT NULL, config TEXT NOT NULL,
    revision TEXT NOT NULL, doc TEXT, last_seen REAL NOT NULL
);
CREATE TABLE revisions (
    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, qualname TEXT NOT NULL, module TEXT NOT NULL,
    source TEXT NOT NULL, doc TEXT, signature TEXT
);
CREATE TABLE graphs (revision TEXT PRIMARY KEY, template BLOB NOT NULL);
CREATE TABLE runs (
    no INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, pipeline TEXT NOT NULL,
    revision TEXT NOT NULL, arguments BLOB NOT NULL, output BLOB NOT NULL, status TEXT NOT NULL,
    total INTEGER NOT NULL, created REAL NOT NULL, finished REAL
);
CREATE TABLE run_counts (
    run_no INTEGER NOT NULL, elf TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (run_no, elf, status)
) WITHOUT ROWID;
CREATE TABLE jobs (
    no INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, run_no INTEGER NOT NULL, key TEXT NOT NULL,
    node TEXT NOT NULL, elf TEXT NOT NULL, task TEXT NOT NULL, revision TEXT NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL, waiting INTEGER NOT NULL, dependents INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0, lease REAL, lease_owner TEXT, lease_until REAL,
    created REAL NOT NULL, started REAL, finished REAL, history TEXT
);
-- A job's arguments and dependency keys never change, and a reduce over n jobs holds O(n) of
-- them: kept out of the jobs row, which every status change and counter update rewrites whole.
CREATE TABLE job_payloads (
    job INTEGER PRIMARY KEY, args BLOB NOT NULL, kwargs BLOB NOT NULL, deps BLOB NOT NULL
);
CREATE UNIQUE INDEX jobs_by_run_key ON jobs (run_no, key);
CREATE INDEX jobs_ready ON jobs (elf, run_no, seq, not_before) WHERE status = 'ready';
CREATE INDEX jobs_running ON jobs (lease_until, elf, run_no) WHERE status = 'running';
CREATE TABLE edges (
    dep INTEGER NOT NULL, dependent INTEGER NOT NULL, PRIMARY KEY (dep, dependent)
) WITHOUT ROWID;
CREATE TABLE results (job INTEGER PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE failures (
    hash TEXT PRIMARY KEY, error_type TEXT NOT NULL, message TEXT NOT NULL,
    traceback TEXT NOT NULL, count INTEGER NOT NULL, first_seen REAL NOT NULL,
    last_seen REAL NOT NULL, elf TEXT NOT NULL, task TEXT NOT NULL, revision TEXT NOT NULL
);
CREATE INDEX failures_by_last_seen ON failures (last_seen);
CREATE TABLE job_failures (
    job INTEGER NOT NULL, failure TEXT NOT NULL, time REAL NOT NULL, attempt INTEGER NOT NULL
);
CREATE INDEX job_failures_by_job ON job_failures (job);
CREATE INDEX job_failures_by_failure ON job_failures (failure);
CREATE TABLE workers (
    id TEXT PRIMARY KEY, elf TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    started REAL NOT NULL, heartbeat REAL NOT NULL
);
CREATE INDEX workers_by_heartbeat ON workers (heartbeat);
"""

PATIENCE = 60.0
RETRY_FIRST, RETRY_MAX = 0.0001, 0.001
"""Jittered retry delays on a busy database, in seconds: transactions here hold the lock for
well under a millisecond, so a longer sleep only leaves the lock idle."""
"""Seconds a write keeps retrying while other processes hold the write lock."""
BUSY_TIMEOUT_MS = 0
"""SQLite's own busy wait. None: its handler sleeps 1, 2, 5, 10... ms and lets a process starve
while others take the lock; ``_retry`` retries from 0.1 ms with jitter instead (measured: it
beats a 5 ms busy timeout with two writers)."""
INLINE_RESULTS = 64
"""A claim carries the results its jobs read when there are at most this many (a reduce over
thousands fetches them itself, outside the write lock)."""
FALLBACK_POLL = 0.1
"""How often a waiter with a doorbell still checks ``PRAGMA data_version``, in seconds."""

_BUCKET = {"running": "ready"}
_COUNTED_STATUSES = tuple(s for s in JOB_STATUSES if s not in _BUCKET)

_encode = msgspec.json.Encoder().encode
_decode_args = msgspec.json.Decoder(tuple[Any, ...]).decode
_decode_kwargs = msgspec.json.Decoder(dict[str, Any]).decode
_decode_keys = msgspec.json.Decoder(tuple[str, ...]).decode
_decode_history = msgspec.json.Decoder(tuple[Event, ...]).decode
_decode_any = msgspec.json.Decoder().decode

_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))
_abandoned: list[object] = []
"""Connections and sockets inherited from a parent process: never used, never closed (closing
an inherited SQLite connection can break the parent's locks)."""


def _append_event(status: str) -> str:
    """SQL that appends ``[?1 time, status, ?2 note]`` to a job's history (status is a literal
    from this module, never a value)."""
    if status not in JOB_STATUSES:
        raise ValueError(status)
    return f"json_insert(coalesce(history, '[]'), '$[#]', json_array(?, '{status}', ?))"


class SQLiteMycelium(Mycelium):
    """The mycelium in one SQLite file: ``SQLiteMycelium(".elfc/mycelium.db")``."""

    schemes = ("sqlite",)
    supports_doorbell = True
    supports_batches = True

    def __init__(self, path: str | os.PathLike[str], *, url: str | None = None) -> None:
        self.path = Path(path).absolute()
        self.url = url or f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None
        self._fork = _forks[0]
        self._closed = False
        self._bell = _Doorbell(self.path)
        self._run_ids: dict[int, str] = {}
        self._rung = False
        """A bell woke ``wait_for_work``: the next claim skips its read-only probe."""
        self._connection()  # fail early on a bad path or another schema

    @classmethod
    def from_url(cls, url: str) -> SQLiteMycelium:
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix):
            raise MyceliumError(
                f"bad SQLite mycelium URL {url!r}: use sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        return cls(url[len(prefix) :].split("?", 1)[0], url=url)

    def close(self) -> None:
        self._guard()
        with self._lock:
            self._closed = True
            if self._con is not None and self._fork == _forks[0]:
                self._con.close()
            self._con = None
            self._bell.close()

    # -- connection and transactions ---------------------------------------------------

    def _guard(self) -> None:
        """Forget what a parent process left us: its connection, lock state and sockets."""
        if self._fork != _forks[0]:
            self._after_fork()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise MyceliumError(f"the mycelium {self.url} was closed")
        con = self._con
        if con is None:
            con = self._con = self._connect()
        return con

    def _after_fork(self) -> None:
        _abandoned.append(self._con)
        self._con = None
        self._lock = threading.RLock()
        self._bell.after_fork()
        self._fork = _forks[0]

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
        except (OSError, sqlite3.Error) as exc:
            raise MyceliumError(f"cannot open the mycelium {self.url}: {exc}") from exc
        try:
            self._retry(lambda: self._configure(con))
            self._retry(lambda: self._check_schema(con))
        except BaseException:
            con.close()
            raise
        return con

    def _configure(self, con: sqlite3.Connection) -> None:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            if _busy(exc):
                raise
            raise MyceliumError(f"{self.path} is not an SQLite database: {exc}") from exc
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA temp_store = MEMORY")
        con.execute("PRAGMA cache_size = -65536")

    def _check_schema(self, con: sqlite3.Connection) -> None:
        found = self._schema_version(con)
        if found is None:
            con.execute("BEGIN IMMEDIATE")
            try:
                found = self._schema_version(con)
                if found is None:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            con.execute(statement)
                    con.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                    )
                    found = SCHEMA_VERSION
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        if found != SCHEMA_VERSION:
            raise MyceliumError(
                f"the mycelium {self.url} has schema version {found}, this elfc uses version "
                f"{SCHEMA_VERSION}: open it with the elfc release that wrote it, or point elfc at "
                "a new mycelium (another path); elfc never changes a mycelium of another version"
            )

    def _schema_version(self, con: sqlite3.Connection) -> int | None:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return None
        if "meta" not in tables:
            raise MyceliumError(
                f"{self.path} is an SQLite database but not an elfc mycelium; "
                "point elfc at another path"
            )
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        try:
            return int(row[0])
        except (TypeError, ValueError) as exc:
            raise MyceliumError(f"{self.path}: unreadable schema version {row!r}") from exc

    def _retry(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` until SQLite stops answering busy/locked (jittered backoff)."""
        deadline = time.monotonic() + PATIENCE
        delay = RETRY_FIRST
        while True:
            try:
                return attempt()
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                if not _busy(exc):
                    raise MyceliumError(f"mycelium {self.url}: {exc}") from exc
                if time.monotonic() > deadline:
                    raise MyceliumError(
                        f"the mycelium {self.url} stayed locked by another process for "
                        f"{PATIENCE:.0f} s"
                    ) from exc
            time.sleep(random.uniform(0.0, delay))
            delay = min(delay * 2, RETRY_MAX)

    def _read(self, body: Callable[[sqlite3.Connection], T], snapshot: bool = False) -> T:
        """Run ``body``'s queries; in one read transaction if ``snapshot``."""

        def attempt() -> T:
            con = self._connection()
            if not snapshot:
                return body(con)
            con.execute("BEGIN")
            try:
                return body(con)
            finally:
                if con.in_transaction:
                    con.execute("COMMIT")  # read-only: the same as a rollback

        self._guard()
        with self._lock:
            return self._retry(attempt)

    def _write(self, body: Callable[[_Txn], T]) -> T:
        """Run ``body`` in one write transaction, then ring the doorbells it asked for."""
        txn: _Txn

        def attempt() -> T:
            nonlocal txn
            con = self._connection()
            txn = _Txn(con, time.time())
            con.execute("BEGIN IMMEDIATE")
            try:
                out = body(txn)
                txn.flush()
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            return out

        self._guard()
        with self._lock:
            out = self._retry(attempt)
        for channel in txn.rings:
            self._bell.ring(channel)
        return out

    # -- revisions, elves, templates ---------------------------------------------------

    def put_revisions(self, records: Iterable[RevisionRecord]) -> None:
        rows = [
            (r.hash, r.kind, r.qualname, r.module, r.source, r.doc, r.signature) for r in records
        ]
        self._write(
            lambda t: t.con.executemany(
                "INSERT OR IGNORE INTO revisions (hash, kind, qualname, module, source, doc, "
                "signature) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        )

    def get_revision(self, hash_or_prefix: str) -> RevisionRecord | None:
        rows = self._read(
            lambda con: _by_prefix(
                con,
                "SELECT hash, kind, qualname, module, source, doc, signature FROM revisions "
                "WHERE hash >= ? AND hash < ? LIMIT 2",
                hash_or_prefix,
            )
        )
        row = _one(rows, hash_or_prefix, "revision")
        return None if row is None else RevisionRecord(*row)

    def put_elf(self, record: ElfRecord) -> None:
        self._write(
            lambda t: t.con.execute(
                "INSERT OR REPLACE INTO elves (name, cls, module, config, revision, doc, "
                "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.name,
                    record.cls,
                    record.module,
                    record.config,
                    record.revision,
                    record.doc,
                    t.now,
                ),
            )
        )

    def list_elves(self) -> list[ElfRecord]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT name, cls, module, config, revision, doc, last_seen FROM elves "
                "ORDER BY name"
            ).fetchall()
        )
        return [ElfRecord(*row) for row in rows]

    def put_template(self, revision: str, template_json: bytes) -> None:
        self._write(lambda t: _put_template(t.con, revision, template_json))

    def get_template(self, revision: str) -> bytes | None:
        row = self._read(
            lambda con: con.execute(
                "SELECT template FROM graphs WHERE revision = ?", (revision,)
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    # -- submitting ------------------------------------------------------------------

    def submit(self, built: BuiltRun, template_json: bytes | None = None) -> str:
        plan = _Submission(built)  # validated and encoded before the write lock is taken
        for _ in range(3):
            run_id, ids = secrets.token_hex(8), os.urandom(8 * len(built.jobs)).hex()
            try:
                return self._write(
                    functools.partial(self._insert_run, plan, template_json, run_id, ids)
                )
            except sqlite3.IntegrityError:
                continue  # a random id collided: draw new ones
        raise MyceliumError("could not draw unique run and job ids")

    def _insert_run(
        self, plan: _Submission, template_json: bytes | None, run_id: str, ids: str, t: _Txn
    ) -> str:
        built, con = plan.built, t.con
        if template_json is not None:
            _put_template(con, built.revision, template_json)
        first = con.execute("SELECT coalesce(max(no), 0) + 1 FROM jobs").fetchone()[0]
        run_no = con.execute(
            "INSERT INTO runs (id, pipeline, revision, arguments, output, status, total, "
            "created, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING no",
            (
                run_id,
                built.pipeline,
                built.revision,
                plan.arguments,
                plan.output,
                "running" if built.jobs else "succeeded",
                len(built.jobs),
                t.now,
                None if built.jobs else t.now,
            ),
        ).fetchone()[0]
        con.executemany(
            "INSERT INTO jobs (no, id, run_no, key, node, elf, task, revision, "
            "seq, status, waiting, dependents, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            plan.job_rows(first, run_no, ids, t.now),
        )
        con.executemany(
            "INSERT INTO job_payloads (job, args, kwargs, deps) VALUES (?, ?, ?, ?)",
            plan.payload_rows(first),
        )
        con.executemany("INSERT INTO edges (dep, dependent) VALUES (?, ?)", plan.edge_rows(first))
        con.executemany(
            "INSERT INTO run_counts (run_no, elf, status, n) VALUES (?, ?, ?, ?)",
            plan.count_rows(run_no),
        )
        t.rings.update(f"elf:{elf}" for elf in plan.ready_elves)
        if not built.jobs:
            t.rings.add("runs")
        return run_id

    # -- claiming and completing -----------------------------------------------------

    _CLAIM = (
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?, "
        "lease = ?, lease_until = ?, started = ?, history = " + _append_event("running") + " "
        "WHERE no IN (SELECT no FROM jobs WHERE elf = ? AND status = 'ready' "
        "AND not_before <= ? ORDER BY run_no, seq LIMIT ?) "
        "RETURNING run_no, seq, id, key, task, revision, no, attempts"
    )
    _PAYLOADS = "SELECT job, args, kwargs, deps FROM job_payloads WHERE job IN ({})"
    _EXPIRED_PROBE = "SELECT 1 FROM jobs WHERE status = 'running' AND lease_until < ? LIMIT 1"
    _PROBE = (
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE elf = ? AND status = 'ready' "
        "AND not_before <= ?), EXISTS (" + _EXPIRED_PROBE + ")"
    )

    def claim(self, elf: str, worker_id: str, lease: float, limit: int = 1) -> list[Claimed]:
        if limit <= 0:
            return []
        # A read-only probe first, so an idle claim never takes the write lock.
        now = time.time()
        if self._rung:
            # Just woken by this elf's bell: work is most likely there, so the probe would
            # only add a read before the write.
            self._rung = False
            expired = None
        else:
            ready, expired = self._read(
                lambda con: con.execute(self._PROBE, (elf, now, now)).fetchone()
            )
            if not (ready or expired):
                return []
            expired = bool(expired)
        return self._write(lambda t: self._claim(t, elf, worker_id, lease, limit, expired))

    def _claim(
        self,
        t: _Txn,
        elf: str,
        worker_id: str,
        lease: float,
        limit: int,
        expired: bool | None = None,
    ) -> list[Claimed]:
        if expired is None:
            expired = t.con.execute(self._EXPIRED_PROBE, (t.now,)).fetchone() is not None
        if expired:
            self._expire(t)
        rows = t.con.execute(
            self._CLAIM,
            (worker_id, lease, t.now + lease, t.now, t.now, worker_id, elf, t.now, limit),
        ).fetchall()
        rows.sort(key=lambda r: (r[0], r[1]))
        payloads = {
            no: (args, kwargs, deps)
            for no, args, kwargs, deps in t.con.execute(
                self._PAYLOADS.format(",".join("?" * len(rows))), [r[6] for r in rows]
            )
        }
        claimed = []
        for run_no, _seq, job_id, key, task, revision, no, attempts in rows:
            args, kwargs, deps = payloads[no]
            dep_keys = _decode_keys(deps)
            t.move(run_no, elf, "ready", "running")
            claimed.append(
                Claimed(
                    job_id,
                    self._run_id(t.con, run_no),
                    key,
                    elf,
                    task,
                    revision,
                    _decode_args(args),
                    _decode_kwargs(kwargs),
                    dep_keys,
                    attempts,
                    self._inputs(t.con, run_no, deps)
                    if 0 < len(dep_keys) <= INLINE_RESULTS
                    else None,
                )
            )
        return claimed

    _INPUTS = (
        "SELECT j.key, r.value FROM jobs j JOIN results r ON r.job = j.no "
        "WHERE j.run_no = ? AND j.key IN (SELECT value FROM json_each(?))"
    )

    def _inputs(self, con: sqlite3.Connection, run_no: int, deps: bytes) -> dict[str, bytes]:
        """The results a claimed job reads, fetched in the claiming transaction (saves the
        worker a read per job)."""
        return {k: bytes(v) for k, v in con.execute(self._INPUTS, (run_no, deps))}

    def _run_id(self, con: sqlite3.Connection, run_no: int) -> str:
        run_id = self._run_ids.get(run_no)
        if run_id is None:
            if len(self._run_ids) > 4096:
                self._run_ids.clear()
            run_id = con.execute("SELECT id FROM runs WHERE no = ?", (run_no,)).fetchone()[0]
            self._run_ids[run_no] = run_id
        return run_id

    def results(self, run_id: str, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = _encode(list(keys))
        rows = self._read(
            lambda con: con.execute(
                "SELECT j.key, r.value FROM jobs j JOIN results r ON r.job = j.no "
                "WHERE j.run_no = (SELECT no FROM runs WHERE id = ?) "
                "AND j.key IN (SELECT value FROM json_each(?))",
                (run_id, wanted),
            ).fetchall()
        )
        return {key: bytes(value) for key, value in rows}

    # A SELECT then an UPDATE by primary key: a single-row RETURNING costs more than both.
    _LEASED = (
        "SELECT no, run_no, elf, dependents FROM jobs "
        "WHERE id = ? AND status = 'running' AND lease_owner = ?"
    )
    _SUCCEED = (
        "UPDATE jobs SET status = 'succeeded', finished = ?, lease_until = NULL, history = "
        + _append_event("succeeded")
        + " WHERE no = ?"
    )
    _READY_DEPENDENTS = (
        "WITH hits (job, k) AS (SELECT dependent, count(*) FROM edges "
        "WHERE dep IN (SELECT value FROM json_each(?)) GROUP BY dependent) "
        "UPDATE jobs SET waiting = waiting - hits.k, "
        "status = CASE WHEN waiting = hits.k AND status = 'pending' THEN 'ready' ELSE status END, "
        "history = CASE WHEN waiting = hits.k AND status = 'pending' THEN "
        + _append_event("ready")
        + " ELSE history END "
        "FROM hits WHERE jobs.no = hits.job "
        "RETURNING run_no, elf, status, waiting"
    )

    def complete_many(self, worker_id: str, done: Sequence[tuple[str, bytes]]) -> list[bool]:
        if not done:
            return []
        return self._write(lambda t: self._complete(t, worker_id, done))

    def exchange(
        self,
        elf: str,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        lease: float,
        limit: int,
    ) -> tuple[list[bool], list[Claimed]]:
        if not done:
            return [], self.claim(elf, worker_id, lease, limit)

        def both(t: _Txn) -> tuple[list[bool], list[Claimed]]:
            accepted = self._complete(t, worker_id, done)
            return accepted, self._claim(t, elf, worker_id, lease, limit) if limit > 0 else []

        return self._write(both)

    def _complete(self, t: _Txn, worker_id: str, done: Sequence[tuple[str, bytes]]) -> list[bool]:
        con, now = t.con, t.now
        accepted = []
        upstream = []
        for job_id, result in done:
            row = con.execute(self._LEASED, (job_id, worker_id)).fetchone()
            accepted.append(row is not None)
            if row is None:
                continue
            job_no, run_no, elf, dependents = row
            con.execute(self._SUCCEED, (now, now, worker_id, job_no))
            con.execute("INSERT INTO results (job, value) VALUES (?, ?)", (job_no, result))
            t.move(run_no, elf, "running", "succeeded")
            if dependents:
                upstream.append(job_no)
        if upstream:
            for run_no, elf, status, waiting in con.execute(
                self._READY_DEPENDENTS, (_encode(upstream), now, "")
            ):
                if status == "ready" and waiting == 0:
                    t.move(run_no, elf, "pending", "ready")
                    t.rings.add(f"elf:{elf}")
        return accepted

    # -- failing, releasing, leases ------------------------------------------------------

    _HELD = (
        "SELECT j.no, j.run_no, j.elf, j.task, j.attempts, r.status FROM jobs j "
        "JOIN runs r ON r.no = j.run_no "
        "WHERE j.id = ? AND j.status = 'running' AND j.lease_owner = ?"
    )

    def fail(
        self,
        job_id: str,
        worker_id: str,
        failure: FailureRecord,
        retry_at: float | None = None,
    ) -> bool:
        def write(t: _Txn) -> bool:
            held = t.con.execute(self._HELD, (job_id, worker_id)).fetchone()
            if held is None:
                return False
            job_no, run_no, elf, task, attempts, _ = held
            self._record_failure(t, job_no, elf, task, attempts, failure)
            summary = f"{failure.error_type}: {failure.message}"
            if retry_at is not None:
                self._requeue(t, [held], f"retry at {retry_at:.3f} after {summary}", 0, retry_at)
                return True
            t.con.execute(
                "UPDATE jobs SET status = 'failed', finished = ?, lease_until = NULL, history = "
                + _append_event("failed")
                + " WHERE no = ?",
                (t.now, t.now, summary, job_no),
            )
            t.move(run_no, elf, "running", "failed")
            self._skip_dependents(t, job_no)
            return True

        return self._write(write)

    def _record_failure(
        self, t: _Txn, job_no: int, elf: str, task: str, attempt: int, failure: FailureRecord
    ) -> None:
        digest = revision_of(failure.error_type, failure.message, failure.traceback)
        t.con.execute(
            "INSERT INTO failures (hash, error_type, message, traceback, count, first_seen, "
            "last_seen, elf, task, revision) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?) "
            "ON CONFLICT (hash) DO UPDATE SET count = count + 1, last_seen = excluded.last_seen, "
            "revision = excluded.revision",
            (
                digest,
                failure.error_type,
                failure.message,
                failure.traceback,
                t.now,
                t.now,
                elf,
                task,
                failure.revision,
            ),
        )
        t.con.execute(
            "INSERT INTO job_failures (job, failure, time, attempt) VALUES (?, ?, ?, ?)",
            (job_no, digest, t.now, attempt),
        )

    def _skip_dependents(self, t: _Txn, job_no: int) -> None:
        key = t.con.execute("SELECT key FROM jobs WHERE no = ?", (job_no,)).fetchone()[0]
        rows = t.con.execute(
            "WITH RECURSIVE down (no) AS (SELECT dependent FROM edges WHERE dep = ? "
            "UNION SELECT e.dependent FROM edges e JOIN down d ON e.dep = d.no) "
            "UPDATE jobs SET status = 'skipped', finished = ?, history = "
            + _append_event("skipped")
            + " WHERE no IN (SELECT no FROM down) AND status = 'pending' RETURNING run_no, elf",
            (job_no, t.now, t.now, f"upstream {key} failed"),
        )
        for run_no, elf in rows:
            t.move(run_no, elf, "pending", "skipped")

    def _requeue(
        self,
        t: _Txn,
        held: Sequence[tuple[Any, ...]],
        note: str,
        attempts_delta: int,
        not_before: float | None = None,
    ) -> None:
        """Running jobs ``held`` (rows of ``_HELD``) go back to ready, or to cancelled when
        their run was cancelled."""
        for job_no, run_no, elf, _task, _attempts, run_status in held:
            status = "cancelled" if run_status == "cancelled" else "ready"
            t.con.execute(
                "UPDATE jobs SET status = ?, attempts = attempts + ?, "
                "not_before = coalesce(?, not_before), lease_until = NULL, finished = ?, "
                "history = json_insert(coalesce(history, '[]'), '$[#]', json_array(?, ?, ?)) "
                "WHERE no = ?",
                (
                    status,
                    attempts_delta,
                    not_before,
                    t.now if status == "cancelled" else None,
                    t.now,
                    status,
                    note,
                    job_no,
                ),
            )
            t.move(run_no, elf, "running", status)
            if status == "ready":
                t.rings.add(f"elf:{elf}")

    def release_many(self, job_ids: Iterable[str], worker_id: str) -> int:
        ids = list(job_ids)

        def write(t: _Txn) -> int:
            held = [
                row
                for job_id in ids
                if (row := t.con.execute(self._HELD, (job_id, worker_id)).fetchone()) is not None
            ]
            self._requeue(t, held, f"released by {worker_id}", -1)
            return len(held)

        return self._write(write) if ids else 0

    def expire_leases(self, now: float | None = None) -> int:
        return self._write(lambda t: self._expire(t, now))

    def _expire(self, t: _Txn, now: float | None = None) -> int:
        held = t.con.execute(
            "SELECT j.no, j.run_no, j.elf, j.task, j.attempts, r.status, j.lease_owner "
            "FROM jobs j JOIN runs r ON r.no = j.run_no "
            "WHERE j.status = 'running' AND j.lease_until < ?",
            (t.now if now is None else now,),
        ).fetchall()
        for row in held:
            self._requeue(t, [row[:6]], f"lease of {row[6]} expired", 0)
        return len(held)

    def heartbeat(self, worker: WorkerInfo, running: Iterable[str] = ()) -> set[str]:
        ids = list(running)

        def write(t: _Txn) -> set[str]:
            t.con.execute(
                "INSERT INTO workers (id, elf, host, pid, started, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET elf = excluded.elf, "
                "host = excluded.host, pid = excluded.pid, heartbeat = excluded.heartbeat",
                (worker.id, worker.elf, worker.host, worker.pid, worker.started, t.now),
            )
            if not ids:
                return set()
            kept = t.con.execute(
                "UPDATE jobs SET lease_until = ? + lease "
                "WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' "
                "AND lease_owner = ? RETURNING id, (SELECT status FROM runs WHERE no = run_no)",
                (t.now, _encode(ids), worker.id),
            ).fetchall()
            return set(ids) - {job_id for job_id, run_status in kept if run_status != "cancelled"}

        return self._write(write)

    def cancel_run(self, run_id: str) -> bool:
        def write(t: _Txn) -> bool:
            row = t.con.execute(
                "UPDATE runs SET status = 'cancelled' WHERE id = ? AND status = 'running' "
                "RETURNING no",
                (run_id,),
            ).fetchone()
            if row is None:
                return False
            for status in ("pending", "ready"):
                for (elf,) in t.con.execute(
                    "UPDATE jobs SET status = 'cancelled', finished = ?, history = "
                    + _append_event("cancelled")
                    + " WHERE run_no = ? AND status = ? RETURNING elf",
                    (t.now, t.now, "run cancelled", row[0], status),
                ):
                    t.move(row[0], elf, status, "cancelled")
            t.touched.add(row[0])
            t.rings.add("runs")
            return True

        return self._write(write)

    # -- reading -------------------------------------------------------------------

    _RUN_COLUMNS = (
        "SELECT no, id, pipeline, revision, arguments, status, created, finished, total, output "
        "FROM runs "
    )

    def run_info(self, run_id: str) -> RunInfo | None:
        def read(con: sqlite3.Connection) -> RunInfo | None:
            rows = _by_prefix(con, self._RUN_COLUMNS + "WHERE id >= ? AND id < ? LIMIT 2", run_id)
            row = _one(rows, run_id, "run", column=1)
            return None if row is None else _run_info(con, row)

        return self._read(read, snapshot=True)

    def run_status(self, run_id: str) -> str | None:
        row = self._read(
            lambda con: con.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        )
        return None if row is None else str(row[0])

    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        def read(con: sqlite3.Connection) -> list[RunInfo]:
            rows = con.execute(self._RUN_COLUMNS + "ORDER BY no DESC LIMIT ?", (limit,)).fetchall()
            return [_run_info(con, row) for row in rows]

        return self._read(read, snapshot=True)

    _JOB_COLUMNS = (
        "SELECT j.no, j.id, r.id, j.key, j.node, j.elf, j.task, j.revision, p.args, p.kwargs, "
        "p.deps, j.seq, j.status, j.waiting, j.attempts, j.not_before, j.lease_owner, "
        "j.lease_until, j.created, j.started, j.finished, j.history, "
        "(SELECT failure FROM job_failures WHERE job = j.no ORDER BY rowid DESC LIMIT 1) "
        "FROM jobs j JOIN runs r ON r.no = j.run_no JOIN job_payloads p ON p.job = j.no "
    )

    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobInfo]:
        def read(con: sqlite3.Connection) -> list[JobInfo]:
            runs = _by_prefix(con, "SELECT id FROM runs WHERE id >= ? AND id < ? LIMIT 2", run_id)
            run = _one(runs, run_id, "run")
            if run is None:
                return []
            rows = con.execute(
                self._JOB_COLUMNS + "WHERE r.id = ? AND (? IS NULL OR j.status = ?) ORDER BY j.seq",
                (run[0], status, status),
            ).fetchall()
            return _job_infos(con, rows, with_results=False)

        return self._read(read, snapshot=True)

    def get_job(self, job_id: str) -> JobInfo | None:
        def read(con: sqlite3.Connection) -> JobInfo | None:
            rows = _by_prefix(
                con, self._JOB_COLUMNS + "WHERE j.id >= ? AND j.id < ? LIMIT 2", job_id
            )
            row = _one(rows, job_id, "job", column=1)
            return None if row is None else _job_infos(con, [row], with_results=True)[0]

        return self._read(read, snapshot=True)

    _FAILURE_COLUMNS = (
        "SELECT hash, error_type, message, traceback, count, first_seen, last_seen, elf, task, "
        "revision FROM failures "
    )

    def list_failures(self, limit: int = 20) -> list[FailureInfo]:
        rows = self._read(
            lambda con: con.execute(
                self._FAILURE_COLUMNS + "ORDER BY last_seen DESC LIMIT ?", (limit,)
            ).fetchall()
        )
        return [FailureInfo(*row) for row in rows]

    def list_workers(self) -> list[WorkerInfo]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT id, elf, host, pid, started, heartbeat FROM workers ORDER BY heartbeat DESC"
            ).fetchall()
        )
        return [WorkerInfo(*row) for row in rows]

    # -- waiting ---------------------------------------------------------------------

    def wait_for_work(self, elf: str, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        self._guard()
        bell, fresh = self._bell.listen(f"elf:{elf}")
        if fresh:
            return  # work readied before we listened rang no bell
        due = self._read(
            lambda con: con.execute(
                "SELECT (SELECT min(not_before) FROM jobs WHERE elf = ? AND status = 'ready'), "
                "(SELECT min(lease_until) FROM jobs WHERE status = 'running' AND elf = ?)",
                (elf, elf),
            ).fetchone()
        )
        for at in due:
            if at is not None:
                deadline = min(deadline, time.monotonic() + max(0.0, at - time.time()) + 0.001)
        self._sleep(bell, deadline)

    def wait_for_run(self, run_id: str, timeout: float) -> str | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        self._guard()
        bell, _ = self._bell.listen("runs")
        while True:
            status = self.run_status(run_id)
            if status is None or status in FINAL_RUN_STATUSES or time.monotonic() >= deadline:
                return status
            self._sleep(bell, deadline)

    def _data_version(self) -> int:
        return int(self._read(lambda con: con.execute("PRAGMA data_version").fetchone()[0]))

    def _sleep(self, bell: _Listener | None, deadline: float) -> None:
        """Until the bell rings, another process commits (polled), or ``deadline``."""
        version = self._data_version()
        pause = FALLBACK_POLL if bell is not None else 0.0002
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if bell is not None:
                if bell.wait(min(left, pause)):
                    self._rung = True
                    return
            else:
                time.sleep(min(left, pause))
                pause = min(pause * 1.5, 0.02)
            if self._data_version() != version:
                return


class _Txn:
    """One write transaction: its connection and clock, the job status moves to add to the
    run counters, and the doorbells to ring once it commits."""

    __slots__ = ("con", "moves", "now", "rings", "touched")

    _MOVE = (
        "UPDATE run_counts SET n = n + (CASE status WHEN ? THEN ? ELSE -? END) "
        "WHERE run_no = ? AND elf = ? AND status IN (?, ?)"
    )
    _ACTIVE = (
        "SELECT coalesce(sum(n), 0) FROM run_counts "
        "WHERE run_no = ? AND status IN ('pending', 'ready')"
    )
    _SETTLE = (
        "UPDATE runs SET finished = ?, status = CASE WHEN status != 'running' THEN status "
        "WHEN EXISTS (SELECT 1 FROM run_counts WHERE run_no = ? AND status = 'failed' AND n > 0) "
        "THEN 'failed' ELSE 'succeeded' END "
        "WHERE no = ? AND finished IS NULL"
    )

    def __init__(self, con: sqlite3.Connection, now: float) -> None:
        self.con = con
        self.now = now
        self.moves: Counter[tuple[int, str, str, str]] = Counter()
        self.rings: set[str] = set()
        self.touched: set[int] = set()

    def move(self, run_no: int, elf: str, old: str, new: str) -> None:
        # run_counts keeps running jobs in the ready bucket, so that claims, releases and
        # expiries leave it alone; readers count running jobs from their (small) index.
        old, new = _BUCKET.get(old, old), _BUCKET.get(new, new)
        if old != new:
            self.moves[run_no, elf, old, new] += 1

    def flush(self) -> None:
        """Apply the counted moves; settle every run that may have no active job left."""
        if self.moves:
            rows = [(new, k, k, r, elf, old, new) for (r, elf, old, new), k in self.moves.items()]
            if len(rows) == 1:
                self.con.execute(self._MOVE, rows[0])
            else:
                self.con.executemany(self._MOVE, rows)
            self.touched.update(r for (r, _, _, new) in self.moves if new in FINAL_JOB_STATUSES)
        for run_no in self.touched:
            if self.con.execute(self._ACTIVE, (run_no,)).fetchone()[0]:
                continue
            if self.con.execute(self._SETTLE, (self.now, run_no, run_no)).rowcount:
                self.rings.add("runs")


class _Submission:
    """A run checked and encoded for :meth:`SQLiteMycelium.submit`; yields its rows."""

    def __init__(self, built: BuiltRun) -> None:
        self.built = built
        jobs = built.jobs
        self.position = {job.key: i for i, job in enumerate(jobs)}
        if len(self.position) != len(jobs):
            raise MyceliumError(f"run of {built.pipeline} has duplicate job keys")
        self.deps = [tuple(dict.fromkeys(job.deps)) for job in jobs]
        for job, deps in zip(jobs, self.deps, strict=True):
            for dep in deps:
                if dep not in self.position:
                    raise MyceliumError(f"job {job.key} depends on {dep!r}, not a job of the run")
        try:
            self.encoded = [
                (_encode(job.args), _encode(job.kwargs), _encode(deps))
                for job, deps in zip(jobs, self.deps, strict=True)
            ]
            self.arguments, self.output = _encode(built.arguments), _encode(built.output)
        except (TypeError, msgspec.EncodeError) as exc:
            raise MyceliumError(f"run of {built.pipeline} is not JSON-encodable: {exc}") from exc
        self.fan = Counter(dep for deps in self.deps for dep in deps)
        self.counts = Counter(
            (job.elf, "pending" if deps else "ready")
            for job, deps in zip(jobs, self.deps, strict=True)
        )
        self.ready_elves = {elf for elf, status in self.counts if status == "ready"}

    def job_rows(self, first: int, run_no: int, ids: str, now: float) -> Iterator[tuple[Any, ...]]:
        for i, (job, deps) in enumerate(zip(self.built.jobs, self.deps, strict=True)):
            yield (
                first + i,
                ids[16 * i : 16 * i + 16],
                run_no,
                job.key,
                job.node,
                job.elf,
                job.task,
                job.revision,
                job.seq,
                "pending" if deps else "ready",
                len(deps),
                self.fan[job.key],
                now,
            )

    def payload_rows(self, first: int) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        for i, (args, kwargs, dep_keys) in enumerate(self.encoded):
            yield first + i, args, kwargs, dep_keys

    def edge_rows(self, first: int) -> Iterator[tuple[int, int]]:
        position = self.position
        for i, deps in enumerate(self.deps):
            for dep in deps:
                yield first + position[dep], first + i

    def count_rows(self, run_no: int) -> Iterator[tuple[int, str, str, int]]:
        for elf in sorted({elf for elf, _ in self.counts}):
            for status in _COUNTED_STATUSES:
                yield run_no, elf, status, self.counts[elf, status]


# -- helpers ---------------------------------------------------------------------------


def _busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _put_template(con: sqlite3.Connection, revision: str, template_json: bytes) -> None:
    con.execute(
        "INSERT OR IGNORE INTO graphs (revision, template) VALUES (?, ?)", (revision, template_json)
    )


def _by_prefix(con: sqlite3.Connection, sql: str, prefix: str) -> list[tuple[Any, ...]]:
    """Rows whose id lies in ``[prefix, prefix-with-last-char-bumped)``: ``sql`` takes both."""
    if not prefix or ord(prefix[-1]) >= 0x10FFFF:
        return []
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return con.execute(sql, (prefix, upper)).fetchall()


def _one(
    rows: list[tuple[Any, ...]], wanted: str, what: str, column: int = 0
) -> tuple[Any, ...] | None:
    """The row matching ``wanted`` exactly, else the only row; ambiguity is an error."""
    for row in rows:
        if row[column] == wanted:
            return row
    if len(rows) > 1:
        raise MyceliumError(f"{what} prefix {wanted!r} is ambiguous: give more characters")
    return rows[0] if rows else None


def _run_info(con: sqlite3.Connection, row: tuple[Any, ...]) -> RunInfo:
    no, run_id, pipeline, revision, arguments, status, created, finished, total, output = row
    counts: dict[str, int] = dict.fromkeys(JOB_STATUSES, 0)
    elf_counts: dict[str, dict[str, int]] = {}
    for elf, job_status, n in con.execute(
        "SELECT elf, status, n FROM run_counts WHERE run_no = ?", (no,)
    ):
        counts[job_status] += n
        elf_counts.setdefault(elf, dict.fromkeys(JOB_STATUSES, 0))[job_status] = n
    for elf, n in con.execute(
        "SELECT elf, count(*) FROM jobs INDEXED BY jobs_running "
        "WHERE status = 'running' AND run_no = ? GROUP BY elf",
        (no,),
    ):
        counts["running"] += n
        counts["ready"] -= n
        elf_counts[elf]["running"] = n
        elf_counts[elf]["ready"] -= n
    error = None
    if status == "failed":
        error = f"{counts['failed']} job(s) failed, {counts['skipped']} skipped"
    elif status == "cancelled":
        error = "cancelled"
    return RunInfo(
        run_id,
        pipeline,
        revision,
        _decode_kwargs(arguments),
        status,
        created,
        finished,
        total,
        counts,
        elf_counts,
        _decode_any(output),
        error,
    )


def _job_infos(
    con: sqlite3.Connection, rows: list[tuple[Any, ...]], with_results: bool
) -> list[JobInfo]:
    hashes = {row[-1] for row in rows if row[-1] is not None}
    failures = {}
    if hashes:
        for frow in con.execute(
            SQLiteMycelium._FAILURE_COLUMNS + "WHERE hash IN (SELECT value FROM json_each(?))",
            (_encode(sorted(hashes)),),
        ):
            failures[frow[0]] = FailureInfo(*frow)
    out = []
    for row in rows:
        (no, job_id, run_id, key, node, elf, task, revision, args, kwargs, deps, seq, status,
         waiting, attempts, not_before, lease_owner, lease_until, created, started, finished,
         history, failure) = row  # fmt: skip
        dep_keys = _decode_keys(deps)
        first = Event(created, "pending" if dep_keys else "ready", "submitted")
        result = None
        if with_results:
            found = con.execute("SELECT value FROM results WHERE job = ?", (no,)).fetchone()
            result = None if found is None else bytes(found[0])
        out.append(
            JobInfo(
                job_id,
                run_id,
                key,
                node,
                elf,
                task,
                revision,
                _decode_args(args),
                _decode_kwargs(kwargs),
                dep_keys,
                seq,
                status,
                waiting,
                attempts,
                not_before,
                lease_owner,
                lease_until,
                created,
                started,
                finished,
                result,
                failures.get(failure),
                (first, *_decode_history(history or "[]")),
            )
        )
    return out


# -- doorbells -------------------------------------------------------------------------


class _Listener:
    """One bound datagram socket: a waiter's end of a doorbell."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock = sock
        self.path = path
        self.poll = select.poll()
        self.poll.register(sock, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """True if the bell rang (and drain every pending ring) within ``timeout`` seconds."""
        if not self.poll.poll(max(timeout, 0.0) * 1000):
            return False
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(16)
        return True


_bound: dict[str, int] = {}
"""Socket paths bound by this process (by pid, so a forked child leaves its parent's alone)."""


@atexit.register
def _unlink_bound() -> None:
    for path, pid in list(_bound.items()):
        if pid == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(path)


class _Doorbell:
    """Wake-up calls between the processes of one database file.

    Each waiter binds a unix datagram socket in a folder per channel (``elf:<name>`` or
    ``runs``); ringing sends an empty datagram to every socket in the folder. The folder lives
    next to the database (``<db>-bells/``), or under the temp directory when that path is too
    long for a socket address. Rings carry no data, so a forged ring only causes a spurious
    wake-up. Stale sockets of dead processes are removed by the next ring.
    """

    def __init__(self, db_path: Path) -> None:
        base = Path(f"{db_path}-bells")
        if len(str(base)) > 72 and hasattr(os, "getuid"):
            base = Path(tempfile.gettempdir(), f"elfc-{os.getuid()}", revision_of(str(db_path)))
        self.base = base
        self.usable = hasattr(socket, "AF_UNIX") and len(str(base)) <= 72
        self._listeners: dict[str, _Listener] = {}
        self._sender: socket.socket | None = None
        self._folders: dict[str, Path] = {}

    def _folder(self, channel: str) -> Path:
        folder = self._folders.get(channel)
        if folder is None:
            folder = self._folders[channel] = self.base / revision_of(channel)[:12]
        return folder

    def ring(self, channel: str) -> None:
        if not self.usable:
            return
        folder = self._folder(channel)
        try:
            names = os.listdir(folder)
        except OSError:
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for name in names:
            path = os.path.join(folder, name)
            try:
                self._sender.sendto(b"", socket.MSG_DONTWAIT, path)
            except BlockingIOError:
                pass  # its queue is full: it will wake anyway
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # its process is gone
            except OSError:
                pass

    def listen(self, channel: str) -> tuple[_Listener | None, bool]:
        """This process's socket for ``channel`` (bound on first use: then ``fresh``)."""
        listener = self._listeners.get(channel)
        if listener is not None:
            return listener, False
        if not self.usable:
            return None, False
        folder = self._folder(channel)
        path = str(folder / f"{os.getpid()}.{secrets.token_hex(3)}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._make_folder(folder)
            sock.bind(path)
            sock.setblocking(False)
        except OSError:
            sock.close()
            self.usable = False  # e.g. a read-only folder: poll instead
            return None, True
        listener = self._listeners[channel] = _Listener(sock, path)
        _bound[path] = os.getpid()
        return listener, True

    def _make_folder(self, folder: Path) -> None:
        if not self.base.exists() and self.base.parent.name.startswith("elfc-"):
            # A private folder under the shared temp directory: it must be ours.
            self.base.parent.mkdir(mode=0o700, exist_ok=True)
            info = os.lstat(self.base.parent)
            if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode):
                raise PermissionError(f"{self.base.parent} is not a private folder")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def close(self) -> None:
        for listener in self._listeners.values():
            listener.sock.close()
            _bound.pop(listener.path, None)
            with contextlib.suppress(OSError):
                os.unlink(listener.path)
        self._listeners.clear()
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def after_fork(self) -> None:
        """In a child: the parent's sockets stay the parent's (not closed, not unlinked)."""
        _abandoned.extend(self._listeners.values())
        _abandoned.append(self._sender)
        self._listeners = {}
        self._sender = None
