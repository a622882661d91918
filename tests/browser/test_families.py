"""A job family in a real browser: a manager runs the catalogue's pricing rules (a parent that
spawns one child job per chunk of products), sees the parent wait for its children instead of
saying "Completed" while they run, and is told once, by one notification, when the family ends.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from ..support.browser import LiveApp
from .test_process_tracker import JOB_TIMEOUT_MS, _started_job_id, log_in, open_bell_menu

pytestmark = pytest.mark.slow


def test_a_family_waits_for_its_children_and_rings_the_bell_once(new_page: Any, live_app: LiveApp) -> None:
    page = new_page()
    log_in(page, "manager")
    badge = page.locator('#jm-bell [data-jm="unread"]')
    open_bell_menu(page)  # start from no unread notifications (earlier tests' jobs left some)
    page.get_by_role("button", name="Mark all as read").click()
    expect(badge).to_be_hidden()

    page.get_by_role("button", name="Apply pricing rules (child jobs)").click()
    job_id = _started_job_id(page, "Apply pricing rules")
    page.goto(f"/admin/jobs/{job_id}/")
    status = page.locator('h4 [data-jm="status-label"]')

    # its own work (planning, spawning the chunks) is done long before the chunks are: it waits
    expect(status).to_have_text("Waiting for children", timeout=JOB_TIMEOUT_MS)
    expect(status).to_have_text("Completed", timeout=JOB_TIMEOUT_MS)

    children = live_app_children(live_app, job_id)
    # as many chunks as the catalogue's products need (eight: the 200 of the seed, 25 a chunk)
    assert len(children) > 1 and {c.status for c in children} == {"completed"}
    # one notification for the family, none for its children
    expect(badge).to_have_text("1", timeout=JOB_TIMEOUT_MS)
    open_bell_menu(page)
    items = page.locator('.jm-notification-menu [data-jm="notification-items"] .dropdown-item')
    expect(items).to_have_count(1)
    expect(items).to_have_text(re.compile(r"^Apply pricing rules: Completed$"))
    toasts = page.locator(".jm-toasts .toast")
    expect(toasts.filter(has_text="Pricing rules, chunk")).to_have_count(0)


def live_app_children(live_app: LiveApp, parent_id: str) -> list[Any]:
    import sqlalchemy as sa

    from example_app.extensions import db
    from flask_jobmonitor.records.models import job_table

    c = job_table.c
    with live_app.app.app_context(), db.engine.connect() as connection:
        return list(connection.execute(sa.select(c.id, c.status).where(c.parent_id == parent_id)))
