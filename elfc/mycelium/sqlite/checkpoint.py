"""WAL checkpoints off the write path: a thread that copies the log into the database file.

In WAL mode SQLite appends each commit to ``<db>-wal``; a *checkpoint* copies those pages back
into the database file and, at ``synchronous=NORMAL``, is the one step that waits for the disk
(``fsync``). By default the connection that commits the 1000th page runs it inside its
``COMMIT``: measured on the CHAIN benchmark, a median commit of 29 µs became a mean of 104 µs,
with a commit in a hundred taking 3 ms or more, on the critical path of a hop.

So each store's connection runs with ``wal_autocheckpoint`` off, and a :class:`Checkpointer`
thread with a connection of its own runs ``PRAGMA wal_checkpoint(PASSIVE)`` once the process
has committed :data:`EVERY` write transactions since the last one. A passive checkpoint waits
for no reader or writer: commits go on appending to the log while it runs, and SQLite releases
the GIL while it copies and syncs. Nothing is less durable: a commit is in the log, synced or
not, exactly as before; only who copies it to the database file, and when, changed. The
connection that closes the database last checkpoints what is left, as SQLite always does.

Usage::

    checkpointer = Checkpointer(path)   # one per store and process
    checkpointer.committed()            # after each write transaction
    checkpointer.close()
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["EVERY", "Checkpointer"]

log = logging.getLogger(__name__)

EVERY = 100
"""Write transactions of this process between two checkpoints it asks for. A CHAIN hop commits
twice and a FANOUT batch once, so the log holds a few hundred transactions at most (a few MiB):
small enough for readers to search, large enough that a checkpoint copies many pages per sync."""


class Checkpointer:
    """Runs passive checkpoints of the database at ``path`` in a daemon thread of its own."""

    def __init__(self, path: Path, every: int = EVERY) -> None:
        self.path = path
        self.every = every
        self._since = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """Count one write transaction; every :attr:`every` of them, wake the thread."""
        self._since += 1
        if self._since < self.every:
            return
        self._since = 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="elfc-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        self._closed = True
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)

    def _loop(self) -> None:
        con: sqlite3.Connection | None = None
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closed:
                    return
                try:
                    if con is None:
                        con = sqlite3.connect(self.path, isolation_level=None, timeout=0)
                    con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:
                    # Busy (another process checkpoints), or the file went away: the next
                    # round, or the last connection to close, copies what is left.
                    log.debug("checkpoint of %s skipped: %s", self.path, exc)
        finally:
            if con is not None:
                with contextlib.suppress(sqlite3.Error):
                    con.close()
