"""Operating runs: ``elfc result RUN``, ``cancel RUN``, ``logs RUN[/KEY]``, ``retry RUN``,
``prune --older-than AGE``."""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from elfc.cli.progress import output_lines
from elfc.errors import ElfcError, NotFound, UsageError
from elfc.model.status import FINAL_RUN_STATUSES, final_count
from elfc.mycelium.urls import default_url, mask_url, open_mycelium
from elfc.views import LogTail, find_job, find_run, missing_sqlite_file, run_outcome

if TYPE_CHECKING:
    from elfc.model.records import LogRecord, RunInfo
    from elfc.mycelium.store import Store

EPILOGS = {
    "result": """\
Exit status: 0 with the value on stdout when the run succeeded; 1 when it failed (each failed
job and its traceback on stderr, or why its value was refused) or was cancelled; 2 when it is
still running.

examples:
  elfc result 8c31                            a unique prefix of the run id is enough
  elfc result 8c31 --json | jq .              the value as one JSON line
  elfc result $(elfc submit app.py:nightly) --wait 600
                                              wait up to 10 minutes for workers to finish it
""",
    "cancel": """\
Pending and ready jobs are cancelled at once; running jobs are told to stop by their workers'
next heartbeat and given back. A settled run cannot be cancelled (exit 1).

examples:
  elfc cancel 8c31
""",
    "logs": """\
What the jobs of a run wrote to stdout and stderr and through `logging`, as workers stored it
(at most 1 MiB per job attempt; more is counted and noted). A whole run's lines are prefixed
with the elf and the job's key; one job's (RUN/KEY, or a job id) are printed as they were
written.

examples:
  elfc logs 8c31                              every job's output, oldest first
  elfc logs 8c31/n2#0                         one job's output, as it wrote it
  elfc logs 8c31 -f                           follow a live run until it settles
""",
    "retry": """\
Runs again, as the same run, the jobs of a settled run that did not succeed (failed, skipped,
cancelled), the succeeded ones whose task's code has changed since, and everything
downstream of them, with the code as it is now: fix the bug, then retry. Results still good
are kept; the run's history and earlier failures stay inspectable, and each job records its
new task revision. TARGET (default: the run's pipeline module) is the module that defines the
elves; workers are started for them as `elfc run` does, unless --detach.

examples:
  elfc retry 8c31                             re-run the failed part, print the result
  elfc retry 8c31 --from n2#0                 also re-run n2#0 and all downstream of it
  elfc retry 8c31 --all --detach              every job again; workers started elsewhere
""",
    "prune": """\
Deletes settled runs that finished more than AGE ago (30s, 15m, 12h, 7d, 2w) with everything
only they use: jobs, arguments, results, task output, failures no other job raised, templates
and revisions no other run uses. Running runs are never touched, so workers may go on
meanwhile; the deletion goes in batches of --batch runs, one transaction each.

examples:
  elfc prune --older-than 7d                  every settled run finished a week ago or more
  elfc prune --older-than 1d --status succeeded
                                              keep failed and cancelled runs for inspection
""",
}

DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOGS[name]
    p.add_argument("--mycelium", metavar="URL", help="mycelium URL (default: see `elfc -h`)")
    if name == "result":
        p.add_argument("run_id", metavar="RUN", help="a run id or unique prefix")
        p.add_argument(
            "--wait",
            type=float,
            nargs="?",
            const=float("inf"),
            metavar="SECONDS",
            help="wait for the run to settle (for ever, or up to SECONDS)",
        )
        p.add_argument("--json", action="store_true", help="print the value as one JSON line")
    if name == "cancel":
        p.add_argument("run_id", metavar="RUN", help="a run id or unique prefix")
    if name == "logs":
        p.add_argument("which", metavar="RUN[/KEY]", help="a run, RUN/KEY, or a job id")
        p.add_argument(
            "-f", "--follow", action="store_true", help="keep printing until the run settles"
        )
        p.add_argument("--json", action="store_true", help="print the records as JSON")
    if name == "prune":
        p.add_argument(
            "--older-than",
            required=True,
            type=seconds,
            metavar="AGE",
            help="delete runs that finished longer ago than this: 30s, 15m, 12h, 7d, 2w",
        )
        p.add_argument(
            "--status",
            action="append",
            choices=sorted(FINAL_RUN_STATUSES),
            metavar="STATUS",
            help="only runs with this status (repeatable; default: succeeded, failed, cancelled)",
        )
        p.add_argument("--batch", type=int, default=100, metavar="N", help="runs per transaction")
    if name == "retry":
        from elfc.cli.commands.run import add_serve_arguments

        p.add_argument("run_id", metavar="RUN", help="a run id or unique prefix")
        p.add_argument(
            "target",
            metavar="TARGET",
            nargs="?",
            help="module or file defining the elves (default: the run's pipeline module)",
        )
        p.add_argument(
            "--from",
            dest="from_keys",
            action="append",
            default=[],
            metavar="KEY",
            help="also run this job (a key, such as n2#0) and all downstream of it again",
        )
        p.add_argument("--all", action="store_true", help="run every job of the run again")
        p.add_argument(
            "--detach",
            action="store_true",
            help="only reopen the run and print its id; workers started elsewhere run it",
        )
        add_serve_arguments(p)


