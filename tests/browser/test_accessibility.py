"""Every job page passes axe-core, as an admin and as a clerk who sees only their own jobs.

axe-core (``tests/support/browser.py``: :func:`accessibility_report`) runs in the real browser
on each page as a person finds it: the job list with its filters, a running, a failed and a
completed job's page (steps, log, files), a family's page with its children, "My jobs", the
example's home page with its "My jobs" widget, the statistics with their charts, the queue
health, the notifications menu open, the "not found" page of an unknown job; and once more
after the live refresh has changed a page (a job that moved from running to completed). Every
page's serious and critical violations are collected and the test fails naming each page, rule
and element.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..support.browser import LiveApp, accessibility_report, assert_accessible
from .test_process_tracker import (
    JOB_TIMEOUT_MS,
    _started_job_id,
    job_row,
    log_in,
    open_bell_menu,
    products_csv,
    start_import,
    wait_for_detail_page_final,
)

pytestmark = pytest.mark.slow

#: What the extension puts on a host's own page: the widget, the bell and its pop-ups.
HOST_PAGE_PARTS = [".jm-widget", ".jm-notifications", ".jm-toasts"]
UNKNOWN_JOB = "/admin/jobs/00000000-0000-0000-0000-000000000000/"


class Audit:
    """The axe reports of the pages visited, by page."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.reports: list[str] = []

    def check(self, page: Page, what: str, include: list[str] | None = None) -> None:
        report = accessibility_report(page, f"{what} ({self.who})", include)
        if report:
            self.reports.append(report)

    def visit(self, page: Page, path: str, what: str, status: int = 200, include: list[str] | None = None) -> None:
        response = page.goto(path)
        assert response is not None and response.status == status, (path, response and response.status)
        page.wait_for_load_state("load")
        self.check(page, what, include)

    def assert_clean(self) -> None:
        assert not self.reports, "\n\n".join(self.reports)


def ended_job(page: Page, job_id: str) -> None:
    """Open the job's page once the job has ended (the page's own reload at its end included)."""
    page.goto(f"/admin/jobs/{job_id}/")
    wait_for_detail_page_final(page)
    page.wait_for_load_state("load")


def ended_import(page: Page, tag: str, rows: int) -> str:
    """Import ``rows`` products (some rejected) as ``tag``.csv, open the job's page once it has
    ended, and return its id."""
    data, _bad = products_csv(tag, rows=rows)
    job_id = start_import(page, f"{tag}.csv", data)
    ended_job(page, job_id)
    return job_id


