"""A throw-away PostgreSQL server for the tests, or the one ``ELFC_PG_URL`` names.

Without ``ELFC_PG_URL`` the session fixture runs ``initdb`` into a temporary folder and starts
the cluster with ``pg_ctl`` on a free port of 127.0.0.1 (and a unix socket in that folder),
stops it at the end and deletes the folder. PostgreSQL refuses to run as root, so under root
(CI) the cluster belongs to the ``postgres`` user (Debian's package makes it) and every
server command runs through ``runuser``. Logins over TCP need a password (scram-sha-256), so
the tests exercise the password path for real: it reaches the code under test through
``$PGPASSWORD``, never through a URL that a failure could print.

``ELFC_PG_URL=postgresql://user:pw@host:5432/postgres`` uses an existing server instead (the
user must be allowed to create databases); restart tests are skipped then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elfc.mycelium.urls import split_password

URL = os.environ.get("ELFC_PG_URL", "")
SERVER_USER = "postgres"
"""Who owns the cluster when the tests run as root."""


def binaries() -> Path | None:
    """The folder of the newest installed PostgreSQL's ``initdb`` and ``pg_ctl``."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclasses.dataclass
class Cluster:
    """A running server: ``url(db)`` gives a URL without the password (it is in
    ``password``), ``database()`` makes a fresh database, ``restart()`` stops and starts it."""

    host: str
    port: int
    user: str
    password: str
    bindir: Path | None = None
    data: Path | None = None
    run_as: str | None = None
    durable: bool = False
    """Keep PostgreSQL's fsync (benchmarks); the tests turn it off, which only risks data on
    an OS crash."""
    listen: str = "127.0.0.1"
    """The server's ``listen_addresses`` (the multi-host tests add their own namespaces')."""
    counter: Iterator[int] = dataclasses.field(default_factory=itertools.count)
    prefix: str = dataclasses.field(default_factory=lambda: f"elfc_t{secrets.token_hex(3)}")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def connect(self, db: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(self.url(db), password=self.password, autocommit=True)

    def sql(self, statement: str, *params: Any, db: str = "postgres") -> list[tuple[Any, ...]]:
        with self.connect(db) as con:
            cur = con.execute(statement, params or None)
            return cur.fetchall() if cur.description else []

    def database(self) -> str:
        name = f"{self.prefix}_{next(self.counter)}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- a cluster of our own -------------------------------------------------------

    def _command(self, *argv: str) -> list[str]:
        command = [str(self.bindir / argv[0]) if self.bindir else argv[0], *argv[1:]]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.data is not None, "not a cluster of the tests' own"
        return subprocess.run(
            self._command("pg_ctl", "-D", str(self.data / "db"), *args),
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def start(self) -> None:
        assert self.data is not None
        options = (
            f"-c port={self.port} -c listen_addresses={self.listen} "
            f"-c unix_socket_directories={self.data} -c max_connections=300 "
            "-c shared_buffers=128MB"
        )
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self.ctl("-w", "-t", "60", "-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-w", "-t", "60", "-m", mode, "stop", check=False)

    def restart(self, down: float = 0.0, mode: str = "fast") -> None:
        """Stop the server (``mode`` ``immediate`` is a crash), wait ``down`` s, start it."""
        self.stop(mode)
        time.sleep(down)
        self.start()


def _own_cluster(bindir: Path, durable: bool = False) -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="elfc-pg-"))
    run_as = None
    if os.geteuid() == 0:
        run_as = SERVER_USER
        try:
            owner = pwd.getpwnam(run_as)
        except KeyError:
            pytest.skip(f"running as root and there is no {run_as!r} user to run PostgreSQL as")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    folder.chmod(0o700)
    password = secrets.token_urlsafe(12)
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    if run_as:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    cluster = Cluster("127.0.0.1", _free_port(), "elfc", password, bindir, folder, run_as, durable)
    subprocess.run(
        cluster._command(
            "initdb", "-D", str(folder / "db"), "-U", "elfc", f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync",
        ),
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def cluster(durable: bool = False) -> Iterator[Cluster]:
    """The server the tests use (see the module docstring); skips when there is none."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'elfc[postgres]'")
    if URL:
        bare, password = split_password(URL)
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(bare)
        yield Cluster(
            str(params.get("host", "localhost")),
            int(params.get("port", 5432)),
            str(params.get("user", "postgres")),
            password or os.environ.get("PGPASSWORD", ""),
        )
        return
    bindir = binaries()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL binaries (initdb) found and ELFC_PG_URL is not set: "
            "apt-get install postgresql, or point ELFC_PG_URL at a server"
        )
    yield from _own_cluster(bindir, durable)


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    with cluster() as server:
        yield server


@pytest.fixture
def pg_url(pg: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh empty database's URL; its password in ``$PGPASSWORD`` (children inherit it)."""
    monkeypatch.setenv("PGPASSWORD", pg.password)
    name = pg.database()
    try:
        yield pg.url(name)
    finally:
        pg.drop(name)
