"""A live example catalogue for real-browser tests: web server, RQ worker and headless Chromium.

The session builds ``example_app`` on a temporary SQLite file (``flask jobmonitor init-db`` and
``flask seed`` through the app's own CLI), serves it with werkzeug on a free port of 127.0.0.1 in
a background thread, and runs ``flask --app example_app jobmonitor worker`` as a subprocess with
the same configuration: the factory string ``example_app:create_app({...})`` hands the worker
exactly the dict the server was built from (Redis database 13, own queue names, storage folder,
``JOBMONITOR_REFRESH_INTERVAL`` = 1). ``JOBMONITOR_BROWSER_DATABASE_URL`` (e.g. a PostgreSQL URL;
a database of that name plus the process id is created and dropped) replaces the SQLite file.

A test may hold the worker's work still (:meth:`LiveApp.frozen_work`: SIGSTOP to the work
horse) to compare what a page shows with a fresh load of the same state; the jobs are not
taken for abandoned meanwhile (``JOBMONITOR_ABANDONED_AFTER`` is longer than any test).

Before each test the worker must be idle (every earlier job ended), so one test's leftover jobs
never eat into the next test's time limits; a job that never ends fails the rest fast. The
products earlier tests imported are then taken out (the 200 seeded ones stay), so a job over the
whole catalogue does the same work whichever tests ran before (the pricing rules' family once
grew to 129 chunks after the accessibility tests' long imports, and outlived its time limit).

Chromium is Debian's ``/usr/bin/chromium`` (no ``playwright install``). Without it the tests are
skipped with the reason, unless ``JOBMONITOR_REQUIRE_BROWSER=1`` makes that a failure.

Fixtures only: the helpers (``LiveApp``, the worker subprocess, the database) live in
``tests/support/browser.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from werkzeug.serving import make_server

from example_app import create_app

from ..support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REDIS_URL,
    REFRESH_INTERVAL,
    REPO_ROOT,
    VIEWPORT,
    LiveApp,
    browser_database,
    stop_worker,
    unavailable,
    wait_for_worker,
)
from ..support.databases import dispose_engines
from ..support.examples import set_up


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium package")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        unavailable(f"the Python playwright package is not installed: {error}")
    return CHROMIUM


@pytest.fixture(scope="session")
def live_app(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        redis.ping()
    except Exception as error:
        unavailable(f"the browser tests need a real Redis at {REDIS_URL}: {error}")
    redis.flushdb()

    root = tmp_path_factory.mktemp("browser")
    database_url, drop_database = browser_database(root)
    queue_prefix = f"jm-browser-{os.getpid()}"
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JOBMONITOR_REDIS_URL": REDIS_URL,
        "JOBMONITOR_STORAGE_PATH": str(root / "files"),
        "JOBMONITOR_REFRESH_INTERVAL": REFRESH_INTERVAL,
        "JOBMONITOR_ABANDONED_AFTER": 3600,  # a job held still (frozen_work) is not abandoned
        "JOBMONITOR_QUEUE_NAMES": {level: f"{queue_prefix}-{level}" for level in ("high", "default", "low")},
    }
    env = dict(
        os.environ,
        EXAMPLE_DATABASE_URL=database_url,
        EXAMPLE_REDIS_URL=REDIS_URL,
        PYTHONUNBUFFERED="1",
    )
    env.pop("FLASK_APP", None)

    app = set_up(create_app(dict(config)))

    worker_name = f"{queue_prefix}-worker"
    worker_log = root / "worker.log"
    factory = f"example_app:create_app({config!r})"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", factory, "jobmonitor", "worker", "--name", worker_name],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    try:
        wait_for_worker(worker, redis, worker_name, worker_log)
        yield LiveApp(
            url=f"http://127.0.0.1:{server.server_port}",
            app=app,
            config=config,
            worker_log=worker_log,
            worker_pid=worker.pid,
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
        stop_worker(worker)
        dispose_engines(app)
        drop_database()
        redis.flushdb()


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        except Exception as error:
            unavailable(f"Chromium at {chromium_path} does not start under Playwright: {error}")
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, live_app: LiveApp) -> Iterator[Any]:
    """``new_page()`` opens a page in a fresh browser context (own cookies and localStorage).
    The test starts once the worker is idle, on the seeded catalogue (:meth:`LiveApp.restore_catalogue`)."""
    live_app.wait_until_idle()
    live_app.restore_catalogue()
    contexts: list[Any] = []

    def open_page(timezone_id: str = "UTC") -> Any:
        context = browser.new_context(
            viewport=VIEWPORT, base_url=live_app.url, timezone_id=timezone_id, accept_downloads=True
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
