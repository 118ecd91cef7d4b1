"""elfc on a PostgreSQL mycelium: the set-up of ``elfc_bench`` on a fresh database."""

from __future__ import annotations

from common import Figures, Sizes
from elfc_bench import run_on
from pg_common import fresh_database


def run_round(sizes: Sizes) -> dict[str, Figures]:
    with fresh_database("elfc") as url:
        return {"elfc": run_on(url, sizes)}
