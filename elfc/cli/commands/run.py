"""``elfc run TARGET [-a name=value ...]``: submit, start workers, follow, print the result."""

from __future__ import annotations

import argparse
import inspect
import re
import signal
import sys
import threading
import typing
from typing import TYPE_CHECKING, Any

import msgspec

from elfc.cli.options import seconds
from elfc.errors import ElfcError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from elfc.cli.progress import Progress
    from elfc.model.ir import BuiltRun
    from elfc.model.records import JobInfo, RunInfo
    from elfc.mycelium.store import Store
    from elfc.runtime.supervisor import Supervisor
    from elfc.views import LogTail

EPILOG = """\
-a values are JSON when they parse as JSON (-a rounds=3 is the int 3, -a tags='["a","b"]' a
list), else strings (-a name=elves); each is validated against the pipeline's signature.
The result is printed on stdout as one JSON line; progress goes to stderr.

examples:
  elfc run examples/hello/pipeline.py:hello -a name=elves
  elfc run examples/animals/pipeline.py:census -a rounds=5 --replicas animals=2
  elfc run examples/animals/pipeline.py:census -a rounds=5 --threads animals=8
                                  serve animals from 8 threads of one worker process
  elfc run mypkg.pipelines:nightly --mycelium sqlite:///runs.db
  elfc --log-level debug run examples/hello/pipeline.py:hello -a name=elves
                                  also log what the workers do, job by job
"""


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target", metavar="TARGET", help="the pipeline: path/file.py:name or pkg.mod:name"
    )
    p.add_argument(
        "-a",
        "--arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline argument (repeatable)",
    )
    p.add_argument("--mycelium", metavar="URL", help="mycelium URL (default: see `elfc -h`)")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="every job reuses results as @task(cache=True) jobs do: one whose task revision "
        "and arguments equal those of an earlier cache=True or --reuse job that succeeded "
        "takes its result without running",
    )


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    add_run_arguments(p)
    add_serve_arguments(p)


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """The options of a command that starts workers and follows a run (run, retry)."""
    p.add_argument(
        "--replicas",
        action="append",
        default=[],
        metavar="ELF=N",
        help="worker processes for an elf (default 1 each; repeatable)",
    )
    p.add_argument(
        "--threads",
        action="append",
        default=[],
        metavar="ELF=N",
        help="serve an elf from N threads in each of its worker processes (repeatable)",
    )
    p.add_argument(
        "--timeout", type=seconds(), metavar="SECONDS", help="give up (and cancel) after"
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="do not show what tasks print (it is stored all the same: `elfc logs RUN`)",
    )
    p.add_argument(
        "--on-revision-mismatch", choices=("fail", "run"), default="fail", help=argparse.SUPPRESS
    )


