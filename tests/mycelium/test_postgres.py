"""The PostgreSQL mycelium: the shared contract against a real server the tests start (see
``pg_cluster.py``), then what only PostgreSQL has: schema versions, URLs and passwords,
notifications, and the faults of a server on the network (restarts, killed connections)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from elfc.errors import MyceliumError
from elfc.model.records import LogRecord
from elfc.mycelium.common import Expansion
from elfc.mycelium.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore
from elfc.mycelium.urls import mask_url, open_mycelium
from elfc.runtime.supervisor import child_url_and_env
from tests.runtime.fixtures.harness import REPO as ROOT
from tests.runtime.fixtures.harness import wait_until

from .contract import (
    LEASE,
    MyceliumContract,
    chain,
    drain,
    expander,
    fanout,
    job,
    joining,
    run_of,
)
from .pg_cluster import Cluster

SECRET = "s3cr3t-pw"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class TestPostgresStore(MyceliumContract):
    @pytest.fixture
    def mycelium_url(self, pg_url: str) -> str:
        return pg_url


# -- schema --------------------------------------------------------------------------------


def test_a_mycelium_of_another_schema_version_is_refused_untouched(
    pg: Cluster, pg_url: str
) -> None:
    PostgresStore(pg_url).close()
    db = pg_url.rsplit("/", 1)[1]
    pg.sql("UPDATE elfc.meta SET value = '999' WHERE key = 'schema'", db=db)
    with pytest.raises(MyceliumError, match=f"schema version 999.*uses version {SCHEMA_VERSION}"):
        PostgresStore(pg_url)
    assert pg.sql("SELECT value FROM elfc.meta", db=db) == [("999",)]


_COLUMNS = (
    "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
    "WHERE table_schema = 'elfc' AND table_name IN ('jobs', 'logs', 'runs') "
    "ORDER BY table_name, ordinal_position"
)


_INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'elfc' ORDER BY 1"


def _older(pg: Cluster, db: str, version: int) -> None:
    """Make a mycelium of this version an older one: version 3 is version 4 without what
    caching by input added, version 2 is version 3 without the run failure columns of
    ``runs``, version 1 is version 2 without the ``logs`` table."""
    pg.sql("DROP INDEX elfc.jobs_by_cache_key, elfc.jobs_cached", db=db)
    pg.sql(
        "ALTER TABLE elfc.jobs DROP COLUMN reuse, DROP COLUMN cache_key, DROP COLUMN cached_from",
        db=db,
    )
    if version <= 2:
        pg.sql(
            "ALTER TABLE elfc.runs DROP COLUMN error_type, DROP COLUMN error_message, "
            "DROP COLUMN error_time",
            db=db,
        )
    if version <= 1:
        pg.sql("DROP TABLE elfc.logs", db=db)
    pg.sql(f"UPDATE elfc.meta SET value = '{version}' WHERE key = 'schema'", db=db)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_older_mycelium_is_migrated_in_place_keeping_its_runs(
    pg: Cluster, pg_url: str, version: int
) -> None:
    """Every older version is migrated, step by step. Four processes' stores open it at
    once; it is migrated once, to what ``schema.sql`` makes."""
    db = pg_url.rsplit("/", 1)[1]
    with PostgresStore(pg_url) as m:
        run_id = m.submit(run_of(job("a#0")))
        done = m.submit(run_of(job("b#0", "f")))
        drain(m, "f")
    fresh = [pg.sql(q, db=db) for q in (_COLUMNS, _INDEXES)]
    _older(pg, db, version)
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(pg_url), range(4)))
    for store in stores[1:]:
        store.close()
    with stores[0] as m:
        (a,) = m.list_jobs(run_id)
        m.put_logs([LogRecord(a.id, run_id, a.key, "e", "work", 1, "hello\n")])
        assert [x.text for x in m.list_logs(run_id)] == ["hello\n"]
        assert m.fail_run(done, "ValueCrossingError", "refused")
        info = m.run_info(done)
        assert info is not None and info.failure is not None and info.status == "failed"
        (c,) = m.claim("e", "w", LEASE)
        assert m.complete_many("w", [(c.id, b"7")], keys={c.id: "k1"}) == [True]
        assert m.cached_result("k1") == (c.id, b"7")
    assert [pg.sql(q, db=db) for q in (_COLUMNS, _INDEXES)] == fresh
    assert pg.sql("SELECT value FROM elfc.meta WHERE key = 'schema'", db=db) == [("4",)]
    assert set(range(1, SCHEMA_VERSION)) <= set(MIGRATIONS) and SCHEMA_VERSION == 4


def test_task_output_with_nul_and_lone_surrogates_is_stored_as_given(pg_url: str) -> None:
    """PostgreSQL's text type refuses NUL, and UTF-8 cannot hold a lone surrogate (what
    ``surrogateescape`` decoding leaves of undecodable bytes): both come back unchanged."""
    odd = "a\x00b \udcff end \u00e9\U0001f600\n"
    with PostgresStore(pg_url) as m:
        run_id = m.submit(run_of(job("a#0")))
        (a,) = m.claim("e", "w", LEASE)
        m.stage_logs([LogRecord(a.id, run_id, a.key, "e", "work", 1, odd, 3)])
        assert m.complete(a.id, "w", b"1")
        m.put_logs([LogRecord(a.id, run_id, a.key, "e", "work", 1, odd * 2)])
        assert [(x.text, x.truncated) for x in m.list_logs(run_id, key="a#0")] == [
            (odd, 3),
            (odd * 2, 0),
        ]


def test_a_foreign_elfc_schema_is_refused(pg: Cluster, pg_url: str) -> None:
    db = pg_url.rsplit("/", 1)[1]
    pg.sql("CREATE SCHEMA elfc", db=db)
    pg.sql("CREATE TABLE elfc.jobs (x int)", db=db)
    with pytest.raises(MyceliumError, match="not an elfc mycelium"):
        PostgresStore(pg_url)


def test_processes_opening_an_empty_database_at_once_create_one_schema(pg_url: str) -> None:
    with ThreadPoolExecutor(8) as pool:
        stores = list(pool.map(lambda _: PostgresStore(pg_url), range(8)))
    for store in stores:
        store.close()
    with PostgresStore(pg_url) as m:
        assert m.list_runs() == []


def test_the_hot_queries_use_their_indexes(pg: Cluster, pg_url: str) -> None:
    with PostgresStore(pg_url) as m:
        m.submit(fanout(2000))
        m.submit(chain(50))
        db = pg_url.rsplit("/", 1)[1]
        pg.sql("ANALYZE", db=db)
        con = m._connection()
        claim = con.execute(
            "EXPLAIN " + m._CLAIM,
            {"now": 1.0, "elf": "e", "worker": "w", "lease": 1.0, "until": 2.0, "limit": 16},
        ).fetchall()
        text = "\n".join(r[0] for r in claim)
        assert "jobs_ready" in text and "Seq Scan on jobs" not in text, text


# -- expansions ------------------------------------------------------------------------------


def test_an_expansion_whose_run_is_cancelled_while_it_runs_is_refused_whole(
    pg: Cluster, pg_url: str
) -> None:
    """The run's status is read before the expansion takes the run's lock (last, as a
    completion does) and read again under it: a cancel that commits in between makes the
    expansion start again, find the run cancelled, and add nothing."""
    db = pg_url.rsplit("/", 1)[1]
    with PostgresStore(pg_url) as m:
        run_id = m.submit(run_of(expander("g#0"), job("c#0", deps=["g#0"])))
        (g,) = m.claim("x", "w", LEASE)
        plan = Expansion([job("n#0")], not_taken=[job("t#0")], join=joining("n#0"))
        with pg.connect(db) as other:
            other.execute("BEGIN")
            other.execute("UPDATE elfc.runs SET status = 'cancelled' WHERE id = %s", (run_id,))
            outcome: list[bool] = []
            expanding = threading.Thread(target=lambda: outcome.append(m.expand(g.id, "w", plan)))
            expanding.start()
            wait_until(
                lambda: pg.sql(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = "
                    "'Lock' AND query LIKE 'SELECT status FROM elfc.runs%%'",
                    db,
                ),
                10,
                "the expansion waiting for the run's lock",
            )
            other.execute("COMMIT")
            expanding.join(timeout=30)
        assert outcome == [False]
        assert [j.key for j in m.list_jobs(run_id)] == ["g#0", "c#0"]
        got = m.get_job(g.id)
        assert got is not None and (got.status, got.task) == ("cancelled", "@expand")
        info = m.run_info(run_id)
        assert info is not None and info.total == 2 and info.counts["not_taken"] == 0


# -- URLs and passwords --------------------------------------------------------------------


def test_both_schemes_open_it_and_the_password_is_never_shown(
    pg: Cluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD")
    secret = quote(pg.password, safe="")
    with_password = pg_url.replace(f"{pg.user}@", f"{pg.user}:{secret}@")
    for url in (with_password, with_password.replace("postgresql://", "postgres://", 1)):
        with open_mycelium(url) as m:
            m.submit(fanout(1))
            assert pg.password not in m.url and secret not in repr(m)
            assert m.url == mask_url(url) and ":***@" in m.url
    wrong = pg_url.replace(f"{pg.user}@", f"{pg.user}:not-{secret}@")
    with pytest.raises(MyceliumError, match="password authentication failed") as caught:
        open_mycelium(wrong)
    assert "not-" not in str(caught.value)


def test_the_password_comes_from_pgpassword_or_a_pgpass_file(
    pg: Cluster, pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with open_mycelium(pg_url) as m:  # $PGPASSWORD, set by the fixture
        m.submit(fanout(1))
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "missing"))
    with pytest.raises(MyceliumError, match="password") as caught:
        open_mycelium(pg_url)
    assert pg.url("") in str(caught.value) or "127.0.0.1" in str(caught.value)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{pg.host}:{pg.port}:*:{pg.user}:{pg.password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with open_mycelium(pg_url) as m:
        assert len(m.list_runs()) == 1


def test_several_hosts_are_tried_in_order(pg: Cluster, pg_url: str) -> None:
    db = pg_url.rsplit("/", 1)[1]
    dead = closed_port()
    url = f"postgresql://{pg.user}@127.0.0.1:{dead},{pg.host}:{pg.port}/{db}?connect_timeout=5"
    with open_mycelium(url) as m:
        m.submit(fanout(2))
        assert len(drain(m)) == 2
    writable = url + "&target_session_attrs=read-write"
    with open_mycelium(writable) as m:
        assert m.list_runs()[0].status == "succeeded"


def test_an_unreachable_server_fails_fast_with_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://u:{SECRET}@127.0.0.1:{closed_port()}/db"
    start = time.monotonic()
    with pytest.raises(MyceliumError, match="cannot connect to the mycelium") as caught:
        open_mycelium(url)
    assert time.monotonic() - start < 5
    assert SECRET not in str(caught.value) and "postgresql://u:***@127.0.0.1" in str(caught.value)


def test_a_malformed_url_is_refused_with_the_form_to_use() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(MyceliumError, match="use postgresql://user@host:5432/dbname") as caught:
        open_mycelium(f"postgresql://u:{SECRET}@h/db?nonsense_option=1")
    assert SECRET not in str(caught.value)


def test_a_password_in_the_query_string_is_refused_unshown() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(MyceliumError, match=r"\?password=.*PGPASSWORD") as caught:
        open_mycelium(f"postgresql://u@127.0.0.1:1/db?password={SECRET}")
    assert SECRET not in str(caught.value)


def test_worker_command_lines_carry_the_password_in_pgpassword() -> None:
    url, env = child_url_and_env(f"postgresql://elfc:{SECRET}@h1:5432,h2:5432/runs")
    assert url == "postgresql://elfc@h1:5432,h2:5432/runs"
    assert env is not None and env["PGPASSWORD"] == SECRET


def test_without_psycopg_opening_fails_with_the_install_hint() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import elfc, elfc.cli.main, elfc.mycelium.urls, elfc.mycelium.postgres\n"
        "from elfc.mycelium.urls import open_mycelium\n"
        "assert sys.modules['psycopg'] is None\n"
        "try:\n"
        f"    open_mycelium('postgresql://u:{SECRET}@127.0.0.1:1/db')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("MyceliumError") and "pip install 'elfc[postgres]'" in out.stdout
    assert SECRET not in out.stdout


# -- notifications ---------------------------------------------------------------------------


def test_a_waiting_worker_wakes_within_milliseconds_of_a_submit(pg_url: str) -> None:
    with PostgresStore(pg_url) as waiter, PostgresStore(pg_url) as submitter:
        waiter.wait_for_work("e", 0.01)  # the first call returns at once: now it listens
        delays = []
        for _ in range(5):
            timer = threading.Timer(0.2, submitter.submit, args=(fanout(1),))
            timer.start()
            start = time.monotonic()
            waiter.wait_for_work("e", 10.0)
            delays.append(time.monotonic() - start - 0.2)
            timer.join()
            assert len(waiter.claim("e", "w", LEASE)) == 1
        assert sorted(delays)[2] < 0.1, delays


def test_a_killed_listen_connection_falls_back_to_polling(pg: Cluster, pg_url: str) -> None:
    with PostgresStore(pg_url) as waiter, PostgresStore(pg_url) as submitter:
        waiter.wait_for_work("e", 0.01)
        assert waiter._listener is not None
        pid = waiter._listener.info.backend_pid
        pg.sql("SELECT pg_terminate_backend(%s)", pid)
        timer = threading.Timer(0.3, submitter.submit, args=(fanout(1),))
        timer.start()
        deadline = time.monotonic() + 10
        while not waiter.claim("e", "w", LEASE):
            assert time.monotonic() < deadline, "the work was never noticed"
            waiter.wait_for_work("e", 5.0)
        timer.join()


# -- faults -----------------------------------------------------------------------------------


class Proxy:
    """A TCP relay to the server that, once armed, lets the next ``COMMIT`` through and then
    cuts the connection instead of relaying the server's answer: the commit happened, but the
    client cannot know it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            held = threading.Event()
            for args in ((client, server, held, True), (server, client, held, False)):
                threading.Thread(target=self._pipe, args=args, daemon=True).start()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, held: threading.Event, upstream: bool
    ) -> None:
        try:
            while data := src.recv(65536):
                if held.is_set():
                    self.cut.set()  # the server's answer to the COMMIT: never delivered
                    break
                if upstream and b"COMMIT" in data and self.armed.is_set():
                    self.armed.clear()
                    held.set()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()


