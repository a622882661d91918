"""Progress that moves, in a real browser: the example import's "Save products" step, whose
task writes through its own ``db.session`` on SQLite, shows its progress on the detail page
while it runs (before this was fixed it stood at 0 until the step ended), with the time left
for the job, and step badges that read like the job badges.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, log_in, products_csv, start_import, wait_for_detail_page_final

pytestmark = pytest.mark.slow

SAVE_STEP = 3  # Read file, Validate rows, Save products


def test_the_save_step_shows_its_progress_while_it_runs(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "clerk")
    data, bad = products_csv("moving", rows=400)  # about 370 rows to save, 20 ms each
    valid = 400 - len(bad)
    job_id = start_import(page, "moving-products.csv", data)
    page.goto(f"/admin/jobs/{job_id}/")
    save = page.locator(f'table.jm-steps tr[data-step-position="{SAVE_STEP}"]')
    expect(save).to_contain_text("Save products")

    # the live refresh shows the step part done and still running: some rows saved, not all
    page.wait_for_function(
        """([position, valid]) => {
            const row = document.querySelector(`tr[data-step-position="${position}"]`);
            const badge = row.querySelector("[data-jm-step-status]");
            const done = parseInt(row.querySelector('[data-jm="step-progress"]').textContent, 10);
            return badge && badge.getAttribute("data-jm-step-status") === "running" && done > 0 && done < valid;
        }""",
        arg=[SAVE_STEP, valid],
        timeout=JOB_TIMEOUT_MS,
    )
    expect(save.locator('[data-jm="step-status"]')).to_have_text("Running")
    # the step before it ended, in the words of the job badges
    expect(page.locator('tr[data-step-position="2"] [data-jm="step-status"]')).to_have_text("Completed")
    # the last step runs at a known rate: the header says how long the job still needs
    expect(page.locator('[data-jm="time-left"]')).to_have_text(re.compile(r"left$"))
    expect(page.locator('[data-jm="time-left-row"]')).to_be_visible()

    wait_for_detail_page_final(page)
    expect(save.locator('[data-jm="step-progress"]')).to_have_text(f"{valid}/{valid}")
    expect(save.locator('[data-jm="step-status"]')).to_have_text("Completed")
    expect(page.locator('[data-jm="time-left-row"]')).to_be_hidden()
