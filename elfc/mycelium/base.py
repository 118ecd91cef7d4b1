"""The mycelium contract: the records it stores, the operations every backend offers, and
``open_mycelium(url)`` that picks the backend for a URL.

A backend (``sqlite.py``, ``arango.py``) is one class that subclasses :class:`Mycelium` and
holds only its queries. Everything a worker, a submitter or the command line needs from a
database goes through the methods below; their docstrings are the contract that
``tests/mycelium/contract.py`` checks against every backend.

Job life cycle::

    pending ──(last dependency succeeded)──> ready ──claim──> running ──complete──> succeeded
                                               ^                 │
                                               └─retry/release/──┤──fail──> failed
                                                 lease expired   │            └─> every transitive
                                                                 │                dependent: skipped
    cancel_run: pending/ready ──> cancelled; running jobs are told by heartbeat and then released

A run is ``running`` until no job of it can progress; it then becomes ``succeeded``, or
``failed`` if any job failed. ``cancel_run`` makes it ``cancelled`` at once.

Times are wall-clock seconds (``time.time()``) because leases are compared across processes.
"""

from __future__ import annotations

import abc
import importlib
import os
import time
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import unquote, urlsplit

from elfc.errors import MyceliumError
from elfc.model.ir import BuiltRun
from elfc.model.records import (
    Claimed,
    ElfRecord,
    Event,
    FailureInfo,
    FailureRecord,
    JobInfo,
    RevisionRecord,
    RunInfo,
    WorkerInfo,
)
from elfc.model.status import FINAL_RUN_STATUSES

__all__ = [
    "DEFAULT_URL",
    "Claimed",
    "ElfRecord",
    "Event",
    "FailureInfo",
    "FailureRecord",
    "JobInfo",
    "Mycelium",
    "RevisionRecord",
    "RunInfo",
    "WorkerInfo",
    "default_url",
    "mask_url",
    "open_mycelium",
]

DEFAULT_URL = "sqlite:///.elfc/mycelium.db"


# -- the contract ------------------------------------------------------------------------


