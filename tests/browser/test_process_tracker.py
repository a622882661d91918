"""The process tracker in a real browser: launch an import, follow it live, read its results.

Everything goes through the example catalogue's pages as a person would use them; the job is
run by a real RQ worker. Waits use Playwright's auto-retrying ``expect`` and
``wait_for_function``; the only fixed pause is the one that proves nothing happens while the
auto-refresh is paused.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..support.browser import REFRESH_INTERVAL, REPO_ROOT, LiveApp

JOB_TIMEOUT_MS = 60_000  # each test starts with an idle worker (see conftest)
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
JOBS_JSON = re.compile(r"/jobmonitor/api/jobs\?ids=|/admin/jobs/rows\?")  # widget, list
NOTIFICATIONS_JSON = re.compile(r"/jobmonitor/api/notifications$")

pytestmark = pytest.mark.slow


# -- helpers -----------------------------------------------------------------------------------------


def products_csv(tag: str, rows: int = 150) -> tuple[bytes, dict[int, tuple[str, str]]]:
    """A products CSV of ``rows`` rows, some bad; returns it and {line: (sku, problem)} of the bad ones."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sku", "name", "price", "stock"])
    bad: dict[int, tuple[str, str]] = {}
    for number in range(1, rows + 1):
        line = number + 1  # the header is line 1
        sku, price = f"BRW-{tag}-{number:04d}", f"{number % 90 + 0.5:.2f}"
        if number % 15 == 0:
            sku = ""
            bad[line] = ("", "missing SKU")
        elif number % 22 == 0:
            price = "twelve"
            bad[line] = (sku, "price 'twelve' is not a number")
        writer.writerow([sku, f"Browser product {tag} {number}", price, number % 7])
    return out.getvalue().encode(), bad


