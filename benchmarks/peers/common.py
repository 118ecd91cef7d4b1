"""What every peer benchmark shares: sizes, the measured figures, timing, memory and redis.

A peer module defines ``run_round(sizes) -> dict[str, Figures]``: it starts its system, times
one warm-up and one measured run of each workload with ``measure_fanout``/``measure_chain``,
and stops everything it started, whatever happens.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Every server a benchmark starts listens here and nowhere else.
HOST = "127.0.0.1"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    """How big the measured and the warm-up workloads are."""

    fanout: int
    chain: int
    warm_fanout: int
    warm_chain: int


@dataclass(frozen=True)
class Memory:
    """The processes a system needs beside its client, and their memory."""

    processes: int
    rss_mib: float
    pss_mib: float
    client_rss_mib: float


@dataclass(frozen=True)
class Figures:
    """One round of one system: the two workloads, its start-up and its memory."""

    fanout_jobs_per_s: float
    chain_ms_per_hop: float
    start_s: float
    processes: int
    rss_mib: float
    pss_mib: float
    client_rss_mib: float


def fanout_expected(n: int) -> int:
    """source(n) -> work(seed, i) = seed + i for i < n -> reduce = sum."""
    return n * n + n * (n - 1) // 2


def check(what: str, got: object, expected: int) -> None:
    if got != expected:
        raise AssertionError(f"{what}: got {got!r}, expected {expected}")


def first_result(fanout: Callable[[int], int], launched: float) -> float:
    """Seconds from launching a system until its first (checked) result: its start-up."""
    check("first fanout(1)", fanout(1), fanout_expected(1))
    return time.perf_counter() - launched


def measure_fanout(fanout: Callable[[int], int], sizes: Sizes) -> float:
    """One warm-up, then one measured FANOUT: jobs/s end to end, submission included."""
    check("warm-up fanout", fanout(sizes.warm_fanout), fanout_expected(sizes.warm_fanout))
    t0 = time.perf_counter()
    value = fanout(sizes.fanout)
    seconds = time.perf_counter() - t0
    check("fanout", value, fanout_expected(sizes.fanout))
    return (sizes.fanout + 2) / seconds


def measure_chain(chain: Callable[[int], int], sizes: Sizes) -> float:
    """One warm-up, then one measured CHAIN of dependent +1 hops from 0: ms per hop."""
    check("warm-up chain", chain(sizes.warm_chain), sizes.warm_chain)
    t0 = time.perf_counter()
    value = chain(sizes.chain)
    seconds = time.perf_counter() - t0
    check("chain", value, sizes.chain)
    return seconds / sizes.chain * 1000


def figures(fanout: float, chain: float, start_s: float, memory: Memory) -> Figures:
    return Figures(
        fanout_jobs_per_s=fanout,
        chain_ms_per_hop=chain,
        start_s=start_s,
        processes=memory.processes,
        rss_mib=memory.rss_mib,
        pss_mib=memory.pss_mib,
        client_rss_mib=memory.client_rss_mib,
    )


def measure_all(
    fanout: Callable[[int], int], chain: Callable[[int], int], sizes: Sizes, launched: float
) -> Figures:
    """A round of a system whose workers serve both workloads and are up: its start-up
    (from ``launched``), FANOUT, CHAIN and the memory of its processes."""
    start_s = first_result(fanout, launched)
    fan = measure_fanout(fanout, sizes)
    mem = memory()
    hop = measure_chain(chain, sizes)
    return figures(fan, hop, start_s, larger(mem, memory()))


def _status_kib(pid: int, field: str, name: str = "status") -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited while we looked
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory() -> Memory:
    """Every process below this one (workers, servers, daemons): count, RSS sum, PSS sum.

    RSS counts shared pages once per process, as `ps` does; PSS splits them, so it adds up.
    """
    pids = _descendants(os.getpid())
    rss = sum(_status_kib(p, "VmRSS") for p in pids)
    pss = sum(_status_kib(p, "Pss", "smaps_rollup") for p in pids)
    client = _status_kib(os.getpid(), "VmRSS")
    return Memory(len(pids), rss / 1024, pss / 1024, client / 1024)


def larger(a: Memory, b: Memory) -> Memory:
    return a if a.rss_mib >= b.rss_mib else b


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.02)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate one process we started and reap it; kill it if it will not go."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ProcessExited(RuntimeError):
    """A worker or server we started exited while it was needed."""


def _name(proc: subprocess.Popen[bytes]) -> str:
    argv = [str(a) for a in proc.args] if isinstance(proc.args, list) else [str(proc.args)]
    return " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv[:6]))


@contextlib.contextmanager
def stopping(procs: list[subprocess.Popen[bytes]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Stop the processes in ``procs`` on the way out, also at interpreter exit.

    While the block runs, one that exits raises ProcessExited in the main thread at once,
    instead of leaving the benchmark to wait for results that will never come.
    """
    done = threading.Event()
    exited: list[subprocess.Popen[bytes]] = []
    main = threading.main_thread().ident

    def watch() -> None:
        while not done.wait(0.2):
            if any(p.poll() is not None for p in procs) and main is not None:
                exited.extend(p for p in procs if p.poll() is not None)
                signal.pthread_kill(main, signal.SIGUSR1)
                return

    def raise_exited(signum: int, frame: object) -> None:
        if not done.is_set() and exited:
            p = exited[0]
            raise ProcessExited(f"{_name(p)} exited with code {p.returncode}")

    def stop_all() -> None:
        done.set()
        for p in procs:
            stop_process(p)

    previous = signal.signal(signal.SIGUSR1, raise_exited)
    atexit.register(stop_all)
    threading.Thread(target=watch, daemon=True).start()
    try:
        yield procs
    finally:
        stop_all()
        signal.signal(signal.SIGUSR1, previous)
        atexit.unregister(stop_all)


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 and a free port, no persistence; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    port = free_port()
    with temp_dir("peers-redis-") as tmp:
        argv = [exe, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
                "--dir", str(tmp), "--daemonize", "no", "--loglevel", "warning"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        with stopping([proc]):
            wait_for(lambda: _answers_ping(port) or proc.poll() is not None, "redis-server")
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {proc.returncode}")
            yield f"redis://{HOST}:{port}/0"
