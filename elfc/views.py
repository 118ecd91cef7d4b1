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
import difflib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from elfc.errors import ElfcError, JobFailure, MyceliumError, NotFound, UsageError
from elfc.model.ir import InputNode, Template
from elfc.model.records import (
    ElfRecord,
    FailureInfo,
    JobInfo,
    JobsBucket,
    JobSpan,
    LogRecord,
    RevisionRecord,
    RunInfo,
    WorkerInfo,
)
from elfc.model.status import (
    FINAL_RUN_STATUSES,
    JOB_STATUS_SEVERITY,
    JOB_STATUSES,
    RUN_STATUSES,
    final_count,
)
from elfc.mycelium.store import Store
from elfc.render import template_node
from elfc.runtime.run import run_failures, run_output
from elfc.runtime.values import decode
from elfc.runtime.worker import DEFAULT_LEASE

__all__ = [
    "Attempt",
    "Bar",
    "ElfProgress",
    "ElfView",
    "FailureGroup",
    "FailureView",
    "Frame",
    "JobDetail",
    "JobOrigin",
    "JobPage",
    "JobView",
    "Lane",
    "LogTail",
    "PipelineSource",
    "RunOutcome",
    "RunPicture",
    "RunSummary",
    "Timeline",
    "WorkerView",
    "elf_progress",
    "elves_view",
    "failure_groups",
    "failure_list",
    "failure_rows",
    "find_job",
    "find_revision",
    "find_run",
    "job_attempts",
    "job_detail",
    "job_origin",
    "job_page",
    "job_status",
    "job_view",
    "missing_sqlite_file",
    "node_states",
    "pipeline_source",
    "readable_note",
    "revision_diff",
    "run_fingerprint",
    "run_list",
    "run_outcome",
    "run_picture",
    "run_summary",
    "run_title",
    "run_value",
    "runs_fingerprint",
    "template_for_run",
    "timeline",
    "timeline_of",
    "timeline_of_buckets",
    "user_frames",
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
    arguments: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    """Jobs per status (only statuses that have jobs), in life-cycle order."""
    error: str | None = None
    cached: int = 0
    """Succeeded jobs that reused an earlier job's result instead of running."""

    def duration(self, now: float | None = None) -> float:
        """Seconds from submission to the end (to ``now`` while running)."""
        end = self.finished if self.finished is not None else (now or time.time())
        return max(0.0, end - self.created)


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
        arguments=dict(info.arguments),
        counts={s: info.counts[s] for s in JOB_STATUSES if info.counts.get(s)},
        error=info.error,
        cached=info.cached,
    )


def run_list(
    store: Store,
    status: str | None = None,
    pipeline: str | None = None,
    prefix: str = "",
    limit: int = 50,
) -> list[RunSummary]:
    """The newest runs (``elfc runs`` and the dashboard): with ``status``, a pipeline name
    containing ``pipeline``, an id starting with ``prefix``; newest first."""
    if status is not None and status not in RUN_STATUSES:
        raise UsageError(f"no run status {status!r}: give one of {', '.join(RUN_STATUSES)}")
    return [run_summary(i) for i in store.find_runs(status, pipeline, prefix.strip(), limit)]


def runs_fingerprint(store: Store, limit: int = 50) -> tuple[object, ...]:
    """Changes whenever a run is submitted, or one of the ``limit`` newest running runs makes
    progress or settles (a settled run does not change, so it is not read)."""
    newest = [i.id for i in store.list_runs(1)]
    running = store.find_runs(status="running", limit=limit)
    return (*newest, *((i.id, tuple(i.counts.items())) for i in running))


def run_fingerprint(store: Store, run_id: str) -> tuple[object, ...]:
    """Changes whenever a job of the run changes status (or the run does)."""
    info = store.run_info(run_id)
    return () if info is None else (info.status, tuple(info.counts.items()), info.finished)


def run_value(store: Store, info: RunInfo) -> tuple[bool, Any]:
    """``(True, value)`` for a succeeded run, ``(False, None)`` otherwise."""
    if info.status != "succeeded":
        return False, None
    return True, run_output(store, info.id)


@dataclass(frozen=True)
class ElfProgress:
    """One elf's share of a run: the row of a progress display."""

    elf: str
    done: int
    total: int
    running: int
    failed: int
    skipped: int


