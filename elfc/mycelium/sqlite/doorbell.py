"""Doorbells: wake-up calls between the processes that share one SQLite file.

An idle worker sleeps on a unix datagram socket of its own; a writer that committed work for
an elf rings every socket of that elf's channel once the transaction is committed. Rings
carry no data: a lost ring costs a poll (waiters still check ``PRAGMA data_version`` now and
then), a forged one a spurious wake-up. Where unix sockets cannot be used (no ``AF_UNIX``, a
read-only folder), ``listen`` gives no listener and the caller polls instead.

Usage::

    bell = Doorbell(db_path)
    listener, fresh = bell.listen("elf:animals")   # a waiter
    bell.ring("elf:animals")                       # a writer, after its commit
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import select
import socket
import stat
import tempfile
from pathlib import Path

from elfc.model.ir import revision_of
from elfc.mycelium.common import abandon

__all__ = ["Doorbell", "Listener"]

MAX_SOCKET_PATH = 72
"""Longest folder for sockets: a socket address holds 104 bytes (macOS; 108 on Linux), and each
socket adds a channel folder and its own name (about 28 more)."""


class Listener:
    """One bound datagram socket: a waiter's end of a doorbell."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock = sock
        self.path = path
        self.poll = select.poll()
        self.poll.register(sock, select.POLLIN)

    def wait(self, timeout: float) -> bool:
        """True if the bell rang (and drain every pending ring) within ``timeout`` seconds."""
        if not self.poll.poll(max(timeout, 0.0) * 1000):
            return False
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recv(16)
        return True


_bound: dict[str, int] = {}
"""Socket paths bound by this process (by pid, so a forked child leaves its parent's alone)."""


@atexit.register
def _unlink_bound() -> None:
    for path, pid in list(_bound.items()):
        if pid == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(path)


class Doorbell:
    """Wake-up calls between the processes of one database file.

    Each waiter binds a unix datagram socket in a folder per channel (``elf:<name>`` or
    ``runs``); ringing sends an empty datagram to every socket in the folder. The folder lives
    next to the database (``<db>-bells/``), or under the temp directory when that path is too
    long for a socket address. Rings carry no data, so a forged ring only causes a spurious
    wake-up. Stale sockets of dead processes are removed by the next ring.
    """

    def __init__(self, db_path: Path) -> None:
        base = Path(f"{db_path}-bells")
        if len(str(base)) > MAX_SOCKET_PATH and hasattr(os, "getuid"):
            base = Path(tempfile.gettempdir(), f"elfc-{os.getuid()}", revision_of(str(db_path)))
        self.base = base
        self.usable = hasattr(socket, "AF_UNIX") and len(str(base)) <= MAX_SOCKET_PATH
        self._listeners: dict[str, Listener] = {}
        self._sender: socket.socket | None = None
        self._folders: dict[str, Path] = {}

    def _folder(self, channel: str) -> Path:
        folder = self._folders.get(channel)
        if folder is None:
            folder = self._folders[channel] = self.base / revision_of(channel)[:12]
        return folder

    def ring(self, channel: str) -> None:
        if not self.usable:
            return
        folder = self._folder(channel)
        try:
            names = os.listdir(folder)
        except OSError:
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        for name in names:
            path = os.path.join(folder, name)
            try:
                self._sender.sendto(b"", socket.MSG_DONTWAIT, path)
            except BlockingIOError:
                pass  # its queue is full: it will wake anyway
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    os.unlink(path)  # its process is gone
            except OSError:
                pass

    def listen(self, channel: str) -> tuple[Listener | None, bool]:
        """This process's socket for ``channel`` (bound on first use: then ``fresh``)."""
        listener = self._listeners.get(channel)
        if listener is not None:
            return listener, False
        if not self.usable:
            return None, False
        folder = self._folder(channel)
        path = str(folder / f"{os.getpid()}.{secrets.token_hex(3)}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._make_folder(folder)
            sock.bind(path)
            sock.setblocking(False)
        except OSError:
            sock.close()
            self.usable = False  # e.g. a read-only folder: poll instead
            return None, True
        listener = self._listeners[channel] = Listener(sock, path)
        _bound[path] = os.getpid()
        return listener, True

    def _make_folder(self, folder: Path) -> None:
        if not self.base.exists() and self.base.parent.name.startswith("elfc-"):
            # A private folder under the shared temp directory: it must be ours.
            self.base.parent.mkdir(mode=0o700, exist_ok=True)
            info = os.lstat(self.base.parent)
            if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode):
                raise PermissionError(f"{self.base.parent} is not a private folder")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def close(self) -> None:
        for listener in self._listeners.values():
            listener.sock.close()
            _bound.pop(listener.path, None)
            with contextlib.suppress(OSError):
                os.unlink(listener.path)
        self._listeners.clear()
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def after_fork(self) -> None:
        """In a child: the parent's sockets stay the parent's (not closed, not unlinked)."""
        abandon(*self._listeners.values(), self._sender)
        self._listeners = {}
        self._sender = None
