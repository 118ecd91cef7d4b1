"""``Run.retry()`` and ``Run.logs()`` from Python, with workers in threads of this process."""

from __future__ import annotations

from pathlib import Path

import pytest

from elfc import RunFailed
from elfc.errors import ElfcError
from elfc.runtime.client import Mycelium
from elfc.targets import load_module
from tests.runtime.fixtures.harness import ThreadWorkers

GATE = """
from pathlib import Path

from elfc import elf, named, pipeline, task


@elf
class Gate:
    @task
    def open(self, path: str, n: int) -> int:
        print(f"trying {n}")
        if n == 1 and not Path(path).exists():
            raise RuntimeError("the gate is shut")
        return n * 10

    @task
    def add(self, values: list[int]) -> int:
        return sum(values)


gate = named(Gate, "gate_for_retry")


@pipeline
def through(path: str) -> int:
    return gate.add([gate.open(path, n) for n in range(3)])
"""


def test_a_failed_run_is_retried_in_place_and_keeps_every_attempts_output(
    threads: ThreadWorkers, mycelium: Mycelium, tmp_path: Path
) -> None:
    source = tmp_path / "gate_for_retry.py"
    source.write_text(GATE, encoding="utf-8")
    module = load_module(str(source))
    key = tmp_path / "key"
    threads.start(module.gate)
    run = mycelium.submit(module.through, str(key))
    with pytest.raises(RunFailed):
        run.wait(timeout=20)

    key.touch()
    retried = run.retry()
    assert retried.keys == ("n1#1", "n2") and retried.changed == 0
    assert run.wait(timeout=20) == 30
    logs = run.logs()
    assert sorted((log.key, log.text) for log in logs) == [
        ("n1#0", "trying 0\n"),
        ("n1#1", "trying 1\n"),
        ("n1#1", "trying 1\n"),
        ("n1#2", "trying 2\n"),
    ]
    assert [log.attempt for log in run.logs("n1#1")] == [1, 1]  # one per run of the job
    with pytest.raises(ElfcError, match="nothing to retry"):
        run.retry()
    assert run.retry(from_keys=("n2",)).keys == ("n2",)
    assert run.wait(timeout=20) == 30
