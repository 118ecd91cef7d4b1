"""The read model: what to show about runs, jobs and revisions, as plain data.

The command line (``elfc runs``, ``jobs``, ``show``, ``graph --run``, ``run``'s progress) and,
later, the web dashboard show the same facts; this module computes them once from a mycelium.
Nothing here prints, draws or knows about terminals: the callers format these values. A
lookup that finds nothing raises :class:`~elfc.errors.NotFound` with a message that says how
to find the right id.

Usage::

    if missing_sqlite_file(url) is None:
        with open_mycelium(url) as store:
            view = job_view(store, "8c31f/n2#0")      # a job id, a prefix, or RUN/KEY
            print(view.job.status, view.origin)
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec

from elfc.errors import ElfcError, JobFailure, MyceliumError, NotFound
from elfc.model.ir import InputNode, Template
from elfc.model.records import JobInfo, LogRecord, RevisionRecord, RunInfo
from elfc.model.status import FINAL_RUN_STATUSES, final_count
from elfc.mycelium.store import Store
from elfc.render import count_states
from elfc.runtime.run import run_failures, run_output

__all__ = [
    "ElfProgress",
    "JobOrigin",
    "JobView",
    "LogTail",
    "RunOutcome",
    "RunPicture",
    "RunSummary",
    "elf_progress",
    "find_job",
    "find_revision",
    "find_run",
    "job_origin",
    "job_view",
    "missing_sqlite_file",
    "node_states",
    "readable_note",
    "run_outcome",
    "run_picture",
    "run_summary",
    "run_title",
    "template_for_run",
]


# -- the mycelium to read --------------------------------------------------------------


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL when it does not exist, else ``None``.

    Reading must not create an empty mycelium (that would hide a wrong path or directory),
    so inspection commands check this before opening one.
    """
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = Path(url[len(prefix) :].split("?", 1)[0])
    return None if path.exists() else path


# -- finding things by id or prefix ------------------------------------------------------


def find_run(store: Store, run_id: str) -> RunInfo:
    """The run with this id or unique prefix; :class:`NotFound` otherwise."""
    info = store.run_info(run_id)
    if info is None:
        raise NotFound(f"no run {run_id!r} in {store.url}; list runs with `elfc runs`")
    return info


def find_job(store: Store, job_id: str) -> JobInfo:
    """The job with this id or unique prefix, or ``RUN/KEY`` (a run id or prefix and the
    job's key in it, as ``elfc run`` and :class:`~elfc.RunFailed` name jobs); :class:`NotFound`
    otherwise.
    """
    job = store.get_job(job_id)
    if job is None and "/" in job_id:
        run_part, _, key = job_id.partition("/")
        match = [j for j in store.list_jobs(run_part) if j.key == key]
        job = store.get_job(match[0].id) if match else None
    if job is None:
        raise NotFound(f"no job {job_id!r} in {store.url}; list jobs with `elfc jobs RUN`")
    return job


def find_revision(store: Store, revision: str) -> RevisionRecord:
    """The source stored for this revision hash or unique prefix; :class:`NotFound` otherwise."""
    record = store.get_revision(revision)
    if record is None:
        raise NotFound(f"no revision {revision!r} in {store.url}")
    return record


# -- counts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """A run in a list of runs: how far it got."""

    id: str
    pipeline: str
    status: str
    done: int
    """Jobs in a final status (succeeded, failed, skipped, cancelled)."""
    total: int
    failed: int
    created: float
    finished: float | None


def run_summary(info: RunInfo) -> RunSummary:
    return RunSummary(
        id=info.id,
        pipeline=info.pipeline,
        status=info.status,
        done=final_count(info.counts),
        total=info.total,
        failed=info.counts.get("failed", 0),
        created=info.created,
        finished=info.finished,
    )


@dataclass(frozen=True)
class ElfProgress:
    """One elf's share of a run: the row of a progress display."""

    elf: str
    done: int
    total: int
    running: int
    failed: int
    skipped: int


