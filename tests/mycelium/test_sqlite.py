"""The SQLite mycelium: the shared contract on a file in tmp_path, plus what only SQLite has."""

from __future__ import annotations

from pathlib import Path

import pytest

from .contract import MyceliumContract


class TestSQLiteMycelium(MyceliumContract):
    @pytest.fixture
    def mycelium_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/mycelium.db"
