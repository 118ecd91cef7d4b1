"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver, on ``elfc ui`` processes over a mycelium that real workers filled (see
conftest.py). Each test leaves a PNG of its page in build/screenshots/."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from elfc.mycelium.urls import open_mycelium
from tests.ui.conftest import BIG, SHOTS, XSS, Dash, put_fixed_revision

pytestmark = pytest.mark.slow


def By() -> Any:
    from selenium.webdriver.common.by import By as by

    return by


def visit(browser: Any, url: str, ready: str, timeout: float = 15) -> float:
    """Open ``url`` and wait until the CSS selector ``ready`` matches; seconds it took."""
    start = time.monotonic()
    browser.get(url)
    until(browser, lambda: browser.find_elements(By().CSS_SELECTOR, ready), timeout, ready)
    return time.monotonic() - start


def until(browser: Any, check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            shot(browser, "timeout")
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def text(browser: Any, css: str) -> str:
    """The text the page shows in the first match of ``css`` (read in one step, so a live
    page that redraws meanwhile cannot hand back a stale element)."""
    found = browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null", css
    )
    assert found is not None, f"nothing on the page matches {css}"
    return str(found)


def attributes(browser: Any, css: str, name: str) -> list[str]:
    """Attribute ``name`` of every match of ``css``, read in one step."""
    found: list[str] = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.getAttribute(arguments[1]))",
        css,
        name,
    )
    return found


def shot(browser: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(max(int(height) + 40, 700), 2400))
    browser.save_screenshot(str(SHOTS / f"{name}.png"))
    browser.set_window_size(1400, 1000)


