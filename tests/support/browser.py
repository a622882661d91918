"""The live example catalogue of the browser tests (``tests/browser``): its settings, the
:class:`LiveApp` a test drives, and the worker subprocess and database behind it. The fixtures
that start them are in ``tests/browser/conftest.py``, whose docstring tells the whole setup.

Chromium is Debian's ``/usr/bin/chromium`` (``JOBMONITOR_CHROMIUM`` overrides it). Without it
the tests are skipped with the reason, unless ``JOBMONITOR_REQUIRE_BROWSER=1`` makes that a
failure (:func:`unavailable`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis

from example_app.extensions import db
from flask_jobmonitor.records.models import job_table

from .processes import children_of
from .services import BROWSER_REDIS_URL

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
REDIS_URL = BROWSER_REDIS_URL
DATABASE_URL = os.environ.get("JOBMONITOR_BROWSER_DATABASE_URL", "")
IDLE_TIMEOUT = 90  # seconds the jobs of earlier tests may still take
REPO_ROOT = Path(__file__).resolve().parents[2]
REFRESH_INTERVAL = 1
VIEWPORT = {"width": 1400, "height": 900}


def unavailable(reason: str) -> None:
    """Skip the test for ``reason``; fail it under ``JOBMONITOR_REQUIRE_BROWSER=1``."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (JOBMONITOR_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


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
        horses = children_of(self.worker_pid)
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


def wait_for_worker(process: subprocess.Popen[bytes], redis: Redis, name: str, log: Path) -> None:
    """Wait until the worker subprocess registered itself in Redis as ``name`` (fail if it exits
    or takes over 60 s, with its log)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the RQ worker exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if redis.exists(f"rq:worker:{name}"):
            return
        time.sleep(0.1)
    pytest.fail(f"the RQ worker did not register within 60 s:\n{log.read_text(errors='replace')}")


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    """Stop the worker subprocess warmly (SIGTERM), killing it and its work horses after 20 s."""
    if process.poll() is not None:
        return
    # RQ's work horse calls setpgrp(): it is not in the worker's process group, so note it now
    horses = children_of(process.pid)
    process.send_signal(signal.SIGTERM)  # warm shutdown: the current job (if any) may pause or finish
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the worker's own process group (start_new_session)
        process.wait(timeout=10)
    for pid in horses:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def browser_database(root: Path) -> tuple[str, Any]:
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
        unavailable(f"no database server at {DATABASE_URL}: {error}")

    def drop() -> None:
        with server.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        server.dispose()

    return url.render_as_string(hide_password=False), drop
