"""An admin pauses a recurring job from the schedules page, in a real browser: the example's
hourly supplier sync is switched off from the menu's Schedules page (the switch kept in SQL),
the page says it is off and since when, the manager sees it without the switch, and the audit
trail says who did it; switched on again, it shows its next run once more."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from ..support.browser import LiveApp
from .test_process_tracker import log_in

pytestmark = pytest.mark.slow

SYNC = "hourly-supplier-sync"


def test_an_admin_switches_the_hourly_sync_off_and_on_again(new_page: Any, live_app: LiveApp) -> None:
    admin = new_page()
    log_in(admin, "admin")
    admin.goto("/admin/")
    admin.locator("a.dropdown-toggle", has_text="Activity").click()
    admin.get_by_role("link", name="Schedules").click()
    row = admin.locator(f'tr[data-jm-schedule="{SYNC}"]')
    expect(row).to_contain_text("Supplier stock sync")
    expect(row).to_contain_text("15 * * * *")
    expect(row.locator('[data-jm="next-run"] time')).to_contain_text(":15:00")
    expect(admin.locator('[data-jm="scheduler-stopped"]')).to_be_visible()  # the tests run no scheduler

    row.get_by_role("button", name="Switch Supplier stock sync off").click()
    expect(admin.locator(".alert-success")).to_contain_text("is off: its runs are skipped")
    expect(row.locator('[data-jm="next-run"]')).to_have_text("none while it is off")
    expect(row.locator('[data-jm="switch"]')).to_contain_text("Alice Admin")

    manager = new_page()
    log_in(manager, "manager")
    manager.goto("/admin/job-schedules/")
    seen = manager.locator(f'tr[data-jm-schedule="{SYNC}"]')
    expect(seen.locator('[data-jm="switch"]')).to_contain_text("Off")
    expect(seen.get_by_role("button")).to_have_count(0)  # no switch for the manager
    clerk = new_page()
    log_in(clerk, "clerk")
    assert clerk.goto("/admin/job-schedules/").status == 403

    admin.goto("/admin/job-audit/?action=disable_schedule")
    entry = admin.locator('[data-jm="audit-entries"] tbody tr').first
    expect(entry).to_contain_text("Alice Admin")
    expect(entry).to_contain_text("Switch a schedule off")
    expect(entry).to_contain_text(SYNC)

    admin.goto("/admin/job-schedules/")
    row.get_by_role("button", name="Switch Supplier stock sync on").click()
    expect(admin.locator(".alert-success")).to_contain_text("is on")
    expect(row.locator('[data-jm="next-run"] time')).to_be_visible()
