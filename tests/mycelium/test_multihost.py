"""Several hosts on one PostgreSQL mycelium, for real: each host a Linux network namespace
(``tests/mycelium/netns.py``) whose only link leads to the server, its workers started
inside it with ``ip netns exec``. Every call of a task is recorded in a file of its process
(``multihost_elves.py``), so what ran where and how often is read back, next to what the
mycelium stored:

* a fan-out of 5,000 jobs runs with replicas on both hosts: each job once, both hosts busy;
* a host's link cut mid-run: its leases expire, the other host finishes the run; when the
  link is back, the cut host's late completions are refused (one stored result per job) and
  it goes on serving;
* the server restarted mid-run: the workers reconnect and nothing is lost or run twice;
* a host cut off in the middle of a transaction does not keep its locks: the server ends
  its session.

Needs root (namespaces), ``ip`` (iproute2) and PostgreSQL's binaries; skipped otherwise.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from elfc import connect
from elfc.runtime.client import Mycelium
from elfc.targets import load_module
from tests.mycelium import netns
from tests.mycelium.multihost_elves import expected, keys
from tests.mycelium.pg_cluster import URL, Cluster, cluster
from tests.runtime.fixtures.harness import REPO, Processes, wait_until

ELVES = REPO / "tests" / "mycelium" / "multihost_elves.py"
REFUSED = "result not stored, this worker had lost its lease"


def pipelines() -> ModuleType:
    """``multihost_elves``, imported by path exactly as the workers import it."""
    return load_module(str(ELVES))


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[netns.Host]]:
    why = netns.unavailable()
    if why:
        pytest.skip(why)
    if URL:
        pytest.skip("the multi-host tests start a server of their own (ELFC_PG_URL is set)")
    with netns.hosts("a", "b") as made:
        yield made


@pytest.fixture(scope="module")
def server(hosts: list[netns.Host]) -> Iterator[Cluster]:
    """A server of this module's own (one test restarts it), listening on 127.0.0.1 and on
    the root side of every host's link, password logins allowed from the hosts."""
    with cluster() as pg:
        assert pg.data is not None
        with open(pg.data / "db" / "pg_hba.conf", "a") as hba:
            for host in hosts:
                hba.write(f"host all all {host.address}/32 scram-sha-256\n")
        pg.listen = ",".join(["127.0.0.1", *(h.server_address for h in hosts)])
        pg.restart()
        for host in hosts:
            assert netns.reachable(host, host.server_address, pg.port), host
            assert not netns.reachable(host, "127.0.0.1", pg.port), "the host is not apart"
        yield pg


