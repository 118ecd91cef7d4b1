"""The source revisions an elf brings: what a worker, a submission and a retry store."""

from __future__ import annotations

from elfc.compiler.elves import ElfInfo
from elfc.model.records import RevisionRecord

__all__ = ["elf_revisions"]


def elf_revisions(info: ElfInfo) -> list[RevisionRecord]:
    """The stored source of an elf class and of each of its tasks, at their revisions."""
    return [
        RevisionRecord(
            hash=info.revision, kind="elf", qualname=info.qualname, module=info.module,
            source=info.source, doc=info.doc,
        )
    ] + [
        RevisionRecord(
            hash=t.revision, kind="task", qualname=t.qualname, module=t.module,
            source=t.source, doc=t.doc, signature=f"{t.name}{t.signature}",
        )
        for t in info.tasks.values()
    ]  # fmt: skip
