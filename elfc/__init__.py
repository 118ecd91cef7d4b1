"""elfc: plain Python into arm's-length microservices.

Elves are classes decorated with ``@elf`` whose ``@task`` methods do the work; pipelines are
functions decorated with ``@pipeline`` whose bodies are compiled into graphs of jobs that run
in the elves' own processes (or threads: ``serve``), through a mycelium (SQLite by default, or
ArangoDB).
"""

from elfc._version import __version__ as __version__
from elfc.decorators import elf, named, task
from elfc.errors import (
    BuildError,
    CompileError,
    ElfcError,
    ElfConflict,
    HandleMisuse,
    JobFailure,
    MyceliumError,
    RunCancelled,
    RunFailed,
    ValueCrossingError,
)
from elfc.pipeline import Pipeline, pipeline
from elfc.runtime.client import Mycelium, connect
from elfc.runtime.run import Run
from elfc.runtime.serve import Serving, serve

__all__ = [
    "BuildError",
    "CompileError",
    "ElfConflict",
    "ElfcError",
    "HandleMisuse",
    "JobFailure",
    "Mycelium",
    "MyceliumError",
    "Pipeline",
    "Run",
    "RunCancelled",
    "RunFailed",
    "Serving",
    "ValueCrossingError",
    "connect",
    "elf",
    "named",
    "pipeline",
    "serve",
    "task",
]
