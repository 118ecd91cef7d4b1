"""elfc: plain Python into arm's-length microservices.

Elves are classes decorated with ``@elf`` whose ``@task`` methods do the work; pipelines are
functions decorated with ``@pipeline`` whose bodies are compiled into graphs of jobs that run
in the elves' own processes (or threads: ``serve``), through a mycelium (SQLite by default,
PostgreSQL or ArangoDB).

Every exception a program using elfc can meet derives from ``ElfcError`` and is exported here.
"""

from elfc._version import __version__ as __version__
from elfc.decorators import elf, named, task
from elfc.errors import (
    BuildError,
    CompileError,
    ElfcError,
    ElfConflict,
    ElfDefinitionError,
    ElfStartFailed,
    ExpressionError,
    HandleMisuse,
    JobFailure,
    MyceliumError,
    RunCancelled,
    RunFailed,
    ServeError,
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
    "ElfDefinitionError",
    "ElfStartFailed",
    "ElfcError",
    "ExpressionError",
    "HandleMisuse",
    "JobFailure",
    "Mycelium",
    "MyceliumError",
    "Pipeline",
    "Run",
    "RunCancelled",
    "RunFailed",
    "ServeError",
    "Serving",
    "ValueCrossingError",
    "connect",
    "elf",
    "named",
    "pipeline",
    "serve",
    "task",
]
