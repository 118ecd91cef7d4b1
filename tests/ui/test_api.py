"""The dashboard's HTTP surface, from outside: a real ``elfc ui`` process on a mycelium that
real workers filled (see conftest.py). What a browser page shows is in test_browser.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from elfc.mycelium.urls import open_mycelium
from tests.runtime.fixtures.harness import wait_until
from tests.ui.conftest import BIG, XSS, Dash, Server, free_port, put_fixed_revision


def test_runs_list_filters_by_status_pipeline_and_id_prefix(dash: Dash) -> None:
    server = dash.read_only
    every = server.json("/api/runs")["runs"]  # type: ignore[index]
    assert {r["id"] for r in every} == {dash.ok, dash.failed, dash.hostile, dash.big, dash.held}
    failed = server.json("/api/runs?status=failed")["runs"]  # type: ignore[index]
    assert [(r["id"], r["counts"]) for r in failed] == [(dash.failed, {"failed": 1, "skipped": 1})]
    wide = server.json("/api/runs?pipeline=WIDE")["runs"]  # type: ignore[index]
    assert [r["id"] for r in wide] == [dash.big, dash.ok]
    assert [r["arguments"] for r in wide] == [{"n": BIG}, {"n": 5}]
    found = server.json(f"/api/runs?q={dash.hostile[:6]}")["runs"]  # type: ignore[index]
    assert [r["id"] for r in found] == [dash.hostile]
    status, _, body = server.get("/api/runs?status=bogus")
    assert status == 400 and b"running, succeeded, failed, cancelled" in body


def test_run_shows_counts_value_and_the_graph_elfc_graph_draws(dash: Dash) -> None:
    data = dash.read_only.json(f"/api/runs/{dash.ok[:8]}")
    assert data["run"]["id"] == dash.ok  # type: ignore[index]
    assert data["run"]["counts"] == {"succeeded": 6}  # type: ignore[index]
    assert (data["has_value"], data["value"]) == (True, 30)  # type: ignore[index]
    boxes = {b["lines"][0].split(" · ")[0]: b for b in data["graph"]["boxes"]}  # type: ignore[index]
    assert boxes["maker.square"]["status"] == "succeeded"
    assert boxes["maker.square"]["lines"][-1] == "5 succeeded"
    assert boxes["maker.total"]["lines"][-1] == "1 succeeded"
    # `elfc graph --run` colours the same nodes with the same counts.
    dot = subprocess.run(
        [sys.executable, "-m", "elfc", "graph", "--run", dash.ok, "--mycelium", dash.url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "5 succeeded" in dot and "1 succeeded" in dot
    failed = dash.read_only.json(f"/api/runs/{dash.failed}")
    statuses = {b["lines"][0].split(" · ")[0]: b["status"] for b in failed["graph"]["boxes"]}  # type: ignore[index]
    assert statuses["maker.explode"] == "failed"
    assert statuses["maker.square"] == "skipped"
    assert failed["run"]["error"]  # type: ignore[index]


def test_job_pages_are_read_from_the_server_a_page_at_a_time(dash: Dash) -> None:
    server = dash.read_only
    first = server.json(f"/api/runs/{dash.big}/jobs")
    assert (first["total"], first["offset"], len(first["jobs"])) == (BIG + 1, 0, 100)  # type: ignore[index,arg-type]
    assert [j["key"] for j in first["jobs"][:2]] == ["n1#0", "n1#1"]  # type: ignore[index]
    last = server.json(f"/api/runs/{dash.big}/jobs?offset={BIG}&limit=100")
    assert [j["key"] for j in last["jobs"]] == ["n2"]  # type: ignore[index]
    assert last["jobs"][0]["deps"] == BIG  # type: ignore[index]
    middle = server.json(f"/api/runs/{dash.big}/jobs?offset=5000&limit=3")
    assert [j["key"] for j in middle["jobs"]] == ["n1#5000", "n1#5001", "n1#5002"]  # type: ignore[index]
    failed = server.json(f"/api/runs/{dash.failed}/jobs?status=skipped")
    assert [(j["key"], j["status"]) for j in failed["jobs"]] == [("n2", "skipped")]  # type: ignore[index]
    assert server.get(f"/api/runs/{dash.big}/jobs?limit=100000")[0] == 400


def test_timeline_has_a_lane_per_worker_and_stays_small_for_big_runs(dash: Dash) -> None:
    t = dash.read_only.json(f"/api/runs/{dash.big}/timeline")
    [lane] = t["lanes"]  # type: ignore[index]
    assert lane["elf"] == "maker" and lane["jobs"] == BIG + 1
    assert t["merged"] is True and sum(b["jobs"] for b in lane["bars"]) == BIG + 1  # type: ignore[index]
    assert len(lane["bars"]) <= 3000
    small = dash.read_only.json(f"/api/runs/{dash.ok}/timeline")
    assert small["merged"] is False  # type: ignore[index]
    assert sorted(b["key"] for b in small["lanes"][0]["bars"]) == [  # type: ignore[index]
        "n1#0", "n1#1", "n1#2", "n1#3", "n1#4", "n2",
    ]  # fmt: skip


def test_job_detail_has_values_attempts_sources_and_the_pipeline_line(dash: Dash) -> None:
    d = dash.read_only.json(f"/api/jobs/{dash.failed}/n1")
    job = d["job"]  # type: ignore[index]
    assert (job["status"], job["args"]) == ("failed", [3])
    assert "ValueError: refusing 3" in job["failure"]["traceback"]
    [attempt] = d["attempts"]  # type: ignore[index]
    assert attempt["outcome"] == "failed" and attempt["worker"] == job["lease_owner"]
    assert "def explode" in d["task_source"]["source"]  # type: ignore[index]
    pipeline = d["pipeline"]  # type: ignore[index]
    lines = pipeline["record"]["source"].splitlines()
    assert "maker.explode(n)" in lines[pipeline["highlight"] - pipeline["first_line"]]
    assert d["origin"]["source"] == "maker.explode(n)"  # type: ignore[index]
    ok = dash.read_only.json(f"/api/jobs/{dash.hostile}/n1")
    assert (ok["has_result"], ok["result"]) == (True, XSS)  # type: ignore[index]


def test_values_from_the_mycelium_never_reach_the_page_as_html(dash: Dash) -> None:
    status, headers, body = dash.read_only.get(f"/jobs/{dash.hostile}/n1")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"pwned" not in body  # the page is a static shell; values come as JSON
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = dash.read_only.get(f"/api/jobs/{dash.hostile}/n1")
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["result"] == XSS


def test_no_get_changes_anything_and_actions_need_the_flag_and_the_token(dash: Dash) -> None:
    run = dash.submit("gated", "-a", f"gate={dash.folder / 'never'}")
    # GET on an action is not a route that acts.
    assert dash.actions.get(f"/api/runs/{run}/cancel")[0] in (404, 405)
    assert dash.status(run) == "running"
    # Read-only server: refused, even with its own token.
    token = dash.read_only.json("/api/config")["csrf"]  # type: ignore[index]
    assert dash.read_only.json("/api/config")["actions"] == []  # type: ignore[index]
    status, body = dash.read_only.post(f"/api/runs/{run}/cancel", **{"X-CSRF-Token": token})
    assert status == 403 and "--allow-actions" in body["error"]  # type: ignore[index]
    # Actions server: refused without the token, or from another origin.
    assert dash.actions.post(f"/api/runs/{run}/cancel")[0] == 403
    good = dash.actions.json("/api/config")["csrf"]  # type: ignore[index]
    evil = {"X-CSRF-Token": good, "Origin": "http://evil.example"}
    assert dash.actions.post(f"/api/runs/{run}/cancel", **evil)[0] == 403
    assert dash.status(run) == "running"
    status, body = dash.actions.post(f"/api/runs/{run}/cancel", **{"X-CSRF-Token": good})
    assert (status, body) == (200, {"message": f"run {run} cancelled"})
    assert dash.status(run) == "cancelled"
    status, body = dash.actions.post(f"/api/runs/{run}/cancel", **{"X-CSRF-Token": good})
    assert status == 400 and "only a running run" in body["error"]  # type: ignore[index]


def test_requests_for_another_host_name_are_refused(dash: Dash) -> None:
    # A page on another site that resolves its name to 127.0.0.1 (DNS rebinding) gets nothing.
    status, _, _ = dash.read_only.get("/api/runs", Host="evil.example:80")
    assert status == 421
    assert dash.read_only.get("/api/runs", Host="localhost")[0] == 200


def test_token_is_required_when_set_and_then_kept_in_a_cookie(dash: Dash) -> None:
    server = dash.serve("--token", "s3cret")
    assert server.get("/api/runs")[0] == 401
    status, headers, _ = server.get("/?token=s3cret")
    assert status == 200 and "elfc_ui_token=s3cret" in headers["set-cookie"]
    assert server.get("/api/runs", Cookie="elfc_ui_token=s3cret")[0] == 200
    assert server.get("/api/runs", Authorization="Bearer wrong")[0] == 401
    dash.procs.stop(server.proc)


def test_elves_and_failures(dash: Dash) -> None:
    elves = {e["name"]: e for e in dash.read_only.json("/api/elves")["elves"]}  # type: ignore[index]
    assert set(elves) == {"maker", "holder"}
    maker = elves["maker"]
    assert maker["record"]["cls"] == "Maker" and maker["live"] == 1
    [worker] = maker["workers"]
    assert worker["stale"] is False and worker["age"] < 30
    [failure] = dash.read_only.json("/api/failures")["failures"]  # type: ignore[index]
    assert (failure["error_type"], failure["count"], failure["task"]) == (
        "ValueError",
        1,
        "explode",
    )
    [raised] = failure["jobs"]
    assert (raised["run"], raised["key"]) == (dash.failed, "n1")


def test_ui_refuses_a_missing_mycelium_and_bad_options(dash: Dash) -> None:
    missing = dash.folder / "nothing-here" / "m.db"
    done = dash.procs.call("ui", "--mycelium", f"sqlite:///{missing}", "--port", str(free_port()))
    assert done.returncode == 1 and f"no mycelium at {missing}" in done.stderr
    assert not missing.parent.exists()
    done = dash.procs.call("ui", "--mycelium", dash.url, "--poll", "0.5")
    assert done.returncode == 1 and "at least 1 second" in done.stderr


def test_the_runs_stream_says_change_when_a_run_is_submitted(dash: Dash) -> None:
    import urllib.request

    with urllib.request.urlopen(dash.read_only.base + "/api/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.readline() == b"retry: 2000\n"
        time.sleep(1.5)  # the server has taken its first look
        run = dash.submit("gated", "-a", f"gate={dash.folder / 'shut'}")
        submitted = time.monotonic()
        lines = []
        while b"event: change\n" not in lines:
            lines.append(stream.readline())
        assert time.monotonic() - submitted < 3.0, lines
    with open_mycelium(dash.url) as store:
        assert store.cancel_run(run)


def test_a_task_revision_diffs_against_another(dash: Dash) -> None:
    job = dash.read_only.json(f"/api/jobs/{dash.failed}/n1")["job"]  # type: ignore[index]
    other = put_fixed_revision(dash)
    lines = dash.read_only.json(f"/api/diff?a={job['revision']}&b={other[:6]}")["lines"]  # type: ignore[index]
    assert lines[0] == f"--- Maker.explode @ {job['revision']}"
    assert lines[1] == f"+++ Maker.explode @ {other}"
    assert '-        raise ValueError(f"refusing {n}: <b>not bold</b>")' in lines
    assert "+        return -n" in lines
    same = dash.read_only.json(f"/api/diff?a={job['revision']}&b={job['revision']}")
    assert same == {"lines": []}
    status, _, body = dash.read_only.get(f"/api/diff?a={job['revision']}&b=0000")
    assert status == 404 and b"no revision '0000'" in body
    assert dash.read_only.get("/api/diff?a=x")[0] == 400


REFUSED = """
from typing import Any

