"""Bad input and hostile surroundings give clear errors before anything runs: leases and
durations, ``$ELFC_LEASE``, ``-a`` bytes that are not UTF-8, ``--replicas`` for an elf the run
does not use, passwords with ``/`` or ``?`` in a URL, and mycelium files that are empty,
full or read-only. Each case was a defect of issue 15, reproduced first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from elfc import connect
from elfc.cli.main import main
from elfc.errors import UsageError
from elfc.mycelium.urls import mask_url, split_password
from elfc.runtime.supervisor import worker_command
from elfc.runtime.worker import Worker
from tests.runtime.fixtures.harness import ELVES_PATH, Processes, elves, opened

TARGET = f"{ELVES_PATH}:fanout"


def runs_in(url: str) -> int:
    with opened(url) as store:
        return len(store.list_runs())


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "0.1", "1e9", "abc"])
def test_worker_lease_must_be_a_lease_a_worker_can_keep(
    value: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["worker", str(ELVES_PATH), "--elf", "summer", "--mycelium", url, f"--lease={value}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --lease" in err and value in err, err


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-5", "0", ""])
def test_a_bad_elfc_lease_stops_elfc_run_before_it_submits(
    value: str, url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ELFC_LEASE", value)
    if value == "":  # unset in effect: the default lease
        assert Worker(connect(url).store, elves().summer).lease == 30.0
        return
    code = main(["run", TARGET, "-a", "path=/nonexistent", "-a", "n=1", "--mycelium", url])
    assert code == 2
    err = capsys.readouterr().err
    assert "$ELFC_LEASE must be" in err and repr(value) in err, err
    assert "Traceback" not in err
    assert runs_in(url) == 0


def test_a_bad_elfc_lease_stops_a_worker_with_a_message(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ELFC_LEASE", "abc")
    assert main(["worker", str(ELVES_PATH), "--elf", "summer", "--mycelium", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("elfc worker: error: $ELFC_LEASE must be a number of seconds, not 'abc'")


@pytest.mark.parametrize("lease", [float("nan"), float("inf"), -1.0, 0.0])
def test_a_worker_refuses_a_lease_it_cannot_keep(lease: float, url: str) -> None:
    with opened(url) as store, pytest.raises(UsageError, match="the lease must be between"):
        Worker(store, elves().summer, lease=lease)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "0", "soon"])
def test_run_timeout_must_be_a_positive_number_of_seconds(
    value: str, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", TARGET, "-a", "path=/x", "--mycelium", url, f"--timeout={value}"])
    assert exited.value.code == 2
    assert "argument --timeout" in capsys.readouterr().err
    assert runs_in(url) == 0


def test_replicas_of_an_elf_the_run_does_not_use_are_refused_before_submitting(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", TARGET, "-a", "path=/x", "--replicas", "nosuch=2", "--mycelium", url])
    assert code == 2
    err = capsys.readouterr().err
    assert "--replicas names 'nosuch', which this run does not use" in err, err
    assert "its elves are: appender, summer" in err
    assert runs_in(url) == 0


def test_arguments_that_are_not_utf8_are_a_usage_error(url: str) -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates, which JSON cannot carry.
    done = subprocess.run(
        [
            *(sys.executable.encode(), b"-m", b"elfc", b"run", f"{ELVES_PATH}:echo".encode()),
            *(b"-a", b"word=\xff\xfe", b"--mycelium", url.encode()),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err
    assert "-a word: the value is not valid UTF-8 text" in err
    assert "Traceback" not in err
    assert runs_in(url) == 0


# -- passwords ------------------------------------------------------------------------------

SECRETS = ["pa/ss", "pa?ss", "pa#ss", "p@ss/w?rd", "a:b/c"]


@pytest.mark.parametrize("password", SECRETS)
def test_a_password_with_url_delimiters_is_masked_and_kept_off_command_lines(
    password: str,
) -> None:
    url = f"arango://elfc:{password}@h1:8529,h2:8529/runs?timeout=5"
    assert mask_url(url) == "arango://elfc:***@h1:8529,h2:8529/runs?timeout=5"
    assert split_password(url) == ("arango://elfc@h1:8529,h2:8529/runs?timeout=5", password)
    command = worker_command("app.py", "store", url)
    assert password not in " ".join(command.argv)
    assert command.env is not None and command.env["ELFC_ARANGO_PASSWORD"] == password


def test_a_url_without_a_password_is_left_alone() -> None:
    for url in ["sqlite:///a@b.db", "sqlite:////tmp/x:y@z.db", "arango://u@h/db", "arango://h"]:
        assert mask_url(url) == url
        assert split_password(url) == (url, None)


@pytest.mark.parametrize("password", ["s3cr/t-Pa55", "s3cr?t-Pa55"])
def test_no_command_shows_a_password_with_a_slash_or_question_mark(
    password: str, procs: Processes
) -> None:
    url = f"arango://root:{password}@127.0.0.1:9/elfc?connect_timeout=0.2"
    for args in (["runs"], ["jobs", "abc"], ["show", "abc"], ["failures"], ["source", "abc"]):
        done = procs.call(*args, "--mycelium", url)
        assert done.returncode != 0
        out = done.stdout + done.stderr
        assert "s3cr" not in out and "Pa55" not in out, out
        assert "root:***@127.0.0.1:9" in out, out


# -- mycelium files -------------------------------------------------------------------------


def test_a_zero_byte_mycelium_file_is_refused_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.db"
    path.touch()
    old = time.time() - 60
    os.utime(path, (old, old))
    assert main(["runs", "--mycelium", f"sqlite:///{path}"]) == 1
    assert "is empty (0 bytes)" in capsys.readouterr().err
    assert path.stat().st_size == 0  # left as it was


def test_a_zero_byte_file_another_process_is_creating_is_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    path.touch()  # as SQLite leaves it for an instant while another process creates it
    with opened(f"sqlite:///{path}") as store:
        assert store.list_runs() == []


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 400 KiB tmpfs (root only; skipped where the test may not mount file systems)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_at_open_says_so(small_fs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    filler = small_fs / "filler"
    with open(filler, "wb") as out, pytest.raises(OSError):
        out.write(b"\0" * 1_000_000)
    url = f"sqlite:///{small_fs}/m.db"
    code = main(["run", f"{ELVES_PATH}:echo", "-a", "word=x", "--mycelium", url])
    err = capsys.readouterr().err
    assert code == 1
    assert "disk is full" in err and "not an SQLite database" not in err, err
    assert "has free space" in err