def no_alert(browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 - the property raises when no dialog is open


def node_status(browser: Any, label: str) -> str | None:
    """The status a graph node whose first line starts with ``label`` is drawn in."""
    found: str | None = browser.execute_script(
        "const n = [...document.querySelectorAll('#graph g.node')]"
        ".find((g) => g.querySelector('text').textContent.startsWith(arguments[0]));"
        "return n ? n.dataset.status : null",
        label,
    )
    return found


def test_runs_page_lists_filters_and_searches(dash: Dash, browser: Any) -> None:
    base = dash.read_only.base
    visit(browser, base + "/", "#runs tbody tr")
    rows = dict(
        browser.execute_script(
            "return [...document.querySelectorAll('#runs tbody tr')]"
            ".map((r) => [r.dataset.run, r.innerText])"
        )
    )
    assert {dash.ok, dash.failed, dash.hostile, dash.big, dash.held} <= set(rows)
    assert "6/6" in rows[dash.ok] and "6 succeeded" in rows[dash.ok]
    assert "failed" in rows[dash.failed] and "1 skipped" in rows[dash.failed]
    assert f"{BIG + 1}/{BIG + 1}" in rows[dash.big]
    assert "<script>document.title='pwned'</script>" in rows[dash.hostile]  # as text
    shot(browser, "runs")
    # The status filter is a plain GET form.
    browser.find_element(By().CSS_SELECTOR, "select[name=status] option[value=failed]").click()
    browser.find_element(By().CSS_SELECTOR, "form.filters button").click()
    until(browser, lambda: "status=failed" in browser.current_url, 10, "the filtered URL")
    until(browser, lambda: browser.find_elements(By().CSS_SELECTOR, "#runs tbody tr"), 10, "rows")
    ids = attributes(browser, "#runs tbody tr", "data-run")
    assert ids == [dash.failed]
    visit(browser, f"{base}/?q={dash.big[:5]}", "#runs tbody tr")
    ids = attributes(browser, "#runs tbody tr", "data-run")
    assert ids == [dash.big]
    assert browser.title != "pwned"
    no_alert(browser)


def test_run_page_shows_counts_graph_timeline_and_value(dash: Dash, browser: Any) -> None:
    visit(browser, f"{dash.read_only.base}/runs/{dash.ok}", "#job-table tbody tr")
    until(browser, lambda: browser.find_elements(By().CSS_SELECTOR, "#gantt rect"), 10, "timeline")
    assert text(browser, "#run-counts").startswith("6/6 done")
    assert text(browser, "#run-value") == "30"
    assert node_status(browser, "maker.square") == "succeeded"
    assert "5 succeeded" in browser.find_element(By().CSS_SELECTOR, "#graph").text
    assert len(browser.find_elements(By().CSS_SELECTOR, "#gantt g.lane rect")) == 6
    assert len(browser.find_elements(By().CSS_SELECTOR, "#job-table tbody tr")) == 6
    shot(browser, "run")
    visit(browser, f"{dash.read_only.base}/runs/{dash.failed}", "#job-table tbody tr")
    assert node_status(browser, "maker.explode") == "failed"
    assert node_status(browser, "maker.square") == "skipped"
    shot(browser, "run-failed")


def test_job_page_shows_traceback_pipeline_line_and_task_source(dash: Dash, browser: Any) -> None:
    visit(browser, f"{dash.read_only.base}/jobs/{dash.failed}/n1", "#traceback")
    assert "ValueError: refusing 3: <b>not bold</b>" in text(browser, "#traceback")
    # The message holds markup: shown as characters, not as a bold element.
    assert text(browser, "#failure") == "ValueError: refusing 3: <b>not bold</b>"
    assert not browser.find_elements(By().CSS_SELECTOR, "#failure b, #traceback b")
    hit = text(browser, "#pipeline-source div.hit")
    assert "bad = maker.explode(n)" in hit
    assert text(browser, "#origin").endswith("maker.explode(n)")
    assert "def explode(self, n: int) -> int:" in text(browser, "#task-source")
    assert "failed" in text(browser, "#attempts")
    shot(browser, "job-failed")
    fixed = put_fixed_revision(dash)
    browser.find_element(By().ID, "diff-revision").send_keys(fixed[:8])
    browser.find_element(By().XPATH, "//button[text()='Diff']").click()
    until(browser, lambda: browser.find_elements(By().CSS_SELECTOR, "#diff span.add"), 10, "diff")
    added = attributes(browser, "#diff span.add", "class")
    assert len(added) == 2  # the +++ header and the new line
    assert "+        return -n" in text(browser, "#diff")


def test_hostile_values_render_as_text(dash: Dash, browser: Any) -> None:
    visit(browser, f"{dash.read_only.base}/jobs/{dash.hostile}/n1", "#result")
    assert json.loads(text(browser, "#result")) == XSS  # the result's JSON, as text
    assert json.loads(text(browser, "#arguments")) == {"args": [XSS], "kwargs": {}}
    assert not browser.find_elements(By().CSS_SELECTOR, "main script, main img")
    time.sleep(0.3)  # an onerror handler would have run by now
    assert browser.title == "elfc"
    no_alert(browser)
    shot(browser, "job-hostile")


def test_paging_through_a_10000_job_run(dash: Dash, browser: Any) -> None:
    took = visit(browser, f"{dash.read_only.base}/runs/{dash.big}", "#job-table tbody tr")
    until(browser, lambda: browser.find_elements(By().CSS_SELECTOR, "#gantt rect"), 10, "timeline")
    assert took < 5, f"the first view of a {BIG}-job run took {took:.2f} s"
    assert text(browser, "#page-info").startswith(f"jobs 1\u2013100 of {BIG + 1}")

    def keys() -> list[str]:
        return attributes(browser, "#job-table tbody tr", "data-key")

    assert keys()[0] == "n1#0" and len(keys()) == 100
    shot(browser, "run-big")
    browser.find_element(By().ID, "next").click()
    until(browser, lambda: keys()[:1] == ["n1#100"], 10, "page 2")
    assert text(browser, "#page-info").startswith(f"jobs 101\u2013200 of {BIG + 1}")
    jump = browser.find_element(By().ID, "job-page")
    jump.clear()
    jump.send_keys(str(BIG // 100 + 1))
    browser.find_element(By().XPATH, "//button[text()='go']").click()
    until(browser, lambda: keys() == ["n2"], 10, "the last page")
    assert browser.find_element(By().ID, "next").get_attribute("disabled") is not None
    browser.find_element(By().ID, "prev").click()
    until(browser, lambda: keys()[:1] == [f"n1#{BIG - 100}"], 10, "the page before the last")
    browser.find_element(By().CSS_SELECTOR, "#job-status option[value=failed]").click()
    until(
        browser,
        lambda: text(browser, "#page-info").startswith("jobs 0\u20130 of 0"),
        10,
        "no failed",
    )


def test_cancel_button_only_with_allow_actions(dash: Dash, browser: Any) -> None:
    run = dash.submit("gated", "-a", f"gate={dash.folder / 'closed'}")
    visit(browser, f"{dash.read_only.base}/runs/{run}", "#job-table tbody tr")
    assert not browser.find_elements(By().CSS_SELECTOR, "button[data-action]")
    visit(browser, f"{dash.actions.base}/runs/{run}", "button[data-action=cancel]")
    shot(browser, "run-actions")
    browser.find_element(By().CSS_SELECTOR, "button[data-action=cancel]").click()
    until(browser, lambda: dash.status(run) == "cancelled", 10, "the run to be cancelled")
    until(browser, lambda: "cancelled" in text(browser, "#run-head h1"), 10, "the page to say so")


def test_live_run_graph_changes_within_2_s_of_its_job_finishing(dash: Dash, browser: Any) -> None:
    visit(browser, f"{dash.read_only.base}/runs/{dash.held}", "#job-table tbody tr")
    until(
        browser,
        lambda: "on" in browser.find_element(By().ID, "live").get_attribute("class"),
        10,
        "the stream",
    )
    assert node_status(browser, "holder.hold") == "running"
    shot(browser, "run-live")
    dash.gate.touch()
    status = until(
        browser,
        lambda: node_status(browser, "holder.hold") == "succeeded" and time.time(),
        10,
        "the graph to show hold succeeded",
    )
    with open_mycelium(dash.url) as store:
        [hold] = [j for j in store.list_jobs(dash.held) if j.task == "hold"]
    assert hold.finished is not None
    assert status - hold.finished <= 2.0, f"the page changed {status - hold.finished:.2f} s late"
    until(browser, lambda: text(browser, "#run-counts").startswith("2/2 done"), 10, "the end")
    assert text(browser, "#run-value") == f'"{dash.gate}"'


def test_failures_and_elves_pages(dash: Dash, browser: Any) -> None:
    visit(browser, f"{dash.read_only.base}/failures", "#failures tbody tr")
    row = text(browser, "#failures tbody tr")
    assert "ValueError: refusing 3: <b>not bold</b>" in row and "maker.explode" in row
    assert f"{dash.failed[:8]}/n1" in row
    shot(browser, "failures")
    browser.find_element(By().LINK_TEXT, f"{dash.failed[:8]}/n1").click()
    until(browser, lambda: browser.find_elements(By().ID, "traceback"), 10, "the job's page")
    assert text(browser, "h1").startswith("Job n1")
    visit(browser, f"{dash.read_only.base}/elves", "section[data-elf=maker] tr[data-worker]")
    section = text(browser, "section[data-elf=maker]")
    assert "1 live worker" in section and "Maker" in section and "live" in section
    shot(browser, "elves")