def run(args: argparse.Namespace) -> int:
    url = args.mycelium or default_url()
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise NotFound(
            f"no mycelium at {missing}: `elfc run` or `elfc submit` creates it, or name "
            f"another with --mycelium URL ({mask_url(url)})"
        )
    if args.command == "retry":
        return _retry(url, args)
    store = open_mycelium(url)
    try:
        handler = {"result": _result, "cancel": _cancel, "logs": _logs, "prune": _prune}[
            args.command
        ]
        return handler(store, args)
    finally:
        store.close()


# -- result --------------------------------------------------------------------------------


def _result(store: Store, args: argparse.Namespace) -> int:
    outcome = run_outcome(store, args.run_id, wait=args.wait)
    info = outcome.run
    if info.status == "succeeded":
        sys.stdout.write(_render(outcome.value, as_json=args.json) + "\n")
        return 0
    if info.status == "running":
        done = final_count(info.counts)
        how = "" if args.wait is not None else ": wait for it with --wait"
        print(
            f"elfc result: run {info.id} is still running ({done}/{info.total} jobs settled){how}",
            file=sys.stderr,
        )
        return 2
    if info.status == "cancelled":
        print(f"elfc result: run {info.id} was cancelled: it has no value", file=sys.stderr)
        return 1
    print(f"elfc result: run {info.id} failed: {info.error}", file=sys.stderr)
    for f in outcome.failures:
        print(f"\n--- job {f.job} ({f.elf}.{f.task}) raised {f.error_type}: {f.message}",
              file=sys.stderr)  # fmt: skip
        if f.traceback:
            print(f.traceback.rstrip(), file=sys.stderr)
    if info.failure is not None:  # every job succeeded: a plain retry would run none
        print(
            "\nits jobs all succeeded; once the task or the pipeline's return annotation is "
            f"fixed, run them again: elfc retry {info.id} --all",
            file=sys.stderr,
        )
        return 1
    print(f"\nretry it once fixed: elfc retry {info.id}", file=sys.stderr)
    return 1


def _render(value: Any, *, as_json: bool) -> str:
    """One JSON line for machines; for people a string as it is, anything else as indented
    JSON."""
    if as_json:
        return msgspec.json.encode(value).decode()
    if isinstance(value, str):
        return value
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


# -- cancel --------------------------------------------------------------------------------


def _cancel(store: Store, args: argparse.Namespace) -> int:
    info = find_run(store, args.run_id)
    running = info.counts["running"]
    if not store.cancel_run(info.id):
        status = store.run_status(info.id) or info.status
        print(f"elfc cancel: run {info.id} already {status}: nothing to cancel", file=sys.stderr)
        return 1
    after = find_run(store, info.id)
    stopping = f", {running} running job(s) told to stop" if running else ""
    print(f"run {info.id} cancelled: {after.counts['cancelled']} job(s) cancelled{stopping}")
    return 0


# -- logs ------------------------------------------------------------------------------------


def _logs(store: Store, args: argparse.Namespace) -> int:
    info, key = _log_target(store, args.which)
    tail = LogTail(store, info.id, key)
    printed = 0
    while True:
        status = store.run_status(info.id)
        fresh = tail.new()
        printed += len(fresh)
        _print_logs(fresh, one_job=key is not None, as_json=args.json)
        if not args.follow or status in FINAL_RUN_STATUSES:
            break
        store.wait_for_run(info.id, 0.5)
    if not printed and not args.json:
        which = f"job {key} of run {info.id}" if key else f"run {info.id}"
        print(f"elfc logs: {which} has no task output stored", file=sys.stderr)
    return 0