def job_status(job: JobInfo) -> str:
    """A job's status as tables show it: ``succeeded (cached)`` for a job that reused an
    earlier job's result without running."""
    return f"{job.status} (cached)" if job.cached else job.status


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
    states: dict[str, dict[str, int]] = {}
    for node, counts in store.node_counts(run_id).items():
        per = states.setdefault(template_node(node), {})
        for status, n in counts.items():
            per[status] = per.get(status, 0) + n
    return {node: dict(sorted(c.items())) for node, c in sorted(states.items())}


# -- a run's jobs, a page at a time ----------------------------------------------------------


@dataclass(frozen=True)
class JobPage:
    """One page of a run's job table."""

    run: str
    status: str | None
    offset: int
    limit: int
    total: int
    """Jobs of the run with ``status`` (all of them without)."""
    jobs: list[JobInfo]


def job_page(
    store: Store, run_id: str, status: str | None = None, offset: int = 0, limit: int = 100
) -> JobPage:
    """Jobs ``offset`` to ``offset + limit`` of the run, in ``seq`` order; the backend reads
    only that page, so a run of 100,000 jobs costs what a run of 100 does."""
    if status is not None and status not in JOB_STATUSES:
        raise UsageError(f"no job status {status!r}: give one of {', '.join(JOB_STATUSES)}")
    if limit < 1 or limit > 1000:
        raise UsageError(f"a page holds 1 to 1000 jobs, not {limit}")
    info = find_run(store, run_id)
    total = info.total if status is None else info.counts.get(status, 0)
    offset = min(max(offset, 0), max(total - 1, 0))
    jobs = store.page_jobs(info.id, status, offset, limit)
    return JobPage(info.id, status, offset, limit, total, jobs)


# -- a run's timeline ---------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """A job, or consecutive jobs merged where they are too short to tell apart."""

    start: float
    end: float
    status: str
    """The worst status of the jobs in the bar."""
    jobs: int
    key: str
    """The key of its first job."""


@dataclass(frozen=True)
class Lane:
    """One worker of one elf instance: what it ran, and when."""

    elf: str
    worker: str
    bars: list[Bar]
    jobs: int
    busy: float
    """Seconds spent running jobs."""


@dataclass(frozen=True)
class Timeline:
    """A Gantt chart of a run: a lane per elf instance and worker."""

    start: float
    end: float
    lanes: list[Lane]
    waiting: int
    """Jobs never started (pending, ready, skipped, cancelled before a claim)."""
    merged: bool
    """Bars stand for several jobs (the run has more than the chart shows one by one)."""


def timeline(store: Store, run_id: str, max_bars: int = 3000, now: float | None = None) -> Timeline:
    """The run's jobs laid out per (elf, worker) over time, at most about ``max_bars`` bars:
    past that, jobs of a lane that follow each other closer than the chart can show are
    merged into one bar (coloured by the worst of their statuses)."""
    info = find_run(store, run_id)
    now = time.time() if now is None else now
    if info.total <= max_bars:
        return timeline_of(store.job_spans(info.id), info.created, max_bars, now)
    # Too many jobs to send one by one: the store groups them into slices of time per worker.
    end = info.finished if info.finished is not None else now
    grain = max(end - info.created, 1e-3) / SLICES
    buckets = store.job_buckets(info.id, info.created, grain, now)
    return timeline_of_buckets(buckets, info, max_bars)


SLICES = 400
"""Slices of a large run's time per worker lane: its timeline's resolution."""


