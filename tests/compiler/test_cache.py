"""The on-disk compile cache: shared across processes, invalidated by what a compile reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ELVES = """
from elfc import elf, task

@elf
class Adder:
    @task
    def add(self, a: int, b: int) -> int:
        return a + b
"""

FLOW = """
from elves import Adder
from elfc import named, pipeline

adder = named(Adder, "adder")

@pipeline
def total(n: int = 3) -> int:
    acc = adder.add(0, 0)
    for i in range(n):
        acc = adder.add(acc, i)
    return acc
"""

PROBE = textwrap.dedent("""
    import sys, msgspec
    from flow import total
    built = total.build(n=4)
    print(msgspec.json.encode({
        "libcst": "libcst" in sys.modules,
        "keys": [j.key for j in built.jobs],
        "revision": built.revision,
        "value": total(n=4),
    }).decode())
""")


# The probes decide for themselves whether bytecode (and so the cache) is written, and where.
BASE_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
}


def probe(d: Path, **env: str) -> dict[str, object]:
    import msgspec

    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=d, capture_output=True, text=True, timeout=60,
        env={**BASE_ENV, "PYTHONPATH": str(d), **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = msgspec.json.decode(proc.stdout)
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "elves.py").write_text(ELVES)
    (tmp_path / "flow.py").write_text(FLOW)
    return tmp_path


def entries(d: Path) -> list[Path]:
    return sorted((d / "__pycache__" / "elfc").glob("flow.total.*.bin"))


def test_a_second_process_compiles_from_the_cache_without_libcst(project: Path) -> None:
    first = probe(project)
    assert first["libcst"] is True
    assert len(entries(project)) == 1
    second = probe(project)
    assert second["libcst"] is False
    assert second["keys"] == first["keys"] == ["n1", "n2#0", "n2#1", "n2#2", "n2#3"]
    assert second["revision"] == first["revision"]
    assert second["value"] == first["value"] == 6


def test_changing_an_elf_file_invalidates_the_entry(project: Path) -> None:
    first = probe(project)
    (project / "elves.py").write_text(ELVES.replace("return a + b", "return a + b + 1"))
    st = (project / "elves.py").stat()
    os.utime(project / "elves.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = probe(project)
    assert second["libcst"] is True  # compiled again
    assert second["revision"] != first["revision"]
    assert second["value"] == 11  # 1, then +0+1, +1+1, +2+1, +3+1
    assert len(entries(project)) == 2


def test_changing_the_pipeline_source_invalidates_the_entry(project: Path) -> None:
    probe(project)
    (project / "flow.py").write_text(FLOW.replace("range(n)", "range(n + 1)"))
    again = probe(project)
    assert again["libcst"] is True
    assert again["keys"] == ["n1", "n2#0", "n2#1", "n2#2", "n2#3", "n2#4"]


def test_the_cache_can_be_turned_off(project: Path) -> None:
    probe(project, ELFC_NO_COMPILE_CACHE="1")
    assert entries(project) == []
    assert probe(project, ELFC_NO_COMPILE_CACHE="1")["libcst"] is True


@pytest.fixture
def in_process(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``project`` importable in this process, with the cache on and written next to modules."""
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.delenv("ELFC_NO_COMPILE_CACHE", raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    for name in ("flow", "elves"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return project


def build_in_process() -> object:
    import importlib

    from elfc.compiler.compile import compile_pipeline
    from elfc.decorators import pipeline_function

    flow = importlib.import_module("flow")
    fn = pipeline_function(flow.total)
    assert fn is not None
    return compile_pipeline(fn)


def test_changing_elfc_compiler_code_changes_the_key(
    in_process: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from elfc.compiler import cache

    # A copy of elfc's compiler sources stands in for the installed ones.
    copy = tmp_path_factory.mktemp("elfc-copy")
    sources = []
    for src in cache.elfc_sources():
        dst = copy / str(len(sources))
        shutil.copy2(src, dst)
        sources.append(str(dst))
    monkeypatch.setattr(cache, "elfc_sources", lambda: sources)
    cache.compiler_stamp.cache_clear()
    try:
        build_in_process()
        assert len(entries(in_process)) == 1
        # Same version, edited compiler module: the old entry must not be found.
        edited = Path(sources[0])
        edited.write_text(edited.read_text() + "\n# changed\n")
        cache.compiler_stamp.cache_clear()
        build_in_process()
        assert len(entries(in_process)) == 2
    finally:
        cache.compiler_stamp.cache_clear()


def test_dont_write_bytecode_writes_no_cache_folder(
    in_process: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    build_in_process()
    assert not (in_process / "__pycache__" / "elfc").exists()


def test_entries_go_under_the_pycache_prefix_and_are_reused(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    prefix = tmp_path_factory.mktemp("prefix")
    first = probe(project, PYTHONPYCACHEPREFIX=str(prefix))
    assert first["libcst"] is True
    assert entries(project) == []
    mirrored = prefix / os.path.abspath(project).lstrip(os.sep)
    assert len(sorted((mirrored / "__pycache__" / "elfc").glob("flow.total.*.bin"))) == 1
    second = probe(project, PYTHONPYCACHEPREFIX=str(prefix))
    assert second["libcst"] is False  # from the entry under the prefix
    assert second["revision"] == first["revision"]
