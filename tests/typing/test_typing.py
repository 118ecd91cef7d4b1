"""elfc's public API under ``mypy --strict``: correct pipelines pass, mistakes fail where marked.

Every file in ``fixtures/`` is checked in one mypy run, with the project's configuration. A
comment ``# E: <text>`` on a line expects an error whose message contains <text> there, and
``# N: <text>`` a note (what ``reveal_type`` prints); a line may carry several. Each file then
passes when every marker is matched and no line has an error (or a revealed type) that is not
marked.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_FILES = sorted(FIXTURES.glob("*.py"))

MARKER = re.compile(r"#\s*([EN]):\s*(.*?)\s*(?=#\s*[EN]:|$)")
MYPY_LINE = re.compile(
    r"^(?P<path>[^:]+):(?:(?P<line>\d+):)?(?:\d+:)? (?P<kind>error|note): (?P<text>.*)$"
)


@dataclass(frozen=True)
class Message:
    line: int
    kind: str  # "E" for an error, "N" for a note
    text: str


def markers(path: Path) -> list[Message]:
    """The ``# E:`` / ``# N:`` expectations in the comments of ``path`` (not in its strings)."""
    found = []
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            for kind, text in MARKER.findall(token.string):
                found.append(Message(token.start[0], kind, text))
    return found


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    # mypy resolves the config's relative paths (mypy_path = "typings") from the cwd.
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, list[Message]]:
    """Run mypy once over every fixture; its messages per fixture file."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    args = [
        "--strict",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(cache),
        "--no-pretty",
        "--no-error-summary",
        "--no-color-output",
        "--hide-error-context",
        *(str(p.relative_to(ROOT)) for p in FIXTURE_FILES),
    ]
    with working_directory(ROOT):
        stdout, stderr, status = api.run(args)
    assert status in (0, 1), f"mypy crashed (exit {status}):\n{stderr}\n{stdout}"
    messages: dict[Path, list[Message]] = defaultdict(list)
    for raw in stdout.splitlines():
        match = MYPY_LINE.match(raw)
        assert match is not None, f"unexpected mypy output: {raw!r}"
        # Errors in elfc's own modules belong to `mypy --strict elfc`, not to these fixtures.
        path = (ROOT / match["path"]).resolve()
        kind = "E" if match["kind"] == "error" else "N"
        # A message about a whole file (no line) has line 0, which no marker expects.
        messages[path].append(Message(int(match["line"] or 0), kind, match["text"]))
    return messages


def checked(message: Message) -> bool:
    """Errors always count; of the notes, only revealed types (others explain an error)."""
    return message.kind == "E" or message.text.startswith("Revealed type is")


def test_fixtures_exist() -> None:
    names = {p.stem for p in FIXTURE_FILES}
    assert any(name.endswith("_ok") for name in names)
    assert sum(name.endswith("_bad") for name in names) >= 3


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_mypy_reports_exactly_the_marked_lines(
    fixture: Path, reported: dict[Path, list[Message]]
) -> None:
    expected = markers(fixture)
    actual = [m for m in reported.get(fixture, []) if checked(m)]
    missing = [
        e
        for e in expected
        if not any(a.line == e.line and a.kind == e.kind and e.text in a.text for a in actual)
    ]
    unexpected = [
        a
        for a in actual
        if not any(a.line == e.line and a.kind == e.kind and e.text in a.text for e in expected)
    ]
    assert not missing and not unexpected, describe(fixture, missing, unexpected, actual)
    if fixture.stem.endswith("_ok"):
        assert not any(m.kind == "E" for m in expected), "an _ok fixture expects no errors"
    else:
        assert any(m.kind == "E" for m in expected), "a _bad fixture marks the errors it expects"


def describe(
    fixture: Path, missing: list[Message], unexpected: list[Message], actual: list[Message]
) -> str:
    lines = [f"{fixture.name}:"]
    lines += [f"  line {m.line}: expected {m.kind} containing {m.text!r}" for m in missing]
    lines += [f"  line {m.line}: unmarked {m.kind}: {m.text}" for m in unexpected]
    lines += ["mypy said:"] + [f"  {m.line}: {m.kind}: {m.text}" for m in actual]
    return "\n".join(lines)
