"""Hosts of their own for the multi-host tests: Linux network namespaces, each linked to the
root namespace by a veth pair and to nothing else.

Host ``a`` is the namespace ``elfc-mh-a``: ``10.231.1.2/30`` inside, ``10.231.1.1/30`` on the
root side, where the test's PostgreSQL server listens; host ``b`` is ``10.231.2.x``. A
namespace has no default route, so a process in it reaches the server's root-side address
and nothing beyond. :func:`cut` takes a host's link down (its packets are dropped, as behind
a failed switch), :func:`mend` brings it back. Creating them needs root and ``ip`` (iproute2).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PREFIX = "elfc-mh-"


@dataclass(frozen=True)
class Host:
    """One network namespace and its link to the root namespace."""

    name: str
    subnet: int
    """The third byte of its /30: ``10.231.<subnet>.0``."""

    @property
    def ns(self) -> str:
        return PREFIX + self.name

    @property
    def outside(self) -> str:
        """The root side of the link (the device name is at most 15 bytes)."""
        return f"elfcmh-{self.name}0"

    @property
    def inside(self) -> str:
        return f"elfcmh-{self.name}1"

    @property
    def server_address(self) -> str:
        """The root-side address: where this host reaches the server."""
        return f"10.231.{self.subnet}.1"

    @property
    def address(self) -> str:
        """The host's own address, as the server sees its connections come from."""
        return f"10.231.{self.subnet}.2"

    def exec(self, *argv: str) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def inode(self) -> int:
        """The namespace's inode: what ``/proc/PID/ns/net`` of a process inside names."""
        return os.stat(f"/run/netns/{self.ns}").st_ino


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command: apt-get install iproute2"
    probe = PREFIX + "probe"
    _ip("netns", "delete", probe, check=False)
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


def remove(hosts: Sequence[Host]) -> None:
    """Delete the hosts' namespaces and links, also those a crashed earlier run left."""
    for host in hosts:
        _ip("link", "delete", host.outside, check=False)  # takes its peer with it
        _ip("netns", "delete", host.ns, check=False)


def _create(host: Host) -> None:
    _ip("netns", "add", host.ns)
    _ip("link", "add", host.outside, "type", "veth", "peer", "name", host.inside,
        "netns", host.ns)  # fmt: skip
    _ip("addr", "add", f"{host.server_address}/30", "dev", host.outside)
    _ip("link", "set", host.outside, "up")
    _ip("-n", host.ns, "addr", "add", f"{host.address}/30", "dev", host.inside)
    _ip("-n", host.ns, "link", "set", host.inside, "up")
    _ip("-n", host.ns, "link", "set", "lo", "up")


@contextlib.contextmanager
def hosts(*names: str) -> Iterator[list[Host]]:
    """Namespaces ``elfc-mh-NAME`` linked to the root namespace; removed on the way out."""
    made = [Host(name, i + 1) for i, name in enumerate(names)]
    remove(made)
    try:
        for host in made:
            _create(host)
        yield made
    finally:
        remove(made)


def cut(host: Host) -> None:
    """Take the host's end of its link down: what it sends and what is sent to it is lost."""
    _ip("-n", host.ns, "link", "set", host.inside, "down")


def mend(host: Host) -> None:
    _ip("-n", host.ns, "link", "set", host.inside, "up")


def reachable(host: Host, address: str, port: int) -> bool:
    """Whether a TCP connection from inside ``host`` to ``address:port`` succeeds."""
    probe = (
        "import socket,sys\ntry:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), "
        "timeout=2).close()\nexcept OSError:\n sys.exit(1)"
    )
    argv = host.exec("python3", "-c", probe, address, str(port))
    return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0


def calls(folder: Path) -> list[tuple[int, int, str, str]]:
    """Every call :mod:`tests.mycelium.multihost_elves` recorded in ``folder``:
    (namespace inode, pid, key, job id)."""
    found: list[tuple[int, int, str, str]] = []
    for path in sorted(folder.glob("*-*")):
        ns, pid = path.name.split("-")
        for line in path.read_text().splitlines():
            key, job = line.split("\t")
            found.append((int(ns), int(pid), key, job))
    return found
