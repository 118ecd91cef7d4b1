"""`elfc check` as a user runs it: output formats, exit codes, paths, -v, --mypy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from elfc import checker
from elfc.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CASES = ROOT / "tests" / "check" / "cases"

ELVES = """\
from __future__ import annotations

from elfc import elf, named, pipeline, task


@elf
class Store:
    @task
    def save(self, species: str, weight: int) -> int:
        return weight

    @task
    def count(self) -> int:
        return 1


store = named(Store, "store")
"""


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project in tmp_path, the current directory: one bad pipeline (an error and a warning)."""
    folder = tmp_path / "proj"
    write(
        folder,
        "flows_cli.py",
        ELVES
        + textwrap.dedent(
            """

            def shout(text: str) -> str:
                return text.upper()


            @pipeline
            def flow(rounds: int = 2) -> int:
                n = store.count()
                store.save("cat", n)
                return store.save(n(rounds), rounds)
            """
        ),
    )
    monkeypatch.chdir(folder)
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_has_location_excerpt_caret_help_and_summary(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys)
    assert code == 1
    lines = out.splitlines()
    head = "flows_cli.py:28:23: ELF101 `n` is called with `n`, a task result"
    start = next(i for i, line in enumerate(lines) if line.startswith(head))
    assert lines[start + 1 : start + 4] == [
        "   |",
        "28 |     return store.save(n(rounds), rounds)",
        "   |                       ^^^^^^^^^",
    ]
    assert lines[start + 4].startswith("   = help: move this call into a @task")
    assert 'flows_cli.py:27:5: ELF201 the result of `store.save("cat", n)` is never used' in out
    assert lines[-1] == "1 error, 1 warning in 1 pipeline (1 file)"
    assert "Traceback" not in out


def test_json_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--format", "json")
    assert code == 1
    found = json.loads(out)
    assert [(d["code"], d["severity"], d["line"]) for d in found] == [
        ("ELF201", "warning", 27),
        ("ELF101", "error", 28),
    ]
    assert set(found[0]) == {
        "path", "line", "column", "end_line", "end_column", "code", "severity", "message", "help"
    }  # fmt: skip
    assert found[1]["path"] == "flows_cli.py"
    assert (found[1]["column"], found[1]["end_column"]) == (23, 32)


def test_json_stays_clean_when_checked_modules_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "noisy_cli.py", ELVES + "\nprint('hello from an import')\n")
    code, out, err = run(capsys, "--format", "json", str(path))
    assert code == 0
    assert json.loads(out)[0]["code"] == "ELF202"
    assert "hello from an import" in err


def test_quiet_shows_only_errors_and_no_summary(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--quiet")
    assert code == 1
    assert "ELF101" in out
    assert "ELF201" not in out
    assert "error" not in out.splitlines()[-1]


def test_warnings_fail_only_with_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "warned_cli.py",
        ELVES + "\n\n@pipeline\ndef flow() -> int:\n    store.count()\n    return 1\n",
    )
    code, out, _ = run(capsys, str(path))
    assert code == 0
    assert out.splitlines()[-1] == "0 errors, 1 warning in 1 pipeline (1 file)"
    code, out, _ = run(capsys, "--strict", str(path))
    assert code == 1
    code, out, _ = run(capsys, "--strict", "--quiet", str(path))
    assert code == 1
    assert "ELF201" in out


def test_clean_examples_and_job_counts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(capsys, "examples", "-v")
    assert code == 0, out
    assert "examples/animals/pipeline.py:168: census(rounds=10) makes 27 jobs" in out
    assert "examples/hello/pipeline.py:55: hello(name='world') makes 2 jobs" in out
    assert out.splitlines()[-1] == "no problems in 5 pipelines (5 files)"


def test_verbose_says_why_a_pipeline_was_not_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "needs_cli.py",
        ELVES + "\n\n@pipeline\ndef flow(n: int) -> list[int]:\n"
        "    return [store.count() for _ in range(n)]\n",
    )
    code, out, _ = run(capsys, "-v", str(path))
    assert code == 0
    assert "flow(n): job count unknown (`n` has no default)" in out


def test_a_failing_build_is_a_diagnostic_at_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "builds_cli.py",
        ELVES + "\n\n@pipeline\ndef flow(n: str = 'x') -> list[int]:\n"
        "    return [store.count() for _ in range(n)]\n",
    )
    code, out, _ = run(capsys, "-v", "--format", "json", str(path))
    assert code == 1
    (d,) = json.loads(out)
    assert (d["code"], d["line"]) == ("ELF120", 22)
    assert "TypeError" in d["message"]