def elf_progress(info: RunInfo) -> list[ElfProgress]:
    """A row per elf of the run, by elf name."""
    return [
        ElfProgress(
            elf=elf,
            done=final_count(counts),
            total=sum(counts.values()),
            running=counts.get("running", 0),
            failed=counts.get("failed", 0),
            skipped=counts.get("skipped", 0),
        )
        for elf, counts in sorted(info.elf_counts.items())
    ]


def node_states(store: Store, run_id: str) -> dict[str, dict[str, int]]:
    """Job counts of a run per top-level template node, then per status (a run's graph)."""
    return count_states((job.node, job.status) for job in store.list_jobs(run_id))


# -- a job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOrigin:
    """Where the pipeline made a job: its call's line, or the inlined pipeline node."""

    pipeline: str
    """The run's (top-level) pipeline."""
    node: str
    """The job's node path: ``n3``, or ``n2/n1`` for a node of an inlined pipeline."""
    path: str | None = None
    line: int | None = None
    source: str = ""
    """The call's source text (empty for an inlined node: its line is in another pipeline)."""

    @property
    def inlined(self) -> bool:
        return "/" in self.node


def job_origin(store: Store, job: JobInfo) -> JobOrigin | None:
    """The line of the run's pipeline that made ``job``; ``None`` when the run's template
    is not stored or does not have the job's node.
    """
    info = store.run_info(job.run)
    raw = store.get_template(info.revision) if info is not None else None
    if raw is None:
        return None
    try:
        template = Template.from_json(raw)
    except MyceliumError:  # the job can be shown without its origin
        return None
    if "/" in job.node:
        return JobOrigin(template.pipeline, job.node)
    try:
        node = template.node(job.node)
    except KeyError:
        return None
    source = "" if isinstance(node, InputNode) else node.source
    return JobOrigin(template.pipeline, job.node, node.span.path, node.span.line, source)


@dataclass(frozen=True)
class JobView:
    """Everything ``elfc show`` shows about a job."""

    job: JobInfo
    origin: JobOrigin | None
    task_source: RevisionRecord | None
    """The source of the task at the job's revision (``None``: not stored)."""


def job_view(store: Store, job_id: str) -> JobView:
    """The job (id, prefix or ``RUN/KEY``, see :func:`find_job`) with its origin and source."""
    job = find_job(store, job_id)
    return JobView(job, job_origin(store, job), store.get_revision(job.revision))


# -- a run's picture -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunPicture:
    """What drawing a run needs, and what the drawer should be warned about."""

    template: Template
    states: dict[str, dict[str, int]]
    """Job counts per template node id, then per status."""
    title: str
    arguments: dict[str, object]
    warnings: tuple[str, ...] = ()
    """Why the picture may not match the run (another revision, jobs of unknown nodes)."""


def run_picture(store: Store, run_id: str, local: Template | None = None) -> RunPicture:
    """The run (id or prefix) drawn over ``local`` (the template compiled from the local
    source) when that is the run's revision, else over the template stored with it.
    """
    info = find_run(store, run_id)
    template, warnings = template_for_run(store, info, local)
    states = node_states(store, info.id)
    strays = sorted(set(states) - {node.id for node in template.nodes})
    if strays:
        warnings.append(
            f"jobs of run {info.id} belong to nodes the drawn template does not have "
            f"({', '.join(strays)}); they are not shown"
        )
    return RunPicture(template, states, run_title(info), dict(info.arguments), tuple(warnings))


def template_for_run(
    store: Store, info: RunInfo, local: Template | None
) -> tuple[Template, list[str]]:
    """The local template when it is the run's revision; else the one stored with the run
    (with a warning if there was a local one); else the local one with a warning. Raises
    :class:`ElfcError` when there is neither.
    """
    warnings = []
    if local is not None and local.pipeline != info.pipeline:
        warnings.append(f"run {info.id} is of the pipeline {info.pipeline}, not {local.pipeline}")
    if local is not None and local.revision == info.revision:
        return local, warnings
    stored = store.get_template(info.revision)
    if stored is not None:
        if local is not None:
            warnings.append(
                f"run {info.id} was submitted with pipeline revision {info.revision}; the local "
                f"source is revision {local.revision}. Drawing the template stored with the run."
            )
        return Template.from_json(stored), warnings
    if local is None:
        raise ElfcError(
            f"the mycelium holds no template for run {info.id} (revision {info.revision}): "
            f"give the pipeline TARGET to draw"
        )
    warnings.append(
        f"run {info.id} was submitted with pipeline revision {info.revision}; the local source "
        f"is revision {local.revision} and the mycelium holds no template for the run's. "
        f"Drawing the local template: nodes may not match the run's jobs."
    )
    return local, warnings


