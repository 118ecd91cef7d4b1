"""Every exception elfc defines, in one module.

    ElfcError
    ├── CompileError        a pipeline uses a construct the compiler cannot lower (carries diagnostics)
    ├── ElfDefinitionError  an @elf or @task is declared in a way elfc cannot serve
    ├── HandleMisuse        a task was called on a handle outside a pipeline
    ├── BuildError          submission-time instantiation of a template failed
    ├── RunFailed           a run ended with failed jobs (carries each failure)
    ├── RunCancelled        a run was cancelled before it finished
    ├── ElfConflict         a submission names an elf that the mycelium knows as another class
    ├── MyceliumError       the mycelium cannot be reached, is of another schema, or refused a write
    ├── ExpressionError     a derive expression could not be evaluated
    ├── ValueCrossingError  a value does not fit the annotation it crosses a process with
    ├── TargetError         a command's TARGET cannot be found or imported
    ├── PathNotFound        a path given to ``elfc check`` does not exist
    ├── UsageError          a command line is not valid for this pipeline
    ├── NotFound            no run, job or revision in the mycelium has this id or prefix
    ├── ServeError          an elf served in threads kept failing, or its threads would not stop
    ├── ElfStartFailed      a worker could not build its elf instance (its ``__init__`` raised)
    └── GraphvizMissing     drawing an image needs Graphviz's ``dot``

    SourceUnavailable(Exception)  a function's source cannot be read (REPL, exec): the compiler
                                  turns it into a diagnostic, so users never see it
    JobStopped(BaseException)     raised inside a running task to stop it (timeout, cancel)
    ├── JobTimedOut               ... in a task's thread, at its timeout (by the watchdog)
    ├── JobCancelled              ... in a task's thread, when its run was cancelled
    └── JobInterrupted            ... in a task's thread, when its worker is stopped now

Exceptions that a task raises on purpose stay outside this tree: they are stored as failures.

Every exception of the tree that a program using elfc can meet is exported from ``elfc``;
``TargetError``, ``PathNotFound``, ``UsageError``, ``NotFound`` and ``GraphvizMissing`` are
raised by the commands' own code, which prints them and exits 1 or 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding, with its exact span (1-based lines and columns, end exclusive)."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    severity: Severity
    message: str
    help: str

    def headline(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.code} {self.message}"

    def with_path(self, path: str) -> Diagnostic:
        return replace(self, path=path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "help": self.help,
        }


class ElfcError(Exception):
    """Something went wrong in elfc."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or "").strip())


class CompileError(ElfcError):
    """The pipeline cannot be compiled."""

    def __init__(self, diagnostics: Sequence[Diagnostic], message: str | None = None) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        if message is None:
            lines = [d.headline() for d in self.diagnostics] or ["the pipeline cannot be compiled"]
            message = "\n".join(lines)
        super().__init__(message)


class ElfDefinitionError(ElfcError):
    """An elf or task is declared in a way elfc cannot serve."""


class HandleMisuse(ElfcError):
    """A task was called on a handle outside a pipeline."""


class BuildError(ElfcError):
    """The pipeline's graph could not be instantiated with these arguments."""


@dataclass(frozen=True)
class JobFailure:
    """One failed job of a run: where it ran and what it raised."""

    job: str
    elf: str
    task: str
    error_type: str
    message: str
    traceback: str


class RunFailed(ElfcError):
    """The run failed: ``failures`` are its failed jobs; a run whose jobs all succeeded but
    whose value its pipeline's return annotation refused has none, and ``reason`` says why."""

    def __init__(
        self,
        failures: Sequence[JobFailure],
        run_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.failures: tuple[JobFailure, ...] = tuple(failures)
        self.run_id = run_id
        self.reason = reason
        head = f"run {run_id} failed" if run_id else "run failed"
        if reason is not None and not self.failures:
            super().__init__(f"{head}: {reason}")
            return
        parts = [f"{head}: {len(self.failures)} failed job(s)"]
        for f in self.failures:
            parts.append(f"\n--- {f.job} ({f.elf}.{f.task}) raised {f.error_type}: {f.message}")
            if f.traceback:
                parts.append(f.traceback.rstrip())
        super().__init__("\n".join(parts))


class RunCancelled(ElfcError):
    """The run was cancelled."""


class ElfConflict(ElfcError):
    """An elf name is registered in the mycelium with another class or configuration."""


class MyceliumError(ElfcError):
    """The mycelium cannot serve this request."""


class JobStopped(BaseException):
    """Raised inside a running task to stop it (timeout or cancellation).

    A BaseException so that a task's ``except Exception`` does not swallow it.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# A thread is interrupted by raising an exception *class* in it (the C API instantiates it
# with no arguments), so each reason a thread can be stopped for has a class of its own.


class JobTimedOut(JobStopped):
    """Raised in a task's thread when the task runs past its timeout."""

    def __init__(self) -> None:
        super().__init__("timeout")


class JobCancelled(JobStopped):
    """Raised in a task's thread when its run was cancelled (or its lease lost)."""

    def __init__(self) -> None:
        super().__init__("cancelled")


class JobInterrupted(JobStopped):
    """Raised in a task's thread when its worker is told to stop now: the job is given back."""

    def __init__(self) -> None:
        super().__init__("stopped")


class ServeError(ElfcError):
    """Elves served in threads failed: a worker thread kept dying, or would not stop."""


class ExpressionError(ElfcError):
    """A derive expression could not be evaluated."""


class ValueCrossingError(ElfcError):
    """A value does not match the type it must have to cross a process."""


class GraphvizMissing(ElfcError):
    """Graphviz is not installed: its `dot` program was not found on PATH."""

    def __init__(self, fmt: str) -> None:
        super().__init__(
            f"Graphviz is not installed: `dot` was not found on PATH, and --format {fmt} needs "
            f"it.\n"
            f"  install it with:  apt-get install graphviz   (Debian, Ubuntu)\n"
            f"                    brew install graphviz      (macOS)\n"
            f"                    or see https://graphviz.org/download/\n"
            f"  or draw without it: --format dot or --format mermaid need nothing installed."
        )


class TargetError(ElfcError):
    """The target cannot be found or imported."""


class PathNotFound(ElfcError):
    """A path given to ``elfc check`` is neither a file, a directory nor an importable module."""


class SourceUnavailable(Exception):
    """The function's source text cannot be found (REPL, exec, lambda, or a missing file)."""


class UsageError(ElfcError):
    """The command line is not valid for this pipeline."""


class NotFound(ElfcError):
    """Nothing in the mycelium has this id or prefix."""


class ElfStartFailed(ElfcError):
    """A worker could not build its elf instance: the elf's ``__init__`` raised."""