def log_in(page: Page, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", username)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))


def start_import(page: Page, filename: str, data: bytes) -> str:
    """Upload ``data`` with the home page's "Import CSV" form; return the new job's id."""
    page.goto("/admin/")
    page.set_input_files('input[name="file"]', files=[{"name": filename, "mimeType": "text/csv", "buffer": data}])
    page.get_by_role("button", name="Import CSV").click()
    return _started_job_id(page, f"Import {filename}")


def _started_job_id(page: Page, job_name: str) -> str:
    flash = page.locator(".alert", has_text="started")
    expect(flash).to_contain_text(f"Job “{job_name}” started.")
    href = flash.get_by_role("link", name="Follow it").get_attribute("href")
    assert href is not None
    match = re.search(r"/admin/jobs/([0-9a-f-]{36})/$", href)
    assert match, href
    return match.group(1)


def job_row(page: Page, job_id: str) -> Any:
    return page.locator(f'#jm-list tr[data-job-id="{job_id}"]')


def count_requests(page: Page, pattern: re.Pattern[str]) -> list[tuple[float, str]]:
    """Every request of ``page`` whose URL matches, as (monotonic time, URL), from now on."""
    seen: list[tuple[float, str]] = []
    page.on(
        "request", lambda request: seen.append((time.monotonic(), request.url)) if pattern.search(request.url) else None
    )
    return seen


def hide_toasts(page: Page) -> None:
    """Hide the end-of-job pop-ups for a screenshot: through the CSSOM, which the pages' policy
    allows (a <style> tag it refuses)."""
    page.evaluate("document.querySelectorAll('.jm-toasts').forEach((el) => { el.style.display = 'none'; })")


def wait_for_detail_page_final(page: Page) -> None:
    """On a job's detail page: if the job was still active when the page was rendered, wait for the
    page to reload itself once the job has ended (that reload brings logs, subtasks and files)."""
    detail = page.locator("#jm-detail")
    if detail.get_attribute("data-jm-active") == "true":
        with page.expect_navigation(timeout=JOB_TIMEOUT_MS):
            pass
    expect(detail).to_have_attribute("data-jm-active", "false")


# -- tests -------------------------------------------------------------------------------------------


def test_import_progress_updates_in_place_until_completed(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    data, _bad = products_csv("a")
    job_id = start_import(page, "live-products.csv", data)

    json_requests = count_requests(page, JOBS_JSON)
    page.goto("/admin/jobs/")
    row = job_row(page, job_id)
    expect(row).to_be_visible()
    expect(row).to_contain_text("Import live-products.csv")
    assert row.get_attribute("data-jm-active") == "true", "a job started a moment ago is shown as active"

    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    # Record every state the row's progress shows, as the live refresh rewrites it in place.
    page.evaluate(
        """(jobId) => {
            window.__marker = "no reload since the list was opened";
            // the live refresh swaps the row for a fresh one rendered by the server: read the
            // row shown now, and watch the whole table
            const table = document.querySelector("#jm-list table.jm-table");
            const state = () => {
                const row = document.querySelector(`tr[data-job-id="${jobId}"]`);
                const bar = row.querySelector('[data-jm="bar"]');
                return {
                    width: bar.className.match(/jm-w-[0-9]+/)[0],
                    text: row.querySelector('[data-jm="progress-text"]').textContent,
                    status: row.querySelector('[data-jm="status-label"]').textContent,
                };
            };
            window.__states = [state()];
            new MutationObserver(() => {
                const now = state(), last = window.__states[window.__states.length - 1];
                if (now.width !== last.width || now.text !== last.text || now.status !== last.status) {
                    window.__states.push(now);
                }
            }).observe(table, {subtree: true, childList: true, characterData: true, attributes: true});
        }""",
        job_id,
    )
    # at least two progress changes while the job is not finished yet ...
    page.wait_for_function(
        """() => window.__states.filter((s, i) => i > 0 && s.status !== "Completed").length >= 2""",
        timeout=JOB_TIMEOUT_MS,
    )
    # ... then "Completed", in place
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    expect(row.locator('[data-jm="bar"]')).to_have_class(re.compile(r"\bjm-w-100\b"))
    expect(row.locator('[data-jm="progress-text"]')).to_contain_text("step 3/3")
    expect(row).to_have_attribute("data-jm-active", "false")
    expect(row).to_have_class(re.compile(r"\bjm-row-completed\b"))

    states = page.evaluate("window.__states")
    running = [s for s in states[1:] if s["status"] != "Completed"]
    assert len({(s["width"], s["text"]) for s in running}) >= 2, states
    assert page.evaluate("window.__marker") == "no reload since the list was opened"
    assert navigations == [], f"the list page navigated: {navigations}"
    assert json_requests, "the row was updated without a single JSON request?"


def test_detail_page_shows_steps_rejected_rows_and_error_report(new_page: Any, live_app: LiveApp) -> None:
    page = new_page(timezone_id="Asia/Tokyo")
    log_in(page, "clerk")
    data, bad = products_csv("b")
    job_id = start_import(page, "detail-products.csv", data)

    page.get_by_role("link", name="Follow it").click()
    expect(page).to_have_url(re.compile(rf"/admin/jobs/{job_id}/$"))
    wait_for_detail_page_final(page)

    expect(page.locator("#jm-detail h4")).to_contain_text("Import detail-products.csv")
    expect(page.locator('#jm-detail h4 [data-jm="status-label"]')).to_have_text("Completed")
    # times are shown in the zone the server picks for the viewer (the example's
    # JOBMONITOR_TIMEZONE: UTC), whatever the browser's own zone (Tokyo here), as the server
    # wrote them; tests/browser/test_time_zone.py sets another zone
    created = page.locator("table.jm-header tr", has_text="Created").locator("time")
    utc = created.get_attribute("data-utc")
    assert utc is not None
    expect(created).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))

    # three steps with their counters
    valid = 150 - len(bad)
    expect(page.get_by_role("heading", name="3 steps")).to_be_visible()
    steps = page.locator("table.jm-steps tbody tr")
    expect(steps).to_have_count(3)
    expected_steps = [
        ("Read file", "150/150", ["read: 150"]),
        ("Validate rows", "150/150", [f"valid: {valid}", f"rejected: {len(bad)}"]),
        ("Save products", f"{valid}/{valid}", [f"created: {valid}"]),
    ]
    for index, (name, progress, counters) in enumerate(expected_steps):
        step = steps.nth(index)
        expect(step).to_contain_text(name)
        expect(step.locator('[data-jm="step-status"]')).to_have_text("Completed")  # capitalised like the job badges
        expect(step.locator('[data-jm="step-progress"]')).to_have_text(progress)
        for counter in counters:
            expect(step.locator('[data-jm="step-counters"]')).to_contain_text(counter)
    expect(page.locator('[data-jm="counts"]')).to_have_text(f"{len(bad)} / 0")
    expect(page.locator("table.jm-logs")).to_contain_text(f"{valid} products saved, {len(bad)} rows rejected")

    # the rejected rows in the subtasks grid, filtered to errors
    page.locator("a.btn", has_text=re.compile(r"^error$")).click()
    expect(page).to_have_url(re.compile(r"subtask_status=error"))
    grid = page.locator("table.jm-subtasks tbody tr")
    expect(grid).to_have_count(len(bad))
    for line, (_sku, problem) in bad.items():
        expect(page.locator("table.jm-subtasks tr", has_text=f"line {line}").first).to_contain_text(problem)

    # the error report, downloaded through the browser
    link = page.locator('a[data-jm-file-kind="error_report"]')
    expect(link).to_have_text("rejected-rows.csv")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "rejected-rows.csv"
    report = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert report[0] == ["line", "sku", "problem"]
    assert {int(line): (sku, problem) for line, sku, problem in report[1:]} == bad
    assert len(report) == len(bad) + 1


