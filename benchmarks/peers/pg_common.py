"""What the PostgreSQL peer benchmarks share: a fresh database per round on the server that
``benchmarks/pg_peers.py`` started (``$PG_PEERS_URL``, its password in ``$PGPASSWORD``)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new empty database on the benchmark's server, dropped afterwards; yields its URL."""
    admin = os.environ["PG_PEERS_URL"]
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
