"""Inspection: ``elfc runs``, ``jobs RUN``, ``show JOB``, ``failures``, ``source REVISION``."""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
from typing import TYPE_CHECKING, Any

import msgspec
from rich.markup import escape

from elfc.errors import MyceliumError
from elfc.model.status import JOB_STATUSES
from elfc.mycelium.urls import default_url, mask_url, open_mycelium
from elfc.views import (
    JobOrigin,
    failure_groups,
    find_revision,
    find_run,
    job_status,
    job_view,
    missing_sqlite_file,
    readable_note,
    run_list,
)

if TYPE_CHECKING:
    from elfc.model.records import FailureInfo, RunInfo
    from elfc.mycelium.store import Store

EPILOGS = {
    "runs": """\
examples:
  elfc runs --limit 5                         the five newest, with done/total and failures
  elfc runs --json | jq '.[0].status'         machine-readable, newest first
""",
    "jobs": """\
examples:
  elfc jobs 8c31 --status failed              a unique prefix of the run id is enough
  elfc jobs 8c31 --json                       with each job's arguments and history
""",
    "show": """\
JOB is a job id (or a unique prefix of one), or RUN/KEY as `elfc run` and failures name
jobs: a run id or prefix, a slash, and the job's key in the run. A run id (or a prefix no job
id has) shows the run: its status, job counts and why it failed.

examples:
  elfc show 8c31f/n2#0                        the job with key n2#0 in run 8c31f...
  elfc show 3f4b42                            a prefix of a job id (from `elfc jobs`)
  elfc show 8c31f0e2a1b4c5d6                  a run: its status and why it failed
""",
    "failures": """\
Failures are grouped by where they were raised: the exception type, the task and the
frames of the user's code in the traceback (file, function, line), whatever the messages
say, so that one bug is one entry. Each shows how often it was recorded, its messages, some
of its jobs (RUN/KEY, for `elfc show` and `elfc retry`) and the latest traceback. A run
whose jobs all succeeded but whose value its return annotation refused has an entry of its
own, naming the run.

examples:
  elfc failures --limit 10
  elfc failures --json | jq '.[].jobs[].run'
""",
    "source": """\
examples:
  elfc source 3fa2                            a revision hash from `elfc show`, or a prefix
  elfc source 3fa2 > task_then.py             the exact code a job ran, to diff with today's
""",
}


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOGS[name]
    p.add_argument("--mycelium", metavar="URL", help="mycelium URL (default: see `elfc -h`)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    if name in ("runs", "failures"):
        p.add_argument("--limit", type=int, default=20, metavar="N", help="how many (20)")
    if name == "failures":
        p.add_argument(
            "--jobs", type=int, default=5, metavar="N", help="jobs shown per failure (5)"
        )
    if name == "jobs":
        p.add_argument("run_id", metavar="RUN", help="a run id or unique prefix")
        p.add_argument(
            "--status",
            metavar="STATUS",
            choices=JOB_STATUSES,
            help=f"only jobs with this status: {', '.join(JOB_STATUSES)}",
        )
    if name == "show":
        p.add_argument(
            "job_id", metavar="JOB", help="a job id or unique prefix, RUN/KEY, or a run id"
        )
    if name == "source":
        p.add_argument("revision", metavar="REVISION", help="a revision hash or unique prefix")


def run(args: argparse.Namespace) -> int:
    url = args.mycelium or default_url()
    missing = missing_sqlite_file(url)
    if missing is not None:
        # A list of nothing is an answer; a job or run that cannot be there is an error.
        listing = args.command in ("runs", "failures")
        if listing and args.json:
            print("[]")  # an empty list is the answer; the note below says why
        print(
            f"elfc {args.command}: no mycelium at {missing} yet: `elfc run` or `elfc submit` "
            f"creates it, or name another with --mycelium URL ({mask_url(url)})",
            file=sys.stderr,
        )
        return 0 if listing else 1
    store = open_mycelium(url)
    try:
        handler = {
            "runs": _runs,
            "jobs": _jobs,
            "show": _show,
            "failures": _failures,
            "source": _source,
        }[args.command]
        return handler(store, args)
    finally:
        store.close()


def _console() -> Any:
    from rich.console import Console

    # Piped output keeps whole ids and lines rather than wrapping at 80 columns.
    width = None if sys.stdout.isatty() else 250
    return Console(highlight=False, soft_wrap=True, width=width)


def _when(t: float | None) -> str:
    """Local time with its zone (``2026-12-02 13:04:05 UTC``): a time without one is
    ambiguous as soon as two machines, or a machine and a log, are compared."""
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _ids(table: Any, *names: str) -> None:
    """The columns of ids people copy: never wrapped or cut (rich shrinks the others)."""
    for column in table.columns:
        if column.header in names:
            column.no_wrap, column.min_width = True, 16


def _dump(value: Any) -> None:
    print(msgspec.json.encode(value).decode())


def _runs(store: Store, args: argparse.Namespace) -> int:
    from rich.table import Table

    if args.json:
        _dump(store.list_runs(args.limit))
        return 0
    runs = run_list(store, limit=args.limit)  # what the dashboard's runs page lists
    table = Table("run", "pipeline", "status", "jobs", "failed", "created", "finished")
    _ids(table, "run")
    for r in runs:
        done, failed = f"{r.done}/{r.total}", str(r.failed)
        if r.cached:
            done += f" ({r.cached} cached)"
        created, finished = _when(r.created), _when(r.finished)
        table.add_row(r.id, escape(r.pipeline), r.status, done, failed, created, finished)
    _console().print(table if runs else "no runs yet: submit one with `elfc run` or `elfc submit`")
    return 0


def _jobs(store: Store, args: argparse.Namespace) -> int:
    from rich.table import Table

    info = find_run(store, args.run_id)
    jobs = store.list_jobs(info.id, args.status)
    if args.json:
        _dump(jobs)
        return 0
    table = Table("job", "key", "elf.task", "status", "attempts", "waits on", "started", "finished")
    _ids(table, "job", "key")
    for j in jobs:
        waits_on = ", ".join(j.deps[:3]) + (" ..." if len(j.deps) > 3 else "")
        row = (j.id, escape(j.key), f"{j.elf}.{j.task}", job_status(j), str(j.attempts), waits_on)
        table.add_row(*row, _when(j.started), _when(j.finished))
    con = _console()
    con.print(f"run {info.id} · {info.pipeline} · {info.status}", markup=False)
    con.print(table)
    return 0


def _show(store: Store, args: argparse.Namespace) -> int:
    info = _run_named(store, args.job_id)
    if info is not None:
        return _show_run(info, args)
    view = job_view(store, args.job_id)
    job = view.job
    if args.json:
        # The result as the JSON value it is, not as base64 of its bytes.
        fields = msgspec.to_builtins(job)
        fields["result"] = None if job.result is None else msgspec.json.decode(job.result)
        fields["cached"] = job.cached
        _dump(fields)
        return 0
    con = _console()
    con.print(
        f"[bold]job {job.id}[/bold]  {escape(job.key)}  {job.elf}.{job.task}  "
        f"[bold]{job_status(job)}[/bold]"
    )
    # Values, messages and notes come from tasks: printed as they are, never as markup.
    plain = functools.partial(con.print, markup=False)
    plain(f"run        {job.run}")
    plain(f"attempts   {job.attempts}")
    if job.cached_from is not None:
        plain(f"cached     the result of job {job.cached_from}, reused without running")
    plain(f"revision   {job.revision}")
    plain(f"waits on   {', '.join(job.deps) or '-'}")
    plain("arguments  " + _json(list(job.args)) + "  " + _json(job.kwargs))
    if job.result is not None:
        plain("result     " + job.result.decode(errors="replace"))
    plain("history")
    for ev in job.history:
        plain(f"  {_when(ev.time)}  {ev.status:<10} {readable_note(ev.note)}")
    if job.failure is not None:
        _print_failure(con, job.failure)
    if view.origin is not None:
        plain(_origin_line(view.origin))
    con.print(f"[bold]task source at revision {job.revision}[/bold]")
    plain(view.task_source.source.rstrip() if view.task_source else "(not stored)")
    return 0


def _run_named(store: Store, text: str) -> RunInfo | None:
    """The run ``text`` names when it names no job: a whole run id, or a prefix of one that
    no job id starts with."""
    if "/" in text:
        return None
    try:
        info = store.run_info(text)
        if info is None or info.id == text:
            return info
        return info if store.get_job(text) is None else None
    except MyceliumError:  # an ambiguous prefix: job_view says so
        return None


def _show_run(info: RunInfo, args: argparse.Namespace) -> int:
    if args.json:
        _dump(info)
        return 0
    con = _console()
    plain = functools.partial(con.print, markup=False)
    con.print(f"[bold]run {info.id}[/bold]  {escape(info.pipeline)}  [bold]{info.status}[/bold]")
    plain(f"revision   {info.revision}")
    plain("arguments  " + _json(info.arguments))
    plain(f"created    {_when(info.created)}")
    plain(f"finished   {_when(info.finished)}")
    counts = ", ".join(
        f"{n} {status}"
        + (f" ({info.cached} cached)" if status == "succeeded" and info.cached else "")
        for status, n in info.counts.items()
        if n
    )
    plain(f"jobs       {counts or 'none'} (list them with `elfc jobs {info.id}`)")
    if info.failure is not None:
        f = info.failure
        con.print(
            f"[bold red]failure[/bold red]    {escape(f.error_type)}: {escape(f.message)} "
            f"(recorded {_when(f.time)}; every job succeeded, the run's value was refused)"
        )
    elif info.error is not None:
        plain(f"error      {info.error}")
    return 0


def _print_failure(con: Any, f: FailureInfo) -> None:
    con.print(
        f"[bold red]failure[/bold red]    {escape(f.error_type)}: {escape(f.message)} "
        f"(seen {f.count}x, first {_when(f.first_seen)}, last {_when(f.last_seen)})"
    )
    if f.traceback:
        con.print(f.traceback.rstrip(), markup=False)


def _origin_line(origin: JobOrigin) -> str:
    if origin.inlined:
        return (
            f"created by inlined pipeline node {origin.node} "
            f"(top-level template: {origin.pipeline})"
        )
    return f"created by  {origin.path}:{origin.line}  {origin.source}"


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _failures(store: Store, args: argparse.Namespace) -> int:
    groups = failure_groups(store, args.limit, max(args.jobs, 0))
    if args.json:
        out = []
        for g in groups:
            fields = msgspec.to_builtins(g)
            fields["jobs"] = [{"id": j.id, "run": j.run, "key": j.key} for j in g.jobs]
            out.append(fields)
        _dump(out)
        return 0
    con = _console()
    if not groups:
        con.print("no failures")
    plain = functools.partial(con.print, markup=False)
    for g in groups:
        if g.run is not None:
            con.print(
                f"[bold red]{escape(g.error_type)}[/bold red]: {escape(g.message)}  ·  run {g.run} "
                f"({escape(g.task)}): its value was refused, its jobs succeeded  ·  "
                f"{_when(g.last_seen)}"
            )
            con.print()
            continue
        distinct = f" in {len(g.hashes)} stored failures" if len(g.hashes) > 1 else ""
        con.print(
            f"[bold red]{escape(g.error_type)}[/bold red]: {escape(g.message)}  ·  {g.elf}.{g.task} "
            f"rev {g.revision}  ·  {g.count}x{distinct}, last {_when(g.last_seen)}"
        )
        for message in g.messages[1:]:
            plain(f"  also: {message}")
        if g.frames:
            where = g.frames[-1]
            plain(f"  raised at {where.file}:{where.line} in {where.function}")
        if g.jobs:
            shown = ", ".join(f"{j.run}/{j.key} (job {j.id})" for j in g.jobs)
            more = len(g.jobs) >= args.jobs  # the sample is full: there may be more
            plain(
                f"  jobs: {shown}"
                + (f" (the latest {len(g.jobs)}: --jobs N for more)" if more else "")
            )
        plain(f"  hash {g.hash}" + (f" and {len(g.hashes) - 1} more" if len(g.hashes) > 1 else ""))
        if g.traceback:
            plain(g.traceback.rstrip())
        con.print()
    return 0


def _source(store: Store, args: argparse.Namespace) -> int:
    rev = find_revision(store, args.revision)
    if args.json:
        _dump(rev)
        return 0
    print(f"# {rev.kind} {rev.module}.{rev.qualname} at revision {rev.hash}")
    print(rev.source.rstrip())
    return 0