class Mycelium(abc.ABC):
    """The database shared by submitters and workers. One instance per process.

    Usage: ``with open_mycelium("sqlite:///.elfc/mycelium.db") as m: run_id = m.submit(built)``.

    Job and run ids are opaque strings; wherever a method accepts an id for reading it also
    accepts a unique prefix (an ambiguous prefix raises :class:`MyceliumError`). Writes take
    full ids. Every method may raise :class:`MyceliumError` when the database cannot be used.
    """

    schemes: ClassVar[tuple[str, ...]] = ()
    """URL schemes this backend serves."""
    supports_doorbell: ClassVar[bool] = False
    """``wait_for_work`` wakes within milliseconds of new work, not only on its poll."""
    supports_batches: ClassVar[bool] = False
    """``complete_many`` and ``exchange`` run in one transaction (not one per job)."""

    url: str
    """The mycelium's URL with any password masked: safe to print."""

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Mycelium:
        """Open the mycelium at ``url`` (one of ``cls.schemes``); create its schema if empty."""

    def close(self) -> None:  # noqa: B027 - optional hook; a backend without resources needs none
        """Release connections and sockets. Idempotent; the instance may not be used after."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # -- revisions, elves, templates ---------------------------------------------------

    @abc.abstractmethod
    def put_revisions(self, records: Iterable[RevisionRecord]) -> None:
        """Store revisions. Idempotent: a hash already stored is left as it is (revisions are
        immutable). All records are written in one transaction.
        """

    @abc.abstractmethod
    def get_revision(self, hash_or_prefix: str) -> RevisionRecord | None:
        """The revision with this hash or unique hash prefix; ``None`` when none matches."""

    @abc.abstractmethod
    def put_elf(self, record: ElfRecord) -> None:
        """Insert or replace the elf instance ``record.name``; sets its ``last_seen`` to now."""

    @abc.abstractmethod
    def list_elves(self) -> list[ElfRecord]:
        """Every elf instance, sorted by name."""

    @abc.abstractmethod
    def put_template(self, revision: str, template_json: bytes) -> None:
        """Store a pipeline's graph template under its revision. Idempotent."""

    @abc.abstractmethod
    def get_template(self, revision: str) -> bytes | None:
        """The template stored under ``revision``; ``None`` when missing."""

    # -- submitting and running ------------------------------------------------------

    @abc.abstractmethod
    def submit(self, built: BuiltRun, template_json: bytes | None = None) -> str:
        """Write a run and return its id.

        In one transaction: the run (status ``running``), every job of ``built.jobs``, an edge
        from each dependency to its dependent, and a waiting counter per job (its number of
        distinct dependencies). Jobs without dependencies are ``ready``, the others
        ``pending``. ``template_json``, when given, is stored under ``built.revision`` as by
        :meth:`put_template`. A run without jobs is ``succeeded`` at once.

        Raises :class:`MyceliumError` if a job depends on a key that is not in the run.
        """

    @abc.abstractmethod
    def claim(self, elf: str, worker_id: str, lease: float, limit: int = 1) -> list[Claimed]:
        """Take up to ``limit`` ready jobs of elf instance ``elf`` whose ``not_before`` has
        passed, oldest run first and by ``seq`` within a run.

        Atomic: each taken job becomes ``running`` with ``attempts + 1``, lease owner
        ``worker_id`` and ``lease_until = now + lease``, and no other claim can take it. May
        first return expired leases to ``ready`` (see :meth:`expire_leases`). Returns the jobs
        in FIFO order; an empty list when nothing is ready.
        """

    @abc.abstractmethod
    def results(self, run_id: str, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored JSON results of the jobs ``keys`` of a run; keys without a result (or not
        in the run) are absent from the returned dict.
        """

    def complete(self, job_id: str, worker_id: str, result: bytes) -> bool:
        """Store a job's JSON result and mark it ``succeeded``.

        Atomic: only if the job is still ``running`` under a lease of ``worker_id`` (else
        nothing is stored and ``False`` is returned: a result is stored once per job). In the
        same transaction each dependent's waiting counter is decremented (``ready`` at 0), and
        the run settles when no job of it is left active.
        """
        return self.complete_many(worker_id, [(job_id, result)])[0]

    @abc.abstractmethod
    def complete_many(self, worker_id: str, done: Sequence[tuple[str, bytes]]) -> list[bool]:
        """:meth:`complete` for each ``(job_id, result)`` pair, in one transaction where the
        backend can (``supports_batches``). Returns one bool per pair, in order.
        """

    def exchange(
        self,
        elf: str,
        worker_id: str,
        done: Sequence[tuple[str, bytes]],
        lease: float,
        limit: int,
    ) -> tuple[list[bool], list[Claimed]]:
        """:meth:`complete_many` then :meth:`claim`: a worker's hand-back-and-take-more step.

        Backends with ``supports_batches`` do both in one transaction.
        """
        accepted = self.complete_many(worker_id, done) if done else []
        return accepted, self.claim(elf, worker_id, lease, limit) if limit > 0 else []

    @abc.abstractmethod
    def fail(
        self,
        job_id: str,
        worker_id: str,
        failure: FailureRecord,
        retry_at: float | None = None,
    ) -> bool:
        """Record that a running job raised.

        Atomic, and only if the job is ``running`` under a lease of ``worker_id`` (else
        ``False``, nothing stored). The failure is stored deduplicated by the hash of its type
        and traceback (``count``, ``first_seen``, ``last_seen``) and linked to the job. With
        ``retry_at`` the job goes back to ``ready`` and cannot be claimed before that time.
        Without it the job is ``failed``, every transitive dependent ``skipped`` (upstream
        failed), and the run settles (``failed``) once no job of it is left active.
        """

    def release(self, job_id: str, worker_id: str) -> bool:
        """Give back a running job without an outcome (a worker stopping, or a job of a
        cancelled run): ``ready`` again with ``attempts - 1`` — ``cancelled`` if its run was
        cancelled. ``False`` if the job is not running under a lease of ``worker_id``.
        """
        return self.release_many([job_id], worker_id) == 1

    @abc.abstractmethod
    def release_many(self, job_ids: Iterable[str], worker_id: str) -> int:
        """:meth:`release` for several jobs in one transaction; returns how many were released."""

    @abc.abstractmethod
    def heartbeat(self, worker: WorkerInfo, running: Iterable[str] = ()) -> set[str]:
        """Record that ``worker`` is alive and extend the lease of each job in ``running``
        that it holds by that job's lease length.

        Returns the ids among ``running`` that the worker must stop: their run was cancelled,
        or the worker no longer holds them (its lease expired and the job moved on).
        """

    @abc.abstractmethod
    def expire_leases(self, now: float | None = None) -> int:
        """Return every ``running`` job whose lease ended before ``now`` to ``ready`` (or
        ``cancelled`` in a cancelled run): a worker that died loses nothing. Its attempt still
        counts. Returns how many jobs were returned. ``claim`` does this on its own, so no
        separate reaper is needed.
        """

    @abc.abstractmethod
    def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run: its pending and ready jobs become ``cancelled`` and the run
        ``cancelled``; its running jobs are reported by :meth:`heartbeat` to their workers.
        Returns ``False`` if the run was not running (unknown, or already settled).
        """

    # -- reading -------------------------------------------------------------------

    @abc.abstractmethod
    def run_info(self, run_id: str) -> RunInfo | None:
        """The run with this id or unique prefix, with job counts; ``None`` when missing."""

    def run_status(self, run_id: str) -> str | None:
        """The run's status (one of :data:`RUN_STATUSES`); ``None`` when missing."""
        info = self.run_info(run_id)
        return None if info is None else info.status

    @abc.abstractmethod
    def list_runs(self, limit: int = 20) -> list[RunInfo]:
        """The ``limit`` most recent runs, newest first."""

    @abc.abstractmethod
    def list_jobs(self, run_id: str, status: str | None = None) -> list[JobInfo]:
        """The jobs of a run (id or unique prefix) in ``seq`` order, optionally only those
        with ``status``. Results are not included (``result`` is ``None``); an unknown run
        gives an empty list.
        """

    @abc.abstractmethod
    def get_job(self, job_id: str) -> JobInfo | None:
        """The job with this id or unique prefix, with its result, latest failure and status
        history; ``None`` when missing.
        """

    @abc.abstractmethod
    def list_failures(self, limit: int = 20) -> list[FailureInfo]:
        """The ``limit`` most recently seen distinct failures, newest first."""

    @abc.abstractmethod
    def list_workers(self) -> list[WorkerInfo]:
        """Every worker that ever sent a heartbeat, most recent heartbeat first."""

    # -- waiting ---------------------------------------------------------------------

    @abc.abstractmethod
    def wait_for_work(self, elf: str, timeout: float) -> None:
        """Block until work for ``elf`` may have appeared, or ``timeout`` seconds passed.

        Spurious returns are allowed: the caller claims and waits again. It returns early
        when a job of ``elf`` became ready, when a retry delay or a lease of that elf ends,
        and on the first call (work readied before the caller started listening). Waiting
        costs next to no CPU.
        """

    def wait_for_run(self, run_id: str, timeout: float) -> str | None:
        """Block until the run has a final status or ``timeout`` seconds passed; return its
        status then (``None`` for an unknown run).
        """
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            status = self.run_status(run_id)
            left = deadline - time.monotonic()
            if status is None or status in FINAL_RUN_STATUSES or left <= 0:
                return status
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)


