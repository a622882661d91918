"""Pause all / resume all in a real browser: an admin pauses every job from Queue health while a
resumable mass edit runs, a clerk sees the banner (in the clerk's own time zone) and launches a
report that waits, the admin resumes, the mass edit continues from its checkpoint and the
report runs. The session's one worker is the example app's real RQ worker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from redis import Redis
from rq.suspension import WORKERS_SUSPENDED

from flask_jobmonitor.keys import PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY

from ..support.browser import REDIS_URL, LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, log_in

pytestmark = pytest.mark.slow
BANNER = "Jobs have been paused for maintenance since"


@pytest.fixture
def resumed_afterwards(live_app: LiveApp) -> Iterator[None]:
    """Whatever happens, the next test finds the worker not suspended."""
    yield
    Redis.from_url(REDIS_URL).delete(WORKERS_SUSPENDED, PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY)


def _start_slow_mass_edit(live_app: LiveApp) -> str:
    """A resumable job that runs long enough to be paused (0 %: the catalogue's prices stay):
    500 products at 0.3 s each, two and a half minutes."""
    from example_app.extensions import jobmonitor
    from example_app.tasks import change_prices

    live_app.add_products(300, "pause")
    with live_app.app.app_context():
        return jobmonitor.enqueue(
            change_prices, 0.0, row_delay=0.3, name="Slow price check", user=("pause-test", "Alice Admin")
        ).id


def _status(page: Page) -> Any:
    return page.locator('#jm-detail [data-jm="status-label"]').first


def test_admin_pauses_and_resumes_all_jobs_while_a_clerk_sees_the_banner(
    new_page: Any, live_app: LiveApp, resumed_afterwards: None
) -> None:
    admin = new_page()
    log_in(admin, "admin")
    mass_edit = _start_slow_mass_edit(live_app)
    admin.goto(f"/admin/jobs/{mass_edit}/")
    expect(_status(admin)).to_have_text("Running", timeout=JOB_TIMEOUT_MS)

    # 1. the admin pauses every job from Queue health
    admin.goto("/admin/queues/")
    admin.once("dialog", lambda dialog: dialog.accept())  # "Pause all jobs? ..."
    admin.locator('[data-jm-action="pause-all"]').click()
    expect(admin.locator(".alert-success")).to_contain_text("Jobs are paused: workers take no new job")
    expect(admin.locator('[data-jm="pause-banner"]')).to_contain_text(BANNER)
    expect(admin.locator('[data-jm-action="resume-all"]')).to_be_visible()

    # the running mass edit pauses at its next checkpoint and waits, queued
    admin.goto(f"/admin/jobs/{mass_edit}/")
    expect(_status(admin)).to_have_text("Queued", timeout=JOB_TIMEOUT_MS)
    admin.reload()
    expect(admin.get_by_text("Waits for the maintenance to end.")).to_be_visible()

    # 2. a clerk (in another time zone) sees the banner and launches a report, which waits
    clerk = new_page(timezone_id="America/New_York")
    log_in(clerk, "clerk")
    clerk.goto("/admin/jobs/")
    banner = clerk.locator('[data-jm="pause-banner"]')
    expect(banner).to_contain_text(BANNER)
    # shown in the site's zone (the example's JOBMONITOR_TIMEZONE: UTC), not the browser's: the
    # server picks the viewer's zone (tests/browser/test_time_zone.py)
    expect(banner.locator("time")).to_contain_text("UTC")
    clerk.goto("/admin/")
    clerk.get_by_role("button", name="Stock report").click()
    clerk.get_by_role("link", name="Follow it").click()
    expect(_status(clerk)).to_have_text("Queued")
    expect(clerk.get_by_text("Waits for the maintenance to end.")).to_be_visible()
    expect(clerk.locator('[data-jm="pause-banner"]')).to_contain_text(BANNER)
    report_url = clerk.url

    # 3. the admin resumes: the mass edit continues from its checkpoint, first in the queue
    admin.goto("/admin/queues/")
    expect(admin.locator('[data-jm="pause-progress"]')).to_have_count(0)  # nothing runs
    admin.locator('[data-jm-action="resume-all"]').click()
    expect(admin.locator(".alert-success")).to_contain_text(
        "Jobs resumed: workers take jobs again; 1 job paused for the maintenance continues from its checkpoint."
    )
    expect(admin.locator('[data-jm="pause-banner"]')).to_have_count(0)
    admin.goto(f"/admin/jobs/{mass_edit}/")
    expect(_status(admin)).to_have_text("Running", timeout=JOB_TIMEOUT_MS)
    admin.reload()  # its buttons as they are for a running job
    expect(admin.locator("body")).to_contain_text(re.compile(r"Asked by Alice Admin to pause for maintenance"))

    # the admin stops it (it would run for minutes), and the clerk's report runs
    admin.once("dialog", lambda dialog: dialog.accept())
    admin.locator('[data-jm-action-button="stop"]').first.click()
    expect(_status(admin)).to_have_text("Stopped", timeout=JOB_TIMEOUT_MS)
    # the clerk's page, still open on the report, follows it live to its end and reloads itself
    # once then (a goto here raced that reload: net::ERR_ABORTED in a CI run)
    expect(clerk).to_have_url(re.compile(re.escape(report_url)))
    expect(_status(clerk)).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)
    expect(clerk.locator('[data-jm="pause-banner"]')).to_have_count(0)