def timeline_of_buckets(buckets: Sequence[JobsBucket], info: RunInfo, max_bars: int) -> Timeline:
    """The timeline of a large run from its jobs grouped per worker and slice of time; with
    more lanes than ``max_bars`` allows, neighbouring slices are merged further."""
    lanes: dict[tuple[str, str], list[JobsBucket]] = {}
    for bucket in buckets:
        lanes.setdefault((bucket.elf, bucket.worker), []).append(bucket)
    factor = max(1, -(-len(buckets) // max(max_bars, 1)))
    out = []
    for (elf, worker), group in sorted(lanes.items()):
        bars: list[Bar] = []
        slots: list[int] = []
        for b in group:
            if bars and b.slot // factor == slots[-1]:
                last = bars[-1]
                worse = min(last.status, b.status, key=_severity)
                end = max(last.end, b.end)
                bars[-1] = Bar(last.start, end, worse, last.jobs + b.jobs, last.key)
            else:
                bars.append(Bar(b.start, b.end, b.status, b.jobs, b.key))
                slots.append(b.slot // factor)
        jobs = sum(b.jobs for b in group)
        out.append(Lane(elf, worker, bars, jobs, sum(b.busy for b in group)))
    started = sum(lane.jobs for lane in out)
    start = min([info.created, *(b.start for b in buckets)])
    end = max([start, *(b.end for b in buckets)])
    return Timeline(start, end, out, info.total - started, merged=True)


def timeline_of(spans: Sequence[JobSpan], created: float, max_bars: int, now: float) -> Timeline:
    """The timeline from each job's span (a run created at ``created``, seen at ``now``)."""
    lanes: dict[tuple[str, str], list[tuple[float, float, str, str]]] = {}
    waiting = 0
    for span in spans:
        if span.started is None or span.worker is None:
            waiting += 1
            continue
        if span.finished is not None and span.finished >= span.started:
            end = span.finished
        else:
            end = now if span.status == "running" else span.started
        lanes.setdefault((span.elf, span.worker), []).append(
            (span.started, end, span.status, span.key)
        )
    start = min((b[0] for bars in lanes.values() for b in bars), default=created)
    start = min(start, created)
    end = max((b[1] for bars in lanes.values() for b in bars), default=start)
    count = sum(len(bars) for bars in lanes.values())
    grain = 0.0
    if count > max_bars:
        grain = (end - start) * len(lanes) / max(max_bars, 1)
    out = []
    for (elf, worker), bars in sorted(lanes.items()):
        bars.sort()
        merged: list[Bar] = []
        for b_start, b_end, status, key in bars:
            last = merged[-1] if merged else None
            if last is not None and grain and b_start - last.end <= grain:
                worse = min(last.status, status, key=_severity)
                merged[-1] = Bar(last.start, max(last.end, b_end), worse, last.jobs + 1, last.key)
            else:
                merged.append(Bar(b_start, b_end, status, 1, key))
        busy = sum(b[1] - b[0] for b in bars)
        out.append(Lane(elf, worker, merged, len(bars), busy))
    return Timeline(start, end, out, waiting, merged=grain > 0)


def _severity(status: str) -> int:
    return (
        JOB_STATUS_SEVERITY.index(status)
        if status in JOB_STATUS_SEVERITY
        else len(JOB_STATUS_SEVERITY)
    )


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


@dataclass(frozen=True)
class Attempt:
    """One attempt at a job: who ran it, from when to when, and how it ended."""

    number: int
    worker: str
    started: float
    ended: float | None
    outcome: str
    """The status it ended in (``running`` while it runs); ``ready`` means retried."""
    note: str = ""


def job_attempts(job: JobInfo) -> list[Attempt]:
    """The job's attempts, from its status history (each claim is a ``running`` event whose
    note is the worker's id)."""
    attempts: list[Attempt] = []
    history = list(job.history)
    for i, event in enumerate(history):
        if event.status != "running":
            continue
        after = history[i + 1] if i + 1 < len(history) else None
        attempts.append(
            Attempt(
                number=len(attempts) + 1,
                worker=event.note,
                started=event.time,
                ended=None if after is None else after.time,
                outcome="running" if after is None else after.status,
                note="" if after is None else after.note,
            )
        )
    return attempts


@dataclass(frozen=True)
class PipelineSource:
    """The source of the run's pipeline at its revision, and which of its lines made a job."""

    record: RevisionRecord
    first_line: int
    """The file line of the source's first line."""
    highlight: int | None
    """The file line of the call that made the job (``None``: not in this source)."""


def pipeline_source(store: Store, job: JobInfo, origin: JobOrigin | None) -> PipelineSource | None:
    """The pipeline's stored source with the job's line, when both are stored."""
    info = store.run_info(job.run)
    raw = store.get_template(info.revision) if info is not None else None
    if raw is None:
        return None
    try:
        template = Template.from_json(raw)
    except MyceliumError:  # the job can be shown without its pipeline's source
        return None
    record = store.get_revision(template.revision)
    if record is None or record.kind != "pipeline":
        return None
    lines = record.source.splitlines()
    first = template.line
    # The template's line is the ``def``; the stored source may start at a decorator above it.
    for index, text in enumerate(lines):
        if text.lstrip().startswith(("def ", "async def ")):
            first = template.line - index
            break
    highlight = None
    if (
        origin is not None
        and origin.line is not None
        and not origin.inlined
        and 0 <= origin.line - first < len(lines)
    ):
        highlight = origin.line
    return PipelineSource(record, first, highlight)


@dataclass(frozen=True)
class JobDetail:
    """Everything the dashboard's job page shows."""

    job: JobInfo
    origin: JobOrigin | None
    task_source: RevisionRecord | None
    pipeline: PipelineSource | None
    attempts: list[Attempt]
    result: Any
    """The decoded result (``None`` also when there is none: see ``has_result``)."""
    has_result: bool


def job_detail(store: Store, job_id: str) -> JobDetail:
    """The job (id, prefix or ``RUN/KEY``) with its decoded result, attempts, origin, the
    pipeline's source and the task's source at the job's revision."""
    view = job_view(store, job_id)
    job = view.job
    has_result = job.result is not None
    result = decode(job.result) if job.result is not None else None
    return JobDetail(
        job,
        view.origin,
        view.task_source,
        pipeline_source(store, job, view.origin),
        job_attempts(job),
        result,
        has_result,
    )


def revision_diff(store: Store, old: str, new: str) -> list[str]:
    """The unified diff from the source stored for revision ``old`` to that of ``new``
    (hashes or unique prefixes), one line per item, without line ends; ``[]`` when equal."""
    a, b = find_revision(store, old), find_revision(store, new)
    return list(
        difflib.unified_diff(
            a.source.splitlines(),
            b.source.splitlines(),
            f"{a.qualname} @ {a.hash}",
            f"{b.qualname} @ {b.hash}",
            lineterm="",
        )
    )


# -- failures, elves and workers ------------------------------------------------------------


@dataclass(frozen=True)
class FailureView:
    """A distinct failure (one per traceback) and some of the jobs that raised it."""

    failure: FailureInfo
    jobs: list[JobInfo]


def failure_rows(store: Store, limit: int = 50) -> list[FailureInfo]:
    """The ``limit`` most recently seen failures: the distinct ones jobs raised, and each run's
    own (its value refused, with :attr:`FailureInfo.run` set), newest first."""
    rows = [*store.list_failures(limit), *store.list_run_failures(limit)]
    rows.sort(key=lambda f: f.last_seen, reverse=True)
    return rows[: max(limit, 0)]


def failure_list(store: Store, limit: int = 50, jobs: int = 10) -> list[FailureView]:
    """Distinct failures, most recently seen first, each with up to ``jobs`` of its jobs (a
    run's own failure has none: its ``run`` says whose it is)."""
    return [
        FailureView(f, [] if f.run is not None else store.failure_jobs(f.hash, jobs))
        for f in failure_rows(store, limit)
    ]


class Frame(msgspec.Struct, frozen=True, array_like=True):
    """One frame of a traceback: ``(file, line, function)``."""

    file: str
    line: int
    function: str


_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<function>.+)$')
_NOT_USERS = re.compile(
    r"[/\\](?:site|dist)-packages[/\\]|[/\\]lib[/\\]python\d+(?:\.\d+)?[/\\]|^<frozen |"
    r"[/\\]elfc[/\\](?:runtime|mycelium|compiler|model|cli)[/\\]"
)
"""Frames that are not the user's: installed packages, the standard library, elfc itself."""


def user_frames(traceback: str) -> tuple[Frame, ...]:
    """The frames of a stored traceback that are the user's code, outermost first (all of its
    frames when none is: a task of an installed package); ``()`` for a traceback without
    frames (a failure elfc made: ``WorkerLost``, ``UndecodableJob``...)."""
    frames = [
        Frame(m["file"], int(m["line"]), m["function"].strip())
        for m in map(_FRAME.match, traceback.splitlines())
        if m is not None
    ]
    own = [f for f in frames if _NOT_USERS.search(f.file) is None]
    return tuple(own or frames)


class FailureGroup(msgspec.Struct, frozen=True):
    """The failures that share an exception type, a task and the user's frames of their
    traceback: one bug, whatever the messages say (``elfc failures``)."""

    error_type: str
    elf: str
    task: str
    frames: tuple[Frame, ...]
    """Where it was raised, outermost first (``()``: a failure without a traceback)."""
    message: str
    """The latest failure's message."""
    messages: tuple[str, ...]
    """Its distinct messages, latest first (at most :data:`GROUP_MESSAGES`)."""
    count: int
    """Times these failures were recorded (every failed attempt)."""
    first_seen: float
    last_seen: float
    revision: str
    """The task revision of the latest failure."""
    hash: str
    """The latest failure's hash."""
    hashes: tuple[str, ...]
    traceback: str
    """The latest failure's traceback."""
    jobs: tuple[JobInfo, ...]
    """A sample of the jobs whose latest failure is one of these, newest run first."""
    run: str | None = None
    """For a run's own failure (its value refused, see :attr:`FailureInfo.run`): the run, as
    a group of its own without jobs; ``None`` for failures jobs raised."""


GROUP_MESSAGES = 5


def failure_groups(store: Store, limit: int = 20, sample: int = 5) -> list[FailureGroup]:
    """The ``limit`` most recently seen groups of failures (see :class:`FailureGroup`), each
    with up to ``sample`` of its jobs, and runs' own failures (one group each), newest first.
    Reads the ``20 * limit`` most recently seen distinct failures (a failure seen longer ago
    than those is not counted)."""
    grouped: dict[tuple[Any, ...], list[FailureInfo]] = {}
    for f in store.list_failures(max(limit, 1) * 20):  # newest first
        frames = user_frames(f.traceback)
        grouped.setdefault((f.error_type, f.elf, f.task, frames), []).append(f)
    out = [_run_group(f) for f in store.list_run_failures(limit)]
    for (error_type, elf, task, frames), failures in list(grouped.items())[:limit]:
        latest = failures[0]
        jobs: list[JobInfo] = []
        for f in failures:
            if len(jobs) >= sample:
                break
            jobs.extend(store.failure_jobs(f.hash, sample - len(jobs)))
        out.append(
            FailureGroup(
                error_type,
                elf,
                task,
                frames,
                latest.message,
                tuple(dict.fromkeys(f.message for f in failures))[:GROUP_MESSAGES],
                sum(f.count for f in failures),
                min(f.first_seen for f in failures),
                latest.last_seen,
                latest.revision,
                latest.hash,
                tuple(f.hash for f in failures),
                latest.traceback,
                tuple(jobs),
            )
        )
    out.sort(key=lambda g: g.last_seen, reverse=True)
    return out[: max(limit, 0)]


def _run_group(f: FailureInfo) -> FailureGroup:
    """A run's own failure as a group of its own: one run, no jobs, no traceback."""
    return FailureGroup(
        f.error_type,
        f.elf,
        f.task,
        (),
        f.message,
        (f.message,),
        f.count,
        f.first_seen,
        f.last_seen,
        f.revision,
        f.hash,
        (f.hash,),
        f.traceback,
        (),
        f.run,
    )


@dataclass(frozen=True)
class WorkerView:
    info: WorkerInfo
    age: float
    """Seconds since its last heartbeat."""
    stale: bool
    """No heartbeat for longer than a lease: the worker is gone or stuck."""


@dataclass(frozen=True)
class ElfView:
    """An elf instance and the workers that serve (or served) it."""

    name: str
    record: ElfRecord | None
    """``None`` for workers of an elf instance never recorded with ``put_elf``."""
    workers: list[WorkerView]

    @property
    def live(self) -> int:
        return sum(not w.stale for w in self.workers)


def elves_view(
    store: Store, now: float | None = None, stale_after: float = DEFAULT_LEASE
) -> list[ElfView]:
    """Every elf instance with its workers, by name; a worker is stale after ``stale_after``
    seconds without a heartbeat."""
    now = time.time() if now is None else now
    records = {e.name: e for e in store.list_elves()}
    workers: dict[str, list[WorkerView]] = {}
    for w in store.list_workers():
        age = max(0.0, now - w.heartbeat)
        workers.setdefault(w.elf, []).append(WorkerView(w, age, age > stale_after))
    return [
        ElfView(name, records.get(name), workers.get(name, []))
        for name in sorted(set(records) | set(workers))
    ]


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
    drawn = {node.id for node in template.nodes} | {r.id for r in template.regions}
    strays = sorted(set(states) - drawn)
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
    if info.cached:
        counts += f" ({info.cached} cached)"
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
