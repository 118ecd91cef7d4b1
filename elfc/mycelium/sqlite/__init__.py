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
  to the database: ``doorbell.py``) that writers ring after committing work for their elf;
  ``PRAGMA data_version`` polling is the fallback when a doorbell cannot be used.

One connection per process and instance (reopened after ``fork``), used under a lock so a
heartbeat thread may share it; writes are ``BEGIN IMMEDIATE`` transactions retried with
jittered backoff, because SQLite's own busy handler sleeps in coarse, unfair steps.

The tables are in ``schema.sql``; the rules this backend shares with the others (submission
checks, run summaries, id prefixes, failure digests) in ``elfc.mycelium.common``.
"""

from __future__ import annotations

import functools
import operator
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

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
    JobsBucket,
    JobSpan,
    LogRecord,
    RevisionRecord,
    RunInfo,
    WorkerInfo,
)
from elfc.model.status import (
    ACTIVE_JOB_STATUSES,
    FINAL_JOB_STATUSES,
    FINAL_RUN_STATUSES,
    JOB_STATUS_SEVERITY,
    JOB_STATUSES,
)
from elfc.mycelium.common import (
    FORKS,
    MAX_LOST_LEASES,
    PATIENCE,
    Expansion,
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
from elfc.mycelium.sqlite.checkpoint import Checkpointer
from elfc.mycelium.sqlite.doorbell import Doorbell, Listener
from elfc.mycelium.store import Store

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]

T = TypeVar("T")

SCHEMA_VERSION = 6
"""Bump on any change to ``schema.sql``, with the migration from the previous version in
:data:`MIGRATIONS`; a database of an older version is migrated when opened, one of a newer or
unknown version refused."""

_CACHE_INDEX = (
    "CREATE INDEX jobs_by_cache_key ON jobs (cache_key, finished) "
    "WHERE status = 'succeeded' AND cache_key IS NOT NULL"
)
_CACHED_INDEX = "CREATE INDEX jobs_cached ON jobs (run_no) WHERE cached_from IS NOT NULL"

MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 3 -> 4: per-job task output (`elfc logs`).
    3: (
        "CREATE TABLE logs (job INTEGER NOT NULL, attempt INTEGER NOT NULL, "
        "run_no INTEGER NOT NULL, time REAL NOT NULL, text TEXT NOT NULL, "
        "truncated INTEGER NOT NULL)",
        "CREATE INDEX logs_by_run ON logs (run_no, time)",
    ),
    # 4 -> 5: a run's own failure (its value refused by the return annotation).
    4: (
        "ALTER TABLE runs ADD COLUMN error_type TEXT",
        "ALTER TABLE runs ADD COLUMN error_message TEXT",
        "ALTER TABLE runs ADD COLUMN error_time REAL",
    ),
    # 5 -> 6: caching by input (`@task(cache=True)`, `elfc run --reuse`).
    5: (
        "ALTER TABLE jobs ADD COLUMN reuse INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN cache_key TEXT",
        "ALTER TABLE jobs ADD COLUMN cached_from TEXT",
        _CACHE_INDEX,
        _CACHED_INDEX,
    ),
}
"""Schema version -> the statements that make it the next version, run in one transaction."""

RETRY_FIRST, RETRY_MAX = 0.0001, 0.001
"""Jittered retry delays on a busy database, in seconds: transactions here hold the lock for
well under a millisecond, so a longer sleep only leaves the lock idle."""
BUSY_TIMEOUT_MS = 0
"""SQLite's own busy wait. None: its handler sleeps 1, 2, 5, 10... ms and lets a process starve
while others take the lock; ``_retry`` retries from 0.1 ms with jitter instead (measured: it
beats a 5 ms busy timeout with two writers)."""
INLINE_RESULTS = 64
"""A claim carries the results its jobs read when there are at most this many (a reduce over
thousands fetches them itself, outside the write lock)."""
EMPTY_GRACE = 5.0
"""Seconds during which a 0-byte mycelium file is taken for one another process is creating
(SQLite creates the file empty, then writes it)."""
FALLBACK_POLL = 0.1
"""How often a waiter with a doorbell still checks ``PRAGMA data_version``, in seconds."""

_BUCKET = {"running": "ready"}
_COUNTED_STATUSES = tuple(s for s in JOB_STATUSES if s not in _BUCKET)

_encode = msgspec.json.Encoder().encode
_decode_history = msgspec.json.Decoder(tuple[Event, ...]).decode


def _append_event(status: str, time: str = "?", note: str = "?") -> str:
    """SQL that appends ``[time, status, note]`` to a job's history: ``time`` and ``note`` are
    parameters (``?`` by default, the next two), ``status`` a literal from this module, never a
    value."""
    if status not in JOB_STATUSES:
        raise ValueError(status)
    return f"json_insert(coalesce(history, '[]'), '$[#]', json_array({time}, '{status}', {note}))"


def _lower_waiting(hits: str) -> str:
    """The update that lowers the waiting counter of each job that ``hits`` (a query of
    ``(job, k)`` rows) names by ``k``, making it ``ready`` at 0 (with its history event)."""
    return (
        f"WITH hits (job, k) AS ({hits}) "
        "UPDATE jobs SET waiting = waiting - hits.k, "
        "status = CASE WHEN waiting = hits.k AND status = 'pending' THEN 'ready' ELSE status END, "
        "history = CASE WHEN waiting = hits.k AND status = 'pending' THEN "
        + _append_event("ready")
        + " ELSE history END "
        "FROM hits WHERE jobs.no = hits.job "
        "RETURNING run_no, elf, status, waiting"
    )


class SQLiteStore(Store):
    """The mycelium in one SQLite file: ``SQLiteStore(".elfc/mycelium.db")``."""

    schemes = ("sqlite",)
    supports_doorbell = True
    supports_batches = True

    def __init__(self, path: str | os.PathLike[str], *, url: str | None = None) -> None:
        self.path = Path(path).absolute()
        self.url = url or f"sqlite:///{self.path}"
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None
        self._fork = FORKS[0]
        self._closed = False
        self._bell = Doorbell(self.path)
        self._checkpoints = Checkpointer(self.path)
        self._run_ids: dict[int, str] = {}
        self._rung = False
        """A bell woke ``wait_for_work``: the next claim skips its read-only probe."""
        self._staged: list[LogRecord] = []
        """Task output that the next write transaction stores (``stage_logs``)."""
        self._connection()  # fail early on a bad path or another schema

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
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
            if self._con is not None and self._fork == FORKS[0]:
                self._con.close()
            self._con = None
            self._bell.close()
            self._checkpoints.close()

    # -- connection and transactions ---------------------------------------------------

    def _guard(self) -> None:
        """Forget what a parent process left us: its connection, lock state and sockets."""
        if self._fork != FORKS[0]:
            self._after_fork()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise closed_error(self.url)
        con = self._con
        if con is None:
            con = self._con = self._connect()
        return con

    def _after_fork(self) -> None:
        abandon(self._con)
        self._con = None
        self._lock = threading.RLock()
        self._bell.after_fork()
        self._checkpoints = Checkpointer(self.path)  # the parent's thread is not here
        self._fork = FORKS[0]

    def _connect(self) -> sqlite3.Connection:
        self._refuse_empty_file()
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

    def _refuse_empty_file(self) -> None:
        """A mycelium file of 0 bytes, without a write-ahead log and not just created by
        another process, was truncated (a full disk, a failed copy) or is not a mycelium:
        SQLite would quietly make a new, empty mycelium of it. Refused instead."""
        try:
            st = self.path.stat()
        except OSError:
            return  # missing (created now) or unreadable (sqlite3.connect says why)
        wal = self.path.with_name(self.path.name + "-wal")
        if st.st_size == 0 and not wal.exists() and time.time() - st.st_mtime > EMPTY_GRACE:
            raise MyceliumError(
                f"the mycelium file {self.path} is empty (0 bytes): it was truncated (a full "
                f"disk, an interrupted copy) or is not a mycelium. elfc does not replace it: "
                f"delete it to start a new mycelium there, or point elfc at another path"
            )

    def _configure(self, con: sqlite3.Connection) -> None:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as exc:
            if _busy(exc):
                raise
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise MyceliumError(f"{self.path} is not an SQLite database: {exc}") from exc
            raise MyceliumError(
                f"cannot open the mycelium {self.url} for writing ({exc}): check that its "
                f"file system is writable and has free space"
            ) from exc
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoint.py runs them instead
        con.execute("PRAGMA temp_store = MEMORY")
        con.execute("PRAGMA cache_size = -65536")

    def _check_schema(self, con: sqlite3.Connection) -> None:
        found = self._schema_version(con)
        if found is None:
            con.execute("BEGIN IMMEDIATE")
            try:
                found = self._schema_version(con)
                if found is None:
                    # Not executescript(): it would commit this transaction first.
                    for statement in _schema().split(";"):
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
        if isinstance(found, int) and found < SCHEMA_VERSION and found in MIGRATIONS:
            found = self._migrate(con)
        if found != SCHEMA_VERSION:
            raise schema_mismatch(self.url, found, SCHEMA_VERSION, "another path")

    def _migrate(self, con: sqlite3.Connection) -> int | None:
        """Bring an older schema to this one, a version per step, all in one transaction (a
        process opening it at the same time waits, then finds it migrated)."""
        con.execute("BEGIN IMMEDIATE")
        try:
            found = self._schema_version(con)
            while found is not None and found < SCHEMA_VERSION and found in MIGRATIONS:
                for statement in MIGRATIONS[found]:
                    con.execute(statement)
                found += 1
                con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(found),))
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return found

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
        """Run ``attempt`` until SQLite stops answering busy/locked (jittered backoff). An
        ``IntegrityError`` propagates as it is (``submit`` draws new ids on one); any other
        SQLite error becomes a :class:`MyceliumError`."""
        try:
            return retry(attempt, _busy, self._locked, RETRY_FIRST, RETRY_MAX, PATIENCE)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise MyceliumError(f"mycelium {self.url}: {exc}") from exc

    def _locked(self, exc: Exception) -> MyceliumError:
        return MyceliumError(
            f"the mycelium {self.url} stayed locked by another process for {PATIENCE:.0f} s"
        )

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
                if staged:
                    _insert_logs(txn, staged)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
            return out

        self._guard()
        with self._lock:
            staged = self._staged
            out = self._retry(attempt)
            self._staged = [] if staged is self._staged else self._staged[len(staged) :]
            self._checkpoints.committed()
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
        sql = (
            "SELECT hash, kind, qualname, module, source, doc, signature FROM revisions "
            "WHERE hash >= ? AND hash < ? LIMIT 2"
        )
        row = self._read(lambda con: _by_prefix(con, sql, hash_or_prefix, "revision"))
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
        return None if row is None else _blob(row[0])

    # -- submitting ------------------------------------------------------------------

    def submit(self, built: BuiltRun, template_json: bytes | None = None) -> str:
        plan = _Rows(built)  # validated and encoded before the write lock is taken
        for _ in range(3):
            run_id, ids = new_ids(len(built.jobs))
            try:
                return self._write(
                    functools.partial(self._insert_run, plan, template_json, run_id, ids)
                )
            except sqlite3.IntegrityError:
                continue  # a random id collided: draw new ones
        raise MyceliumError("could not draw unique run and job ids")

    def _insert_run(
        self, plan: _Rows, template_json: bytes | None, run_id: str, ids: list[str], t: _Txn
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
                plan.run_status,
                len(built.jobs),
                t.now,
                None if built.jobs else t.now,
            ),
        ).fetchone()[0]
        con.executemany(
            "INSERT INTO jobs (no, id, run_no, key, node, elf, task, revision, "
            "seq, status, waiting, dependents, created, reuse) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        "RETURNING run_no, seq, id, key, task, revision, no, attempts, reuse"
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
        decoded = []
        for run_no, _seq, job_id, key, task, revision, no, attempts, reuse in rows:
            t.move(run_no, elf, "ready", "running")
            try:
                if no not in payloads:
                    raise Undecodable("its payload row is missing")
                args, kwargs, dep_keys = decode_payload(*payloads[no])
            except Undecodable as exc:
                # Quarantined: failed here, so it neither kills a worker nor blocks the queue.
                failure = undecodable_failure(job_id, revision, exc)
                self._fail_held(t, no, run_no, elf, task, attempts, failure)
                continue
            decoded.append(
                (run_no, job_id, key, task, revision, attempts, reuse, args, kwargs, dep_keys)
            )
        inputs = self._inputs(t.con, [(d[0], d[-1]) for d in decoded])
        for run_no, job_id, key, task, revision, attempts, reuse, args, kwargs, dep_keys in decoded:
            found = inputs.get(run_no) if 0 < len(dep_keys) <= INLINE_RESULTS else None
            claimed.append(
                Claimed(
                    job_id,
                    self._run_id(t.con, run_no),
                    key,
                    elf,
                    task,
                    revision,
                    args,
                    kwargs,
                    dep_keys,
                    attempts,
                    None if found is None else {k: found[k] for k in dep_keys if k in found},
                    bool(reuse),
                )
            )
        return claimed

    _INPUTS = (
        "SELECT j.key, r.value FROM jobs j JOIN results r ON r.job = j.no "
        "WHERE j.run_no = ? AND j.key IN (SELECT value FROM json_each(?))"
    )

    def _inputs(
        self, con: sqlite3.Connection, jobs: Sequence[tuple[int, tuple[str, ...]]]
    ) -> dict[int, dict[str, bytes]]:
        """The results claimed jobs read, fetched in the claiming transaction (saves the
        worker a read per job): per run, one query for the keys its jobs of ``jobs`` (run,
        dependency keys) read, for the jobs that read at most :data:`INLINE_RESULTS`. A run
        absent from the answer has no job that gets its results with the claim."""
        wanted: dict[int, set[str]] = {}
        for run_no, keys in jobs:
            if 0 < len(keys) <= INLINE_RESULTS:
                wanted.setdefault(run_no, set()).update(keys)
        return {
            run_no: {
                k: _blob(v) for k, v in con.execute(self._INPUTS, (run_no, _encode(sorted(keys))))
            }
            for run_no, keys in wanted.items()
        }

    def _run_id(self, con: sqlite3.Connection, run_no: int) -> str:
        run_id = self._run_ids.get(run_no)
        if run_id is None:
            if len(self._run_ids) > 4096:
                self._run_ids.clear()
            run_id = con.execute("SELECT id FROM runs WHERE no = ?", (run_no,)).fetchone()[0]
            self._run_ids[run_no] = run_id
        return run_id

    def cached_result(self, key: str) -> tuple[str, bytes] | None:
        row = self._read(lambda con: con.execute(self._CACHED_RESULT, (key,)).fetchone())
        return None if row is None else (str(row[0]), _blob(row[1]))

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
        return {key: _blob(value) for key, value in rows}

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
    _SUCCEED_HELD = (
        "UPDATE jobs SET status = 'succeeded', finished = ?1, lease_until = NULL, history = "
        + _append_event("succeeded", "?1", "?2")
        + " WHERE id IN (SELECT value FROM json_each(?3)) AND status = 'running' "
        "AND lease_owner = ?2 RETURNING id, no, run_no, elf, dependents"
    )
    _SUCCEED_KEYED = (
        "UPDATE jobs SET status = 'succeeded', finished = ?, lease_until = NULL, history = "
        + _append_event("succeeded")
        + ", cache_key = ?, cached_from = ? WHERE no = ?"
    )
    _CACHED_RESULT = (
        "SELECT j.id, r.value FROM jobs j INDEXED BY jobs_by_cache_key "
        "JOIN results r ON r.job = j.no "
        "WHERE j.cache_key = ? AND j.status = 'succeeded' ORDER BY j.finished DESC LIMIT 1"
    )
    _READY_DEPENDENTS = _lower_waiting(
        "SELECT dependent, count(*) FROM edges "
        "WHERE dep IN (SELECT value FROM json_each(?)) GROUP BY dependent"
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
        return self._write(lambda t: self._complete(t, worker_id, done, keys, reused))

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

        return self._write(both)

    def _complete(
        self,
        t: _Txn,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        keys: Mapping[str, str] | None = None,
        reused: Mapping[str, str] | None = None,
    ) -> list[bool]:
        con, now = t.con, t.now
        keys, reused = keys or {}, reused or {}
        plain = [job_id for job_id, _ in done if job_id not in keys and job_id not in reused]
        held: dict[str, tuple[int, int, str, int]] = {}
        if plain:
            # One statement for the batch: the lease check and the status change of every job
            # the worker still holds (one SELECT and one UPDATE per job cost twice as much).
            held = {
                job_id: rest
                for job_id, *rest in con.execute(
                    self._SUCCEED_HELD, (now, worker_id, _encode(plain))
                )
            }
        accepted = []
        upstream = []
        stored = []
        for job_id, result in done:
            row = held.get(job_id)
            if row is None and (job_id in keys or job_id in reused):
                row = con.execute(self._LEASED, (job_id, worker_id)).fetchone()
                if row is not None:
                    key, source = keys.get(job_id), reused.get(job_id)
                    note = worker_id if source is None else cached_note(source)
                    con.execute(self._SUCCEED_KEYED, (now, now, note, key, source, row[0]))
            accepted.append(row is not None)
            if row is None:
                continue
            job_no, run_no, elf, dependents = row
            stored.append((job_no, result))
            t.move(run_no, elf, "running", "succeeded")
            if dependents:
                upstream.append(job_no)
        if stored:
            con.executemany("INSERT OR REPLACE INTO results (job, value) VALUES (?, ?)", stored)
        if upstream:
            t.readied(con.execute(self._READY_DEPENDENTS, (_encode(upstream), now, "")))
        return accepted

    # -- expanding regions ------------------------------------------------------------------

    def expand(self, job_id: str, worker_id: str, expansion: Expansion) -> bool:
        for _ in range(3):
            ids = new_ids(len(expansion.jobs) + len(expansion.not_taken))[1]
            try:
                return self._write(
                    functools.partial(
                        self._expand, job_id=job_id, worker_id=worker_id, plan=expansion, ids=ids
                    )
                )
            except sqlite3.IntegrityError:
                continue  # a random id collided: draw new ones
        raise MyceliumError("could not draw unique job ids")

    def _expand(
        self, t: _Txn, *, job_id: str, worker_id: str, plan: Expansion, ids: list[str]
    ) -> bool:
        con, now = t.con, t.now
        held = con.execute(self._HELD, (job_id, worker_id)).fetchone()
        if held is None:
            return False
        job_no, run_no, elf, _task, _attempts, run_status = held
        if run_status != "running":
            self._requeue(t, [held], release_note(worker_id), -1)
            return False
        existing: dict[str, tuple[int, str]] = {
            key: (no, status)
            for key, no, status in con.execute(
                "SELECT key, no, status FROM jobs WHERE run_no = ? "
                "AND key IN (SELECT value FROM json_each(?))",
                (run_no, _encode(plan.external)),
            )
        }
        first = con.execute("SELECT coalesce(max(no), 0) + 1 FROM jobs").fetchone()[0]
        seq = con.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM jobs WHERE run_no = ?", (run_no,)
        ).fetchone()[0]
        clash = con.execute(
            "SELECT key FROM jobs WHERE run_no = ? AND key IN (SELECT value FROM json_each(?)) "
            "LIMIT 1",
            (run_no, _encode([job.key for job in (*plan.jobs, *plan.not_taken)])),
        ).fetchone()
        if clash is not None:
            raise MyceliumError(
                f"expansion {job_id} would add job {clash[0]}, which the run already has "
                "(was the region expanded before, then retried?)"
            )
        # The jobs an expansion makes belong to its run: they reuse results if its jobs do.
        reuse = con.execute("SELECT reuse FROM jobs WHERE no = ?", (job_no,)).fetchone()[0]
        every = [*plan.jobs, *plan.not_taken]
        rows = plan.layout(existing, range(first, first + len(every)), job_no)
        join_status, join_waiting = rows.join_status, rows.join_waiting
        note = expansion_note(job_id)
        con.executemany(
            "INSERT INTO jobs (no, id, run_no, key, node, elf, task, revision, seq, status, "
            "waiting, dependents, created, finished, history, reuse) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    first + i, ids[i], run_no, job.key, job.node, job.elf, job.task,
                    job.revision, seq + i, status, rows.waiting[i],
                    plan.dependents[job.key], now,
                    now if rows.finished(i) else None,
                    _encode([[now, status, note]]),
                    reuse,
                )
                for i, (job, status) in enumerate(zip(every, rows.statuses, strict=True))
            ],
        )  # fmt: skip
        con.executemany(
            "INSERT INTO job_payloads (job, args, kwargs, deps) VALUES (?, ?, ?, ?)",
            [
                (first + i, *payload)
                for i, payload in enumerate([*plan.payloads, *plan.placeholder_payloads])
            ],
        )
        con.executemany("INSERT OR IGNORE INTO edges (dep, dependent) VALUES (?, ?)", rows.edges)
        con.executemany(
            "UPDATE jobs SET dependents = dependents + ? WHERE no = ?",
            [(n, no) for no, n in rows.outside.items()],
        )
        added = rows.added
        con.executemany(
            "INSERT OR IGNORE INTO run_counts (run_no, elf, status, n) VALUES (?, ?, ?, 0)",
            [(run_no, e, status) for e in {e for e, _ in added} for status in _COUNTED_STATUSES],
        )
        con.executemany(
            "UPDATE run_counts SET n = n + ? WHERE run_no = ? AND elf = ? AND status = ?",
            [(n, run_no, e, _BUCKET.get(status, status)) for (e, status), n in added.items()],
        )
        con.execute("UPDATE runs SET total = total + ? WHERE no = ?", (len(every), run_no))
        t.rings.update(f"elf:{e}" for (e, status) in added if status == "ready")
        t.touched.add(run_no)
        if plan.handled:
            self._handle(t, run_no, plan.handled, job_id)
        if plan.result is not None:
            con.execute(self._SUCCEED, (now, now, expanded_note(plan), job_no))
            con.execute("INSERT INTO results (job, value) VALUES (?, ?)", (job_no, plan.result))
            t.move(run_no, elf, "running", "succeeded")
            t.readied(con.execute(self._READY_DEPENDENTS, (_encode([job_no]), now, "")))
            return True
        assert plan.join_payload is not None
        con.execute(
            "UPDATE job_payloads SET args = ?, kwargs = ?, deps = ? WHERE job = ?",
            (*plan.join_payload, job_no),
        )
        con.execute(
            "UPDATE jobs SET task = ?, status = ?, waiting = ?, lease_until = NULL, "
            "finished = CASE WHEN ? = 'skipped' THEN ? END, history = "
            "json_insert(coalesce(history, '[]'), '$[#]', json_array(?, ?, ?)) WHERE no = ?",
            (
                plan.join_task, join_status, join_waiting, join_status, now, now, join_status,
                expanded_note(plan), job_no,
            ),
        )  # fmt: skip
        t.move(run_no, elf, "running", join_status)
        if join_status == "ready":
            t.rings.add(f"elf:{elf}")
        elif join_status == "skipped":
            self._skip_dependents(t, job_no)
        return True

    def _handle(self, t: _Txn, run_no: int, keys: list[str], catcher: str) -> None:
        """The ``failed`` jobs ``keys`` of run ``run_no`` (and the failed jobs of their
        expansions, below ``key/``) were taken by a handler."""
        rows = t.con.execute(
            "UPDATE jobs SET status = 'handled', history = "
            + _append_event("handled")
            + " WHERE run_no = ? AND status = 'failed' AND EXISTS (SELECT 1 FROM json_each(?) k "
            "WHERE jobs.key = k.value OR substr(jobs.key, 1, length(k.value) + 1) = k.value || '/') "
            "RETURNING no, elf",
            (t.now, handled_note(catcher), run_no, _encode(keys)),
        ).fetchall()
        t.con.executemany(
            "UPDATE results SET value = ? WHERE job = ?", [(HANDLED, no) for no, _ in rows]
        )
        elves = {elf for _, elf in rows}
        t.con.executemany(
            "INSERT OR IGNORE INTO run_counts (run_no, elf, status, n) VALUES (?, ?, 'handled', 0)",
            [(run_no, elf) for elf in elves],
        )
        for _, elf in rows:
            t.move(run_no, elf, "failed", "handled")

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
            if retry_at is not None:
                self._record_failure(t, job_no, elf, task, attempts, failure)
                self._requeue(t, [held], retry_note(retry_at, failure), 0, retry_at)
                return True
            self._fail_held(t, job_no, run_no, elf, task, attempts, failure)
            return True

        return self._write(write)

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
        t.con.execute(
            "UPDATE jobs SET status = 'failed', finished = ?, lease_until = NULL, history = "
            + _append_event("failed")
            + " WHERE no = ?",
            (t.now, t.now, failure_summary(failure), job_no),
        )
        if failure.raised is not None:
            t.con.execute(
                "INSERT OR REPLACE INTO results (job, value) VALUES (?, ?)",
                (job_no, failure.raised),
            )
        t.move(run_no, elf, "running", "failed")
        self._skip_dependents(t, job_no)

    def _record_failure(
        self, t: _Txn, job_no: int, elf: str, task: str, attempt: int, failure: FailureRecord
    ) -> None:
        digest = failure_digest(failure)
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
        """Job ``job_no`` can never succeed: its dependents are skipped, transitively, up to
        the ``@catch`` jobs, for which it and every job skipped now have settled."""
        key = t.con.execute("SELECT key FROM jobs WHERE no = ?", (job_no,)).fetchone()[0]
        rows = t.con.execute(
            "WITH RECURSIVE down (no) AS (SELECT e.dependent FROM edges e "
            "JOIN jobs j ON j.no = e.dependent WHERE e.dep = ? AND j.task != ? "
            "UNION SELECT e.dependent FROM edges e JOIN down d ON e.dep = d.no "
            "JOIN jobs j ON j.no = e.dependent WHERE j.task != ?) "
            "UPDATE jobs SET status = 'skipped', finished = ?, history = "
            + _append_event("skipped")
            + " WHERE no IN (SELECT no FROM down) AND status = 'pending' "
            "RETURNING no, run_no, elf",
            (job_no, CATCH, CATCH, t.now, t.now, skip_note(key)),
        ).fetchall()
        for _, run_no, elf in rows:
            t.move(run_no, elf, "pending", "skipped")
        settled = [job_no, *(no for no, _, _ in rows)]
        t.readied(t.con.execute(self._READY_CATCHERS, (_encode(settled), CATCH, t.now, "")))

    _READY_CATCHERS = _lower_waiting(
        "SELECT e.dependent, count(*) FROM edges e JOIN jobs j ON j.no = e.dependent "
        "WHERE e.dep IN (SELECT value FROM json_each(?)) AND j.task = ? GROUP BY e.dependent"
    )

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
            self._requeue(t, held, release_note(worker_id), -1)
            return len(held)

        return self._write(write) if ids else 0

    def expire_leases(self, now: float | None = None) -> int:
        return self._write(lambda t: self._expire(t, now))

    def _expire(self, t: _Txn, now: float | None = None) -> int:
        held = t.con.execute(
            "SELECT j.no, j.run_no, j.elf, j.task, j.attempts, r.status, j.lease_owner, "
            "j.revision, (SELECT count(*) FROM job_failures f WHERE f.job = j.no) "
            "FROM jobs j JOIN runs r ON r.no = j.run_no "
            "WHERE j.status = 'running' AND j.lease_until < ?",
            (t.now if now is None else now,),
        ).fetchall()
        for row in held:
            job_no, run_no, elf, task, attempts, run_status, owner, revision, failures = row
            lost = lost_leases(attempts, failures)
            if lost >= MAX_LOST_LEASES and run_status != "cancelled":
                failure = lost_lease_failure(owner, lost, revision)
                self._fail_held(t, job_no, run_no, elf, task, attempts, failure)
            else:
                self._requeue(t, [row[:6]], expiry_note(owner), 0)
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
            return must_stop(ids, ((job_id, status == "cancelled") for job_id, status in kept))

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
            # Running jobs are left to their workers, whom heartbeat tells to stop.
            for status in sorted(ACTIVE_JOB_STATUSES - {"running"}):
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

    def fail_run(self, run_id: str, error_type: str, message: str) -> bool:
        def write(t: _Txn) -> bool:
            row = t.con.execute(
                "UPDATE runs SET status = 'failed', error_type = ?, error_message = ?, "
                "error_time = ? WHERE id = ? AND status = 'succeeded' RETURNING no",
                (error_type, message, t.now, run_id),
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
                known = {r[0] for r in t.con.execute(
                    "SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?))",
                    (_encode([log.job for log in logs]),),
                )}  # fmt: skip
                missing = next(log.job for log in logs if log.job not in known)
                raise MyceliumError(f"cannot store the output of job {missing}: no such job")

        self._write(write)

    def stage_logs(self, logs: Sequence[LogRecord]) -> None:
        # Stored by the next write (the worker's next is the jobs' outcome): one transaction
        # less per batch of jobs that printed.
        self._guard()
        with self._lock:
            self._staged = [*self._staged, *logs]

    def list_logs(
        self, run_id: str, key: str | None = None, since: float | None = None
    ) -> list[LogRecord]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT j.id, r.id, j.key, j.elf, j.task, l.attempt, l.text, l.truncated, l.time "
                "FROM logs l JOIN runs r ON r.no = l.run_no JOIN jobs j ON j.no = l.job "
                "WHERE r.id = ? AND (? IS NULL OR j.key = ?) AND l.time >= coalesce(?, 0) "
                "ORDER BY l.time, j.seq, l.attempt, l.rowid",
                (run_id, key, key, since),
            ).fetchall()
        )
        return [LogRecord(*row) for row in rows]

    def retry_jobs(self, run_id: str, revisions: Mapping[str, str]) -> bool:
        wanted = dict(revisions)
        return bool(wanted) and self._write(lambda t: self._retry_jobs(t, run_id, wanted))

    def _retry_jobs(self, t: _Txn, run_id: str, wanted: dict[str, str]) -> bool:
        con = t.con
        run = con.execute("SELECT no, status FROM runs WHERE id = ?", (run_id,)).fetchone()
        if run is None or run[1] not in FINAL_RUN_STATUSES:
            return False
        run_no = run[0]
        rows = con.execute(
            "SELECT no, id, status, revision FROM jobs "
            "WHERE run_no = ? AND id IN (SELECT value FROM json_each(?))",
            (run_no, _encode(list(wanted))),
        ).fetchall()
        settled = [r for r in rows if r[2] in FINAL_JOB_STATUSES]
        if len(settled) != len(wanted):
            missing = sorted(set(wanted) - {r[1] for r in settled})
            raise MyceliumError(
                f"cannot retry job(s) {', '.join(missing[:3])}: not settled jobs of run {run_id}"
            )
        nos = _encode([r[0] for r in rows])
        con.execute("DELETE FROM results WHERE job IN (SELECT value FROM json_each(?))", (nos,))
        con.executemany(
            "UPDATE jobs SET status = 'pending', revision = ?, attempts = 0, not_before = 0, "
            "lease_owner = NULL, lease_until = NULL, started = NULL, finished = NULL, "
            "cache_key = NULL, cached_from = NULL WHERE no = ?",
            [(wanted[job_id], no) for no, job_id, _, _ in rows],
        )
        # Counted after every named job is pending, so a dependency retried too is waited for.
        con.executemany(
            "UPDATE jobs SET waiting = w.n, "
            "status = CASE w.n WHEN 0 THEN 'ready' ELSE 'pending' END, "
            "history = json_insert(coalesce(history, '[]'), '$[#]', json_array(?, "
            "CASE w.n WHEN 0 THEN 'ready' ELSE 'pending' END, ?)) "
            "FROM (SELECT count(*) AS n FROM edges e JOIN jobs d ON d.no = e.dep "
            "WHERE e.dependent = ? AND d.status != 'succeeded') AS w WHERE jobs.no = ?",
            [(t.now, rerun_note(old, wanted[job_id]), no, no) for no, job_id, _, old in rows],
        )
        con.execute("DELETE FROM run_counts WHERE run_no = ?", (run_no,))
        con.execute(
            "INSERT INTO run_counts (run_no, elf, status, n) "
            "SELECT ?, e.elf, s.value, (SELECT count(*) FROM jobs j WHERE j.run_no = ? "
            "AND j.elf = e.elf AND (CASE j.status WHEN 'running' THEN 'ready' ELSE j.status END) "
            "= s.value) FROM (SELECT DISTINCT elf FROM jobs WHERE run_no = ?) e, json_each(?) s",
            (run_no, run_no, run_no, _encode(_COUNTED_STATUSES)),
        )
        con.execute(
            "UPDATE runs SET status = 'running', finished = NULL, error_type = NULL, "
            "error_message = NULL, error_time = NULL WHERE no = ?",
            (run_no,),
        )
        for (elf,) in con.execute(
            "SELECT DISTINCT elf FROM jobs WHERE run_no = ? AND status = 'ready'", (run_no,)
        ):
            t.rings.add(f"elf:{elf}")
        t.rings.add("runs")
        return True

    def prune_runs(
        self, finished_before: float, statuses: Iterable[str] = FINAL_RUN_STATUSES, limit: int = 100
    ) -> int:
        wanted = _encode(sorted(set(statuses) & FINAL_RUN_STATUSES))
        return self._write(lambda t: self._prune(t, finished_before, wanted, limit))

    _PRUNED = "SELECT value FROM json_each(?)"

    def _prune(self, t: _Txn, before: float, statuses: bytes, limit: int) -> int:
        con = t.con
        runs = [
            no
            for (no,) in con.execute(
                "SELECT no FROM runs WHERE finished IS NOT NULL AND finished < ? "
                "AND status IN (SELECT value FROM json_each(?)) ORDER BY no LIMIT ?",
                (before, statuses, limit),
            )
        ]
        if not runs:
            return 0
        run_nos = _encode(runs)
        jobs = _encode(
            [
                no
                for (no,) in con.execute(
                    f"SELECT no FROM jobs WHERE run_no IN ({self._PRUNED})", (run_nos,)
                )
            ]
        )
        failures = _encode([h for (h,) in con.execute(
            f"SELECT DISTINCT failure FROM job_failures WHERE job IN ({self._PRUNED})", (jobs,)
        )])  # fmt: skip
        revisions = _encode([r for (r,) in con.execute(
            f"SELECT revision FROM jobs WHERE run_no IN ({self._PRUNED}) UNION "
            f"SELECT revision FROM runs WHERE no IN ({self._PRUNED})",
            (run_nos, run_nos),
        )])  # fmt: skip
        for table, column, ids in (
            ("edges", "dep", jobs),  # a run's edges join two of its own jobs
            ("results", "job", jobs),
            ("job_payloads", "job", jobs),
            ("job_failures", "job", jobs),
            ("logs", "run_no", run_nos),
            ("jobs", "run_no", run_nos),
            ("run_counts", "run_no", run_nos),
            ("runs", "no", run_nos),
        ):
            con.execute(f"DELETE FROM {table} WHERE {column} IN ({self._PRUNED})", (ids,))
        con.execute(
            f"DELETE FROM failures WHERE hash IN ({self._PRUNED}) AND NOT EXISTS "
            "(SELECT 1 FROM job_failures WHERE failure = failures.hash)",
            (failures,),
        )
        con.execute(
            f"DELETE FROM graphs WHERE revision IN ({self._PRUNED}) AND NOT EXISTS "
            "(SELECT 1 FROM runs WHERE revision = graphs.revision)",
            (revisions,),
        )
        con.execute(
            f"DELETE FROM revisions WHERE hash IN ({self._PRUNED}) "
            "AND NOT EXISTS (SELECT 1 FROM jobs WHERE revision = revisions.hash) "
            "AND NOT EXISTS (SELECT 1 FROM runs WHERE revision = revisions.hash) "
            "AND NOT EXISTS (SELECT 1 FROM elves WHERE revision = revisions.hash)",
            (revisions,),
        )
        self._run_ids.clear()
        return len(runs)

    # -- reading -------------------------------------------------------------------

    _RUN_COLUMNS = (
        "SELECT no, id, pipeline, revision, arguments, status, created, finished, total, output, "
        "error_type, error_message, error_time FROM runs "
    )

    def run_info(self, run_id: str) -> RunInfo | None:
        def read(con: sqlite3.Connection) -> RunInfo | None:
            sql = self._RUN_COLUMNS + "WHERE id >= ? AND id < ? LIMIT 2"
            row = _by_prefix(con, sql, run_id, "run", column=1)
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
        "j.lease_until, j.created, j.started, j.finished, j.history, j.cache_key, j.cached_from, "
        "(SELECT failure FROM job_failures WHERE job = j.no ORDER BY rowid DESC LIMIT 1) "
        "FROM jobs j JOIN runs r ON r.no = j.run_no JOIN job_payloads p ON p.job = j.no "
    )

    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobInfo]:
        def read(con: sqlite3.Connection) -> list[JobInfo]:
            sql = "SELECT id FROM runs WHERE id >= ? AND id < ? LIMIT 2"
            run = _by_prefix(con, sql, run_id, "run")
            if run is None:
                return []
            rows = con.execute(
                self._JOB_COLUMNS + "WHERE r.id = ? AND (? IS NULL OR j.status = ?) ORDER BY j.seq",
                (run[0], status, status),
            ).fetchall()
            return _job_infos(con, rows, with_results=False)

        return self._read(read, snapshot=True)

    def find_runs(
        self,
        status: str | None = None,
        pipeline: str | None = None,
        prefix: str = "",
        limit: int = 50,
    ) -> list[RunInfo]:
        end = prefix_end(prefix) if prefix else None
        if prefix and end is None:
            return []

        def read(con: sqlite3.Connection) -> list[RunInfo]:
            rows = con.execute(
                self._RUN_COLUMNS + "WHERE (?1 IS NULL OR status = ?1) "
                "AND (?2 IS NULL OR instr(lower(pipeline), lower(?2)) > 0) "
                "AND (?3 IS NULL OR (id >= ?3 AND id < ?4)) ORDER BY no DESC LIMIT ?5",
                (status, pipeline or None, prefix or None, end, limit),
            ).fetchall()
            return [_run_info(con, row) for row in rows]

        return self._read(read, snapshot=True)

    def page_jobs(
        self, run_id: str, status: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[JobInfo]:
        def read(con: sqlite3.Connection) -> list[JobInfo]:
            run = _by_prefix(
                con, "SELECT no FROM runs WHERE id >= ? AND id < ? LIMIT 2", run_id, "run"
            )
            if run is None:
                return []
            # A run's jobs are inserted in seq order, so the primary key orders them as seq
            # does. The page's numbers come first, from the (run_no, key) index alone when
            # no status is asked for; only the page's rows are then read whole.
            if status is None:
                sql = "SELECT no FROM jobs WHERE run_no = ? ORDER BY no LIMIT ? OFFSET ?"
                params: tuple[Any, ...] = (run[0], max(limit, 0), max(offset, 0))
            else:
                sql = (
                    "SELECT no FROM jobs WHERE run_no = ? AND status = ? "
                    "ORDER BY no LIMIT ? OFFSET ?"
                )
                params = (run[0], status, max(limit, 0), max(offset, 0))
            numbers = [no for (no,) in con.execute(sql, params)]
            if not numbers:
                return []
            rows = con.execute(
                self._JOB_COLUMNS + "WHERE j.no IN (SELECT value FROM json_each(?)) ORDER BY j.no",
                (msgspec.json.encode(numbers),),
            ).fetchall()
            return _job_infos(con, rows, with_results=False)

        return self._read(read, snapshot=True)

    def job_spans(self, run_id: str) -> list[JobSpan]:
        def read(con: sqlite3.Connection) -> list[JobSpan]:
            run = _by_prefix(
                con, "SELECT no FROM runs WHERE id >= ? AND id < ? LIMIT 2", run_id, "run"
            )
            if run is None:
                return []
            rows = con.execute(
                "SELECT key, elf, task, status, lease_owner, started, finished FROM jobs "
                "WHERE run_no = ? ORDER BY no",
                (run[0],),
            ).fetchall()
            return [JobSpan(*row) for row in rows]

        return self._read(read, snapshot=True)

    _SEVERITY = (
        "CASE status "
        + " ".join(f"WHEN '{status}' THEN {i}" for i, status in enumerate(JOB_STATUS_SEVERITY))
        + f" ELSE {len(JOB_STATUS_SEVERITY)} END"
    )
    _ENDED = (
        "CASE WHEN finished IS NOT NULL AND finished >= started THEN finished "
        "WHEN status = 'running' THEN ?3 ELSE started END"
    )
    _BUCKETS = (
        "SELECT elf, lease_owner, slot, first, (SELECT key FROM jobs WHERE no = first_no), "
        "ended, n, rank, busy FROM (SELECT elf, lease_owner, "
        "CAST((started - ?1) / ?2 AS INTEGER) AS slot, min(started) AS first, "
        f"min(no) AS first_no, max({_ENDED}) AS ended, count(*) AS n, min({_SEVERITY}) AS rank, "
        f"sum({_ENDED} - started) AS busy FROM jobs "
        "WHERE run_no = ?4 AND started IS NOT NULL AND lease_owner IS NOT NULL "
        "GROUP BY elf, lease_owner, slot) ORDER BY elf, lease_owner, slot"
    )

    def job_buckets(self, run_id: str, start: float, grain: float, now: float) -> list[JobsBucket]:
        def read(con: sqlite3.Connection) -> list[JobsBucket]:
            sql = "SELECT no FROM runs WHERE id >= ? AND id < ? LIMIT 2"
            run = _by_prefix(con, sql, run_id, "run")
            if run is None:
                return []
            rows = con.execute(self._BUCKETS, (start, grain if grain > 0 else 1e300, now, run[0]))
            return [
                JobsBucket(elf, worker, slot, first, end, n, _severe(rank), key, busy)
                for elf, worker, slot, first, key, end, n, rank, busy in rows
            ]

        return self._read(read, snapshot=True)

    def failure_jobs(self, failure_hash: str, limit: int = 10) -> list[JobInfo]:
        def read(con: sqlite3.Connection) -> list[JobInfo]:
            # A job's latest failure is its last job_failures row (as get_job reads it).
            rows = con.execute(
                self._JOB_COLUMNS + "WHERE j.no IN (SELECT job FROM job_failures WHERE "
                "failure = ?1) AND (SELECT failure FROM job_failures WHERE job = j.no "
                "ORDER BY rowid DESC LIMIT 1) = ?1 ORDER BY j.run_no DESC, j.no LIMIT ?2",
                (failure_hash, max(limit, 0)),
            ).fetchall()
            return _job_infos(con, rows, with_results=False)

        return self._read(read, snapshot=True)

    def node_counts(self, run_id: str) -> dict[str, dict[str, int]]:
        def read(con: sqlite3.Connection) -> dict[str, dict[str, int]]:
            run = _by_prefix(
                con, "SELECT no FROM runs WHERE id >= ? AND id < ? LIMIT 2", run_id, "run"
            )
            if run is None:
                return {}
            counts: dict[str, dict[str, int]] = {}
            for node, status, n in con.execute(
                "SELECT node, status, count(*) FROM jobs WHERE run_no = ? GROUP BY node, status",
                (run[0],),
            ):
                counts.setdefault(node, {})[status] = n
            return counts

        return self._read(read, snapshot=True)

    def get_job(self, job_id: str) -> JobInfo | None:
        def read(con: sqlite3.Connection) -> JobInfo | None:
            sql = self._JOB_COLUMNS + "WHERE j.id >= ? AND j.id < ? LIMIT 2"
            row = _by_prefix(con, sql, job_id, "job", column=1)
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

    def list_run_failures(self, limit: int = 20) -> list[FailureInfo]:
        rows = self._read(
            lambda con: con.execute(
                "SELECT id, pipeline, revision, error_type, error_message, error_time FROM runs "
                "WHERE error_type IS NOT NULL ORDER BY error_time DESC LIMIT ?",
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

    def _sleep(self, bell: Listener | None, deadline: float) -> None:
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

    def readied(self, rows: Iterable[tuple[int, str, str, int]]) -> None:
        """Count the jobs of ``rows`` (of a ``_lower_waiting`` query) that became ready, and
        ring their elves."""
        for run_no, elf, status, waiting in rows:
            if status == "ready" and waiting == 0:
                self.move(run_no, elf, "pending", "ready")
                self.rings.add(f"elf:{elf}")

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


class _Rows(Submission):
    """A checked submission (see :class:`Submission`) as rows of this schema's tables."""

    def __init__(self, built: BuiltRun) -> None:
        super().__init__(built)
        self.counts = Counter(zip((job.elf for job in built.jobs), self.statuses, strict=True))
        """(elf, status) -> how many jobs start so: the run's initial ``run_counts``."""
        self.ready_elves = {elf for elf, status in self.counts if status == "ready"}

    def job_rows(
        self, first: int, run_no: int, ids: Sequence[str], now: float
    ) -> Iterator[tuple[Any, ...]]:
        reuse = int(self.built.reuse)
        for i, job in enumerate(self.built.jobs):
            yield (
                first + i,
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

    def payload_rows(self, first: int) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        for i, (args, kwargs, dep_keys) in enumerate(self.payloads):
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


def _blob(value: object) -> bytes:
    """A JSON column's value as bytes. SQLite stores whatever a writer gave it, so a row
    written by something other than elfc may hold text or a number: their bytes then (a
    decoder says whether they are JSON), never a ``TypeError`` in a claim."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


def _schema() -> str:
    return resources.files(__name__).joinpath("schema.sql").read_text(encoding="utf-8")


def _busy(exc: Exception) -> bool:
    """SQLite answered busy or locked: another process holds the lock, so try again."""
    if not isinstance(exc, sqlite3.Error) or isinstance(exc, sqlite3.IntegrityError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _insert_logs(t: _Txn, logs: Sequence[LogRecord]) -> int:
    """Insert task output rows; a record of a job that is not stored adds none. Returns how
    many rows were added."""
    return t.con.executemany(
        "INSERT INTO logs (job, attempt, run_no, time, text, truncated) "
        "SELECT no, ?, run_no, ?, ?, ? FROM jobs WHERE id = ?",
        [(log.attempt, t.now, log.text, log.truncated, log.job) for log in logs],
    ).rowcount


def _put_template(con: sqlite3.Connection, revision: str, template_json: bytes) -> None:
    con.execute(
        "INSERT OR IGNORE INTO graphs (revision, template) VALUES (?, ?)", (revision, template_json)
    )


def _by_prefix(
    con: sqlite3.Connection, sql: str, prefix: str, what: str, column: int = 0
) -> tuple[Any, ...] | None:
    """The row whose id (at ``column``) is ``prefix`` or the only one starting with it (see
    :func:`pick`); ``sql`` takes the two ends of the id range."""
    end = prefix_end(prefix)
    if end is None:
        return None
    rows: list[tuple[Any, ...]] = con.execute(sql, (prefix, end)).fetchall()
    return pick(rows, prefix, what, operator.itemgetter(column))


def _run_info(con: sqlite3.Connection, row: tuple[Any, ...]) -> RunInfo:
    no, run_id, pipeline, revision, arguments, status, created, finished, total, output = row[:10]
    return run_info(
        run_id,
        pipeline,
        revision,
        arguments,
        status,
        created,
        finished,
        total,
        output,
        _counted(con, no),
        con.execute(
            "SELECT count(*) FROM jobs INDEXED BY jobs_cached "
            "WHERE run_no = ? AND cached_from IS NOT NULL",
            (no,),
        ).fetchone()[0],
        run_failure(*row[10:13]),
    )


def _counted(con: sqlite3.Connection, run_no: int) -> list[tuple[str, str, int]]:
    """``(elf, status, n)`` for the jobs of a run. ``run_counts`` keeps running jobs in the
    ready bucket (see :meth:`_Txn.move`): they are counted from their index instead."""
    running: dict[str, int] = dict(
        con.execute(
            "SELECT elf, count(*) FROM jobs INDEXED BY jobs_running "
            "WHERE status = 'running' AND run_no = ? GROUP BY elf",
            (run_no,),
        ).fetchall()
    )
    counted = [
        (elf, status, n - running.get(elf, 0) if status == "ready" else n)
        for elf, status, n in con.execute(
            "SELECT elf, status, n FROM run_counts WHERE run_no = ?", (run_no,)
        )
    ]
    counted += [(elf, "running", n) for elf, n in running.items()]
    return counted


def _job_infos(
    con: sqlite3.Connection, rows: list[tuple[Any, ...]], with_results: bool
) -> list[JobInfo]:
    failures = _failures(con, {row[-1] for row in rows if row[-1] is not None})
    return [
        job_info_of(row, _result(con, row[0]) if with_results else None, failures.get(row[-1]))
        for row in rows
    ]


def _failures(con: sqlite3.Connection, hashes: set[str]) -> dict[str, FailureInfo]:
    if not hashes:
        return {}
    rows = con.execute(
        SQLiteStore._FAILURE_COLUMNS + "WHERE hash IN (SELECT value FROM json_each(?))",
        (_encode(sorted(hashes)),),
    )
    return {row[0]: FailureInfo(*row) for row in rows}


def _result(con: sqlite3.Connection, job_no: int) -> bytes | None:
    found = con.execute("SELECT value FROM results WHERE job = ?", (job_no,)).fetchone()
    return None if found is None else _blob(found[0])


def _severe(rank: int) -> str:
    return JOB_STATUS_SEVERITY[rank] if 0 <= rank < len(JOB_STATUS_SEVERITY) else "unknown"