def _log_target(store: Store, which: str) -> tuple[RunInfo, str | None]:
    """``RUN``, ``RUN/KEY`` or a job id: the run, and the job's key when one job is meant."""
    if "/" in which:
        job = find_job(store, which)
        return find_run(store, job.run), job.key
    try:
        return find_run(store, which), None
    except NotFound:
        try:
            job = find_job(store, which)
        except NotFound:
            raise NotFound(
                f"no run or job {which!r} in {store.url}; list runs with `elfc runs`"
            ) from None
        return find_run(store, job.run), job.key


def _print_logs(logs: Iterable[LogRecord], *, one_job: bool, as_json: bool) -> None:
    logs = list(logs)
    if as_json:
        for log in logs:
            print(msgspec.json.encode(log).decode())
        return
    attempts = {log.attempt for log in logs}
    for log in logs:
        if one_job:
            if len(attempts) > 1:
                print(f"# attempt {log.attempt}", file=sys.stderr)
            sys.stdout.write(log.text)
            if log.text and not log.text.endswith("\n"):
                sys.stdout.write("\n")
        else:
            for line in output_lines(log):
                print(line)
        if log.truncated:
            print(
                f"elfc logs: job {log.key} attempt {log.attempt}: {log.truncated} more "
                f"characters were not stored (at most 1 MiB per job attempt)",
                file=sys.stderr,
            )
    sys.stdout.flush()


# -- prune -------------------------------------------------------------------------------------


def seconds(text: str) -> float:
    """``7d`` -> 604800.0: a number and a unit (s, m, h, d, w)."""
    found = DURATION.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age: give a number and a unit, such as 30s, 15m, 12h, 7d or 2w"
        )
    return float(found[1]) * UNITS[found[2]]


def _prune(store: Store, args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    cutoff = time.time() - args.older_than
    statuses = args.status or sorted(FINAL_RUN_STATUSES)
    pruned = 0
    while n := store.prune_runs(cutoff, statuses, args.batch):
        pruned += n
    when = datetime.datetime.fromtimestamp(cutoff).astimezone().isoformat(timespec="seconds")
    print(f"pruned {pruned} run(s) ({', '.join(statuses)}) that finished before {when}")
    return 0


# -- retry -------------------------------------------------------------------------------------


def _retry(url: str, args: argparse.Namespace) -> int:
    from elfc.cli.commands.run import replicas, report_failure, serve_run
    from elfc.runtime.client import connect
    from elfc.runtime.retry import retry_run
    from elfc.runtime.run import imported_pipeline, result_type
    from elfc.targets import load_module

    counts = replicas(args.replicas)
    mycelium = connect(url)
    try:
        info = find_run(mycelium.store, args.run_id)
        module = _elves_module(args.target, info.pipeline)
        load_module(module)
        retried = retry_run(mycelium.store, info.id, args.from_keys, args.all)
        changed = f", {retried.changed} at a changed task revision" if retried.changed else ""
        keys = ", ".join(retried.keys[:6]) + (" ..." if len(retried.keys) > 6 else "")
        print(
            f"elfc retry: run {info.id}: {len(retried.jobs)} job(s) run again{changed}: {keys}",
            file=sys.stderr,
        )
        if args.detach:
            print(info.id)
            return 0
        status, exits = serve_run(
            mycelium, info.id, module, retried.elves, counts, args, new_output_only=True
        )
        if isinstance(status, int):
            return status
        if status == "succeeded":
            # Judged as the pipeline's return annotation says, when the module loaded above
            # has it at the run's revision.
            fn = imported_pipeline(info.pipeline, info.revision)
            value = mycelium.output(info.id, Any if fn is None else result_type(fn))
            sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
            return 0
        return report_failure(mycelium, info.id, status, exits)
    finally:
        mycelium.close()


def _elves_module(target: str | None, pipeline: str) -> str:
    """The module to import for the elves' code: TARGET (a module, a file, or a pipeline
    target whose name is ignored), else the module part of the run's ``module:function``."""
    if target is None:
        module = pipeline.rpartition(":")[0]
        if not module or module == "__main__":
            raise ElfcError(
                f"the run's pipeline {pipeline!r} was defined in a script: give the module or "
                "file that defines its elves as TARGET"
            )
        return module
    head, sep, tail = target.rpartition(":")
    if sep and head and tail and "/" not in tail and "\\" not in tail:
        return head
    return target
