"""The top-level ``elfc`` command: lazy start-up, help that teaches, and ``--log-level``."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from elfc.cli.main import COMMANDS, LOG_LEVEL_ENV, command_name, main
from tests.runtime.fixtures.harness import REPO


def test_help_imports_no_command_module_and_no_rich() -> None:
    code = (
        "import sys\n"
        "from elfc.cli.main import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in sys.modules if m.startswith(('elfc.cli.commands.', 'rich'))]\n"
        "print(sorted(loaded), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"
    assert "--log-level LEVEL" in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_a_description_and_an_example(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert description.strip().endswith(".") and len(description.split()) >= 3
    examples = out.split("\nexample")[-1]
    assert examples.startswith(("s:", ":")) and f"elfc {name} " in examples


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["runs"], "runs"),
        (["--log-level", "debug", "runs", "--limit", "3"], "runs"),
        (["--log-level=info", "show", "abc"], "show"),
        (["--version"], None),
    ],
)
def test_the_command_is_found_past_the_top_level_options(
    argv: list[str], command: str | None
) -> None:
    assert command_name(argv) == command


def test_logging_is_configured_for_the_command_and_put_back_after_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    logger = logging.getLogger("elfc")
    before = (list(logger.handlers), logger.level, logger.propagate, os.environ.get(LOG_LEVEL_ENV))
    url = f"sqlite:///{tmp_path}/none.db"
    assert main(["--log-level", "DEBUG", "runs", "--mycelium", url]) == 0
    after = (list(logger.handlers), logger.level, logger.propagate, os.environ.get(LOG_LEVEL_ENV))
    assert after == before
    assert "no mycelium at" in capsys.readouterr().err


def test_an_unknown_level_in_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOG_LEVEL_ENV, "chatty")
    with pytest.raises(SystemExit) as exited:
        main(["runs"])
    assert exited.value.code == 2
    assert "$ELFC_LOG_LEVEL is 'chatty'" in capsys.readouterr().err


def test_python_m_elfc_and_python_m_elfc_cli_are_the_command() -> None:
    for module in ("elfc", "elfc.cli"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--version"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
        )
        assert done.returncode == 0 and done.stdout.startswith("elfc "), done.stderr


def test_verbose_and_json_log_records_reach_the_workers_a_command_starts(
    tmp_path: Path,
) -> None:
    from tests.runtime.fixtures.harness import ELVES_PATH, sqlite_url

    url = sqlite_url(tmp_path)
    argv = [sys.executable, "-m", "elfc", "-v", "--log-format", "json", "run",
            f"{ELVES_PATH}:failing", "-a", "x=7", "--mycelium", url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    loggers = {r["logger"] for r in records}
    assert {"elfc.runtime.supervisor", "elfc.runtime.worker"} <= loggers  # both processes
    assert {r["level"] for r in records} <= {"info", "warning", "error"}  # -v: INFO, no DEBUG
    assert len({r["pid"] for r in records}) >= 2
    failed = [r for r in records if "failed: ValueError: cannot handle 7" in r["message"]]
    assert failed and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d", failed[0]["time"])
    assert command_name(["--log-format", "json", "-v", "runs"]) == "runs"


def test_completion_scripts_know_every_command_and_their_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "elfc", "completion", "bash"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert command in done.stdout
    assert "--older-than" in done.stdout and "--from" in done.stdout
    loaded = subprocess.run(
        ["bash", "-c", 'eval "$1"; complete -p elfc', "bash", done.stdout],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert loaded.returncode == 0 and "elfc" in loaded.stdout, loaded.stderr
    zsh = subprocess.run(
        [sys.executable, "-m", "elfc", "completion", "zsh"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert zsh.returncode == 0 and "#compdef elfc" in zsh.stdout


def test_python_dash_m_elfc_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "elfc", "--version"],
        capture_output=True, text=True, cwd="/", timeout=60,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("elfc ")
