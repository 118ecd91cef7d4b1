"""Passwords in mycelium URLs: masked for display, and kept off worker command lines."""

from __future__ import annotations

import pytest

from elfc.mycelium.urls import mask_url, split_password
from elfc.runtime import supervisor
from elfc.runtime.supervisor import Supervisor, WorkerCommand, child_url_and_env


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("arango://u:pw@h1:8529,h2:8529/db", "arango://u:***@h1:8529,h2:8529/db"),
        ("arangos://u:p%40ss@h:8529/db?ca=/x.pem", "arangos://u:***@h:8529/db?ca=/x.pem"),
        ("arango://u:pw@[::1]:8529/db", "arango://u:***@[::1]:8529/db"),
        ("arango://u@h:8529/db", "arango://u@h:8529/db"),
        ("sqlite:///.elfc/mycelium.db", "sqlite:///.elfc/mycelium.db"),
        (
            "postgresql://u:p%40w@h1:5432,h2:5432/db?sslmode=verify-full",
            "postgresql://u:***@h1:5432,h2:5432/db?sslmode=verify-full",
        ),
        ("postgres://u:pw@[::1]/db", "postgres://u:***@[::1]/db"),
    ],
)
def test_mask_url_hides_only_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_split_password_unquotes_and_strips() -> None:
    assert split_password("arangos://u:p%40ss@h:8529/db") == ("arangos://u@h:8529/db", "p@ss")
    assert split_password("arango://u@h:8529/db") == ("arango://u@h:8529/db", None)


def test_worker_command_lines_never_carry_a_password(monkeypatch: pytest.MonkeyPatch) -> None:
    url, env = child_url_and_env("arango://elfc:s3cret@h1:8529,h2:8529/runs")
    assert "s3cret" not in url
    assert env is not None and env["ELFC_ARANGO_PASSWORD"] == "s3cret"
    spawned: list[WorkerCommand] = []
    monkeypatch.setattr(supervisor, "spawn_worker", lambda command, **_: spawned.append(command))
    sup = Supervisor(module="app.py", url="arango://elfc:s3cret@h1:8529/runs")
    sup.start(["store", "animals"])
    assert [c.elf for c in spawned] == ["animals", "store"]
    for command in spawned:
        assert "s3cret" not in " ".join(command.argv)
        assert command.env is not None and command.env["ELFC_ARANGO_PASSWORD"] == "s3cret"


def test_worker_replicas_get_the_password_through_their_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse
    import signal
    import subprocess

    from elfc.cli.commands import worker

    seen: list[tuple[list[str], dict[str, str] | None]] = []

    class FakeProcess:
        pid = 0

        def __init__(self, argv: list[str], **kwargs: object) -> None:
            env = kwargs.get("env")
            seen.append((argv, env if isinstance(env, dict) else None))

        def wait(self) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's own handlers
    args = argparse.Namespace(
        target="app.py", elf="store", replicas=2, lease=None, idle_exit=None, parent_pid=None,
        mycelium="arango://elfc:s3cret@h1:8529/runs", on_revision_mismatch="fail", threads=None,
        task_output="echo",
    )  # fmt: skip
    assert worker.run(args) == 0
    assert len(seen) == 2
    for argv, env in seen:
        assert "s3cret" not in " ".join(argv)
        assert "arango://elfc@h1:8529/runs" in argv
        assert env is not None and env["ELFC_ARANGO_PASSWORD"] == "s3cret"
