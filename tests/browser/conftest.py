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
never eat into the next test's time limits; a job that never ends fails the rest fast.

Chromium is Debian's ``/usr/bin/chromium`` (no ``playwright install``). Without it the tests are
skipped with the reason, unless ``JOBMONITOR_REQUIRE_BROWSER=1`` makes that a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis

CHROMIUM = os.environ.get("JOBMONITOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("JOBMONITOR_REQUIRE_BROWSER") == "1"
REDIS_URL = os.environ.get("JOBMONITOR_BROWSER_REDIS_URL", "redis://127.0.0.1:6379/13")
DATABASE_URL = os.environ.get("JOBMONITOR_BROWSER_DATABASE_URL", "")
IDLE_TIMEOUT = 90  # seconds the jobs of earlier tests may still take
REPO_ROOT = Path(__file__).resolve().parents[2]
REFRESH_INTERVAL = 1
VIEWPORT = {"width": 1400, "height": 900}


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (JOBMONITOR_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium package")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        _unavailable(f"the Python playwright package is not installed: {error}")
    return CHROMIUM


@dataclass
class LiveApp:
    """The running example catalogue."""

    url: str
    app: Any
    config: dict[str, Any]
    worker_log: Path
    worker_pid: int
    stuck: str = ""  # set once a job never ended: the worker cannot serve later tests

    def active_jobs(self) -> list[Any]:
        from example_app.extensions import db
        from flask_jobmonitor.records.models import job_table

        c = job_table.c
        with self.app.app_context(), db.engine.connect() as connection:
            return list(
                connection.execute(
                    sa.select(c.id, c.name, c.status, c.current_step, c.progress_done, c.progress_total).where(
                        c.status.in_(["queued", "running", "stopping", "paused", "waiting"])
                    )
                )
            )

    def wait_until_idle(self, timeout: float = IDLE_TIMEOUT) -> None:
        """Wait for every job to end; fail (and fail later tests at once) if one never does."""
        if self.stuck:
            pytest.fail(f"the worker is still busy with a job that never ended: {self.stuck}")
        deadline = time.monotonic() + timeout
        while (active := self.active_jobs()) and time.monotonic() < deadline:
            time.sleep(0.2)
        if active:
            self.stuck = "; ".join(
                f"{row.name!r} ({row.id}) {row.status} at step {row.current_step}, "
                f"{row.progress_done}/{row.progress_total}"
                for row in active
            )
            pytest.fail(f"jobs still not ended after {timeout:.0f} s: {self.stuck}\n{self.worker_log_tail()}")

    @contextlib.contextmanager
    def frozen_work(self) -> Iterator[None]:
        """Hold the worker's running job still (its work horse stopped with SIGSTOP, so its
        progress, steps and status cannot change) until the block ends."""
        horses = _children(self.worker_pid)
        if not horses:
            pytest.fail(f"the worker runs no job to hold still\n{self.worker_log_tail()}")
        for pid in horses:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in horses:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def worker_log_tail(self, lines: int = 40) -> str:
        text = self.worker_log.read_text(errors="replace").splitlines()
        return "worker log (end):\n" + "\n".join(text[-lines:])


def _wait_for_worker(process: subprocess.Popen[bytes], redis: Redis, name: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the RQ worker exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if redis.exists(f"rq:worker:{name}"):
            return
        time.sleep(0.1)
    pytest.fail(f"the RQ worker did not register within 60 s:\n{log.read_text(errors='replace')}")


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the command name (2nd field) is in parentheses and may hold spaces
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    # RQ's work horse calls setpgrp(): it is not in the worker's process group, so note it now
    horses = _children(process.pid)
    process.send_signal(signal.SIGTERM)  # warm shutdown: the current job (if any) may pause or finish
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the worker's own process group (start_new_session)
        process.wait(timeout=10)
    for pid in horses:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _database(root: Path) -> tuple[str, Any]:
    """The URL of the database to use, and a function that removes it afterwards."""
    if not DATABASE_URL:
        return f"sqlite:///{root / 'catalogue.db'}", lambda: None
    url = sa.make_url(DATABASE_URL)
    url = url.set(database=f"{url.database}_{os.getpid()}")
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    except Exception as error:
        _unavailable(f"no database server at {DATABASE_URL}: {error}")

    def drop() -> None:
        with server.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        server.dispose()

    return url.render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def live_app(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    from werkzeug.serving import make_server

    redis = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        redis.ping()
    except Exception as error:
        _unavailable(f"the browser tests need a real Redis at {REDIS_URL}: {error}")
    redis.flushdb()

    root = tmp_path_factory.mktemp("browser")
    database_url, drop_database = _database(root)
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

    from example_app import create_app

    app = create_app(dict(config))
    runner = app.test_cli_runner()
    for args in (["jobmonitor", "init-db"], ["seed"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, f"flask {' '.join(args)} failed: {result.output}\n{result.exception!r}"

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
        _wait_for_worker(worker, redis, worker_name, worker_log)
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
        _stop_worker(worker)
        with app.app_context():
            from example_app.extensions import db

            for engine in db.engines.values():
                engine.dispose()
        drop_database()
        redis.flushdb()


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        except Exception as error:
            _unavailable(f"Chromium at {chromium_path} does not start under Playwright: {error}")
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, live_app: LiveApp) -> Iterator[Any]:
    """``new_page()`` opens a page in a fresh browser context (own cookies and localStorage).
    The test starts once the worker is idle."""
    live_app.wait_until_idle()
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