from elfc import elf, named, pipeline, task


@elf
class Loose:
    @task
    def make(self) -> Any:
        return "x"


loose = named(Loose, "loose")


@pipeline
def count() -> int:
    return loose.make()
"""


def test_a_run_whose_value_was_refused_is_listed_failed_with_its_reason(dash: Dash) -> None:
    folder = dash.folder / "refused"
    folder.mkdir()
    (folder / "refused.py").write_text(REFUSED, encoding="utf-8")
    url = f"sqlite:///{folder}/m.db"
    ran = dash.procs.call("run", f"{folder / 'refused.py'}:count", "--mycelium", url)
    assert ran.returncode == 1, ran.stderr
    port = free_port()
    proc = dash.procs.elfc("ui", "--mycelium", url, "--port", str(port))
    server = Server(f"http://127.0.0.1:{port}", proc)
    wait_until(lambda: _answers(server), 20, "elfc ui to answer", every=0.1)
    [run] = server.json("/api/runs?status=failed")["runs"]  # type: ignore[index]
    assert run["counts"] == {"succeeded": 1}
    assert run["error"].startswith("its value was refused: ValueCrossingError: ")
    shown = server.json(f"/api/runs/{run['id']}")
    assert shown["run"]["error"] == run["error"] and shown["has_value"] is False  # type: ignore[index]
    [failure] = server.json("/api/failures")["failures"]  # type: ignore[index]
    assert (failure["run"], failure["task"], failure["jobs"]) == (run["id"], "refused:count", [])
    assert "is not a valid `int`" in failure["message"]
    dash.procs.stop(proc)


def _answers(server: Server) -> bool:
    try:
        return server.get("/api/config")[0] == 200
    except OSError:
        return False
