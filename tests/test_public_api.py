"""The public names are exactly the intended ones, and `import elfc` stays light."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

import elfc
import elfc.errors
from elfc import elf, named, pipeline, task
from elfc.mycelium.urls import open_mycelium

PUBLIC = [
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


def test_all_is_curated_and_sorted() -> None:
    assert elfc.__all__ == PUBLIC
    assert sorted(elfc.__all__) == elfc.__all__


def test_every_public_name_exists_and_no_other_public_module_attribute_leaks() -> None:
    for name in PUBLIC:
        assert getattr(elfc, name) is not None
    exported = {n for n in vars(elfc) if not n.startswith("_")}
    # Submodules appear as attributes once imported; everything else public is in __all__.
    modules = {n for n in exported if type(getattr(elfc, n)).__name__ == "module"}
    assert exported - modules == set(PUBLIC)


COMMAND_LINE_ONLY = {"GraphvizMissing", "NotFound", "PathNotFound", "TargetError", "UsageError"}
"""Raised by the commands' own code (TARGET lookup, `elfc check`'s paths, `elfc graph`'s
Graphviz, id lookups of `elfc show`/`elfc ui`), which print them and exit 1 or 2: no function
of the public API raises them."""


def test_every_exception_a_program_can_meet_is_exported_from_elfc() -> None:
    defined = {
        name
        for name, obj in vars(elfc.errors).items()
        if isinstance(obj, type) and issubclass(obj, elfc.ElfcError)
    }
    exported = {n for n in PUBLIC if isinstance(getattr(elfc, n), type)} & defined
    # A new ElfcError must be exported or said to be the command line's own here.
    assert defined == exported | COMMAND_LINE_ONLY
    assert len(exported) == 13
    for name in exported:
        exc = getattr(elfc, name)
        assert issubclass(exc, elfc.ElfcError) and exc.__doc__, name


def test_a_mycelium_is_a_context_manager(tmp_path: Path) -> None:
    with elfc.connect(f"sqlite:///{tmp_path}/m.db") as m:
        assert m.store.list_runs() == []
    with pytest.raises(elfc.MyceliumError, match="closed"):
        m.store.list_runs()
    with elfc.Mycelium(open_mycelium(f"sqlite:///{tmp_path}/m.db")) as direct:
        assert direct.url.endswith("m.db")
    with pytest.raises(elfc.MyceliumError, match="closed"):
        direct.store.list_runs()


@elf
class Counter:
    @task
    def count(self, words: list[str]) -> int:
        if not words:
            raise ValueError("nothing to count")
        return len(words)

    @task
    def anything(self, text: str) -> Any:
        return text


counter = named(Counter, "counter")


@pipeline
def counted(words: list[str]) -> int:
    return counter.count(words)


@pipeline
def plus_one(text: str) -> int:
    return counter.anything(text) + 1  # a str plus an int: fails where it is evaluated


def test_waiting_for_a_cancelled_run_raises_run_cancelled(tmp_path: Path) -> None:
    with elfc.connect(f"sqlite:///{tmp_path}/m.db") as m:
        run = m.submit(counted, ["a", "b"])  # no worker serves it: it waits
        assert run.status() == "running"
        run.cancel()
        with pytest.raises(elfc.RunCancelled, match=run.id):
            run.wait(timeout=10)
        assert run.status() == "cancelled"
        assert run.failures() == []


def test_a_failed_run_raises_run_failed_whose_failures_run_failures_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    with elfc.connect(url) as m:
        run = m.submit(counted, [])
        with (
            elfc.serve(counter, mycelium=url, task_output="off"),
            pytest.raises(elfc.RunFailed) as failed,
        ):
            run.wait(timeout=30)
        [failure] = run.failures()
        assert isinstance(failure, elfc.JobFailure)
        assert (failure.task, failure.error_type, failure.message) == (
            "count",
            "ValueError",
            "nothing to count",
        )
        assert "raise ValueError" in failure.traceback
        assert failed.value.failures == (failure,) and failed.value.run_id == run.id
        ok = m.submit(counted, ["a", "b", "c"])
        with elfc.serve(counter, mycelium=url, task_output="off"):
            assert ok.wait(timeout=30) == 3
        assert ok.failures() == []


def test_definition_and_expression_errors_are_caught_as_exported(tmp_path: Path) -> None:
    with pytest.raises(elfc.ElfDefinitionError, match="retries"):
        task(retries=-1)
    with pytest.raises(elfc.ElfDefinitionError, match="not decorated"):
        named(int, "plain")
    assert counted(["a"]) == 1  # in process
    with pytest.raises(elfc.ExpressionError):
        plus_one("x")


def test_the_wheel_ships_the_license_and_the_type_marker(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("elfc-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        license_text = z.read(next(n for n in names if n.endswith("/LICENSE"))).decode()
    assert "elfc/py.typed" in names and "elfc/mycelium/sqlite/schema.sql" in names
    assert "License-Expression: MIT" in metadata and "Classifier: Typing :: Typed" in metadata
    assert license_text.startswith("MIT License")


def test_the_sdist_carries_what_its_tests_and_docs_need(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("elfc-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = {
        "tests/conftest.py",
        "tests/test_readme.py",
        "tests/check/cases",
        "examples/animals/pipeline.py",
        "docs/postgres.md",
        "mkdocs.yml",
        "typings/arango",
        "benchmarks/runtime.py",
        "noxfile.py",
        "CHANGELOG.md",
        "LICENSE",
        "elfc/py.typed",
    }
    assert needed <= names, needed - names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".db")]


def test_import_elfc_needs_neither_libcst_nor_arango() -> None:
    code = "import sys, elfc; print(sorted(m for m in ('libcst', 'arango') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
