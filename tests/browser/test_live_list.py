"""The job list as people keep it open: it follows the jobs live, rows, buttons and all.

A clerk, a manager and an admin act in their own browser contexts while a real RQ worker runs
the example catalogue's jobs. The worker runs one job at a time, which is the condition these
tests control: a long import holds the worker, so the next job stays queued until the clerk
stops the first one from the list. Every wait is Playwright's ``expect`` on what the page
shows; nothing here assumes how fast the machine is.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from flask_jobmonitor.records.models import job_table

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, job_row, log_in, open_bell_menu, products_csv, start_import

pytestmark = pytest.mark.slow


def buttons(page: Page, job_id: str) -> Any:
    return job_row(page, job_id).locator("[data-jm-action-button]")


def button_names(page: Page, job_id: str) -> list[str]:
    return [name or "" for name in (b.get_attribute("data-jm-action-button") for b in buttons(page, job_id).all())]


def test_a_rows_buttons_follow_its_job_from_queued_to_running_to_completed(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    long_data, _bad = products_csv("hold", rows=3000)  # holds the worker until it is stopped
    holder = start_import(page, "holds-the-worker.csv", long_data)
    data, _bad = products_csv("next", rows=600)  # runs long enough for a few refreshes
    waiting = start_import(page, "waits-its-turn.csv", data)

    page.goto("/admin/jobs/")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    expect(job_row(page, holder).locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    row = job_row(page, waiting)
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Queued")
    expect(row.locator('[data-jm-action-button="cancel"]')).to_be_visible()
    expect(row.locator('[data-jm-action-button="stop"]')).to_have_count(0)

    # the clerk stops the job that holds the worker: the queued one starts ...
    page.once("dialog", lambda dialog: dialog.accept())
    job_row(page, holder).locator('[data-jm-action-button="stop"]').click()
    expect(job_row(page, holder).locator('[data-jm="status-label"]')).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    navigations.clear()  # the Stop button's own form post reloads the list once
    # the person ticks the queued job for a bulk action: the live refresh must keep the tick
    row.locator('input[name="ids"]').check()
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    # ... and its row gains Stop without a reload (it used to keep only Cancel)
    expect(row.locator('[data-jm-action-button="stop"]')).to_be_visible()
    expect(row.locator('[data-jm-action-button="cancel"]')).to_have_count(0)
    expect(row.locator('input[name="ids"]')).to_be_checked()
    # the row is swapped for a fresh one at least once more: the tick and the focus stay
    box = f'#jm-list tr[data-job-id="{waiting}"] input[name="ids"]'
    page.evaluate("(box) => { document.querySelector(box).jmOld = true; }", box)
    page.wait_for_function("(box) => !document.querySelector(box).jmOld", arg=box, timeout=JOB_TIMEOUT_MS)
    expect(row.locator('input[name="ids"]')).to_be_checked()
    expect(row.locator('input[name="ids"]')).to_be_focused()
    # completed: Stop and Force stop go, "Submit again" comes
    expect(row.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    expect(row.locator('[data-jm-action-button="stop"]')).to_have_count(0)
    expect(row.locator('[data-jm-action-button="force_stop"]')).to_have_count(0)
    expect(row.locator('[data-jm-action-button="restart"]')).to_be_visible()
    # its result: the report of the rows it rejected, one click from the row
    expect(row.locator('[data-jm="result"] a')).to_have_attribute("data-jm-result", "error_report")
    assert navigations == [], f"the list reloaded itself: {navigations}"
    # the stopped holder offers what a stopped job allows, no Stop
    assert "stop" not in button_names(page, holder)


def test_a_job_started_in_another_session_appears_in_an_open_list(new_page: Any, live_app: LiveApp) -> None:
    admin = new_page()
    log_in(admin, "admin")
    admin.goto("/admin/jobs/")
    expect(admin.locator("#jm-list table.jm-table")).to_be_visible()
    bar = admin.locator('[data-jm="new-jobs"]')
    expect(bar).to_be_hidden()

    clerk = new_page()
    log_in(clerk, "clerk")
    data, _bad = products_csv("other", rows=30)
    first = start_import(clerk, "from-another-session.csv", data)

    # the open list announces it without moving rows under the admin's pointer ...
    expect(bar).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(bar).to_contain_text("1 new job")
    expect(job_row(admin, first)).to_have_count(0)
    bar.get_by_role("button").click()
    # ... and a click puts it on top, rendered like every other row (buttons, user, progress)
    expect(admin.locator("#jm-list tbody tr").first).to_have_attribute("data-job-id", first)
    expect(job_row(admin, first)).to_contain_text("Import from-another-session.csv")
    expect(job_row(admin, first)).to_contain_text("Chris Clerk")
    expect(bar).to_be_hidden()
    expect(job_row(admin, first).locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)

    # Refresh shows the new jobs at once
    admin.locator('[data-jm-action="toggle-auto"]').click()  # paused: only Refresh may bring it
    second = start_import(clerk, "refresh-brings-it.csv", data)
    expect(job_row(admin, second)).to_have_count(0)
    admin.locator('[data-jm-action="refresh"]').click()
    expect(job_row(admin, second)).to_be_visible()
    expect(admin.locator("#jm-list tbody tr").first).to_have_attribute("data-job-id", second)
    assert admin.locator(f'#jm-list tr[data-job-id="{first}"]').count() == 1  # no row twice
    admin.locator('[data-jm-action="toggle-auto"]').click()


def test_a_family_is_one_row_that_opens_onto_its_children(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "manager")
    page.goto("/admin/")
    page.get_by_role("button", name="Apply pricing rules (child jobs)").click()
    link = page.locator(".alert", has_text="started").get_by_role("link", name="Follow it").get_attribute("href")
    match = re.search(r"/admin/jobs/([0-9a-f-]{36})/$", link or "")
    assert match, link
    parent = match.group(1)
    live_app.wait_until_idle()

    page.goto("/admin/jobs/")
    row = job_row(page, parent)
    toggle = row.locator("[data-jm-family]")
    expect(toggle).to_contain_text(re.compile(r"(\d+)/\1 children done"))
    total = int(re.search(r"/(\d+) children", toggle.text_content() or "").group(1))  # type: ignore[union-attr]
    assert total > 1
    expect(row.locator('[data-jm="bar"]')).to_have_class(re.compile(r"\bjm-w-100\b"))
    # no child at the top level
    expect(page.locator("#jm-list tbody tr.jm-child-row")).to_have_count(0)

    toggle.click()
    children = page.locator(f'#jm-list tr[data-jm-expanded-from="{parent}"]')
    expect(children).to_have_count(total)
    expect(children.first).to_contain_text("Pricing rules, chunk")
    # right under their parent, in the same table
    assert page.evaluate(
        """(id) => { const row = document.querySelector(`tr[data-job-id="${id}"]`);
                     return row.nextElementSibling.getAttribute("data-jm-expanded-from") === id; }""",
        parent,
    )
    toggle = row.locator("[data-jm-family]")
    toggle.click()
    expect(children).to_have_count(0)

    # "Show child jobs" lists them at the top level as well
    page.get_by_label("Show child jobs").check()
    page.locator("form.jm-filters button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"children=1"))
    expect(page.locator(f'#jm-list tbody tr.jm-child-row[data-jm-child-of="{parent}"]').first).to_be_visible()
    # all on one page, as many as the toggle counted (one per chunk of the catalogue's products)
    page.goto("/admin/jobs/?children=1&per_page=200")
    expect(page.locator(f'#jm-list tbody tr.jm-child-row[data-jm-child-of="{parent}"]')).to_have_count(total)


def seed_long_jobs(live_app: LiveApp, tag: str) -> None:
    """Jobs with long names and descriptions, run by several people, of every kind of row."""
    from example_app.extensions import db

    base = datetime(2026, 1, 5, 9, 0)
    rows = []
    for n in range(30):
        status = ("completed", "failed", "stopped", "running", "queued", "cancelled")[n % 6]
        started = None if status in ("queued", "cancelled") else base + timedelta(minutes=n, seconds=5)
        rows.append(
            {
                "id": f"{tag}{n:04d}".ljust(36, "0")[:36],
                "name": f"Import supplier price list {tag} number {n} for the spring catalogue with many variants.csv",
                "description": "A very long description that goes on about the supplier and the season " * 2,
                "type": "import",
                "category": "import",
                "task": "example_app.tasks.import_products",
                "params": {},
                "status": status,
                "is_system": False,
                "queue_name": "default",
                "run_by_id": str(1 + n % 3),
                "run_by_name": ("Adelheid Administratorin-Longname", "Maximilian Manager", "Clara Clerk")[n % 3],
                "created_at": base + timedelta(minutes=n),
                "started_at": started,
                "ended_at": started + timedelta(minutes=3) if started and status not in ("running",) else None,
                "status_changed_at": base + timedelta(minutes=n),
                "error_count": n * 37,
                "warning_count": n * 11,
                "progress_done": n * 1000,
                "progress_total": 40000,
                "step_count": 3,
                "current_step": 2,
            }
        )
    with live_app.app.app_context(), db.engine.begin() as connection:
        connection.execute(job_table.insert(), rows)


def remove_seeded(live_app: LiveApp, tag: str) -> None:
    from example_app.extensions import db

    with live_app.app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.delete(job_table).where(job_table.c.id.like(f"{tag}%")))


def test_the_list_fits_1280_pixels_without_scrolling_sideways(new_page: Any, live_app: LiveApp) -> None:
    tag = "ffff0"  # ids of hex digits only, as job ids are: the live refresh asks for them
    seed_long_jobs(live_app, tag)
    try:
        page = new_page()
        page.set_viewport_size({"width": 1280, "height": 900})
        log_in(page, "admin")
        page.goto("/admin/jobs/?q=supplier")
        expect(page.locator(f'#jm-list tbody tr[data-job-id^="{tag}"]')).to_have_count(30)
        expect(page.locator("#jm-list thead")).to_contain_text("Run by")  # the admin's widest view
        overflow = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
        assert overflow[0] <= overflow[1], f"the page scrolls sideways: {overflow}"
        # every row's last button is on screen, names take at most two lines, times one
        row = page.locator(f'#jm-list tbody tr[data-job-id^="{tag}"]').first
        box = row.locator("[data-jm-action-button]").last.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280
        name = row.locator(".jm-name")
        lines = page.evaluate(
            "(el) => Math.round(el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight))",
            name.element_handle(),
        )
        assert lines <= 2, lines
        created = row.locator("time[data-jm-ago]").first
        # a relative time in any of its units (these jobs were created in January 2026: "10 mo. ago"
        # in November, "1 yr. ago" from January 2027)
        expect(created).to_have_text(re.compile(r"^(\d+ (sec|min|hr|wk|mo|yr)\. ago|\d+ days? ago|just now)$"))
        title = created.get_attribute("title") or ""
        assert re.search(r"\d", title), title  # the exact local time on hover
        time_box = created.bounding_box()
        assert time_box is not None and time_box["height"] < 30
        # the badges say the status in capitalised words
        for label in page.locator('#jm-list [data-jm="status-label"]').all_text_contents():
            assert label[:1].isupper(), label
    finally:
        remove_seeded(live_app, tag)


def overlaps(first: dict[str, float] | None, second: dict[str, float] | None) -> bool:
    assert first is not None and second is not None
    return not (
        first["x"] + first["width"] <= second["x"]
        or second["x"] + second["width"] <= first["x"]
        or first["y"] + first["height"] <= second["y"]
        or second["y"] + second["height"] <= first["y"]
    )


def test_the_end_of_job_toast_survives_the_detail_pages_reload_and_covers_no_control(
    new_page: Any, live_app: LiveApp
) -> None:
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, "clerk")
    data, _bad = products_csv("toast", rows=120)
    job_id = start_import(page, "toast-survives.csv", data)
    page.goto(f"/admin/jobs/{job_id}/")
    detail = page.locator("#jm-detail")
    if detail.get_attribute("data-jm-active") == "true":
        with page.expect_navigation(timeout=JOB_TIMEOUT_MS):
            pass  # the page reloads itself once the job has ended
    expect(detail).to_have_attribute("data-jm-active", "false")
    toast = page.locator(".jm-toasts .toast", has_text="Import toast-survives.csv")
    expect(toast).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(toast.locator(".toast-header")).to_contain_text("Completed")
    # it covers no control of the page: not the bell, not Refresh / Pause, not a button or link
    box = toast.bounding_box()
    controls = page.locator("a:visible, button:visible, input:visible, select:visible")
    for index in range(controls.count()):
        control = controls.nth(index)
        if control.evaluate("(el) => !!el.closest('.jm-toasts')"):
            continue
        assert not overlaps(box, control.bounding_box()), control.evaluate("(el) => el.outerHTML.slice(0, 120)")
    # and it stays in the menu bar, over no content, whatever the page holds below
    navbar = page.locator("nav.navbar").bounding_box()
    assert box is not None and navbar is not None
    assert navbar["y"] <= box["y"] and box["y"] + box["height"] <= navbar["y"] + navbar["height"]
    # a reload of the page (as the page itself does) keeps it until it is closed or expires
    page.reload()
    expect(toast).to_be_visible()
    # opening the bell closes it: the list it would cover shows the same news
    open_bell_menu(page)
    expect(toast).to_have_count(0)
    expect(page.locator(".jm-notification-menu")).to_contain_text("Import toast-survives.csv: Completed")
    page.reload()
    expect(page.locator("#jm-detail")).to_be_visible()
    expect(toast).to_have_count(0)


def test_the_widget_and_a_profiles_last_execution_offer_the_buttons_of_the_moment(
    new_page: Any, live_app: LiveApp
) -> None:
    clerk = new_page()
    log_in(clerk, "clerk")
    live_app.add_products(800, "widget")  # the export runs ~20 s: long enough to watch it run
    long_data, _bad = products_csv("hold2", rows=3000)
    holder = start_import(clerk, "holds-the-worker-too.csv", long_data)
    # the export waits behind the import: the profile page and the "My jobs" box follow it
    profiles = clerk.context.new_page()
    profiles.goto("/admin/export_profiles/")
    profiles.locator("tr", has_text="Full catalogue").get_by_role("button", name="Export now").click()
    last = profiles.locator("tr", has_text="Full catalogue").locator(".jm-last-execution")
    expect(last.locator('[data-jm="status-label"]')).to_have_text("Queued", timeout=JOB_TIMEOUT_MS)
    export_id = last.locator("[data-job-id]").get_attribute("data-job-id")
    assert export_id
    home = clerk.context.new_page()
    home.goto("/admin/")
    item = home.locator(f'.jm-widget [data-job-id="{export_id}"]')
    for place in (last, item):
        expect(place.locator('[data-jm-action-button="cancel"]')).to_be_visible()
        expect(place.locator('[data-jm-action-button="stop"]')).to_have_count(0)

    clerk.goto("/admin/jobs/")
    clerk.once("dialog", lambda dialog: dialog.accept())
    job_row(clerk, holder).locator('[data-jm-action-button="stop"]').click()

    # running: Stop appears on both pages, without a reload; Cancel goes
    for place in (last, item):
        expect(place.locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
        expect(place.locator('[data-jm-action-button="stop"]')).to_be_visible()
        expect(place.locator('[data-jm-action-button="cancel"]')).to_have_count(0)
    # the new button works like the server-rendered one: it posts to this job
    action = last.locator('[data-jm-action-button="stop"]').locator("xpath=ancestor::form").get_attribute("action")
    assert action == f"/admin/jobs/{export_id}/action", action
    # completed: no Stop, no Force stop left to press
    for place in (last, item):
        expect(place.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
        expect(place.locator("[data-jm-action-button]")).to_have_count(0)
