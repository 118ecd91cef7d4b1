"""Inspection: ``elfc runs``, ``jobs RUN``, ``show JOB``, ``failures``, ``source REVISION``."""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
from pathlib import Path
from typing import Any

import msgspec
from rich.markup import escape

from elfc.errors import ElfcError
from elfc.model.status import active_count

EPILOGS = {
    "runs": "example: elfc runs --limit 5",
    "jobs": "example: elfc jobs 8c31 --status failed   (a unique prefix of the run id is enough)",
    "show": "example: elfc show 8c31f/n2#0   (a job id, or a unique prefix of one)",
    "failures": "example: elfc failures --limit 10",
    "source": "example: elfc source 3fa2   (a revision hash from `elfc show`, or a prefix)",
}


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOGS[name]
    p.add_argument("--mycelium", metavar="URL", help="mycelium URL (default: see `elfc -h`)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    if name in ("runs", "failures"):
        p.add_argument("--limit", type=int, default=20, help="how many (20)")
    if name == "jobs":
        p.add_argument("run_id", metavar="RUN", help="a run id or unique prefix")
        p.add_argument("--status", help="only jobs with this status")
    if name == "show":
        p.add_argument("job_id", metavar="JOB", help="a job id or unique prefix")
    if name == "source":
        p.add_argument("revision", metavar="REVISION", help="a revision hash or unique prefix")


def run(args: argparse.Namespace) -> int:
    from elfc.mycelium.base import default_url, mask_url, open_mycelium

    url = args.mycelium or default_url()
    missing = missing_sqlite_file(url)
    if missing is not None:
        # Reading must not create an empty mycelium (and hide a wrong path or directory).
        listing = args.command in ("runs", "failures")
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


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL when it does not exist (reading must not create it)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = Path(url[len(prefix) :].split("?", 1)[0])
    return None if path.exists() else path


def _console() -> Any:
    import sys

    from rich.console import Console

    # Piped output keeps whole ids and lines rather than wrapping at 80 columns.
    width = None if sys.stdout.isatty() else 250
    return Console(highlight=False, soft_wrap=True, width=width)


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _dump(value: Any) -> None:
    print(msgspec.json.encode(value).decode())


def _runs(store: Any, args: argparse.Namespace) -> int:
    from rich.table import Table

    runs = store.list_runs(args.limit)
    if args.json:
        _dump(runs)
        return 0
    table = Table("run", "pipeline", "status", "jobs", "failed", "created", "finished")
    for r in runs:
        table.add_row(
            r.id, escape(r.pipeline), r.status, f"{r.total - active_count(r.counts)}/{r.total}",
            str(r.counts.get("failed", 0)), _when(r.created), _when(r.finished),
        )  # fmt: skip
    _console().print(table if runs else "no runs yet: submit one with `elfc run` or `elfc submit`")
    return 0


def _jobs(store: Any, args: argparse.Namespace) -> int:
    from rich.table import Table

    info = store.run_info(args.run_id)
    if info is None:
        raise ElfcError(f"no run {args.run_id!r} in {store.url}; list runs with `elfc runs`")
    jobs = store.list_jobs(info.id, args.status)
    if args.json:
        _dump(jobs)
        return 0
    table = Table("job", "elf.task", "status", "attempts", "waits on", "started", "finished")
    for j in jobs:
        table.add_row(
            j.id, f"{j.elf}.{j.task}", j.status, str(j.attempts),
            ", ".join(j.deps[:3]) + (" ..." if len(j.deps) > 3 else ""),
            _when(j.started), _when(j.finished),
        )  # fmt: skip
    con = _console()
    con.print(f"run {info.id} · {info.pipeline} · {info.status}", markup=False)
    con.print(table)
    return 0


def _show(store: Any, args: argparse.Namespace) -> int:
    job = store.get_job(args.job_id)
    if job is None and "/" in args.job_id:
        # RUN/KEY, as `elfc run` and RunFailed name jobs: the key within a run.
        run_part, _, key = args.job_id.partition("/")
        match = [j for j in store.list_jobs(run_part) if j.key == key]
        job = store.get_job(match[0].id) if match else None
    if job is None:
        raise ElfcError(f"no job {args.job_id!r} in {store.url}; list jobs with `elfc jobs RUN`")
    if args.json:
        _dump(job)
        return 0
    con = _console()
    con.print(
        f"[bold]job {job.id}[/bold]  {escape(job.key)}  {job.elf}.{job.task}  "
        f"[bold]{job.status}[/bold]"
    )
    # Values, messages and notes come from tasks: printed as they are, never as markup.
    plain = functools.partial(con.print, markup=False)
    plain(f"run        {job.run}")
    plain(f"attempts   {job.attempts}")
    plain(f"revision   {job.revision}")
    plain(f"waits on   {', '.join(job.deps) or '-'}")
    plain("arguments  " + _json(list(job.args)) + "  " + _json(job.kwargs))
    if job.result is not None:
        plain("result     " + job.result.decode(errors="replace"))
    plain("history")
    for ev in job.history:
        plain(f"  {_when(ev.time)}  {ev.status:<10} {ev.note}")
    if job.failure is not None:
        f = job.failure
        con.print(
            f"[bold red]failure[/bold red]    {escape(f.error_type)}: {escape(f.message)} "
            f"(seen {f.count}x, first {_when(f.first_seen)}, last {_when(f.last_seen)})"
        )
        if f.traceback:
            con.print(f.traceback.rstrip(), markup=False)
    _show_pipeline_line(con, store, job)
    rev = store.get_revision(job.revision)
    con.print(f"[bold]task source at revision {job.revision}[/bold]")
    con.print(rev.source.rstrip() if rev else "(not stored)", markup=False)
    return 0


def _show_pipeline_line(con: Any, store: Any, job: Any) -> None:
    from elfc.model.ir import Template

    info = store.run_info(job.run)
    raw = store.get_template(info.revision) if info else None
    if raw is None:
        return
    template = Template.from_json(raw)
    node_id = job.node.rsplit("/", 1)[-1]
    if "/" in job.node:
        con.print(
            f"created by inlined pipeline node {job.node} (top-level template: {template.pipeline})",
            markup=False,
        )
        return
    try:
        node = template.node(node_id)
    except KeyError:
        return
    span = getattr(node, "span", None)
    if span is not None:
        con.print(
            f"created by  {span.path}:{span.line}  {getattr(node, 'source', '')}", markup=False
        )


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _failures(store: Any, args: argparse.Namespace) -> int:
    failures = store.list_failures(args.limit)
    if args.json:
        _dump(failures)
        return 0
    con = _console()
    if not failures:
        con.print("no failures")
    for f in failures:
        con.print(
            f"[bold red]{escape(f.error_type)}[/bold red]: {escape(f.message)}  ·  {f.elf}.{f.task} "
            f"rev {f.revision}  ·  {f.count}x, last {_when(f.last_seen)}  ·  hash {f.hash}"
        )
        if f.traceback:
            con.print(f.traceback.rstrip(), markup=False)
        con.print()
    return 0


def _source(store: Any, args: argparse.Namespace) -> int:
    rev = store.get_revision(args.revision)
    if rev is None:
        raise ElfcError(f"no revision {args.revision!r} in {store.url}")
    if args.json:
        _dump(rev)
        return 0
    print(f"# {rev.kind} {rev.module}.{rev.qualname} at revision {rev.hash}")
    print(rev.source.rstrip())
    return 0
