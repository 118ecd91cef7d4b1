"""``elfc worker TARGET --elf NAME``: serve one elf instance (``--replicas N`` processes,
``--threads N`` threads of each)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from elfc.cli.options import lease, seconds
from elfc.errors import ElfcError, ServeError

if TYPE_CHECKING:
    from elfc.decorators import Handle
    from elfc.runtime.serve import Serving

EPILOG = """\
TARGET is the module that defines the elf's handle: path/to/file.py, package.module, or a
pipeline target (file.py:name; the name is ignored). Workers can start before or after runs
are submitted, in any order, on any machine that reaches the mycelium.

examples:
  elfc worker examples/animals/pipeline.py --elf store
  elfc worker examples/animals/pipeline.py --elf animals --replicas 2 --mycelium sqlite:///runs.db
  elfc worker examples/animals/pipeline.py --elf store --threads 16
                                  16 replicas as threads of one process (I/O-bound tasks)
  elfc --log-level info worker examples/animals/pipeline.py --elf store
                                  also log each failure and retry (debug: every job)
"""


def configure(name: str, p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("target", metavar="TARGET", help="module or file defining the elf's handle")
    p.add_argument("--elf", required=True, metavar="NAME", help="the elf instance to serve")
    p.add_argument("--replicas", type=int, default=1, metavar="N", help="worker processes (1)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="serve from N threads of each worker process (default: the main thread only)",
    )
    p.add_argument("--mycelium", metavar="URL", help="mycelium URL (default: see `elfc -h`)")
    p.add_argument(
        "--on-revision-mismatch",
        choices=("fail", "run"),
        default="fail",
        help="a job submitted for other task source: fail it (default) or run it anyway",
    )
    p.add_argument(
        "--lease",
        type=lease,
        default=None,
        metavar="SECONDS",
        help="lease of a claimed job, renewed by heartbeats: 0.5 to 86400 "
        "(default $ELFC_LEASE or 30)",
    )
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--task-output",
        choices=("echo", "store", "off"),
        default="echo",
        help="what tasks print: stored per job (`elfc logs`) and written here too (echo, "
        "the default), only stored (store), or neither captured nor stored (off)",
    )
    p.add_argument(
        "--idle-exit",
        type=seconds(positive=False),
        default=None,
        metavar="SECONDS",
        help="exit after this long without work (default: serve until stopped)",
    )


def run(args: argparse.Namespace) -> int:
    # A stop signal that arrives while the target is still being imported must stop the
    # worker cleanly (exit 0), not kill it with Python's default action: it is remembered
    # here and handed to the worker once it exists (its own handlers take over in serve()).
    stop_now: list[Callable[[], None]] = []
    asked: list[int] = []

    def early(signum: int, frame: object) -> None:
        asked.append(signum)
        for stop in stop_now:
            stop()

    signal.signal(signal.SIGTERM, early)
    signal.signal(signal.SIGINT, early)
    from elfc.runtime.worker import lease_from_env

    if args.replicas < 1:
        raise ElfcError("--replicas must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise ElfcError("--threads must be at least 1")
    held_for = args.lease if args.lease is not None else lease_from_env()
    if args.replicas > 1:
        return _replicas(args)
    from elfc.mycelium.urls import open_mycelium
    from elfc.runtime.worker import Worker

    handle = _handle(args.target, args.elf)
    if args.threads is not None:
        return _threads(args, handle, held_for)
    store = open_mycelium(args.mycelium)
    worker = Worker(
        store,
        handle,
        lease=held_for,
        on_revision_mismatch=args.on_revision_mismatch,
        echo_output=args.task_output == "echo",
        capture_output=args.task_output != "off",
    )
    stop_now.append(worker.stop)
    if asked:
        worker.stop()  # asked to stop while starting: serve() returns at once
    if args.parent_pid is not None:
        from elfc.runtime.supervisor import watch_parent

        watch_parent(args.parent_pid, worker.stop)

    def ready() -> None:  # printed once a stop signal would be handled
        print(f"elfc worker {worker.id} serving {args.elf!r} from {store.url}", file=sys.stderr)

    done = worker.serve(idle_exit=args.idle_exit, on_ready=ready)
    print(f"elfc worker {worker.id}: stopped after {done} jobs", file=sys.stderr)
    store.close()
    return 0


def _handle(target: str, elf: str) -> Handle:
    from elfc.decorators import HANDLES
    from elfc.targets import load_module

    module = target.rpartition(":")[0] if _has_name(target) else target
    load_module(module)
    handles = HANDLES.get(elf, [])
    if not handles:
        known = ", ".join(sorted(HANDLES)) or "(none)"
        raise ElfcError(f"{module} defines no handle named {elf!r}; it defines: {known}")
    if len({(h.cls, h.config) for h in handles}) > 1:
        raise ElfcError(f"{module} defines several different handles named {elf!r}")
    return handles[-1]


def _threads(args: argparse.Namespace, handle: Handle, held_for: float) -> int:
    """Serve the elf from ``--threads`` threads of this process. The first SIGTERM/SIGINT lets
    each thread finish its job; a second gives the running jobs back now."""
    from elfc.mycelium.urls import default_url, mask_url
    from elfc.runtime.serve import serve

    url = args.mycelium or default_url()
    told = threading.Event()
    started: list[Serving] = []

    def on_signal(signum: int, frame: object) -> None:
        if told.is_set() and started:
            started[0].interrupt()
        told.set()

    # Before the threads start: a signal must never find the default handler (exit at once).
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serving = serve(
        handle,
        mycelium=url,
        threads=args.threads,
        lease=held_for,
        on_revision_mismatch=args.on_revision_mismatch,
        idle_exit=args.idle_exit,
        task_output=args.task_output,
    )
    started.append(serving)
    ids = " ".join(w.id for w in serving.workers)
    print(
        f"elfc worker: serving {args.elf!r} from {args.threads} thread(s) of process "
        f"{os.getpid()} ({ids}) on {mask_url(url)}",
        file=sys.stderr,
    )
    while not told.wait(0.25) and not serving.wait(0) and not serving.given_up:
        pass
    try:
        serving.stop(grace=None)
    except ServeError as exc:
        print(f"elfc worker: {exc}", file=sys.stderr)
        return 1
    done = sum(w.jobs_done for w in serving.workers)
    print(f"elfc worker: {args.threads} thread(s) stopped after {done} jobs", file=sys.stderr)
    return 0


def _has_name(target: str) -> bool:
    head, sep, tail = target.rpartition(":")
    return bool(sep and head and tail and "/" not in tail and "\\" not in tail)


def _replicas(args: argparse.Namespace) -> int:
    """Serve the elf from ``--replicas`` worker processes; signals are passed on to them."""
    from elfc.runtime.supervisor import spawn_worker, worker_command

    options: list[str] = []
    for flag, value in (
        ("--on-revision-mismatch", args.on_revision_mismatch),
        ("--task-output", args.task_output),
        ("--lease", args.lease),
        ("--idle-exit", args.idle_exit),
        ("--threads", args.threads),
    ):
        if value is not None:
            options += [flag, str(value)]
    command = worker_command(args.target, args.elf, args.mycelium, options)
    forwarded: set[int] = set()

    def forward(signum: int, frame: object) -> None:
        forwarded.add(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    # Handlers first: a signal that arrives while the replicas start is forwarded too.
    procs: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(args.replicas):
        procs.append(spawn_worker(command))
        if forwarded:  # stopped while starting: the rest are not started
            forward(next(iter(forwarded)), None)
            break
    if args.parent_pid is not None:
        from elfc.runtime.supervisor import watch_parent

        watch_parent(args.parent_pid, lambda: forward(signal.SIGTERM, None))
    codes = [p.wait() for p in procs]
    return max(_exit_code(code, forwarded) for code in codes)


def _exit_code(code: int, forwarded: set[int]) -> int:
    """A replica's return code as this command's exit code: killed by a stop signal this
    process passed on (one that came before the replica could handle it) is a clean stop (0);
    killed by another signal N is 128 + N, as a shell reports it."""
    if code >= 0:
        return code
    return 0 if -code in forwarded else 128 - code