def test_a_commit_whose_answer_is_lost_is_read_back_not_sent_again(
    pg: Cluster, pg_url: str
) -> None:
    proxy = Proxy(pg.host, pg.port)
    db = pg_url.rsplit("/", 1)[1]
    try:
        with PostgresStore(f"postgresql://{pg.user}@127.0.0.1:{proxy.port}/{db}") as m:
            proxy.armed.set()
            run_id = m.submit(fanout(3))
            assert proxy.cut.is_set()
            assert [r.id for r in m.list_runs()] == [run_id]  # written once, not twice
            claimed = m.claim("e", "w", LEASE, 3)
            proxy.cut.clear()
            proxy.armed.set()
            # Resent after its commit, the completion would find the jobs done and say False.
            assert m.complete_many("w", [(c.id, b"1") for c in claimed]) == [True] * 3
            assert proxy.cut.is_set()
            assert m.run_status(run_id) == "succeeded"
    finally:
        proxy.close()


def _store_work(url: str, elf: str, out: Any, up: Any) -> None:
    """Child process: claim and complete ``elf``'s jobs through faults until none are left."""
    done = []
    with open_mycelium(url) as m:
        up.put(os.getpid())
        while True:
            claimed = m.claim(elf, f"w{os.getpid()}", LEASE, 8)
            if not claimed:
                if not any(r.status == "running" for r in m.list_runs(1)):
                    break
                m.wait_for_work(elf, 0.2)
                continue
            accepted = m.complete_many(f"w{os.getpid()}", [(c.id, b"1") for c in claimed])
            done += [c.id for c, ok in zip(claimed, accepted, strict=True) if ok]
    out.put(done)