class Site:
    """One test's database on the module's server, and what its workers recorded."""

    def __init__(self, server: Cluster, db: str, folder: Path, procs: Processes) -> None:
        self.server, self.db, self.calls, self.procs = server, db, folder / "calls", procs
        self.calls.mkdir()

    def url(self, host: netns.Host | None = None) -> str:
        url = self.server.url(self.db)
        return url if host is None else url.replace("@127.0.0.1:", f"@{host.server_address}:")

    def workers(self, host: netns.Host, *extra: str) -> subprocess.Popen[bytes]:
        """``elfc worker --elf spread --replicas 2`` inside ``host``."""
        argv = host.exec(sys.executable, "-m", "elfc", "worker", str(ELVES), "--elf", "spread",
                         "--mycelium", self.url(host), "--replicas", "2", *extra)  # fmt: skip
        return self.procs.start(argv, env={"ELFC_CALLS": str(self.calls)})

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        return self.server.sql(statement, *params, db=self.db)

    def wait_for_workers(self, hosts: list[netns.Host], per_host: int = 2) -> None:
        """Until ``per_host`` workers of each host are registered, connected from its
        address."""

        def ready() -> bool:
            addresses = Counter(
                str(addr)
                for (addr,) in self.sql(
                    "SELECT client_addr FROM pg_stat_activity WHERE datname = current_database()"
                )
            )
            [(registered,)] = self.sql("SELECT count(*) FROM elfc.workers")
            return registered == per_host * len(hosts) and all(
                addresses[h.address] >= per_host for h in hosts
            )

        wait_until(ready, 60, "the workers of every host", every=0.1)

    def calls_by(self) -> dict[int, Counter[str]]:
        """Each namespace's calls: {namespace inode: Counter(job key)}."""
        out: dict[int, Counter[str]] = {}
        for ns, _pid, key, _job in netns.calls(self.calls):
            out.setdefault(ns, Counter())[key] += 1
        return out

    def pids(self, host: netns.Host) -> set[int]:
        return {pid for ns, pid, _, _ in netns.calls(self.calls) if ns == host.inode()}

    def jobs(self) -> dict[str, str]:
        """{key: job id} of the calls recorded (keys of the last run win)."""
        return {key: job for _, _, key, job in netns.calls(self.calls)}

    def stored(self, run_id: str) -> tuple[object, ...]:
        """(jobs, jobs with a stored result, jobs succeeded) of a run."""
        [row] = self.sql(
            "SELECT count(*), count(r.job), count(*) FILTER (WHERE j.status = 'succeeded') "
            "FROM elfc.jobs j LEFT JOIN elfc.results r ON r.job = j.no "
            "WHERE j.run_no = (SELECT no FROM elfc.runs WHERE id = %s)",
            run_id,
        )
        return row


@pytest.fixture
def site(
    server: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Site, Mycelium]]:
    monkeypatch.setenv("PGPASSWORD", server.password)
    db = server.database()
    try:
        with Processes(tmp_path) as procs:
            here = Site(server, db, tmp_path, procs)
            m = connect(here.url())
            try:
                yield here, m
            finally:
                m.close()
    finally:
        server.drop(db)


def test_a_fan_out_of_5000_jobs_runs_each_job_once_on_both_hosts(
    site: tuple[Site, Mycelium], hosts: list[netns.Host]
) -> None:
    here, m = site
    started = [here.workers(host) for host in hosts]
    here.wait_for_workers(hosts)
    n = 5000
    run = m.submit(pipelines().fanout, n)
    assert run.wait(timeout=120) == expected(n)
    assert here.stored(run.id) == (n + 2, n + 2, n + 2)
    by_host = here.calls_by()
    assert set(by_host) == {h.inode() for h in hosts}, "work done outside the hosts"
    assert all(sum(c.values()) > 0 for c in by_host.values()), "a host did no work"
    everything = sum(by_host.values(), Counter())
    assert set(everything) == keys(n)
    assert max(everything.values()) == 1, "a job ran twice"
    for proc in started:
        assert here.procs.stop(proc) == 0, here.procs.output(proc)


