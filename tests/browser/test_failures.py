"""What a failed import tells whom, in a real browser (failures.py).

A clerk imports a file with no price column: the task fails with a JobFailed message, which the
clerk reads at the top of the job's page as written, with no traceback anywhere on it. An admin
(``jobmonitor.view_tracebacks``) finds a collapsed "Error details" block under the message and
opens it to read the exception and its traceback.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, log_in, start_import

pytestmark = pytest.mark.slow

MESSAGE = "The file has no column price: its first line must name the columns sku, name, price."


def _open_ended_job(page: Page, job_id: str) -> None:
    page.goto(f"/admin/jobs/{job_id}/")
    expect(page.locator("#jm-detail")).to_have_attribute("data-jm-active", "false", timeout=JOB_TIMEOUT_MS)
    page.reload()  # the page reloads itself once the job ends; read the final one


def _console_errors(page: Page) -> list[str]:
    """Script errors, console errors and failed responses of ``page`` from now on. Chromium's own
    favicon request fails (the example has none) and is not a response the page sees: the
    console line it logs is left out, failed responses are counted by their URL."""
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda response: errors.append(response.url) if response.status >= 400 else None)
    return errors


def test_the_clerk_reads_the_message_and_an_admin_opens_the_details(new_page: Any, live_app: LiveApp) -> None:
    clerk = new_page()
    clerk_errors = _console_errors(clerk)
    log_in(clerk, "clerk")
    job_id = start_import(clerk, "no-price.csv", b"sku,name\nNP-1,No price\n")

    _open_ended_job(clerk, job_id)

    expect(clerk.locator('#jm-detail [data-jm="status-label"]').first).to_have_text("Failed")
    expect(clerk.locator('[data-jm="error-text"]')).to_have_text(MESSAGE)
    expect(clerk.locator("details", has_text="Error details")).to_have_count(0)
    assert "Traceback" not in clerk.content()

    admin = new_page()
    admin_errors = _console_errors(admin)
    log_in(admin, "admin")
    _open_ended_job(admin, job_id)
    block = admin.locator("details", has_text="Error details")
    trace = block.locator("pre")

    expect(admin.locator('[data-jm="error-text"]')).to_have_text(MESSAGE)
    expect(block).to_be_visible()
    expect(trace).to_be_hidden()  # collapsed until asked for
    block.locator("summary").click()
    expect(trace).to_be_visible()
    expect(trace).to_contain_text("Traceback (most recent call last)")
    expect(trace).to_contain_text(f"JobFailed: {MESSAGE}")
    assert clerk_errors == [] and admin_errors == []