@pytest.mark.parametrize("fault", ["terminate connections", "restart the server", "crash"])
def test_processes_ride_out_server_faults_and_finish_each_job_once(
    fault: str, pg: Cluster, pg_url: str
) -> None:
    if fault in ("restart the server", "crash") and pg.data is None:
        pytest.skip("ELFC_PG_URL names a server these tests cannot restart")
    ctx = multiprocessing.get_context("spawn")
    with PostgresStore(pg_url) as m:
        run_id = m.submit(fanout(3000))
        out, up = ctx.Queue(), ctx.Queue()
        procs = [ctx.Process(target=_store_work, args=(pg_url, "e", out, up)) for _ in range(3)]
        for p in procs:
            p.start()
        try:
            for _ in procs:
                up.get(timeout=60)  # every worker connected before the fault
            wait_until(lambda: _done(m, run_id) > 300, 60, "the workers to get going")
            if fault == "restart the server":
                pg.restart(down=1.0, mode="fast")
            elif fault == "crash":
                pg.restart(down=1.0, mode="immediate")  # the server's processes are killed
            else:
                for _ in range(10):
                    pg.sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'elfc' AND pid <> pg_backend_pid()"
                    )
                    time.sleep(0.05)
            assert m.wait_for_run(run_id, 120) == "succeeded"
            done = [job for _ in procs for job in out.get(timeout=60)]
        finally:
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()
        jobs = m.list_jobs(run_id)
        assert {j.status for j in jobs} == {"succeeded"} and len(jobs) == 3000
        assert len(m.results(run_id, [j.key for j in jobs])) == 3000
        if fault == "crash":
            # A crash may cost a worker's last asynchronous commits (claims, completions): those
            # jobs ran again, but each kept one result, from the worker that held its lease.
            assert set(done) == {j.id for j in jobs}
        else:
            assert len(done) == len(set(done)) == 3000  # each job's result accepted once
            assert sum(j.attempts for j in jobs) == 3000  # no job was claimed twice


