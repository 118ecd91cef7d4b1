"""``connect()``: the user's view of a mycelium (submit runs, read their results)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from elfc.errors import ElfcError, JobFailure

if TYPE_CHECKING:
    from elfc.decorators import Pipeline
    from elfc.mycelium.base import Mycelium as Store
    from elfc.runtime.run import Run

P = ParamSpec("P")
R = TypeVar("R")


class Mycelium:
    """A connected mycelium. ``connect(url).submit(census, rounds=3)`` returns a ``Run``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, pipeline: Pipeline[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Run[R]:
        raise ElfcError("submitting to a mycelium is not available yet")

    def output(self, run_id: str, result_type: Any) -> Any:
        raise ElfcError("not available yet")

    def failures_of(self, run_id: str) -> list[JobFailure]:
        raise ElfcError("not available yet")


def connect(url: str | None = None) -> Mycelium:
    """Open a mycelium: ``sqlite:///path.db``, ``arango://user@host:8529/db``, or the default."""
    raise ElfcError("the mycelium is not available yet")
