"""``connect()``: the user's view of a mycelium (submit runs, read their results)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar

import msgspec

from elfc.compiler.compile import Compiled
from elfc.compiler.elves import elf_info
from elfc.compiler.text import function_source
from elfc.decorators import Handle
from elfc.errors import ElfConflict, JobFailure, SourceUnavailable
from elfc.model.ir import BuiltRun
from elfc.model.records import ElfRecord, RevisionRecord
from elfc.mycelium.store import Store
from elfc.mycelium.urls import open_mycelium
from elfc.runtime.revisions import elf_revisions
from elfc.runtime.run import Run, result_type, run_failures, run_output

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class PipelineLike(Protocol[P, R_co]):
    """What a submission needs of a pipeline (``elfc.Pipeline`` is one)."""

    def compiled(self) -> Compiled: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class Mycelium:
    """A connected mycelium. ``connect(url).submit(census, rounds=3)`` returns a ``Run``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def url(self) -> str:
        """The mycelium's URL, password masked."""
        return self.store.url

    def submit(self, pipeline: PipelineLike[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Run[R]:
        """Compile (cached), build the run's jobs with these arguments, and write them."""
        compiled = pipeline.compiled()
        run_id, _ = self.submit_built(compiled, args, kwargs)
        return Run(self.store, run_id, result_type(compiled.fn))

    def submit_built(
        self,
        compiled: Compiled,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        check: Callable[[BuiltRun], None] | None = None,
        replace_elves: bool = False,
        reuse: bool = False,
    ) -> tuple[str, BuiltRun]:
        """Build a compiled pipeline's jobs with these arguments and write them: (run id, jobs).

        ``check``, if given, sees the jobs before anything is written; what it raises
        propagates and nothing is submitted. Raises ``ElfConflict`` when an elf name of the
        run is registered in the mycelium with another class or configuration (its workers
        would take jobs they cannot run). With ``replace_elves`` (the caller starts the
        workers, which register the new definition), only a conflict with a worker that is
        alive now is refused. With ``reuse`` every job of the run reuses results as the jobs of
        a ``@task(cache=True)`` task do (``elfc run --reuse``).
        """
        compiled = compiled.require()
        built, handles = compiled.build_with_handles(args, kwargs)
        if reuse:
            built = msgspec.structs.replace(built, reuse=True)
        check_elves(self.store, handles, stale_ok=replace_elves)
        if check is not None:
            check(built)
        assert compiled.template is not None
        self.store.put_revisions(_revisions(compiled, compiled.template.revision, handles))
        run_id = self.store.submit(built, compiled.template.to_json())
        return run_id, built

    def run(self, run_id: str, result: Any = Any) -> Run[Any]:
        """A ``Run`` for an existing run id (or unique prefix)."""
        info = self.store.run_info(run_id)
        return Run(self.store, info.id if info else run_id, result)

    def output(self, run_id: str, tp: Any = Any) -> Any:
        """The value of a succeeded run, validated as ``tp``."""
        return run_output(self.store, run_id, tp)

    def failures_of(self, run_id: str) -> list[JobFailure]:
        """Each failed job of a run, with its stored failure."""
        return run_failures(self.store, run_id)

    def close(self) -> None:
        """Close the connection to the mycelium; the ``Run`` objects it made stop working."""
        self.store.close()

    def __enter__(self) -> Mycelium:
        """``with connect(url) as m: ...`` closes the connection at the end of the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LIVE_WORKER = 60.0
"""A worker with a heartbeat this recent (seconds) is taken to be alive."""


def check_elves(store: Store, handles: dict[str, Handle], stale_ok: bool = False) -> None:
    """Refuse handles whose name the mycelium knows as another class or configuration.

    ``stale_ok``: ignore a conflicting registration that no live worker serves.
    """
    known = {r.name: r for r in store.list_elves()}
    live: set[str] | None = None
    for name, handle in sorted(handles.items()):
        record = known.get(name)
        differs = None if record is None else registered_otherwise(record, handle)
        if differs is None:
            continue
        theirs, mine = differs
        if stale_ok:
            if live is None:
                now = time.time()
                live = {w.elf for w in store.list_workers() if now - w.heartbeat < LIVE_WORKER}
            if name not in live:
                continue
        raise ElfConflict(
            f"elf {name!r} is registered in {store.url} as {theirs}, but this run defines it as "
            f"{mine} (named at "
            f"{handle.location[0]}:{handle.location[1]}); workers of one would take the other's jobs. Give one of them "
            "another name, or start the workers of the new definition first (they register it)"
        )


def registered_otherwise(record: ElfRecord, handle: Handle) -> tuple[str, str] | None:
    """(the registered definition, the handle's) when they differ in class or configuration."""
    info = elf_info(handle.cls)
    if (record.module, record.cls, record.config) == (info.module, info.qualname, handle.config):
        return None
    theirs = f"{record.module}.{record.cls}{_config_text(record.config)}"
    return theirs, f"{info.module}.{info.qualname}{_config_text(handle.config)}"


def _config_text(config: str) -> str:
    return "" if config in ("", '{"args":[],"kwargs":{}}') else f" with {config}"


def _revisions(
    compiled: Compiled, revision: str, handles: dict[str, Handle]
) -> list[RevisionRecord]:
    fn = compiled.fn
    try:
        text = function_source(fn).text
    except SourceUnavailable:
        text = ""
    out = [
        RevisionRecord(
            hash=revision, kind="pipeline", qualname=compiled.name,
            module=fn.__module__, source=text, doc=fn.__doc__,
        )
    ]  # fmt: skip
    seen: set[type] = set()
    for h in handles.values():
        if h.cls in seen:
            continue
        seen.add(h.cls)
        out += elf_revisions(elf_info(h.cls))
    return out


def connect(url: str | None = None) -> Mycelium:
    """Open a mycelium: ``sqlite:///path.db``, ``postgresql://user@host:5432/db``,
    ``arango://user@host:8529/db``, or the default
    (``$ELFC_MYCELIUM``, else ``[tool.elfc] mycelium`` in pyproject.toml, else
    ``sqlite:///.elfc/mycelium.db``).

    Usage: ``run = connect("sqlite:///runs.db").submit(census, rounds=3); run.wait()``.
    """
    return Mycelium(open_mycelium(url))
