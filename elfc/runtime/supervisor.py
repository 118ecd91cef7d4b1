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
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from elfc.errors import ElfcError
from elfc.model.records import RunInfo
from elfc.model.status import FINAL_RUN_STATUSES
from elfc.mycelium.store import Store
from elfc.mycelium.urls import backend_for, split_password

log = logging.getLogger(__name__)

RESTART_WINDOW = 60.0
MAX_EXITS = 5
"""A worker that exits on its own (an exit code, not a signal) ``MAX_EXITS`` times within
``RESTART_WINDOW`` seconds cannot start or keeps failing: the supervisor gives up then. One
killed by a signal (kill -9, out of memory, a crash in native code) is always restarted; a job
that kills every worker is failed by the mycelium after ``MAX_LOST_LEASES`` deaths instead."""
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
"""Seconds before a restart: doubled for each exit of that worker within the window."""

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
    argv += ["--parent-pid", str(os.getpid())]  # so that it stops if this process dies
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
    exits: deque[tuple[float, int]] = field(default_factory=deque)
    """``(monotonic time, exit code)`` of its exits within the last ``RESTART_WINDOW``."""
    restart_at: float | None = None
    """When it is to be started again (it exited); ``None`` while it runs."""


@dataclass
class Supervisor:
    """Worker processes for the elves of a run, one per replica (each serving its elf from
    ``threads`` threads where given); restarts any that dies."""

    module: str
    url: str
    replicas: Mapping[str, int] = field(default_factory=dict)
    threads: Mapping[str, int] = field(default_factory=dict)
    """Elves whose every worker process serves them from this many threads (``--threads``)."""
    extra: list[str] = field(default_factory=list)
    """Options for every worker's command line (after ``worker MODULE --elf ELF``)."""
    workers: list[WorkerProcess] = field(default_factory=list)
    exits: dict[int, int] = field(default_factory=dict)
    """Process id -> return code of each worker that died: what a ``WorkerLost`` failure,
    which names the worker, is told by the command that started it."""

    def start(self, elves: Iterable[str]) -> None:
        for elf in sorted(set(elves)):
            options = [*self.extra]
            if elf in self.threads:
                options += ["--threads", str(self.threads[elf])]
            command = worker_command(self.module, elf, self.url, options)
            for _ in range(max(1, self.replicas.get(elf, 1))):
                self.workers.append(WorkerProcess(command, self._spawn(command)))

    def _spawn(self, command: WorkerCommand) -> subprocess.Popen[bytes]:
        # Workers print to stderr: stdout carries only the run's result.
        return spawn_worker(command, stdin=subprocess.DEVNULL, stdout=sys.stderr)

    def check(self) -> list[str]:
        """Restart workers that died, each after a backoff; returns a note per death.

        Raises :class:`ElfcError` when a worker exited on its own ``MAX_EXITS`` times within
        ``RESTART_WINDOW`` seconds: it cannot start (or keeps failing), so nothing would
        finish the run.
        """
        notes = []
        now = time.monotonic()
        for w in self.workers:
            if w.restart_at is not None:
                if now >= w.restart_at:
                    w.restart_at = None
                    w.proc = self._spawn(w.command)
                continue
            code = w.proc.poll()
            if code is None:
                continue
            w.exits.append((now, code))
            self.exits[w.proc.pid] = code
            while w.exits and w.exits[0][0] < now - RESTART_WINDOW:
                w.exits.popleft()
            how = exit_text(code)
            exited = sum(1 for _, c in w.exits if c >= 0)
            if code >= 0 and exited >= MAX_EXITS:
                alone = " ".join(_without_parent(w.command.argv[3:]))
                raise ElfcError(
                    f"the worker for {w.command.elf!r} {how}, its {exited}th exit in "
                    f"{RESTART_WINDOW:g} s, so it is not restarted again; its output, if "
                    f"any, is above. Try it alone: elfc {alone}"
                )
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (len(w.exits) - 1))
            level = logging.WARNING if code < 0 else logging.INFO
            message = "worker process %d for elf %r %s; restarting it in %.1f s"
            log.log(level, message, w.proc.pid, w.command.elf, how, delay)
            notes.append(f"worker for {w.command.elf!r} {how}; restarting")
            w.restart_at = now + delay
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


def _without_parent(argv: Sequence[str]) -> list[str]:
    """A worker's arguments without ``--parent-pid PID`` (for a command to try by hand)."""
    out, words = [], iter(argv)
    for word in words:
        if word == "--parent-pid":
            next(words, None)
        else:
            out.append(word)
    return out


def exit_text(code: int) -> str:
    """``exited with 3`` or ``was killed by SIGKILL``, for a process's return code."""
    if code >= 0:
        return f"exited with {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"


def watch_parent(pid: int, on_death: Callable[[], None], every: float = 0.25) -> threading.Thread:
    """Call ``on_death`` once the process ``pid`` that started this one is gone (this process
    is then re-parented). A worker started by ``elfc run`` or ``elfc worker --replicas`` runs
    in a session of its own, so no terminal hang-up reaches it: this is how it learns that
    its parent was killed (kill -9 included) rather than serving forever as an orphan."""

    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(every)
        log.warning("the process %d that started this worker is gone; stopping", pid)
        on_death()

    thread = threading.Thread(target=watch, name="elfc-parent-watch", daemon=True)
    thread.start()
    return thread


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
