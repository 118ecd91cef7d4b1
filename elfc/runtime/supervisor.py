"""Worker processes: how one is started (written once, for ``elfc run`` and ``elfc worker
--replicas``), a supervisor that keeps an elf's replicas alive, and :func:`follow`, which waits
for a run to settle.

Nothing here draws: :func:`follow` hands each fresh :class:`RunInfo`, with the supervisor's
notes, to a callback (``elfc.cli.progress`` is the command line's). Starting, restarting and
stopping workers is logged (``elfc.runtime.supervisor``) at INFO, a worker killed at WARNING.

Usage::

    supervisor = Supervisor(module="app.py", url=url, replicas={"animals": 2})
    supervisor.start(["animals", "store"])
    try:
        info = follow(store, run_id, supervisor=supervisor, on_update=show)
    finally:
        supervisor.stop()
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from elfc.errors import ElfcError
from elfc.model.records import RunInfo
from elfc.model.status import FINAL_RUN_STATUSES
from elfc.mycelium.store import Store
from elfc.mycelium.urls import backend_for, split_password

log = logging.getLogger(__name__)

MAX_RESTARTS = 3

Stream = int | IO[Any] | None
"""What :class:`subprocess.Popen` takes for a standard stream (``None``: the parent's)."""


@dataclass(frozen=True)
class WorkerCommand:
    """How to start one worker process of an elf: its command line and environment."""

    elf: str
    argv: tuple[str, ...]
    env: dict[str, str] | None = None
    """``None``: the parent's environment. Set when a password travels in it."""


def worker_command(
    module: str, elf: str, url: str | None, options: Sequence[str] = ()
) -> WorkerCommand:
    """``python -m elfc worker MODULE --elf ELF [--mycelium URL] OPTIONS...``, with the URL's
    password (if any) moved to the environment (see :func:`child_url_and_env`).
    """
    argv = [sys.executable, "-m", "elfc", "worker", module, "--elf", elf]
    env = None
    if url is not None:
        bare, env = child_url_and_env(url)
        argv += ["--mycelium", bare]
    return WorkerCommand(elf, (*argv, *options), env)


def spawn_worker(
    command: WorkerCommand, *, stdin: Stream = None, stdout: Stream = None
) -> subprocess.Popen[bytes]:
    """Start one worker process, in a session of its own.

    Ctrl-C in a terminal signals the whole foreground process group; a worker that also got
    the signal its parent forwards would take it as a second one ("give the job back now")
    instead of finishing its job. So workers hear signals only from the process that started
    them, which stops them deliberately.
    """
    proc = subprocess.Popen(
        command.argv, stdin=stdin, stdout=stdout, start_new_session=True, env=command.env
    )
    log.info("started worker process %d for elf %r", proc.pid, command.elf)
    return proc


@dataclass
class WorkerProcess:
    command: WorkerCommand
    proc: subprocess.Popen[bytes]
    restarts: int = 0


@dataclass
class Supervisor:
    """Worker processes for the elves of a run, one per replica; restarts any that dies."""

    module: str
    url: str
    replicas: Mapping[str, int] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)
    """Options for every worker's command line (after ``worker MODULE --elf ELF``)."""
    workers: list[WorkerProcess] = field(default_factory=list)

    def start(self, elves: Iterable[str]) -> None:
        for elf in sorted(set(elves)):
            command = worker_command(self.module, elf, self.url, self.extra)
            for _ in range(max(1, self.replicas.get(elf, 1))):
                self.workers.append(WorkerProcess(command, self._spawn(command)))

    def _spawn(self, command: WorkerCommand) -> subprocess.Popen[bytes]:
        # Workers print to stderr: stdout carries only the run's result.
        return spawn_worker(command, stdin=subprocess.DEVNULL, stdout=sys.stderr)

    def check(self) -> list[str]:
        """Restart workers that died; returns a note per restart."""
        notes = []
        for w in self.workers:
            code = w.proc.poll()
            if code is not None:
                if w.restarts >= MAX_RESTARTS:
                    alone = " ".join(w.command.argv[3:])
                    raise ElfcError(
                        f"the worker for {w.command.elf!r} keeps exiting (last exit code "
                        f"{code}); its error is printed above. Try it alone: elfc {alone}"
                    )
                w.restarts += 1
                message = "worker process %d for elf %r exited with %d; restart %d of %d"
                log.info(message, w.proc.pid, w.command.elf, code, w.restarts, MAX_RESTARTS)
                notes.append(f"worker for {w.command.elf!r} exited with {code}; restarted")
                w.proc = self._spawn(w.command)
        return notes

    def stop(self, grace: float = 10.0, *, hurry: bool = False) -> None:
        """Ask every worker to stop (SIGTERM: finish the job in hand), wait up to ``grace``
        seconds in all, then kill those still running. With ``hurry`` (the run was given up:
        timed out or cancelled) a second SIGTERM follows, so a worker gives its job back at
        once instead of finishing it."""
        running = [w for w in self.workers if w.proc.poll() is None]
        log.info("stopping %d worker process(es)", len(running))
        for w in running:
            w.proc.send_signal(signal.SIGTERM)
        if hurry and running:
            # Apart, or the two signals merge into one before the worker's handler runs.
            time.sleep(0.1)
            for w in running:
                if w.proc.poll() is None:
                    w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for w in self.workers:
            try:
                code = w.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker process %d did not stop in %s s; killing it", w.proc.pid, grace)
                w.proc.kill()
                code = w.proc.wait()
            log.debug(
                "worker process %d for elf %r exited with %d", w.proc.pid, w.command.elf, code
            )


def child_url_and_env(url: str) -> tuple[str, dict[str, str] | None]:
    """The URL to put on a child's command line, and its environment (``None``: inherit).

    A password never goes on a command line (process lists show it): it travels in the
    environment variable the URL's backend reads it from (``Store.password_env``, e.g.
    ``$ELFC_ARANGO_PASSWORD``) instead. A URL without a password is passed as it is.
    """
    bare, password = split_password(url)
    if password is None:
        return url, None
    variable = backend_for(url).password_env
    if variable is None:
        return url, None  # this backend reads no password from the environment
    return bare, {**os.environ, variable: password}


OnUpdate = Callable[[RunInfo, Sequence[str]], None]
"""Called by :func:`follow` with the run as it now is and notes about restarted workers."""


def follow(
    store: Store,
    run_id: str,
    *,
    supervisor: Supervisor | None = None,
    timeout: float | None = None,
    on_update: OnUpdate | None = None,
) -> RunInfo:
    """Wait for the run to settle (or ``timeout`` seconds), keeping the supervisor's workers
    alive and calling ``on_update`` about four times a second and once at the end.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        store.wait_for_run(run_id, 0.25)
        info = store.run_info(run_id)
        if info is None:
            raise KeyError(run_id)
        notes = supervisor.check() if supervisor is not None else []
        if on_update is not None:
            on_update(info, notes)
        if info.status in FINAL_RUN_STATUSES:
            return info
        if deadline is not None and time.monotonic() > deadline:
            return info