def run_title(info: RunInfo) -> str:
    """``census(rounds=3) · run 4f3723b1 · failed`` over the run's job counts."""
    name = info.pipeline.rpartition(":")[2]
    call = ", ".join(f"{k}={msgspec.json.encode(v).decode()}" for k, v in info.arguments.items())
    if len(call) > 60:
        call = call[:59] + "…"
    counts = ", ".join(f"{n} {status}" for status, n in info.counts.items() if n)
    return f"{name}({call}) · run {info.id} · {info.status}\n{counts or 'no jobs'}"


# -- a run's value and its task output -----------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """What ``elfc result`` shows: a settled run's value, or why it has none."""

    run: RunInfo
    value: object = None
    """The pipeline's value (plain JSON data) when the run succeeded."""
    failures: tuple[JobFailure, ...] = ()
    """Each failed job with its traceback, when the run failed."""

    @property
    def settled(self) -> bool:
        return self.run.status in FINAL_RUN_STATUSES


def run_outcome(store: Store, run_id: str, wait: float | None = None) -> RunOutcome:
    """The run (id or prefix) and its value or failures; with ``wait``, after waiting up to
    that many seconds for it to settle (the outcome may still be unsettled then)."""
    info = find_run(store, run_id)
    if wait is not None and info.status not in FINAL_RUN_STATUSES:
        store.wait_for_run(info.id, wait)
        info = find_run(store, info.id)
    if info.status == "succeeded":
        return RunOutcome(info, value=run_output(store, info.id))
    if info.status == "failed":
        return RunOutcome(info, failures=tuple(run_failures(store, info.id)))
    return RunOutcome(info)


class LogTail:
    """The task output of a run that is new since the last call: ``elfc logs -f`` and the
    output ``elfc run`` shows while it runs.

    Records are found by the time they were stored, looked up again from ``SLACK`` seconds
    before the newest seen: a record committed late, or stored by a host whose clock is
    behind, is still found (once: records are told apart by job, attempt and time). With
    ``skip_stored`` what is stored already is never returned (a retry shows only the output
    of its own attempts).
    """

    SLACK = 10.0

    def __init__(
        self, store: Store, run_id: str, key: str | None = None, *, skip_stored: bool = False
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.key = key
        self.since: float | None = None
        self.seen: set[tuple[str, int, float]] = set()
        if skip_stored:
            self.new()

    def new(self) -> list[LogRecord]:
        """Records not returned before, oldest first."""
        logs = self.store.list_logs(self.run_id, self.key, self.since)
        fresh = [log for log in logs if (log.job, log.attempt, log.time) not in self.seen]
        self.seen.update((log.job, log.attempt, log.time) for log in fresh)
        if logs:
            newest = max(log.time for log in logs) - self.SLACK
            self.since = newest if self.since is None else max(self.since, newest)
        return fresh


_EPOCH_NOTE = re.compile(r"\bretry at (\d{9,}(?:\.\d+)?)\b")


def readable_note(note: str) -> str:
    """A history note with its wall-clock seconds (``retry at 1796191779.011``, as stored)
    as a local time with its zone (``retry at 2026-12-02 13:04:05.011 UTC``)."""

    def local(found: re.Match[str]) -> str:
        at = datetime.datetime.fromtimestamp(float(found[1])).astimezone()
        return f"retry at {at.strftime('%Y-%m-%d %H:%M:%S')}.{at.microsecond // 1000:03d} {at:%Z}"

    return _EPOCH_NOTE.sub(local, note)
