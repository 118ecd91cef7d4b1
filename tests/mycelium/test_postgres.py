"""The PostgreSQL mycelium: the shared contract against a real server the tests start (see
``pg_cluster.py``), then what only PostgreSQL has: schema versions, URLs and passwords,
notifications, and the faults of a server on the network (restarts, killed connections)."""

from __future__ import annotations

import pytest

from .contract import MyceliumContract


class TestPostgresStore(MyceliumContract):
    @pytest.fixture
    def mycelium_url(self, pg_url: str) -> str:
        return pg_url
