"""Per-job output capture: what a job writes on its thread is kept for it, bounded; other
threads and the time between jobs write to the real streams; the streams come back."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from elfc.runtime.capture import OutputCapture


@contextlib.contextmanager
def installed(**options: Any) -> Iterator[OutputCapture]:
    """Installed inside the test itself: pytest puts its own ``sys.stdout`` back between a
    fixture's set-up and the test's call."""
    capture = OutputCapture(**options)
    capture.install()
    try:
        yield capture
    finally:
        capture.uninstall()


def test_a_job_keeps_its_prints_stderr_and_log_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with installed(echo=False) as capture:
        capture.begin()
        print("hello from the job")
        print("to stderr", file=sys.stderr)
        logging.getLogger("app.task").warning("a record")
        logging.getLogger("elfc.runtime.worker").warning("the worker's own: not the job's")
        text, dropped = capture.end()
        print("between jobs")
        assert capture.end() == ("", 0)
    assert text == "hello from the job\nto stderr\nWARNING app.task: a record\n"
    assert dropped == 0
    seen = capsys.readouterr()
    assert seen.out == "between jobs\n" and "hello" not in seen.out + seen.err


def test_echo_writes_to_the_real_streams_too(capsys: pytest.CaptureFixture[str]) -> None:
    with installed(echo=True) as capture:
        capture.begin()
        print("both places")
        text, _ = capture.end()
    assert text == "both places\n" and capsys.readouterr().out == "both places\n"


def test_output_past_the_bound_is_counted_not_kept(capsys: pytest.CaptureFixture[str]) -> None:
    with installed(echo=False, limit=10) as capture:
        capture.begin()
        sys.stdout.write("12345678")
        sys.stdout.write("abcdef")
        sys.stdout.write("more")
        text, dropped = capture.end()
    assert (text, dropped) == ("12345678ab", 8)


def test_threads_keep_their_jobs_apart() -> None:
    results: dict[int, str] = {}
    ready = threading.Barrier(4)

    def job(n: int) -> None:
        capture.begin()
        ready.wait(timeout=10)
        for i in range(50):
            print(f"job {n} line {i}")
        results[n] = capture.end()[0]

    threads = [threading.Thread(target=job, args=(n,)) for n in range(4)]
    with installed(echo=False) as capture:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
    for n in range(4):
        assert results[n] == "".join(f"job {n} line {i}\n" for i in range(50))


def test_workers_in_threads_share_one_installation_and_restore_the_streams() -> None:
    before = sys.stdout, sys.stderr, logging.getLogger().level, list(logging.getLogger().handlers)
    first, second = OutputCapture(), OutputCapture()
    first.install()
    second.install()
    first.uninstall()  # the other worker still captures
    assert sys.stdout is not before[0]
    second.uninstall()
    after = sys.stdout, sys.stderr, logging.getLogger().level, list(logging.getLogger().handlers)
    assert after == before


def test_a_running_jobs_whole_lines_can_be_taken_from_another_thread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    taken: list[str] = []
    with installed(echo=False, limit=12) as capture:
        assert capture.take() == ""  # no job
        capture.begin()
        print("one")
        print("tw", end="")
        reader = threading.Thread(target=lambda: taken.append(capture.take()))
        reader.start()
        reader.join()
        print("o")
        print("three and more")
        text, dropped = capture.end()
        assert capture.take() == ""  # the job ended
    assert taken == ["one\n"]  # the half line stays for later
    assert (text, dropped) == ("two\nthre", 11)  # the bound counts what was taken too


def test_taking_twice_resumes_inside_a_part(capsys: pytest.CaptureFixture[str]) -> None:
    with installed(echo=False) as capture:
        capture.begin()
        sys.stdout.write("a\nb")
        assert capture.take() == "a\n"
        assert capture.take() == ""
        sys.stdout.write("c\nd\n")
        sys.stdout.write("e")
        assert capture.take() == "bc\nd\n"
        sys.stdout.write("f\n")
        assert capture.take() == "ef\n"
        sys.stdout.write("g")
        assert capture.end() == ("g", 0)