def test_import_and_syntax_errors_are_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "broken_syntax_cli.py", "import elfc\n\ndef f(:\n    pass\n")
    write(tmp_path, "broken_import_cli.py", "import elfc\nx = 1\ny = {}['missing']\n")
    code, out, _ = run(capsys, "--format", "json", str(tmp_path))
    assert code == 1
    found = {(Path(d["path"]).name, d["code"], d["line"], d["column"]) for d in json.loads(out)}
    assert found == {
        ("broken_syntax_cli.py", "ELF116", 3, 7),
        ("broken_import_cli.py", "ELF116", 3, 5),
    }
    code, out, _ = run(capsys, str(tmp_path))
    assert "Traceback" not in out
    assert "KeyError: 'missing'" in out


def test_a_compiler_crash_is_reported_not_raised(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from elfc.pipeline import Pipeline

    def explode(self: Pipeline[..., object]) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(Pipeline, "compiled", explode)
    code, out, _ = run(capsys, "--format", "json")
    assert code == 1
    codes = {(d["code"], d["line"]) for d in json.loads(out)}
    assert codes == {("ELF199", 25)}


def test_directories_skip_files_without_elfc_and_hidden_folders(tmp_path: Path) -> None:
    write(tmp_path, "plain_script.py", "raise SystemExit('would run if imported')\n")
    write(tmp_path, ".hidden/flows.py", ELVES)
    write(tmp_path, "venv/flows.py", ELVES)
    mine = write(tmp_path, "pkg/flows_dir.py", ELVES)
    assert checker.discover([tmp_path], tmp_path) == [mine.resolve()]


def test_default_paths_come_from_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "pyproject.toml", '[tool.elfc]\npaths = ["src"]\n')
    write(tmp_path, "src/flows_pyproject.py", ELVES + "\n\n@pipeline\ndef f() -> int:\n"
          "    return store.count()\n")  # fmt: skip
    write(tmp_path, "other/flows_other.py", "import elfc\nraise RuntimeError('not checked')\n")
    monkeypatch.chdir(tmp_path / "src")
    assert checker.default_paths(tmp_path / "src") == [tmp_path / "src"]
    code, out, _ = run(capsys)
    assert code == 0, out
    assert out.splitlines()[-1] == "no problems in 1 pipeline (1 file)"


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--format", "xml"])
    assert exited.value.code == 2
    code, _, err = run(capsys, str(tmp_path / "missing.py"))
    assert code == 2
    assert "no such file" in err


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    out = capsys.readouterr().out
    for needle in ("examples:", "--mypy", "[tool.elfc]", "exit status", "elfc check --strict"):
        assert needle in out


def test_mypy_findings_join_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "typed_cli.py",
        ELVES + "\n\n@pipeline\ndef f() -> int:\n    return store.save(species=1, weight=2)\n",
    )
    code, out, _ = run(capsys, "--mypy", "--format", "json", str(path))
    assert code == 1
    found = {(d["code"], d["line"]) for d in json.loads(out)}
    assert ("mypy", 22) in found
    assert ("ELF112", 22) in found
    mypy = next(d for d in json.loads(out) if d["code"] == "mypy")
    assert mypy["message"].endswith("[arg-type]")


def test_parse_mypy_output() -> None:
    out = checker.parse_mypy(
        "a.py:3:5:3:9: error: Bad thing  [arg-type]\n"
        "a.py:4:1:4:1: note: See here\n"
        "b.py: error: Duplicate module named 'b'\n"
    )
    assert [(d.path, d.line, d.column, d.end_column, d.message) for d in out] == [
        ("a.py", 3, 5, 9, "Bad thing [arg-type]"),
        ("b.py", 1, 1, 2, "Duplicate module named 'b'"),
    ]


def test_the_command_runs_as_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "elfc", "check", "examples", str(CASES / "ELF101_bad.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "tests/check/cases/ELF101_bad.py:22:12: ELF101" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "2 errors, 0 warnings in 6 pipelines (6 files)"


def test_a_dotted_module_is_found_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "dotted_pkg/__init__.py", "")
    write(tmp_path, "dotted_pkg/elves.py", ELVES)
    write(
        tmp_path,
        "dotted_pkg/flows.py",
        "from elfc import pipeline\n\nfrom .elves import store\n\n\n@pipeline\n"
        "def f(n: int = 3) -> list[int]:\n    return [store.count() for _ in range(n)]\n",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    code, out, _ = run(capsys, "dotted_pkg.flows", "-v")
    assert code == 0, out
    assert "dotted_pkg/flows.py:7: f(n=3) makes 3 jobs" in out