def _done(m: PostgresStore, run_id: str) -> int:
    info = m.run_info(run_id)
    return 0 if info is None else info.counts["succeeded"]


def test_a_read_only_role_inspects_but_cannot_write(
    pg: Cluster, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PostgresStore(pg_url) as m:
        run_id = m.submit(fanout(2))
    db = pg_url.rsplit("/", 1)[1]
    reader = f"{db}_reader"
    pg.sql(f"CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw'")
    try:
        for grant in (
            f"GRANT CONNECT ON DATABASE {db} TO {reader}",
            f"GRANT USAGE ON SCHEMA elfc TO {reader}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA elfc TO {reader}",
        ):
            pg.sql(grant, db=db)
        monkeypatch.setenv("PGPASSWORD", "reader-pw")
        with PostgresStore(pg_url.replace(f"{pg.user}@", f"{reader}@")) as ro:
            info = ro.run_info(run_id[:6])
            assert info is not None and info.counts["ready"] == 2
            assert len(ro.list_jobs(run_id)) == 2 and ro.list_logs(run_id) == []
            with pytest.raises(MyceliumError, match="permission denied"):
                ro.submit(fanout(1))
        # An older schema is migrated by the first opener: not a role that may only read.
        _older(pg, db, 1)
        with pytest.raises(
            MyceliumError, match=r"older schema.*open it once as the role that owns"
        ):
            PostgresStore(pg_url.replace(f"{pg.user}@", f"{reader}@"))
        assert pg.sql("SELECT value FROM elfc.meta WHERE key = 'schema'", db=db) == [("1",)]
    finally:
        pg.sql(f"DROP OWNED BY {reader}", db=db)
        pg.sql(f"DROP ROLE {reader}")


def test_elfc_run_on_postgresql_with_the_password_in_the_url(pg: Cluster, pg_url: str) -> None:
    url = pg_url.replace(f"{pg.user}@", f"{pg.user}:{quote(pg.password, safe='')}@")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    out = subprocess.run(
        [sys.executable, "-m", "elfc", "run", "examples/hello/pipeline.py:hello", "-a",
         "name=elves", "--mycelium", url],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "elves" in out.stdout
    assert pg.password not in out.stdout + out.stderr
    with PostgresStore(pg_url) as m:  # $PGPASSWORD, from the fixture
        (run,) = m.list_runs()
        assert run.status == "succeeded" and run.counts["succeeded"] == run.total
