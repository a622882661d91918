"""The audit trail in the browser, as an admin and an auditor use it: the admin stops a clerk's
running import and deletes it; the auditor finds who did it, from the menu, by person and by job,
after the job is gone. The clerk is offered no audit trail."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, log_in, products_csv, start_import


def test_an_auditor_finds_who_stopped_and_deleted_a_clerks_import(new_page: Any, live_app: LiveApp) -> None:
    clerk = new_page()
    log_in(clerk, "clerk")
    data, _bad = products_csv("audit-trail", rows=3000)
    job_id = start_import(clerk, "audit-trail.csv", data)
    clerk.locator("a.dropdown-toggle", has_text="Activity").click()
    expect(clerk.get_by_role("link", name="Process tracker", exact=True)).to_be_visible()
    expect(clerk.get_by_role("link", name="Audit trail")).to_have_count(0)
    assert clerk.goto("/admin/job-audit/").status == 403

    # the admin stops the running import, then deletes it
    admin = new_page()
    log_in(admin, "admin")
    admin.goto(f"/admin/jobs/{job_id}/")
    status = admin.locator('#jm-detail h4 [data-jm="status-label"]')
    expect(status).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator('#jm-detail [data-jm="actions"] [data-jm-action-button="stop"]').click()
    expect(status).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    admin.reload()
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator('#jm-detail [data-jm="actions"] [data-jm-action-button="delete"]').click()
    expect(admin.locator(".alert-success")).to_contain_text("deleted")

    # the auditor opens the trail from the menu and finds both, newest first, with the job gone
    auditor = new_page(timezone_id="Europe/Paris")
    log_in(auditor, "auditor")
    auditor.goto("/admin/")
    auditor.locator("a.dropdown-toggle", has_text="Activity").click()
    auditor.get_by_role("link", name="Audit trail").click()
    rows = auditor.locator('[data-jm="audit-entries"] tbody tr')
    expect(rows.first).to_contain_text("Delete")
    first, second = rows.nth(0), rows.nth(1)
    for row in (first, second):
        expect(row).to_contain_text("Alice Admin")
        expect(row).to_contain_text("audit-trail.csv")
        expect(row).to_contain_text("(deleted)")
        expect(row).to_contain_text("Chris Clerk")  # who ran it
        expect(row).to_contain_text("127.0.0.1")  # from where
    expect(second).to_contain_text("Stop")
    expect(first.get_by_role("link", name="audit-trail.csv")).to_have_count(0)  # nothing to link to

    # by person and action (earlier tests of the session stopped jobs as Alice too: hers is the
    # newest), then all the lines of that job through its short id
    auditor.get_by_label("Who").select_option("Alice Admin")
    auditor.get_by_label("Action").select_option("stop")
    auditor.get_by_role("button", name="Show").click()
    expect(auditor.get_by_label("Action")).to_have_value("stop")
    expect(rows.first).to_contain_text("audit-trail.csv")
    for index in range(rows.count()):
        expect(rows.nth(index)).to_contain_text("Alice Admin")
        expect(rows.nth(index)).to_contain_text("Stop")
    rows.first.get_by_title("Every entry of this job").click()
    expect(auditor.get_by_label("Job id")).to_have_value(job_id)
    expect(rows).to_have_count(1)  # the action filter is kept: only the stop
    auditor.get_by_label("Action").select_option("")
    auditor.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(2)
    auditor.get_by_role("link", name="Clear filters").click()
    expect(auditor.get_by_label("Job id")).to_have_value("")
