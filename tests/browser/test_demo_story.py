"""The demo's main story in a real browser, and the statistics page.

A clerk imports a CSV with bad rows through an import profile, follows it on the profile page,
and downloads the error report; the clerk starts an export; a manager stops that export from
the process tracker; the clerk sees it stopped and never sees the manager's own jobs. Then an
admin opens the statistics page and its charts render.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, SCREENSHOTS, job_row, log_in, products_csv

pytestmark = pytest.mark.slow


def _last_execution(page: Page, profile_name: str) -> Any:
    return page.locator("tr", has_text=profile_name).locator(".jm-last-execution")


def test_clerk_imports_through_a_profile_and_a_manager_stops_the_clerks_export(
    new_page: Any, live_app: LiveApp
) -> None:
    clerk = new_page()
    log_in(clerk, "clerk")

    # 1. import through the profile "Supplier price list"; its "Last execution" follows the job live
    data, bad = products_csv("story", rows=300)
    clerk.goto("/admin/import_profiles/")
    row = clerk.locator("tr", has_text="Supplier price list")
    row.locator('input[name="file"]').set_input_files(
        files=[{"name": "story.csv", "mimeType": "text/csv", "buffer": data}]
    )
    row.get_by_role("button", name="Import").click()
    last = _last_execution(clerk, "Supplier price list")
    expect(last.locator('[data-jm="status-label"]')).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    clerk.evaluate("window.__marker = 'still here'")
    expect(last.locator('[data-jm="status-label"]')).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    assert clerk.evaluate("window.__marker") == "still here"  # updated in place, no reload

    # ... and its error report lists the bad rows
    last.get_by_role("link", name="Import story.csv").click()
    expect(clerk.locator("#jm-detail")).to_have_attribute("data-jm-active", "false")
    with clerk.expect_download() as download_info:
        clerk.locator('a[data-jm-file-kind="error_report"]').click()
    report = download_info.value
    assert report.suggested_filename == "rejected-rows.csv"
    rows = list(csv.DictReader(io.StringIO(Path(report.path()).read_text(encoding="utf-8"))))
    assert {int(r["line"]) for r in rows} == set(bad)

    # 2. the clerk exports the whole catalogue (over 1,500 products, a row every 20 ms: half a
    # minute for the manager to stop it)
    live_app.add_products(1300, "story")
    clerk.goto("/admin/export_profiles/")
    clerk.locator("tr", has_text="Full catalogue").get_by_role("button", name="Export now").click()
    export = _last_execution(clerk, "Full catalogue")
    expect(export.locator('[data-jm="status-label"]')).to_have_text(re.compile("Queued|Running"))
    export_id = export.locator("[data-job-id]").get_attribute("data-job-id")
    assert export_id

    # 3. a manager stops it from the process tracker
    manager = new_page()
    log_in(manager, "manager")
    manager.goto("/admin/jobs/?type=export")
    manager_row = job_row(manager, export_id)
    expect(manager_row).to_contain_text("Chris Clerk")
    manager.once("dialog", lambda dialog: dialog.accept())  # "Stop this job ...? Work already done is kept"
    manager_row.locator('[data-jm-action-button="stop"]').click()
    expect(manager.locator(".alert")).to_contain_text("Work already done is kept")
    expect(job_row(manager, export_id).locator('[data-jm="status-label"]')).to_have_text(
        "Stopped", timeout=JOB_TIMEOUT_MS
    )
    manager.goto(f"/admin/jobs/{export_id}/")
    expect(manager.locator("#jm-detail")).to_contain_text("Stop requested by Mark Manager")

    # 4. the clerk sees the export stopped on the profile page, without its Stop button
    expect(export.locator('[data-jm="status-label"]')).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    clerk.reload()
    assert _last_execution(clerk, "Full catalogue").locator('[data-jm-action-button="stop"]').count() == 0

    # 5. the manager's own job stays invisible to the clerk
    manager.goto("/admin/")
    manager.get_by_role("button", name="Stock report").click()
    flash = manager.locator(".alert", has_text="started")
    href = flash.get_by_role("link", name="Follow it").get_attribute("href") or ""
    report_id = href.rstrip("/").rsplit("/", 1)[-1]
    clerk.goto("/admin/jobs/")
    expect(job_row(clerk, export_id)).to_have_count(1)
    expect(job_row(clerk, report_id)).to_have_count(0)
    assert clerk.goto(f"/admin/jobs/{report_id}/").status == 404


def test_statistics_page_renders_its_charts(new_page: Any, live_app: LiveApp) -> None:
    admin = new_page()
    log_in(admin, "admin")
    admin.get_by_role("button", name="Stock report").click()  # at least one job today
    expect(admin.locator(".alert", has_text="started")).to_be_visible()
    live_app.wait_until_idle()
    admin.goto("/admin/job-statistics/")
    charts = admin.locator("svg.jm-chart")
    expect(charts).to_have_count(3)
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 80
    # bars and points are drawn, and the tables list the day
    expect(charts.nth(0).locator("rect[fill='#007bff']").first).to_be_visible()
    expect(admin.locator(".jm-stats-table").first).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d"))
    with admin.expect_download() as download_info:
        admin.get_by_role("link", name="CSV").click()
    assert download_info.value.suggested_filename.startswith("job-statistics-")
    admin.goto("/admin/job-statistics/")
    admin.mouse.move(0, 0)
    admin.screenshot(path=str(SCREENSHOTS / "statistics.png"), full_page=True)

    admin.goto("/admin/queues/")
    expect(admin.locator("svg.jm-chart")).to_have_count(1)
    expect(admin.locator("body")).to_contain_text("online")

    clerk = new_page()
    log_in(clerk, "clerk")
    assert clerk.goto("/admin/job-statistics/").status == 403
