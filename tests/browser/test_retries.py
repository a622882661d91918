"""A clerk follows a job that retries, in a real browser: the example's supplier sync, whose demo
supplier does not answer the first try, waits 15 s for its retry (RQ's scheduler, in the real
worker) and then completes. The "My jobs" widget and the job's page say "Retry 1 of 3 at ..."
while it waits, list the failed attempt, and turn to "Completed" live, with the toast."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, _started_job_id, log_in

pytestmark = pytest.mark.slow

RETRY_WAITS = re.compile(r"^Retry 1 of 3 at (\d{4}-\d\d-\d\d )?\d{1,2}:\d\d")  # the date past midnight
MESSAGE = "The supplier's stock feed did not answer within 10 seconds."


def test_a_clerk_watches_the_supplier_sync_wait_for_its_retry_then_complete(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    page.goto("/admin/")
    page.get_by_role("button", name="Sync stock from the supplier").click()
    job_id = _started_job_id(page, "Sync stock from the supplier")

    # the widget on the same page follows it from queued to its retry's wait
    item = page.locator(f'.jm-widget [data-job-id="{job_id}"]')
    expect(item.locator('[data-jm="status-label"]')).to_have_text(RETRY_WAITS, timeout=JOB_TIMEOUT_MS)

    page.goto(f"/admin/jobs/{job_id}/")
    detail = page.locator("#jm-detail")
    label = detail.locator('h4 [data-jm="status-label"]')
    expect(label).to_have_text(RETRY_WAITS)
    attempts = detail.locator(".jm-attempts tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text(MESSAGE)
    expect(detail.locator("#attempts")).to_have_text("1 failed attempt")
    assert "Traceback" not in page.content()

    # its time comes: the page turns live to running, then completed, and tells the clerk
    expect(label).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    expect(page.locator(".jm-toasts .toast", has_text="Sync stock from the supplier")).to_be_visible()
    expect(detail.locator(".jm-attempts tbody tr")).to_have_count(1)
    expect(detail.locator(".jm-steps")).to_contain_text("Update stock")
