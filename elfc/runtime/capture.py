"""What a job writes: its ``print``s, anything on ``sys.stdout``/``sys.stderr`` and its
``logging`` records, kept per job so that ``elfc logs`` can show it afterwards.

A worker installs one :class:`OutputCapture` for as long as it serves. While a job runs on a
thread (``begin``/``end`` around it), what that thread writes goes to the job's buffer, and,
with ``echo``, on to the original stream too; what other threads write, and what is written
between jobs (an elf's ``__init__``, the worker's own messages), goes to the original streams
only. Buffers are per thread, so elves that run jobs in threads keep their outputs apart.

The cost with no output is two thread-local writes and a read per job: capture stays on by default (the
overhead is measured in ``benchmarks/runtime.py``). Output written below Python (a C library
writing to file descriptor 1, a subprocess inheriting it) bypasses ``sys.stdout`` and is not
captured.

A long job's output can be taken while it runs (:meth:`OutputCapture.take`, whole lines
only): the worker stores it every :data:`elfc.runtime.worker.LIVE_OUTPUT` seconds, so that
``elfc logs -f`` shows it as it comes.

Usage::

    capture = OutputCapture(echo=True)
    capture.install()
    try:
        capture.begin()
        run_the_job()
        text, dropped = capture.end()
    finally:
        capture.uninstall()
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import IO, Any

from elfc.mycelium.common import LOG_LIMIT

__all__ = ["OutputCapture"]

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
"""How a captured ``logging`` record reads in a job's output."""


class _Buffer:
    """One job's output so far, bounded: characters past ``limit`` are counted, not kept.

    Written by the job's thread only, by appending to ``parts`` (atomic in CPython); another
    thread (a worker storing a long job's output while it runs) may :meth:`take` the whole
    lines written so far, which only reads the parts and moves ``start`` past them, so that
    writing needs no lock. ``take`` and ``text`` must not run at once (the worker serialises
    them)."""

    __slots__ = ("dropped", "echo", "limit", "parts", "size", "start")

    def __init__(self, limit: int, echo: bool) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0
        self.limit = limit
        self.echo = echo
        self.start = (0, 0)
        """Where the text not yet taken begins: (part index, characters into that part)."""

    def write(self, text: str) -> None:
        room = self.limit - self.size
        if len(text) <= room:
            self.parts.append(text)
            self.size += len(text)
            return
        if room > 0:
            self.parts.append(text[:room])
            self.size = self.limit
        self.dropped += len(text) - max(room, 0)

    def text(self) -> str:
        """What was written and not taken."""
        part, skip = self.start
        return "".join(self.parts[part:])[skip:]

    def take(self) -> str:
        """The whole lines written since the last ``take`` (up to the last newline); the
        bound still counts them."""
        part, skip = self.start
        parts = self.parts[part : len(self.parts)]  # a snapshot: the writer only appends
        text = "".join(parts)[skip:]
        cut = text.rfind("\n") + 1
        if cut == 0:
            return ""
        # Move start past ``cut`` characters: whole parts first, then into the next one.
        left = cut + skip
        for piece in parts:
            if left < len(piece):
                break
            left -= len(piece)
            part += 1
        self.start = (part, left)
        return text[:cut]


class _Job(threading.local):
    """The calling thread's job: the capture it runs under, and its buffer, made on the
    first write (most jobs write nothing)."""

    capture: OutputCapture | None = None
    buffer: _Buffer | None = None


_local = _Job()


def _current() -> _Buffer | None:
    buffer = _local.buffer
    if buffer is None:
        capture = _local.capture
        if capture is None:
            return None
        buffer = _local.buffer = capture.live = _Buffer(capture.limit, capture.echo)
    return buffer


class _Tee:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: a write goes to the calling thread's
    job buffer when it has one (and to the original stream if that job echoes), else to the
    original stream. Everything else (``fileno``, ``isatty``, ``buffer``) is the original's."""

    def __init__(self, original: IO[str]) -> None:
        self._original = original

    def write(self, text: str) -> int:
        buffer = _current()
        if buffer is not None:
            buffer.write(text)
            if not buffer.echo:
                return len(text)
        return self._original.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class _RecordHandler(logging.Handler):
    """Appends the ``logging`` records of a thread running a job to that job's buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        buffer = _current()
        if buffer is None or record.name == "elfc" or record.name.startswith("elfc."):
            return  # not a job's, or the worker's own (shown by the command's handler)
        try:
            buffer.write(self.format(record) + "\n")
        except Exception:  # a record that cannot be formatted must not fail the job
            self.handleError(record)


class _Installation:
    """The stand-ins and the handler, installed once per process however many workers (in
    threads) serve at once, and removed when the last one stops."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved: tuple[Any, Any, int] | None = None
        self.handler = _RecordHandler()

    def acquire(self) -> None:
        with self.lock:
            self.users += 1
            if self.users > 1:
                return
            root = logging.getLogger()
            self.saved = (sys.stdout, sys.stderr, root.level)
            if not root.handlers and root.level == logging.WARNING:
                root.setLevel(logging.INFO)
            root.addHandler(self.handler)
            sys.stdout = _Tee(sys.stdout)
            sys.stderr = _Tee(sys.stderr)

    def release(self) -> None:
        with self.lock:
            self.users -= 1
            if self.users or self.saved is None:
                return
            sys.stdout, sys.stderr, level = self.saved
            root = logging.getLogger()
            root.removeHandler(self.handler)
            root.setLevel(level)
            self.saved = None


_INSTALLATION = _Installation()


class OutputCapture:
    """Per-job capture of stdout, stderr and ``logging`` for one worker (see the module)."""

    def __init__(self, *, echo: bool = True, limit: int = LOG_LIMIT, enabled: bool = True) -> None:
        self.echo = echo
        """Also write a job's stdout and stderr to the original streams."""
        self.limit = limit
        self.enabled = enabled
        """``False``: capture nothing (every method is a no-op; output goes where it goes)."""
        self.live: _Buffer | None = None
        """The buffer of the job running under this capture once it wrote something (one job
        at a time per capture: a worker's), for :meth:`take`."""
        self._installed = False

    def install(self) -> None:
        """Put the stand-ins in place of ``sys.stdout``/``sys.stderr`` and listen to the root
        logger (once per process). With Python's default logging (no handler, level
        WARNING) the root level becomes INFO, so that a task's ``log.info`` is kept."""
        if self.enabled and not self._installed:
            self._installed = True
            _INSTALLATION.acquire()

    def uninstall(self) -> None:
        """Put the original streams and the root logger back when no other worker needs
        them."""
        if self._installed:
            self._installed = False
            _INSTALLATION.release()

    def begin(self) -> None:
        """A job starts on this thread: from now on its writes are kept."""
        if self.enabled:
            _local.capture = self

    def end(self) -> tuple[str, int]:
        """The job on this thread ended: what it wrote, and how many characters past the
        bound were left out. ``("", 0)`` when it wrote nothing (or none was begun)."""
        if not self.enabled:
            return "", 0
        buffer = _local.buffer
        _local.capture = _local.buffer = self.live = None
        if buffer is None:
            return "", 0
        return buffer.text(), buffer.dropped

    def take(self) -> str:
        """From any thread: the whole lines the running job wrote since the last ``take``
        (``""`` when none); :meth:`end` then returns only what came after them."""
        buffer = self.live
        return "" if buffer is None else buffer.take()
