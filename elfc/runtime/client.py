"""``connect()``: the user's view of a mycelium (submit runs, read their results)."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from elfc.compiler.elves import ElfInfo, elf_info
from elfc.errors import JobFailure
from elfc.model.ir import refs
from elfc.model.records import RevisionRecord
from elfc.mycelium.urls import open_mycelium
from elfc.runtime.run import Run
from elfc.runtime.values import convert, decode, evaluate

if TYPE_CHECKING:
    from elfc.decorators import Handle, Pipeline
    from elfc.model.ir import BuiltRun
    from elfc.mycelium.store import Store

P = ParamSpec("P")
R = TypeVar("R")


class Mycelium:
    """A connected mycelium. ``connect(url).submit(census, rounds=3)`` returns a ``Run``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def url(self) -> str:
        """The mycelium's URL, password masked."""
        return self.store.url

    def submit(self, pipeline: Pipeline[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Run[R]:
        """Compile (cached), build the run's jobs with these arguments, and write them."""
        run_id, _ = self.submit_built(pipeline, args, kwargs)
        return Run(self, run_id, result_type(pipeline))

    def submit_built(
        self, pipeline: Pipeline[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, BuiltRun]:
        compiled = pipeline.compiled().require()
        built, handles = compiled.build_with_handles(pipeline, args, kwargs)
        assert compiled.template is not None
        self.store.put_revisions(_revisions(pipeline, compiled.template.revision, handles))
        run_id = self.store.submit(built, compiled.template.to_json())
        return run_id, built

    def run(self, run_id: str, result: Any = Any) -> Run[Any]:
        """A ``Run`` for an existing run id (or unique prefix)."""
        info = self.store.run_info(run_id)
        return Run(self, info.id if info else run_id, result)

    def output(self, run_id: str, tp: Any = Any) -> Any:
        """The value of a succeeded run, validated as ``tp``."""
        info = self.store.run_info(run_id)
        if info is None:
            raise KeyError(run_id)
        expr = info.output
        if not isinstance(expr, dict):
            return convert(expr, tp) if tp is not Any else expr
        raw = self.store.results(info.id, refs(expr))
        value = evaluate(expr, {k: decode(v) for k, v in raw.items()})
        return value if tp is Any else convert(value, tp, where=f"the result of {info.pipeline}")

    def failures_of(self, run_id: str) -> list[JobFailure]:
        out = []
        for job in self.store.list_jobs(run_id, status="failed"):
            full = self.store.get_job(job.id)
            f = full.failure if full else None
            out.append(
                JobFailure(
                    job=job.id,
                    elf=job.elf,
                    task=job.task,
                    error_type=f.error_type if f else "unknown",
                    message=f.message if f else "",
                    traceback=f.traceback if f else "",
                )
            )
        return out

    def close(self) -> None:
        self.store.close()


def result_type(pipeline: Pipeline[Any, Any]) -> Any:
    try:
        return typing.get_type_hints(pipeline.fn).get("return", Any)
    except Exception:  # unresolvable annotations: the plain value
        return Any


def _revisions(
    pipeline: Pipeline[Any, Any], revision: str, handles: dict[str, Handle]
) -> list[RevisionRecord]:
    from elfc.compiler.text import function_source
    from elfc.errors import SourceUnavailable

    try:
        text = function_source(pipeline.fn).text
    except SourceUnavailable:
        text = ""
    out = [
        RevisionRecord(
            hash=revision, kind="pipeline", qualname=pipeline.name,
            module=pipeline.fn.__module__, source=text, doc=pipeline.fn.__doc__,
        )
    ]  # fmt: skip
    seen: set[type] = set()
    for h in handles.values():
        if h.cls in seen:
            continue
        seen.add(h.cls)
        out += elf_revisions(elf_info(h.cls))
    return out


def elf_revisions(info: ElfInfo) -> list[RevisionRecord]:
    """The stored source of an elf class and of each of its tasks, at their revisions."""
    return [
        RevisionRecord(
            hash=info.revision, kind="elf", qualname=info.qualname, module=info.module,
            source=info.source, doc=info.doc,
        )
    ] + [
        RevisionRecord(
            hash=t.revision, kind="task", qualname=t.qualname, module=t.module,
            source=t.source, doc=t.doc, signature=f"{t.name}{t.signature}",
        )
        for t in info.tasks.values()
    ]  # fmt: skip


def connect(url: str | None = None) -> Mycelium:
    """Open a mycelium: ``sqlite:///path.db``, ``arango://user@host:8529/db``, or the default
    (``$ELFC_MYCELIUM``, else ``[tool.elfc] mycelium`` in pyproject.toml, else
    ``sqlite:///.elfc/mycelium.db``).

    Usage: ``run = connect("sqlite:///runs.db").submit(census, rounds=3); run.wait()``.
    """
    return Mycelium(open_mycelium(url))
