"""Running a settled run again with the code as it is now: ``elfc retry`` and ``Run.retry``.

The run keeps its id, its jobs, their arguments and every result that is still good; what
changes is which task revision its jobs run. Today's revisions come from the elf classes this
process has imported (their handles, by elf name), so import the module that defines them
first (``elfc retry`` imports the run's pipeline module). Which jobs run again is the shared
rule :func:`elfc.mycelium.common.retry_plan`; the store applies it atomically
(:meth:`Store.retry_jobs`).

Usage::

    retried = retry_run(store, run.id)            # the failed, skipped and cancelled jobs
    print(len(retried.jobs), "jobs run again")
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from elfc.compiler.elves import ElfInfo, elf_info
from elfc.decorators import HANDLES
from elfc.errors import ElfcError
from elfc.model.records import JobInfo, RevisionRecord
from elfc.mycelium.common import retry_plan
from elfc.mycelium.store import Store
from elfc.runtime.revisions import elf_revisions

__all__ = ["Retried", "retry_run"]


@dataclass(frozen=True)
class Retried:
    """What a retry reopened."""

    run: str
    jobs: dict[str, str]
    """Job id -> the task revision it runs now."""
    keys: tuple[str, ...]
    """The keys of those jobs, in ``seq`` order."""
    elves: frozenset[str]
    """The elves that have work again (``elfc retry`` starts a worker for each)."""
    changed: int
    """How many of those jobs run a task revision other than the one they ran before."""


def retry_run(
    store: Store, run_id: str, from_keys: Iterable[str] = (), everything: bool = False
) -> Retried:
    """Reopen the settled run ``run_id`` (id or unique prefix): its failed, skipped and
    cancelled jobs, its succeeded ones whose task's code changed, those of ``from_keys`` (or
    all with ``everything``), and everything downstream of them run again at today's task
    revisions, which are stored first. Raises :class:`ElfcError` when the run is unknown or
    still running, when nothing would run again, or when an elf's code is not imported here.
    """
    info = store.run_info(run_id)
    if info is None:
        raise ElfcError(f"no run {run_id!r} in {store.url}; list runs with `elfc runs`")
    if info.status == "running":
        raise ElfcError(
            f"run {info.id} is still running: wait for it (`elfc result {info.id} --wait`) or "
            f"cancel it (`elfc cancel {info.id}`) before retrying it"
        )
    jobs = store.list_jobs(info.id)
    code = _Today(jobs)
    plan = retry_plan(jobs, code.revision, from_keys, everything)
    if not plan:
        raise ElfcError(
            f"run {info.id} {info.status} and its code has not changed: nothing to retry "
            f"(--from KEY or --all runs succeeded jobs again)"
        )
    store.put_revisions(code.records())
    if not store.retry_jobs(info.id, plan):
        raise ElfcError(f"run {info.id} was reopened by someone else meanwhile")
    chosen = [job for job in jobs if job.id in plan]
    return Retried(
        run=info.id,
        jobs=plan,
        keys=tuple(job.key for job in chosen),
        elves=frozenset(job.elf for job in chosen),
        changed=sum(plan[job.id] != job.revision for job in chosen),
    )


class _Today:
    """Today's task revisions, from the handles this process has imported."""

    def __init__(self, jobs: list[JobInfo]) -> None:
        self.infos: dict[str, ElfInfo] = {}
        for elf in sorted({job.elf for job in jobs}):
            handles = HANDLES.get(elf)
            if not handles:
                known = ", ".join(sorted(HANDLES)) or "(none)"
                raise ElfcError(
                    f"the code of elf {elf!r} is not imported, so its tasks' revisions today are "
                    f"unknown: give the module that defines its handle (imported: {known})"
                )
            self.infos[elf] = elf_info(handles[-1].cls)

    def revision(self, job: JobInfo) -> str:
        task = self.infos[job.elf].tasks.get(job.task)
        if task is None:
            raise ElfcError(
                f"elf {job.elf!r} ({self.infos[job.elf].qualname}) has no task {job.task!r} "
                f"today: job {job.key} cannot run again"
            )
        return task.revision

    def records(self) -> list[RevisionRecord]:
        return [r for info in self.infos.values() for r in elf_revisions(info)]