# -- URLs ------------------------------------------------------------------------------

# scheme -> (module, class, the optional driver it imports, how to install that driver)
_BACKENDS: dict[str, tuple[str, str, str | None, str]] = {
    "sqlite": ("elfc.mycelium.sqlite", "SQLiteMycelium", None, ""),
    "arango": ("elfc.mycelium.arango", "ArangoMycelium", "arango", "pip install 'elfc[arango]'"),
    "arangos": ("elfc.mycelium.arango", "ArangoMycelium", "arango", "pip install 'elfc[arango]'"),
}


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: ``arango://u:***@host:8529/db``.

    Works on several-host URLs too (``arango://u:pw@h1:8529,h2:8529/db``): only the text
    between the scheme and the last ``@`` of the authority is looked at.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hosts}{slash}{tail}"


def split_password(url: str) -> tuple[str, str | None]:
    """``(url without its password, the password)``; ``(url, None)`` when it has none."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url, None
    user, password = userinfo.split(":", 1)
    return f"{scheme}://{user}@{hosts}{slash}{tail}", unquote(password)


def default_url(start: Path | None = None) -> str:
    """The mycelium to use when none is given: ``$ELFC_MYCELIUM``, else ``[tool.elfc]
    mycelium`` in the nearest ``pyproject.toml`` (a relative SQLite path there is relative to
    that file), else ``sqlite:///.elfc/mycelium.db`` (relative to the working directory).
    """
    env = os.environ.get("ELFC_MYCELIUM")
    if env:
        return env
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            url = _pyproject_url(candidate)
            if url is not None:
                return url
            break
    return DEFAULT_URL


def _pyproject_url(path: Path) -> str | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MyceliumError(f"cannot read {path}: {exc}") from exc
    url = data.get("tool", {}).get("elfc", {}).get("mycelium")
    if url is None:
        return None
    if not isinstance(url, str):
        raise MyceliumError(f"{path}: [tool.elfc] mycelium must be a URL string")
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(path.parent / url[len(prefix) :])
    return url


def open_mycelium(url: str | None = None) -> Mycelium:
    """Open the mycelium at ``url`` (``sqlite:///rel/path.db``, ``sqlite:////abs/path.db``,
    ``arango[s]://user:pass@host:8529/dbname``), or the default (see :func:`default_url`).
    """
    url = url or default_url()
    scheme = urlsplit(url).scheme
    backend = _BACKENDS.get(scheme)
    if backend is None:
        supported = ", ".join(f"{s}://" for s in _BACKENDS)
        raise MyceliumError(f"unknown mycelium URL {mask_url(url)!r}: supported are {supported}")
    module_name, class_name, driver, hint = backend
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if driver is not None and exc.name in (module_name, driver):
            raise MyceliumError(
                f"the {scheme}:// mycelium is not installed ({exc}): {hint}"
            ) from exc
        raise
    cls: type[Mycelium] = getattr(module, class_name)
    return cls.from_url(url)
