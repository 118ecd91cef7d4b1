"""The SQLite mycelium: the shared contract on a file in tmp_path, then what only SQLite has
(schema versions, query plans, locking, fork, doorbells) and the URL handling that picks it."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from elfc.errors import MyceliumError
from elfc.model.records import LogRecord, RevisionRecord
from elfc.mycelium import sqlite as sqlite_module
from elfc.mycelium.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, checkpoint
from elfc.mycelium.urls import DEFAULT_URL, default_url, mask_url, open_mycelium

from .contract import LEASE, MyceliumContract, drain, fanout, job, run_of


class TestSQLiteStore(MyceliumContract):
    @pytest.fixture
    def mycelium_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/mycelium.db"


def _fork() -> Any:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    return multiprocessing.get_context("fork")


# -- schema ------------------------------------------------------------------------------


def test_a_mycelium_of_another_schema_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
    before = path.read_bytes()
    with pytest.raises(MyceliumError, match=f"schema version 999.*uses version {SCHEMA_VERSION}"):
        SQLiteStore(path)
    assert path.read_bytes() == before


_RUN_FAILURE_COLUMNS = ("error_type", "error_message", "error_time")
_CACHE_COLUMNS = ("reuse", "cache_key", "cached_from")


def _older(path: Path, version: int) -> None:
    """Make a mycelium of this version an older one: version 5 is version 6 without what
    caching by input added, version 4 is version 5 without the run failure columns of
    ``runs``, version 3 is version 4 without the ``logs`` table."""
    with sqlite3.connect(path) as con:
        con.execute("DROP INDEX jobs_by_cache_key")
        con.execute("DROP INDEX jobs_cached")
        for column in _CACHE_COLUMNS:
            con.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        if version <= 4:
            for column in _RUN_FAILURE_COLUMNS:
                con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
        if version <= 3:
            con.execute("DROP TABLE logs")
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(version),))


def _layout(path: Path) -> dict[str, Any]:
    """Every table's columns (name, type, not null, default) and every index's table, by name."""
    with sqlite3.connect(path) as con:
        objects = con.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {
            name: (
                [row[1:5] for row in con.execute(f"PRAGMA table_info({name})")]
                if kind == "table"
                else table
            )
            for kind, name, table in objects
        }


@pytest.mark.parametrize("version", [3, 4, 5])
def test_an_older_mycelium_is_migrated_keeping_its_runs(tmp_path: Path, version: int) -> None:
    """Every older version is migrated, step by step, to the layout a new mycelium has."""
    path = tmp_path / "m.db"
    with SQLiteStore(path) as m:
        run_id = m.submit(run_of(job("a#0")))
        done = m.submit(run_of(job("b#0", "f")))
        drain(m, "f")
    _older(path, version)
    with SQLiteStore(path) as m:
        (a,) = m.list_jobs(run_id)
        assert (a.cache_key, a.cached_from) == (None, None)
        m.put_logs([LogRecord(a.id, run_id, a.key, "e", "work", 1, "hello\n")])
        assert [x.text for x in m.list_logs(run_id)] == ["hello\n"]
        assert m.run_status(done) == "succeeded"
        assert m.fail_run(done, "ValueCrossingError", "refused")
        info = m.run_info(done)
        assert info is not None and info.failure is not None and info.status == "failed"
        (c,) = m.claim("e", "w", LEASE)
        assert not c.reuse
        assert m.complete_many("w", [(c.id, b"7")], keys={c.id: "k1"}) == [True]
        assert m.cached_result("k1") == (c.id, b"7")
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("6",)
    SQLiteStore(tmp_path / "new.db").close()
    assert _layout(path) == _layout(tmp_path / "new.db")
    assert set(range(3, SCHEMA_VERSION)) <= set(MIGRATIONS) and SCHEMA_VERSION == 6


def test_other_files_are_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(MyceliumError, match="not an elfc mycelium"):
        SQLiteStore(foreign)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(MyceliumError, match="not an SQLite database"):
        SQLiteStore(garbage)


def test_the_parent_folder_is_created_and_wal_is_on(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a" / "b" / "m.db") as m:
        m.submit(fanout(1))
        with sqlite3.connect(m.path) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _plan(m: SQLiteStore, sql: str, params: tuple[Any, ...]) -> str:
    con = m._connection()
    return " | ".join(row[-1] for row in con.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_checkpoints_run_in_a_thread_not_in_commits(tmp_path: Path) -> None:
    """The store's connection never checkpoints inside a commit (wal_autocheckpoint 0); its
    checkpoint thread copies the log into the database file after EVERY write transactions."""
    store = SQLiteStore(tmp_path / "m.db")
    con = store._connection()
    assert con.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    db = tmp_path / "m.db"
    before = db.stat().st_size
    source = "x" * 20_000

    def write(i: int) -> None:
        store.put_revisions([RevisionRecord(f"h{i}", "task", "T.t", "m", source, None, None)])

    for i in range(checkpoint.EVERY - 1):
        write(i)
    assert db.stat().st_size == before  # all of it in the log so far
    write(checkpoint.EVERY)
    deadline = time.monotonic() + 10
    while db.stat().st_size < before + 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db.stat().st_size > before + 1_000_000
    store.close()


def test_hot_queries_use_indexes_not_scans(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as m:
        m.submit(fanout(50))
        claim = _plan(m, m._CLAIM, ("w", 1.0, 2.0, 0.0, 0.0, "w", "e", 0.0, 16))
        assert "INDEX jobs_ready (elf=?)" in claim and "TEMP B-TREE" not in claim, claim
        ready = _plan(m, m._READY_DEPENDENTS, ("[1, 2]", 0.0, ""))
        assert "SEARCH edges USING PRIMARY KEY (dep=?)" in ready, ready
        assert "SEARCH jobs USING INTEGER PRIMARY KEY" in ready, ready
        leased = _plan(m, m._LEASED, ("abc", "w"))
        assert "USING INDEX sqlite_autoindex_jobs_1 (id=?)" in leased, leased
        expired = _plan(m, m._EXPIRED_PROBE, (0.0,))
        assert "jobs_running (lease_until<?)" in expired, expired
        results = _plan(
            m,
            "SELECT j.key, r.value FROM jobs j JOIN results r ON r.job = j.no "
            "WHERE j.run_no = (SELECT no FROM runs WHERE id = ?) "
            "AND j.key IN (SELECT value FROM json_each(?))",
            ("r", "[]"),
        )
        assert "jobs_by_run_key (run_no=? AND key=?)" in results, results


# -- processes and locks ---------------------------------------------------------------


def _hold_write_lock(path: str, seconds: float, started: Any) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    con.execute("COMMIT")


def test_a_held_write_lock_delays_writes_instead_of_failing_them(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as m:
        ctx = _fork()
        started = ctx.Event()
        holder = ctx.Process(target=_hold_write_lock, args=(str(m.path), 0.5, started))
        holder.start()
        try:
            assert started.wait(10)
            begin = time.monotonic()
            run_id = m.submit(fanout(3))
            assert time.monotonic() - begin >= 0.3
        finally:
            holder.join(10)
        assert m.run_status(run_id) == "running"


def _use_inherited(m: SQLiteStore, out: Any) -> None:
    out.put(drain(m, worker="child"))


def test_an_instance_inherited_through_fork_reconnects(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as m:
        run_id = m.submit(fanout(5))
        m.wait_for_work("e", 0.01)  # the parent has a doorbell socket too
        ctx = _fork()
        out = ctx.Queue()
        child = ctx.Process(target=_use_inherited, args=(m, out))
        child.start()
        keys = out.get(timeout=30)
        child.join(10)
        assert child.exitcode == 0 and sorted(keys) == [f"f#{i}" for i in range(5)]
        assert m.run_status(run_id) == "succeeded"  # the parent's connection still works


# -- waiting ---------------------------------------------------------------------------


def _claim_when_woken(url: str, out: Any) -> None:
    with open_mycelium(url) as m:
        m.wait_for_work("idle", 0.01)
        out.put("listening")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if m.claim("idle", "w", LEASE):
                out.put(time.time())
                return
            m.wait_for_work("idle", 10.0)


@pytest.mark.parametrize("long_path", [False, True], ids=["next-to-db", "temp-folder"])
def test_a_doorbell_wakes_an_idle_worker_within_milliseconds(
    tmp_path: Path, long_path: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "FALLBACK_POLL", 30.0)  # only the doorbell can wake it
    folder = tmp_path / ("x" * 80 if long_path else "")
    url = f"sqlite:///{folder}/m.db"
    with open_mycelium(url) as m:
        assert m.supports_doorbell
        ctx = _fork()
        out = ctx.Queue()
        waiter = ctx.Process(target=_claim_when_woken, args=(url, out))
        waiter.start()
        try:
            assert out.get(timeout=20) == "listening"
            time.sleep(0.2)  # let it fall asleep
            submitted = time.time()
            m.submit(run_of(job("wake#0", "idle")))
            claimed_at = out.get(timeout=20)
        finally:
            waiter.join(10)
    assert claimed_at - submitted < 0.1  # typically about 1 ms


def test_waiting_idle_costs_next_to_no_cpu(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as m:
        m.wait_for_work("idle", 0.01)
        cpu, wall = time.process_time(), time.monotonic()
        m.wait_for_work("idle", 1.0)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    assert wall >= 0.9
    assert cpu < 0.02, f"waiting 1 s idle used {cpu * 1000:.1f} ms of CPU"


def test_rings_remove_the_sockets_of_dead_processes(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as m:
        listener, fresh = m._bell.listen("elf:e")
        assert listener is not None and fresh
        stale = Path(listener.path).with_name("1.dead")
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(str(stale))
        dead.close()
        m.submit(fanout(1))  # rings elf:e
        assert not stale.exists()
        assert listener.wait(1.0)
    assert not os.path.exists(listener.path)


# -- URLs --------------------------------------------------------------------------------


def test_sqlite_urls_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_mycelium("sqlite:///rel/m.db") as m:
        assert isinstance(m, SQLiteStore) and m.path == tmp_path / "rel" / "m.db"
        assert m.url == "sqlite:///rel/m.db"
    with open_mycelium(f"sqlite:///{tmp_path}/abs.db") as m:
        assert isinstance(m, SQLiteStore) and m.path == tmp_path / "abs.db"
    with pytest.raises(MyceliumError, match=r"sqlite:///relative/path\.db"):
        open_mycelium("sqlite://host/m.db")


def test_unknown_schemes_list_the_supported_ones() -> None:
    with pytest.raises(MyceliumError, match=r"sqlite://.*arango://.*arangos://.*postgresql://"):
        open_mycelium("mysql://u:secret@h/db")
    with pytest.raises(MyceliumError) as info:
        open_mycelium("mysql://u:secret@h/db")
    assert "secret" not in str(info.value)


def test_a_missing_arango_backend_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "elfc.mycelium.arango", None)
    with pytest.raises(MyceliumError, match=r"pip install 'elfc\[arango\]'"):
        open_mycelium("arango://root:pw@localhost:8529/elfc")


def test_mask_url_hides_passwords_only() -> None:
    assert (
        mask_url("arango://root:s3cret@db.example:8529/elfc")
        == "arango://root:***@db.example:8529/elfc"
    )
    assert mask_url("arangos://u:p@[::1]/x") == "arangos://u:***@[::1]/x"
    assert mask_url("arango://root@host/elfc") == "arango://root@host/elfc"
    assert mask_url("sqlite:///.elfc/mycelium.db") == "sqlite:///.elfc/mycelium.db"


def test_default_url_env_then_pyproject_then_builtin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    monkeypatch.delenv("ELFC_MYCELIUM", raising=False)
    assert default_url(project / "sub") == DEFAULT_URL
    (project / "pyproject.toml").write_text("[tool.elfc]\nmycelium = 'sqlite:///data/m.db'\n")
    assert default_url(project / "sub") == f"sqlite:///{project}/data/m.db"
    (project / "pyproject.toml").write_text("[tool.other]\nx = 1\n")
    assert default_url(project / "sub") == DEFAULT_URL
    monkeypatch.setenv("ELFC_MYCELIUM", "sqlite:////elsewhere.db")
    assert default_url(project / "sub") == "sqlite:////elsewhere.db"


def test_staged_logs_are_stored_by_the_next_write_and_unknown_jobs_dropped(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as m:
        run_id = m.submit(run_of(job("a#0")))
        (claimed,) = m.claim("e", "w", LEASE)
        m.stage_logs(
            [
                LogRecord(claimed.id, run_id, "a#0", "e", "work", 1, "said\n"),
                LogRecord("gone", run_id, "x", "e", "work", 1, "dropped\n"),
            ]
        )
        assert m.list_logs(run_id) == []  # not yet: it rides with the outcome
        assert m.complete(claimed.id, "w", b"1")
        assert [log.text for log in m.list_logs(run_id)] == ["said\n"]