def test_a_cut_host_s_leases_expire_and_its_late_completions_are_refused(
    site: tuple[Site, Mycelium], hosts: list[netns.Host]
) -> None:
    here, m = site
    cut, other = hosts
    workers = {h: here.workers(h, "--lease", "1") for h in hosts}
    here.wait_for_workers(hosts)
    n = 600
    run = m.submit(pipelines().fanout, n, 0.02)
    wait_until(
        lambda: sum(here.calls_by().get(cut.inode(), Counter()).values()) >= 40,
        60,
        "the host to be cut to have run some jobs",
    )
    netns.cut(cut)
    try:
        assert run.wait(timeout=60) == expected(n)  # the other host finished it
        assert workers[cut].poll() is None, here.procs.output(workers[cut])
    finally:
        netns.mend(cut)
    # Back on the network, the cut host finishes what it held and is refused.
    wait_until(lambda: REFUSED in here.procs.output(workers[cut]), 60, "a refused completion")
    assert here.stored(run.id) == (n + 2, n + 2, n + 2)
    histories = {
        str(job): str(history)
        for job, history in here.sql(
            "SELECT id, history::text FROM elfc.jobs "
            "WHERE run_no = (SELECT no FROM elfc.runs WHERE id = %s)",
            run.id,
        )
    }
    pids = here.pids(cut)
    expired = {job for job, history in histories.items() if "expired" in history}
    lapsed = re.compile(r"lease of [^\"]*:(\d+):spread:[^\"]* expired")
    owners = {int(pid) for job in expired for pid in lapsed.findall(histories[job])}
    assert owners & pids, "no lease of the cut host expired"
    everything = sum(here.calls_by().values(), Counter())
    assert set(everything) == keys(n)
    # A job ran again only after a lease of it expired (mostly the cut host's; on a loaded
    # machine a starved heartbeat of the other host's may lapse too).
    job_of = here.jobs()
    twice = {job_of[key] for key, count in everything.items() if count > 1}
    assert twice <= expired, twice - expired
    # The cut host goes on serving: alone now, it runs a new run whole.
    assert here.procs.stop(workers[other]) == 0, here.procs.output(workers[other])
    before = here.calls_by()[cut.inode()]
    again = m.submit(pipelines().fanout, 20)
    assert again.wait(timeout=60) == expected(20)
    assert here.calls_by()[cut.inode()] - before == Counter(keys(20))
    assert here.procs.stop(workers[cut]) == 0, here.procs.output(workers[cut])


def test_a_server_restart_mid_run_loses_nothing(
    site: tuple[Site, Mycelium], hosts: list[netns.Host], server: Cluster
) -> None:
    here, m = site
    started = [here.workers(host) for host in hosts]
    here.wait_for_workers(hosts)
    n = 3000
    run = m.submit(pipelines().fanout, n, 0.001)
    wait_until(
        lambda: sum(sum(c.values()) for c in here.calls_by().values()) >= 300,
        60,
        "some jobs to have run",
    )
    server.restart(down=1.0)
    assert run.wait(timeout=120) == expected(n)
    assert here.stored(run.id) == (n + 2, n + 2, n + 2)
    everything = sum(here.calls_by().values(), Counter())
    assert set(everything) == keys(n)
    assert max(everything.values()) == 1, "a job ran twice"
    for proc in started:
        assert proc.poll() is None, here.procs.output(proc)
        assert here.procs.stop(proc) == 0, here.procs.output(proc)


HOLD = """
import sys, time
from elfc.mycelium.postgres import PostgresStore
con = PostgresStore(sys.argv[1])._connection()
con.execute("BEGIN")
con.execute("SELECT * FROM elfc.meta FOR UPDATE")
print("locked", flush=True)
time.sleep(600)
"""


def test_the_server_ends_the_session_of_a_host_cut_off_mid_transaction(
    site: tuple[Site, Mycelium], hosts: list[netns.Host]
) -> None:
    """A worker's transaction holds row locks (a job, the run's counters) until it ends: the
    session of a host cut off while one is open must not keep them, or every other host
    waits for the rows, or skips them, until the server would notice by itself (hours)."""
    here, _ = site
    host = hosts[0]
    holder = here.procs.start(host.exec(sys.executable, "-c", HOLD, here.url(host)))
    wait_until(lambda: "locked" in here.procs.output(holder), 30, "the lock to be taken")
    netns.cut(host)
    try:
        t0 = time.monotonic()

        def free() -> bool:
            with here.server.connect(here.db) as con:
                con.execute("SET lock_timeout = '200ms'")
                try:
                    con.execute("SELECT * FROM elfc.meta FOR UPDATE")
                except Exception:
                    return False
                return True

        wait_until(free, 40, "the cut session's locks to be released", every=0.5)
        took = time.monotonic() - t0
    finally:
        netns.mend(host)
    assert took < 20
    addresses = {str(a) for (a,) in here.sql("SELECT client_addr FROM pg_stat_activity")}
    assert host.address not in addresses