def parse_arguments(pipeline: Any, pairs: list[str]) -> dict[str, Any]:
    """``-a name=value`` pairs as keyword arguments validated against the pipeline."""
    from elfc.errors import ValueCrossingError
    from elfc.runtime.values import convert

    signature = inspect.signature(pipeline.fn)
    try:
        hints = typing.get_type_hints(pipeline.fn)
    except Exception:  # unresolvable annotations: values pass unvalidated
        hints = {}
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"-a takes NAME=VALUE, not {pair!r}")
        if name not in signature.parameters:
            params = ", ".join(signature.parameters) or "(none)"
            raise UsageError(f"{pipeline.name} has no parameter {name!r}; its parameters: {params}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
            raise UsageError(
                f"-a {name}: the value is not valid UTF-8 text; pass UTF-8, or encode binary "
                f"data (base64, hex) and decode it in a task"
            ) from None
        try:
            value: Any = msgspec.json.decode(text)
        except msgspec.DecodeError:
            value = text
        if name in hints:
            try:
                value = convert(value, hints[name], where=f"-a {name}")
            except ValueCrossingError as exc:
                if isinstance(value, str) or hints[name] is not str:
                    raise UsageError(str(exc)) from None
                value = text
        out[name] = value
    try:
        signature.bind(**out)
    except TypeError as exc:
        raise UsageError(f"{pipeline.name}{signature}: {exc}; pass it with -a") from None
    return out


def replicas(pairs: list[str], flag: str = "--replicas") -> dict[str, int]:
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not text.isdigit() or int(text) < 1:
            raise UsageError(f"{flag} takes ELF=N with N >= 1, not {pair!r}")
        out[name] = int(text)
    return out


def run(args: argparse.Namespace) -> int:
    from elfc.mycelium.urls import default_url
    from elfc.runtime.client import connect
    from elfc.runtime.run import result_type
    from elfc.runtime.worker import lease_from_env
    from elfc.targets import load_pipeline

    pipeline = load_pipeline(args.target)
    try:
        kwargs = parse_arguments(pipeline, args.arg)
        counts = replicas(args.replicas)
        lease_from_env()  # each worker reads it: a bad value is reported here, once
        replicas(args.threads, "--threads")  # validated here; serve_run passes them on
    except UsageError as exc:
        print(f"elfc run: error: {exc}", file=sys.stderr)
        return 2

    def elves(built: BuiltRun) -> set[str]:
        # Also the elves of jobs that branches and loops on task results make at run time.
        return {job.elf for job in built.jobs} | pipeline.compiled().elf_names()

    def check(built: BuiltRun) -> None:
        unknown = sorted(set(counts) - elves(built))
        if unknown:
            used = ", ".join(sorted(elves(built))) or "(none)"
            raise UsageError(
                f"--replicas names {', '.join(map(repr, unknown))}, which this run does not "
                f"use; its elves are: {used}"
            )

    url = args.mycelium or default_url()
    mycelium = connect(url)
    try:
        # `elfc run` starts the workers itself; they register the elves this run defines.
        run_id, built = mycelium.submit_built(
            pipeline.compiled(), (), kwargs, check, replace_elves=True, reuse=args.reuse
        )
    except UsageError as exc:
        print(f"elfc run: error: {exc}", file=sys.stderr)
        return 2
    print(f"elfc run: run {run_id}: {len(built.jobs)} jobs on {mycelium.url}", file=sys.stderr)
    module = args.target.rpartition(":")[0]
    status, exits = serve_run(mycelium, run_id, module, elves(built), counts, args)
    if isinstance(status, int):
        return status
    if status == "succeeded":
        value = mycelium.output(run_id, result_type(pipeline))
        sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
        return 0
    return report_failure(mycelium, run_id, status, exits)


def serve_run(
    mycelium: Any,
    run_id: str,
    module: str,
    elves: Iterable[str],
    counts: dict[str, int],
    args: argparse.Namespace,
    *,
    new_output_only: bool = False,
) -> tuple[str | int, dict[int, int]]:
    """Start workers from ``module`` for ``elves`` and follow the run as ``args`` (the
    options of :func:`add_serve_arguments`) say; see :func:`_serve`. Returns its result and
    how the workers that died ended (process id -> return code). With ``new_output_only``
    task output stored before is not shown (a retried run's)."""
    from elfc.runtime.supervisor import Supervisor
    from elfc.views import LogTail

    supervisor = Supervisor(
        module=module,
        url=args.mycelium or mycelium.url,
        replicas=counts,
        threads=replicas(args.threads, "--threads"),
        # Task output is stored, and shown from the mycelium above the live display, with
        # the job it came from: written straight to the terminal, a redraw would erase it.
        extra=["--on-revision-mismatch", args.on_revision_mismatch, "--task-output", "store"],
    )
    tail = None if args.quiet else LogTail(mycelium.store, run_id, skip_stored=new_output_only)
    status = _serve(mycelium, run_id, supervisor, set(elves), args.timeout, tail)
    return status, supervisor.exits


def _serve(
    mycelium: Any,
    run_id: str,
    supervisor: Supervisor,
    elves: set[str],
    timeout: float | None,
    tail: LogTail | None = None,
) -> str | int:
    """Start the workers, show progress until the run settles, stop the workers. Returns the
    run's final status, or the exit code when it did not settle (timed out, interrupted).
    """
    from elfc.cli.progress import Progress, output_lines
    from elfc.model.status import FINAL_RUN_STATUSES
    from elfc.runtime.supervisor import follow

    progress: Progress | None = None
    hurry = True  # the run was given up: workers give their jobs back rather than finish them
    # SIGTERM (a CI timeout, `kill`) must stop the workers as Ctrl-C does: they run in
    # sessions of their own, so dying without stopping them would leave them running.
    terminated = _TermAsInterrupt()
    previous = terminated.install()
    try:
        supervisor.start(elves)
        shown = progress = Progress()
        failed: set[str] = set()

        def update(info: RunInfo, notes: Sequence[str]) -> None:
            if tail is not None:
                shown.output(line for log in tail.new() for line in output_lines(log))
            if info.counts["failed"] > len(failed):  # failures as they happen, once each
                new = [j for j in mycelium.store.list_jobs(run_id, "failed") if j.id not in failed]
                failed.update(j.id for j in new)
                notes = [*notes, *(failure_note(j) for j in new)]
            shown.update(info, notes)

        info = follow(
            mycelium.store, run_id, supervisor=supervisor, timeout=timeout, on_update=update
        )
        hurry = info.status not in FINAL_RUN_STATUSES
        if info.status not in FINAL_RUN_STATUSES:
            mycelium.store.cancel_run(run_id)
            print(f"elfc run: run {run_id} timed out after {timeout} s", file=sys.stderr)
            return 1
        return info.status
    except KeyboardInterrupt:
        mycelium.store.cancel_run(run_id)
        print(f"\nelfc run: run {run_id} cancelled", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated.fired else 130
    except ElfcError:
        # A worker that cannot start: nothing would finish this run, so it ends here too.
        mycelium.store.cancel_run(run_id)
        raise
    finally:
        supervisor.stop(hurry=hurry)
        if hurry:  # given up: show the run as stopping its workers left it, not as before
            _last_frame(progress, mycelium.store, run_id)
        if progress is not None:
            progress.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _last_frame(progress: Progress | None, store: Store, run_id: str) -> None:
    """The run's last frame, once its workers have given their jobs back (nothing if the
    mycelium cannot be read: the error already on its way matters more)."""
    try:
        info = store.run_info(run_id)
    except ElfcError:
        return
    if progress is not None and info is not None:
        progress.update(info)


def failure_note(job: JobInfo) -> str:
    """``job n1#3 (broken.explode) failed: ValueError: boom`` for the progress display."""
    f = job.failure
    what = f"{f.error_type}: {f.message}" if f is not None else "no failure stored"
    return f"job {job.key} ({job.elf}.{job.task}) failed: {what}"


class _TermAsInterrupt:
    """A SIGTERM handler that raises ``KeyboardInterrupt`` once; later ones are ignored so
    that stopping the workers is not cut short."""

    def __init__(self) -> None:
        self.fired = False

    def install(self) -> Any:
        """Install it (main thread only); returns the handler it replaced, or ``None``."""
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.signal(signal.SIGTERM, self)

    def __call__(self, signum: int, frame: object) -> None:
        if not self.fired:
            self.fired = True
            raise KeyboardInterrupt


def report_failure(
    mycelium: Any, run_id: str, status: str, exits: dict[int, int] | None = None
) -> int:
    """Print each failed job's failure; ``exits`` (process id -> return code of the workers
    that died) adds how the worker named by a ``WorkerLost`` failure ended."""
    from elfc.runtime.supervisor import exit_text

    failures = mycelium.failures_of(run_id)
    print(f"elfc run: run {run_id} {status}: {len(failures)} failed job(s)", file=sys.stderr)
    for f in failures:
        print(
            f"\n--- job {f.job} ({f.elf}.{f.task}) raised {f.error_type}: {f.message}",
            file=sys.stderr,
        )
        if f.error_type == "WorkerLost" and exits:
            # Worker ids are host:pid:elf:suffix; the message names the last one.
            for pid in sorted({int(p) for p in re.findall(r":(\d+):", f.message)} & set(exits)):
                print(f"    worker process {pid} {exit_text(exits[pid])}", file=sys.stderr)
        if f.traceback:
            print(f.traceback.rstrip(), file=sys.stderr)
        print(f"    inspect it: elfc show {f.job}", file=sys.stderr)
    return 1
