"""Times on the job pages are shown in the zone the app chose for the viewer, in a real browser.

Chromium runs in UTC (and, to be sure the zone comes from the server, once in New York); the
app's ``JOBMONITOR_TIMEZONE`` is Asia/Tokyo. A job created at 10:00 UTC must read 19:00 JST on
the job's page and on hover of the list's "ago" time, whatever the browser's zone: the server
writes times in the viewer's zone and language, and the page script leaves them as they are (it
only keeps "2 min. ago" fresh).
The host is the web tests' host (``apps.WEB_HOST``) on a SQLite file, served on a free port.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from werkzeug.serving import make_server

from ..support.apps import WEB_HOST, build_app
from ..support.browser import REDIS_URL, VIEWPORT
from ..support.databases import create_tables, dispose_engines
from ..support.extensions import db
from ..support.rows import add_job

pytestmark = pytest.mark.slow

CREATED = datetime(2026, 1, 15, 10, 0, 0)  # 19:00 in Tokyo (JST, +9, no daylight saving)


@pytest.fixture(scope="module")
def tokyo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The host app in Asia/Tokyo, served on 127.0.0.1, with one job; (its URL, the job's id)."""
    root = tmp_path_factory.mktemp("tokyo")
    url = f"sqlite:///{root / 'jobs.db'}"
    create_tables(url)
    app: Flask = build_app(
        url,
        REDIS_URL,
        str(root / "files"),
        **{**WEB_HOST, "name": "jobmonitor_tokyo"},
        JOBMONITOR_TIMEZONE="Asia/Tokyo",
    )
    with app.app_context():
        job_id = add_job(db.engine, owner="admin", name="Tokyo report", created_at=CREATED)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="tokyo-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", job_id
    finally:
        server.shutdown()
        thread.join(timeout=10)
        dispose_engines(app)


def open_as_admin(browser: Any, base_url: str, timezone_id: str) -> Any:
    context = browser.new_context(viewport=VIEWPORT, base_url=base_url, timezone_id=timezone_id, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/_test/login/admin")
    return page


@pytest.mark.parametrize("browser_zone", ["UTC", "America/New_York"])
def test_the_pages_show_times_in_the_configured_zone_not_the_browsers(browser, tokyo, browser_zone):
    base_url, job_id = tokyo
    page = open_as_admin(browser, base_url, browser_zone)
    try:
        server_text = page.request.get(f"/admin/jobs/{job_id}/").text()
        assert ">2026-01-15 19:00:00 JST</time>" in server_text

        page.goto(f"/admin/jobs/{job_id}/")
        created = page.locator("tr", has_text="Created").locator("time")
        expect(created).to_have_text("2026-01-15 19:00:00 JST")

        page.goto("/admin/jobs/")
        ago = page.locator("tr", has_text="Tokyo report").locator("time[data-jm-ago]").first
        expect(ago).to_have_attribute("title", "2026-01-15 19:00:00 JST")
        assert "ago" in ago.inner_text()
    finally:
        page.context.close()
