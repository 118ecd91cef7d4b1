"""The diagnostic catalogue: every kind fires exactly where its failing case marks it, and
nowhere in its passing case.

Each ``tests/check/cases/<code>_bad*.py`` marks every line that must have a diagnostic with a
trailing comment naming the codes (``# ELF101``, or ``# ELF105 ELF118``); the test compares the
set of (code, line) pairs `elfc check -v` finds with the marked set, so a miss and a false
positive both fail. ``<code>_good.py`` is the fixed version: no diagnostic at all, and each of
its pipelines whose parameters have defaults also runs in process.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from elfc.checker import check
from elfc.compiler import diagnostics as dg
from elfc.pipeline import Pipeline
from elfc.targets import import_path

CASES = Path(__file__).resolve().parents[1] / "check" / "cases"
BAD = sorted(CASES.glob("ELF*_bad*.py"))
GOOD = sorted(CASES.glob("ELF*_good.py"))
MARK = re.compile(r"#\s*((?:ELF\d{3}[\s,]*)+)$")
NO_CASE = {dg.INTERNAL_ERROR.code, dg.REGISTERED_ELSEWHERE.code}
"""Kinds that no source alone produces: an internal error (tested in tests/cli/test_check.py),
an elf registered otherwise in a mycelium (tests/runtime/test_elf_identity.py)."""


def marked(path: Path) -> set[tuple[str, int]]:
    out = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found = MARK.search(line)
        if found:
            out |= {(code, number) for code in re.findall(r"ELF\d{3}", found.group(1))}
    return out


def found(path: Path) -> set[tuple[str, int]]:
    result = check([path], build=True)
    elsewhere = [d.headline() for d in result.diagnostics if d.path != str(path)]
    assert not elsewhere, elsewhere
    return {(d.code, d.line) for d in result.diagnostics}


def code_of(path: Path) -> str:
    return path.name.split("_")[0]


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_failing_case_reports_exactly_the_marked_lines(path: Path) -> None:
    expected = marked(path)
    assert code_of(path) in {code for code, _ in expected}, "the case must exercise its code"
    assert found(path) == expected


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_passing_case_is_clean_and_runs(path: Path) -> None:
    assert marked(path) == set()
    assert found(path) == set()
    module = import_path(path)
    pipelines = [p for p in vars(module).values() if isinstance(p, Pipeline)]
    assert pipelines
    for p in pipelines:
        if _all_defaults(p):
            p()


def _all_defaults(p: Pipeline[Any, Any]) -> bool:
    import inspect

    return all(v.default is not v.empty for v in inspect.signature(p.fn).parameters.values())


def test_every_kind_has_a_failing_and_a_passing_case() -> None:
    bad = {code_of(p) for p in BAD}
    good = {code_of(p) for p in GOOD}
    kinds = set(dg.KINDS) - NO_CASE
    assert kinds - bad == set()
    assert kinds - good == set()
    assert (bad | good) - set(dg.KINDS) == set()


def test_codes_are_stable_and_well_formed() -> None:
    for code, kind in dg.KINDS.items():
        assert re.fullmatch(r"ELF[12]\d\d", code)
        assert kind.severity == ("error" if code.startswith("ELF1") else "warning")
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", kind.name)
        assert kind.template and kind.help
    assert len({k.name for k in dg.KINDS.values()}) == len(dg.KINDS)


def spans(name: str) -> set[tuple[str, str]]:
    """(code, the exact source text each diagnostic of a case points at)."""
    path = CASES / name
    lines = path.read_text(encoding="utf-8").splitlines()
    return {
        (d.code, lines[d.line - 1][d.column - 1 : d.end_column - 1])
        for d in check([path]).diagnostics
        if d.line == d.end_line
    }


def test_spans_are_exact() -> None:
    assert spans("ELF101_bad.py") == {
        ("ELF101", 'louder(m["species"])'),
        ("ELF101", 'whisper(m["species"])'),
    }
    assert {
        ("ELF113", "x"),
        ("ELF113", "def untyped(self, x):"),
        ("ELF113", "lock: threading.Lock"),
        ("ELF113", "fn: Callable[[int], int]"),
        ("ELF113", "TextIO"),
        ("ELF113", "Iterator[int]"),
    } == spans("ELF113_bad.py")
    assert spans("ELF115_bad.py") == {
        ("ELF115", "def made_by_exec"),
        ("ELF115", "lambda: animals.count())"),
    }
    assert ("ELF110", 'specie="cat"') in spans("ELF110_bad.py")
    assert ("ELF114", 'named(Storage, "keeper")') in spans("ELF114_bad.py")
    assert ("ELF116", 'SETTINGS["directory"]') in spans("ELF116_bad_import.py")


def test_a_pipeline_typed_into_a_repl_has_no_source() -> None:
    elves = import_path(CASES / "_elves.py")
    namespace: dict[str, Any] = {"animals": elves.animals}
    code = compile("def typed() -> int:\n    return animals.count()\n", "<stdin>", "exec")
    exec(code, namespace)
    (d,) = Pipeline(namespace["typed"]).check()
    assert d.code == "ELF115"
    assert "<stdin>" in d.message
