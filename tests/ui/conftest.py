"""A real SQLite mycelium filled by real worker processes, and real ``elfc ui`` servers on it.

The runs (submitted with ``elfc submit``, run by ``elfc worker`` processes):

- ``ok``: ``wide(n=5)``, succeeded with the value 30;
- ``failed``: ``broken(n=3)``, its ``explode`` job failed with a traceback, ``square`` skipped;
- ``hostile``: ``hostile(text=XSS)``, succeeded with a result that is script if parsed as HTML;
- ``big``: ``wide(n=BIG)``, succeeded (BIG + 1 jobs);
- ``held``: ``gated``, running until a test creates its gate file.

Two servers: ``read_only`` (the default: no actions) and ``actions`` (``--allow-actions``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from elfc.mycelium.urls import open_mycelium
from tests.runtime.fixtures.harness import Processes, sqlite_url, wait_until

ELVES = Path(__file__).with_name("dash_elves.py")
BIG = 10_000
XSS = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, _lower(answer.headers.items()), answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, _lower(exc.headers.items()), exc.read()

    def json(self, path: str) -> object:
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def post(self, path: str, **headers: str) -> tuple[int, object]:
        request = urllib.request.Request(self.base + path, method="POST", headers=headers, data=b"")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@dataclass
class Dash:
    folder: Path
    url: str
    procs: Processes
    ok: str
    failed: str
    hostile: str
    big: str
    held: str
    gate: Path
    read_only: Server
    actions: Server

    def submit(self, *args: str) -> str:
        done = self.procs.call("submit", f"{ELVES}:{args[0]}", *args[1:], "--mycelium", self.url)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def status(self, run_id: str) -> str | None:
        with open_mycelium(self.url) as store:
            return store.run_status(run_id)

    def serve(self, *extra: str) -> Server:
        port = free_port()
        proc = self.procs.elfc("ui", "--mycelium", self.url, "--port", str(port), *extra)
        server = Server(f"http://127.0.0.1:{port}", proc)

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"elfc ui exited: {self.procs.output(proc)}")
            try:
                return server.get("/api/config")[0] in (200, 401)
            except OSError:
                return False

        wait_until(up, 20, "elfc ui to answer", every=0.1)
        return server


@pytest.fixture(scope="session")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    folder = tmp_path_factory.mktemp("dash")
    url = sqlite_url(folder)
    with Processes(folder) as procs:
        gate = folder / "gate"
        d = Dash(folder, url, procs, "", "", "", "", "", gate, None, None)  # type: ignore[arg-type]
        d.ok = d.submit("wide", "-a", "n=5")
        d.failed = d.submit("broken", "-a", "n=3")
        d.hostile = d.submit("hostile", "-a", f"text={XSS}")
        d.big = d.submit("wide", "-a", f"n={BIG}")
        d.held = d.submit("gated", "-a", f"gate={gate}")
        procs.worker(ELVES, "maker", url)
        procs.worker(ELVES, "holder", url)
        for run in (d.ok, d.failed, d.hostile, d.big):
            wait_until(lambda run=run: d.status(run) != "running", 120, f"run {run} to finish")
        assert [d.status(r) for r in (d.ok, d.failed, d.hostile, d.big, d.held)] == [
            "succeeded",
            "failed",
            "succeeded",
            "succeeded",
            "running",
        ]
        d.read_only = d.serve()
        d.actions = d.serve("--allow-actions")
        yield d


def chromium_paths() -> tuple[str, str] | None:
    found = [Path(p) for p in ("/usr/bin/chromium", "/usr/bin/chromedriver")]
    return (str(found[0]), str(found[1])) if all(p.exists() for p in found) else None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    paths = chromium_paths()
    if paths is None:
        pytest.skip(
            "the browser tests need Debian's chromium and chromium-driver "
            "(/usr/bin/chromium, /usr/bin/chromedriver): apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.add_argument("--disable-dev-shm-usage")
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
"""Where the browser tests write a PNG of each page (build/ is kept out of git)."""


FIXED = "feedc0de00000001"


def put_fixed_revision(dash: Dash) -> str:
    """Store a second revision of ``Maker.explode`` (as a later deploy would) and return it."""
    from elfc.model.records import RevisionRecord

    with open_mycelium(dash.url) as store:
        [job] = [j for j in store.list_jobs(dash.failed) if j.key == "n1"]
        ran = store.get_revision(job.revision)
        assert ran is not None
        fixed = ran.source.replace(
            'raise ValueError(f"refusing {n}: <b>not bold</b>")', "return -n"
        )
        assert fixed != ran.source
        store.put_revisions([RevisionRecord(FIXED, "task", ran.qualname, ran.module, fixed)])
    return FIXED
