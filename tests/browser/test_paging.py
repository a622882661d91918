"""An admin pages through a long history in a real browser: Older, Oldest, Newer, Newest, a
bookmarked page, a search and a sort, all by clicking the links the list draws."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from flask_jobmonitor.records.models import job_table

from ..support.browser import LiveApp
from .test_process_tracker import log_in

pytestmark = pytest.mark.slow
JOBS = 95


def seed_history(live_app: LiveApp, tag: str, start: datetime = datetime(2025, 6, 1, 8, 0)) -> None:
    """JOBS finished jobs named "<tag> 000" (oldest) to "<tag> 094", one a minute from ``start``."""
    from example_app.extensions import db

    rows = [
        {
            "id": str(uuid.uuid4()),
            "name": f"{tag} {n:03d}",
            "type": "export",
            "category": "export",
            "task": "example_app.tasks.export_products",
            "params": {"args": [], "kwargs": {}},
            "status": "completed",
            "queue_name": "default",
            "run_by_id": "1",
            "run_by_name": "Admin",
            "created_at": start + timedelta(minutes=n),
            "started_at": start + timedelta(minutes=n, seconds=2),
            "ended_at": start + timedelta(minutes=n, seconds=40 - n % 30),
            "status_changed_at": start + timedelta(minutes=n, seconds=40),
        }
        for n in range(JOBS)
    ]
    with live_app.app.app_context(), db.engine.begin() as connection:
        connection.execute(sa.insert(job_table), rows)


def shown(page: Page) -> list[str]:
    return [name.strip() for name in page.locator("#jm-list tbody tr .jm-name > a").all_inner_texts()]


def follow(page: Page, link: str) -> None:
    """Click the pagination or header link ``link`` and wait for the page it opens."""
    with page.expect_navigation():
        page.locator("#jm-list").get_by_role("link", name=link, exact=True).click()


def names(tag: str, numbers: range) -> list[str]:
    return [f"{tag} {n:03d}" for n in numbers]


def admin_searching_a_history(new_page: Any, live_app: LiveApp, per_page: int) -> tuple[Page, str]:
    """An admin's page listing a freshly seeded history of its own tag (the search isolates it)."""
    tag = f"Archive{uuid.uuid4().hex[:6]}"
    seed_history(live_app, tag)
    page = new_page()
    log_in(page, "admin")
    page.goto(f"/admin/jobs/?q={tag}&per_page={per_page}")
    return page, tag


def test_an_admin_pages_through_a_long_history_and_back(new_page: Any, live_app: LiveApp) -> None:
    page, tag = admin_searching_a_history(new_page, live_app, per_page=20)
    expect(page.locator("#jm-list tbody tr")).to_have_count(20)
    assert shown(page) == names(tag, range(94, 74, -1))
    expect(page.get_by_role("link", name="Newer")).to_have_attribute("aria-disabled", "true")

    follow(page, "Older")
    expect(page).to_have_url(re.compile(r"after="))
    assert shown(page) == names(tag, range(74, 54, -1))
    bookmark = page.url

    follow(page, "Oldest")
    assert shown(page) == names(tag, range(19, -1, -1))
    expect(page.get_by_role("link", name="Older")).to_have_attribute("aria-disabled", "true")

    follow(page, "Newer")
    assert shown(page) == names(tag, range(39, 19, -1))

    follow(page, "Newest")
    assert shown(page) == names(tag, range(94, 74, -1))

    # a page's address is a bookmark: the same jobs, even after newer ones arrived
    seed_history(live_app, tag, start=datetime(2025, 7, 1))  # 95 newer jobs of the same search
    page.goto(bookmark)
    assert shown(page) == names(tag, range(74, 54, -1))


def test_sorting_by_a_column_and_back_to_newest_first(new_page: Any, live_app: LiveApp) -> None:
    page, tag = admin_searching_a_history(new_page, live_app, per_page=50)
    follow(page, "Name")
    expect(page).to_have_url(re.compile(r"sort=name"))
    assert shown(page) == names(tag, range(0, 50))
    follow(page, "Next")
    assert shown(page) == names(tag, range(50, JOBS))
    expect(page.get_by_role("link", name="Next")).to_have_attribute("aria-disabled", "true")
    expect(page.locator('[data-jm="sort-window"]')).to_have_count(0)  # all 95 were sorted
    follow(page, "Created")
    assert shown(page) == names(tag, range(94, 44, -1))