def running_import(page: Page, audit: Audit, tag: str) -> str:
    """Start a long import (it holds the worker while the pages are audited), audit its page
    while it runs, and return its id."""
    long_data, _bad = products_csv(f"a11y-{tag}-long", rows=3000)
    running = start_import(page, f"a11y-{tag}-long.csv", long_data)
    page.goto(f"/admin/jobs/{running}/")
    expect(page.locator('#jm-detail h4 [data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    audit.check(page, "running job")
    return running


def test_every_page_passes_axe_for_the_admin(new_page: Any, live_app: LiveApp) -> None:
    audit = Audit("admin")
    page = new_page()
    log_in(page, "admin")

    # a completed import with rejected rows (steps, log, an error report), a failed one, a family
    data, _bad = products_csv("a11y-admin", rows=90)
    completed = start_import(page, "a11y-admin.csv", data)
    failed = start_import(page, "a11y-no-price.csv", b"sku,name\nNP-1,No price\n")
    page.goto("/admin/")
    page.get_by_role("button", name="Apply pricing rules (child jobs)").click()
    family = _started_job_id(page, "Apply pricing rules")
    ended_job(page, completed)
    audit.check(page, "completed job with steps, log and files")
    ended_job(page, failed)
    audit.check(page, "failed job")
    ended_job(page, family)
    expect(page.locator("#children")).to_be_visible()
    audit.check(page, "family with children")

    # a long import holds the worker: the pages while it runs
    running = running_import(page, audit, "admin")
    audit.visit(page, "/admin/", "the My jobs widget on the home page", include=HOST_PAGE_PARTS)
    audit.visit(page, "/admin/jobs/", "job list")
    filters = "q=a11y&status=completed&from=2020-01-01&to=2099-12-31&children=1"
    audit.visit(page, f"/admin/jobs/?{filters}", "filtered job list")
    audit.visit(page, "/admin/jobs/?user_name=nobody&user=nobody", "job list of an unknown user", status=400)
    audit.visit(page, "/admin/my-jobs/", "My jobs")
    audit.visit(page, "/admin/job-statistics/", "statistics")
    audit.visit(page, "/admin/job-statistics/?granularity=hour", "statistics per hour")
    audit.visit(page, "/admin/queues/", "queue health")
    audit.visit(page, "/admin/job-audit/", "audit trail")
    audit.visit(page, "/admin/job-audit/?action=x", "audit trail with a refused filter", status=400)
    audit.visit(page, "/admin/job-schedules/", "schedules")
    open_bell_menu(page)
    audit.check(page, "notifications menu open")
    audit.visit(page, UNKNOWN_JOB, "unknown job", status=404)

    page.once("dialog", lambda dialog: dialog.accept())
    page.goto(f"/admin/jobs/{running}/")
    page.locator('#jm-detail [data-jm="actions"] [data-jm-action-button="stop"]').click()
    expect(page.locator('#jm-detail h4 [data-jm="status-label"]')).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    audit.check(page, "stopped job")
    audit.assert_clean()


def test_every_page_passes_axe_for_a_clerk(new_page: Any, live_app: LiveApp) -> None:
    audit = Audit("clerk, own jobs only")
    page = new_page()
    log_in(page, "clerk")
    ended_import(page, "a11y-clerk", rows=90)
    audit.check(page, "completed job")
    running = running_import(page, audit, "clerk")
    audit.visit(page, "/admin/", "the My jobs widget on the home page", include=HOST_PAGE_PARTS)
    audit.visit(page, "/admin/jobs/", "job list")
    audit.visit(page, "/admin/jobs/?status=running&from=2020-01-01", "filtered job list")
    audit.visit(page, "/admin/my-jobs/", "My jobs")
    open_bell_menu(page)
    audit.check(page, "notifications menu open")
    audit.visit(page, "/admin/job-statistics/", "statistics (refused)", status=403)
    audit.visit(page, "/admin/job-audit/", "audit trail (refused)", status=403)
    audit.visit(page, "/admin/job-schedules/", "schedules (refused)", status=403)
    audit.visit(page, UNKNOWN_JOB, "unknown job", status=404)
    page.once("dialog", lambda dialog: dialog.accept())
    page.goto("/admin/jobs/")
    job_row(page, running).locator('[data-jm-action-button="stop"]').click()
    expect(job_row(page, running).locator('[data-jm="status-label"]')).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    audit.assert_clean()


# -- beyond axe: what a person using a keyboard or a screen reader meets ---------------------------


def tab_to(page: Page, target: Any, backwards: bool = False, presses: int = 200) -> None:
    """Press Tab (Shift+Tab) until ``target`` has the keyboard focus; fail if it never gets it."""
    for _press in range(presses):  # the element is looked up each time: the live refresh swaps rows
        if target.evaluate("(element) => document.activeElement === element"):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    pytest.fail(f"{target} never got the focus in {presses} presses of {'Shift+Tab' if backwards else 'Tab'}")


def test_the_lists_filters_are_labelled_and_used_by_keyboard(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "admin")
    page.goto("/admin/jobs/")
    # the labels name their inputs (a click on "From" goes to its field; a screen reader reads it)
    page.get_by_label("From", exact=True).fill("2020-01-02")
    page.get_by_label("to", exact=True).fill("2099-12-30")
    page.get_by_label("to", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(r"from=2020-01-02&to=2099-12-30"))
    for name in ["Search", "Type", "Status", "Status group", "Run by", "Page size", "Show child jobs"]:
        expect(page.get_by_label(name, exact=True)).to_have_count(1)
    page.goto("/admin/job-statistics/")
    expect(page.get_by_label("From", exact=True)).to_have_attribute("type", "date")
    expect(page.get_by_label("to", exact=True)).to_have_attribute("type", "date")


def test_status_is_told_in_words_and_progress_bars_and_charts_have_text(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    job_id = ended_import(page, "a11y-words", rows=60)
    page.goto("/admin/jobs/")
    row = job_row(page, job_id)
    # the badge says the status in words, with an icon; its colour is not the only sign
    badge = row.locator('[data-jm="status"]')
    expect(badge.locator('[data-jm="status-label"]')).to_have_text("Completed")
    expect(badge.locator("i.fa")).to_have_attribute("aria-hidden", "true")
    # the bar has a name and a value a screen reader reads
    bar = row.get_by_role("progressbar", name="Progress of Import a11y-words.csv")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    # charts: an image with a name, and their figures in a table
    admin = new_page()
    log_in(admin, "admin")
    admin.goto("/admin/job-statistics/")
    for title in ["Jobs created", "Waiting time", "Duration"]:
        heading = admin.get_by_role("heading", name=title)
        column = heading.locator("xpath=..")
        expect(column.get_by_role("img")).to_have_count(1)
        expect(column.get_by_role("table").locator("th").first).to_be_visible()
    admin.goto("/admin/queues/")
    column = admin.get_by_role("heading", name="Throughput").locator("xpath=..")
    expect(column.get_by_role("img")).to_have_count(1)
    column.get_by_text("The chart's figures").click()
    expect(column.get_by_role("table")).to_contain_text("Jobs ended")
    # the minute in the viewer's zone with its abbreviation, then the count
    expect(column.get_by_role("table").locator("tbody tr").first).to_have_text(
        re.compile(r"^\d\d:\d\d [A-Z+\d-]+\s*\d+$")
    )


def test_the_message_after_an_action_passes_axe_and_closes_by_keyboard(new_page: Any, live_app: LiveApp) -> None:
    """Flask-Admin writes its flash messages' close button aria-hidden: the page script names it
    (seen failing with axe's aria-hidden-focus without it)."""
    page = new_page()
    log_in(page, "admin")
    job_id = ended_import(page, "a11y-flash", rows=10)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('#jm-detail [data-jm="actions"] [data-jm-action-button="delete"]').click()
    alert = page.locator(".alert", has_text="deleted")
    expect(alert).to_be_visible()
    assert_accessible(page, "the message after deleting a job", include=[".alert"])
    close = alert.get_by_role("button", name="Close")
    expect(close).not_to_have_attribute("aria-hidden", "true")
    close.focus()
    page.keyboard.press("Enter")
    expect(alert).to_have_count(0)
    expect(page.locator(f'#jm-list tr[data-job-id="{job_id}"]')).to_have_count(0)


def test_bulk_selection_actions_and_the_bell_work_by_keyboard(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "admin")
    job_id = ended_import(page, "a11y-keys", rows=30)
    page.goto("/admin/jobs/?q=a11y-keys")
    page.locator("body").click(position={"x": 5, "y": 300})  # start from the page, not the address bar
    row = job_row(page, job_id)
    box = row.locator('input[name="ids"]')

    # Tab to the job's tick box, Space ticks it
    tab_to(page, box)
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    # back to the action menu, the arrow keys choose "Delete"
    action = page.locator("#jm-bulk-action")
    tab_to(page, action, backwards=True)
    for _press in range(10):
        if action.input_value() == "delete":
            break
        page.keyboard.press("ArrowDown")
    expect(action).to_have_value("delete")
    # Tab to "Apply to selected", Enter: the confirm question; dismissed, nothing happens
    apply = page.get_by_role("button", name="Apply to selected")
    tab_to(page, apply)
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.keyboard.press("Enter")
    expect(row).to_be_visible()
    assert questions == ["Apply this action to the selected jobs?"]
    # accepted, the job is deleted
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    page.keyboard.press("Enter")
    expect(page.locator(".alert")).to_contain_text("1 deleted")
    expect(job_row(page, job_id)).to_have_count(0)

    # the bell opens with Enter or Space and closes with Escape; the pause toggle takes Space
    bell = page.locator("#jm-bell")
    page.wait_for_load_state("load")
    tab_to(page, bell, backwards=True)
    page.keyboard.press("Enter")
    expect(page.locator(".jm-notification-menu")).to_be_visible()
    expect(bell).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")  # into the menu
    expect(page.locator(".jm-notification-menu")).to_be_visible()
    page.keyboard.press("Escape")  # closed, the focus back on the bell
    expect(page.locator(".jm-notification-menu")).to_be_hidden()
    expect(bell).to_be_focused()
    expect(bell).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Space")  # a role="button" opens with Space too
    expect(page.locator(".jm-notification-menu")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator(".jm-notification-menu")).to_be_hidden()
    toggle = page.locator('[data-jm-action="toggle-auto"]')
    tab_to(page, toggle)
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-pressed", "true")


def test_the_focus_stays_through_live_refreshes_and_a_jobs_end_is_announced(new_page: Any, live_app: LiveApp) -> None:
    audit = Audit("clerk, after a live refresh")
    home, listing, detail = new_page(), new_page(), new_page()
    for page in (home, listing, detail):
        log_in(page, "clerk")
    data, _bad = products_csv("a11y-live", rows=1200)
    job_id = start_import(home, "a11y-live.csv", data)
    listing.goto("/admin/jobs/")
    detail.goto(f"/admin/jobs/{job_id}/")
    row = job_row(listing, job_id)
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)

    # the keyboard is on the row's Stop: the row is swapped for fresh ones as the import goes on,
    # and the fresh Stop has the focus each time
    stop = row.locator('[data-jm-action-button="stop"]')
    listing.locator("body").click(position={"x": 5, "y": 300})
    tab_to(listing, stop)
    first = row.locator('[data-jm="progress-text"]').inner_text()
    listing.evaluate(f"""() => {{ document.querySelector('#jm-list tr[data-job-id="{job_id}"]').jmOld = true; }}""")
    listing.wait_for_function(
        """([id, first]) => {
            const row = document.querySelector(`#jm-list tr[data-job-id="${id}"]`);
            return !row.jmOld && row.querySelector('[data-jm="progress-text"]').textContent !== first;
        }""",
        arg=[job_id, first],
        timeout=JOB_TIMEOUT_MS,
    )
    if row.locator('[data-jm="status-label"]').inner_text() == "Running":
        expect(stop).to_be_focused()
        # Enter on it asks first; the question dismissed (Escape), the job runs on
        questions: list[str] = []
        listing.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
        listing.keyboard.press("Enter")
        listing.wait_for_function("() => true")  # the dialog was answered (dialogs block the page)
        assert questions and questions[0].startswith("Stop this job"), questions
        expect(stop).to_be_focused()

    # it ends: each page says so in its live region (the detail page after its own reload) ...
    said = "Import a11y-live.csv: Completed"
    for page in (listing, home, detail):
        expect(page.locator('[data-jm="announcer"]')).to_have_text(said, timeout=JOB_TIMEOUT_MS)
        expect(page.locator('[data-jm="announcer"]')).to_have_attribute("aria-live", "polite")
    # ... the list's keyboard focus is on the row still (its Stop is gone: on its tick box) ...
    expect(row.locator('input[name="ids"]')).to_be_focused()
    # ... and the pages, changed by the live refresh, still pass axe
    audit.check(listing, "job list after the job ended")
    audit.check(home, "the My jobs widget after the job ended", include=HOST_PAGE_PARTS)
    audit.check(detail, "job page after the job ended")
    audit.assert_clean()