def test_pause_stops_the_live_refresh_and_refresh_asks_once(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    data, _bad = products_csv("c", rows=300)  # long enough to still run while the refresh is paused
    job_id = start_import(page, "paused-refresh.csv", data)
    json_requests = count_requests(page, JOBS_JSON)
    page.goto("/admin/jobs/")
    row = job_row(page, job_id)
    progress = row.locator('[data-jm="progress-text"]')
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    expect(progress).to_contain_text("step 2/3", timeout=JOB_TIMEOUT_MS)
    # the list asks every JOBMONITOR_REFRESH_INTERVAL seconds (not at the navbar bell's slower pace)
    for _ in range(3):
        with page.expect_request(JOBS_JSON, timeout=5_000):
            pass
    times = [at for at, _url in json_requests[-3:]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap < 1.6 * REFRESH_INTERVAL for gap in gaps), f"refresh every {gaps} s, not {REFRESH_INTERVAL} s"

    toggle = page.locator('[data-jm-action="toggle-auto"]')
    expect(toggle).to_have_text(re.compile(r"Pause auto-refresh"))
    toggle.click()
    expect(toggle).to_have_text(re.compile(r"Resume auto-refresh"))
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("localStorage.getItem('jobmonitor.autoRefresh')") == "off"
    paused_at = len(json_requests)  # the click is handled before any later timer tick
    page.wait_for_timeout(1000 * REFRESH_INTERVAL)  # an answer already on its way may still land
    shown = (progress.text_content(), row.locator('[data-jm="bar"]').get_attribute("class"))
    page.wait_for_timeout(2500 * REFRESH_INTERVAL)  # three intervals and a half in all: nothing may happen
    assert len(json_requests) == paused_at, json_requests[paused_at:]
    assert (progress.text_content(), row.locator('[data-jm="bar"]').get_attribute("class")) == shown

    with page.expect_request(JOBS_JSON) as request_info:
        page.locator('[data-jm-action="refresh"]').click()
    assert job_id in request_info.value.url
    expect(progress).not_to_have_text(shown[0] or "")  # the job moved on while the page was paused
    assert len(json_requests) == paused_at + 1, json_requests[paused_at:]

    # resuming brings the automatic refresh back
    toggle.click()
    expect(toggle).to_have_text(re.compile(r"Pause auto-refresh"))
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    assert len(json_requests) > paused_at + 1


def set_tab_hidden(page: Page, hidden: bool) -> None:
    """Make the page believe its tab went to the background (or came back), as the browser
    tells it: ``document.hidden`` and a ``visibilitychange`` event."""
    page.evaluate(
        """(hidden) => {
            Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
            const state = hidden ? "hidden" : "visible";
            Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_a_hidden_tab_asks_nothing_and_catches_up_when_shown_again(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    data, _bad = products_csv("h", rows=300)  # still running while the tab is hidden
    job_id = start_import(page, "hidden-tab.csv", data)
    page.goto("/admin/jobs/")
    row = job_row(page, job_id)
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    polls = count_requests(page, re.compile(f"{JOBS_JSON.pattern}|{NOTIFICATIONS_JSON.pattern}"))
    for pattern in (JOBS_JSON, NOTIFICATIONS_JSON):  # both poll while the tab is in front
        with page.expect_request(pattern, timeout=5_000):
            pass

    set_tab_hidden(page, True)
    page.wait_for_timeout(1000 * REFRESH_INTERVAL)  # an answer already on its way may still land
    settled = len(polls)
    # the list asks every interval, the bell every two: three intervals would hold both, twice
    page.wait_for_timeout(3000 * REFRESH_INTERVAL)
    assert polls[settled:] == []

    with page.expect_request(JOBS_JSON, timeout=2_000), page.expect_request(NOTIFICATIONS_JSON, timeout=2_000):
        set_tab_hidden(page, False)  # no waiting for the next tick: both ask at once
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)


def open_bell_menu(page: Any) -> None:
    """Open the notification menu. Bootstrap's dropdown script binds the bell when the page has
    loaded: on a busy machine a click can come first and do nothing, so wait for the load and
    click again if the menu did not open."""
    page.wait_for_load_state("load")
    menu = page.locator(".jm-notification-menu")
    for _attempt in range(3):
        page.locator("#jm-bell").click()
        try:
            expect(menu).to_be_visible(timeout=3000)
            return
        except AssertionError:
            continue
    expect(menu).to_be_visible()


def test_toast_and_bell_badge_tell_the_clerk_the_job_completed(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    bell = page.locator("#jm-bell")
    badge = bell.locator('[data-jm="unread"]')
    # start from no unread notifications (earlier tests' jobs left some)
    open_bell_menu(page)
    page.get_by_role("button", name="Mark all as read").click()
    expect(badge).to_be_hidden()

    data, _bad = products_csv("d", rows=60)
    job_id = start_import(page, "toast-products.csv", data)
    toast = page.locator(".jm-toasts .toast", has_text="Import toast-products.csv")
    expect(toast).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(toast.locator(".toast-header")).to_have_text("Completed")  # the status's label
    expect(toast.get_by_role("link", name="Import toast-products.csv")).to_have_attribute(
        "href", f"/admin/jobs/{job_id}/"
    )
    expect(badge).to_be_visible()
    expect(badge).to_have_text(re.compile(r"^[1-9]\d*$"))
    open_bell_menu(page)
    expect(page.locator(".jm-notification-menu")).to_contain_text("Import toast-products.csv: Completed")
    # the "My jobs" widget on the same page followed the job too
    widget_item = page.locator(f'.jm-widget [data-job-id="{job_id}"]')
    expect(widget_item.locator('[data-jm="status-label"]')).to_have_text("Completed")


def test_a_clerk_cannot_see_the_managers_job(new_page: Any, live_app: LiveApp) -> None:
    manager = new_page()
    log_in(manager, "manager")
    manager.get_by_role("button", name="Export all products").click()
    job_id = _started_job_id(manager, "Export all products")
    response = manager.goto(f"/admin/jobs/{job_id}/")
    assert response is not None and response.status == 200

    clerk = new_page()
    log_in(clerk, "clerk")
    response = clerk.goto(f"/admin/jobs/{job_id}/")
    assert response is not None and response.status == 404
    expect(clerk.locator("body")).to_contain_text("Job not found")
    expect(clerk.locator("body")).not_to_contain_text("Export all products")

    clerk.goto("/admin/jobs/")
    expect(clerk.locator("#jm-list table.jm-table")).to_be_visible()
    expect(job_row(clerk, job_id)).to_have_count(0)
    expect(clerk.locator("#jm-list")).not_to_contain_text("Export all products")
    clerk.goto(f"/admin/jobs/?q={job_id}")
    expect(clerk.locator("#jm-list tbody")).to_contain_text("No jobs match these filters")

    api = clerk.request.get(f"/jobmonitor/api/jobs/{job_id}")
    assert api.status == 404
    assert clerk.request.get(f"/jobmonitor/api/jobs?ids={job_id}").json()["jobs"] == []


def test_screenshots_of_the_list_and_the_detail_page(new_page: Any, live_app: LiveApp) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(timezone_id="Europe/Paris")
    log_in(page, "admin")
    page.get_by_role("button", name="Stock report").click()  # one more finished job, of another type
    report_id = _started_job_id(page, "Stock report")
    live_app.wait_until_idle()
    data, _bad = products_csv("shot", rows=200)
    job_id = start_import(page, "products-2026-05.csv", data)
    page.goto("/admin/jobs/")
    row = job_row(page, job_id)
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    expect(row.locator('[data-jm="progress-text"]')).to_have_text(re.compile(r"step 2/3 · [1-9]\d*/200"))
    expect(job_row(page, report_id).locator('[data-jm="status-label"]')).to_have_text("Completed")
    page.mouse.move(0, 0)
    hide_toasts(page)  # an earlier test's toast may still show
    page.screenshot(path=str(SCREENSHOTS / "process-tracker-list.png"))

    page.goto(f"/admin/jobs/{job_id}/")
    wait_for_detail_page_final(page)
    expect(page.locator('#jm-detail h4 [data-jm="status-label"]')).to_have_text("Completed")
    hide_toasts(page)  # a "Job completed" toast may cover the buttons
    page.screenshot(path=str(SCREENSHOTS / "job-detail.png"))
