"""README's "Dashboard" console block, run as written: its commands in order, each `elfc ui`
line started as a server (on a free port instead of the one written, so a dashboard already
open on this machine cannot collide), asked for its runs, and stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.fixtures.harness import REPO, Processes, wait_until
from tests.test_readme import blocks, steps
from tests.ui.conftest import free_port

[BLOCK] = [b for b in blocks("console") if "$ elfc ui" in b]


@pytest.mark.slow
def test_readme_dashboard_block(tmp_path: Path) -> None:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "ELFC_MYCELIUM": f"sqlite:///{tmp_path}/readme.db",
    }
    commands = steps(BLOCK)
    assert [c for c, _, _ in commands][-1].startswith("elfc ui")
    with Processes(tmp_path) as procs:
        for command, status, expected in commands:
            if not command.startswith("elfc ui"):
                done = procs.start(["bash", "-c", command], env=env, cwd=REPO)
                assert done.wait(120) == status, procs.output(done)
                printed = [line for line in procs.output(done).splitlines() if line.strip()]
                assert expected == [] or printed[-len(expected) :] == expected
                continue
            port = free_port()
            argv = re.sub(r"--port \d+", f"--port {port}", command).split()
            server = procs.start([sys.executable, "-m", "elfc", *argv[1:]], env=env)

            def runs(port: int = port, server: Any = server) -> list[dict[str, object]] | None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs") as answer:
                        found: list[dict[str, object]] = json.loads(answer.read())["runs"]
                        return found
                except OSError:
                    assert server.poll() is None, procs.output(server)
                    return None

            [hello] = wait_until(runs, 20, "the dashboard to answer", every=0.1)
            assert (hello["pipeline"], hello["status"]) == (
                "pipeline:hello",
                "succeeded",
            )
            assert "serving" in procs.output(server)
            # uvicorn shuts down, then ends by the signal it was sent (not SIGKILL's -9).
            assert procs.stop(server, grace=5) in (0, -signal.SIGTERM)
