"""The live example catalogue of the browser tests (``tests/browser``): its settings, the
:class:`LiveApp` a test drives, and the worker subprocess and database behind it. The fixtures
that start them are in ``tests/browser/conftest.py``, whose docstring tells the whole setup.

Chromium is Debian's ``/usr/bin/chromium`` (``JOBMONITOR_CHROMIUM`` overrides it). Without it
the tests are skipped with the reason, unless ``JOBMONITOR_REQUIRE_BROWSER=1`` makes that a
failure (:func:`unavailable`).

:func:`assert_accessible` runs axe-core (bundled by ``axe-playwright-python``, offline) on the
page as it is now and fails on every serious or critical violation, naming its rule, its help
text and the selectors of the failing elements. The only rules it leaves out are the ones of
:data:`AXE_EXCLUDED`, each for named elements that are not ours, with the reason.
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
from axe_playwright_python.sync_playwright import Axe
from redis import Redis

from example_app.extensions import db
from example_app.models import Product
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
AXE = Axe()
AXE_IMPACTS = ("serious", "critical")  # what fails a page; "minor" and "moderate" are reported by axe only
#: Violations left out, each of one rule on the elements a CSS selector names, with why:
#: {(rule id, selector): reason}. Never a whole rule, never a whole page.
AXE_EXCLUDED: dict[tuple[str, str], str] = {
    # none today: Flask-Admin's <html> has no lang attribute, and the page script sets the
    # request's language on it (html-has-lang used to be excluded here)
}
#: Whether the element axe names (its selector) matches one of the selectors.
MATCHES = """([target, selectors]) => {
    const element = document.querySelector(target);
    return !!element && selectors.some((selector) => element.matches(selector));
}"""


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
    seeded_products: int = 0  # the highest product id after ``flask seed`` (:meth:`restore_catalogue`)

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

    def restore_catalogue(self) -> None:
        """Take out the products added since ``flask seed`` (by earlier tests' imports), back to
        its 200: a job over the whole catalogue (an export, the pricing rules' family) then does
        the same work whichever tests ran before it. The seeded ones keep what tests changed
        (prices, names); none of them is added again."""
        products = Product.__table__
        with self.app.app_context(), db.engine.begin() as connection:
            if not self.seeded_products:
                self.seeded_products = int(connection.execute(sa.select(sa.func.max(products.c.id))).scalar() or 0)
            connection.execute(sa.delete(products).where(products.c.id > self.seeded_products))

    def add_products(self, count: int, tag: str) -> None:
        """Add ``count`` products (SKU ``BRW-<tag>-<n>``) straight to the catalogue, so that a job
        over all of it runs as long as a test needs (a row every 20 ms); taken out before the
        next test."""
        rows = [
            {"sku": f"BRW-{tag}-{number:05d}", "name": f"Product {tag} {number}", "price": 9.99, "stock": 1}
            for number in range(1, count + 1)
        ]
        with self.app.app_context(), db.engine.begin() as connection:
            connection.execute(sa.insert(Product.__table__), rows)

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


def axe_violations(page: Any, include: list[str] | None = None) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of ``page`` as it is now, in the elements
    ``include`` names (CSS selectors; the whole page without), the elements of
    :data:`AXE_EXCLUDED` taken out (a rule left with no element is dropped)."""
    context = {"include": [[selector] for selector in include]} if include else None
    results = AXE.run(page, context=context, options={"resultTypes": ["violations"]})
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] not in AXE_IMPACTS:
            continue
        excluded = [selector for rule, selector in AXE_EXCLUDED if rule == violation["id"]]
        nodes = [
            node
            for node in violation["nodes"]
            if not (excluded and page.evaluate(MATCHES, [" ".join(str(p) for p in node["target"]), excluded]))
        ]
        if nodes:
            found.append(dict(violation, nodes=nodes))
    return found


def accessibility_report(page: Any, context: str = "", include: list[str] | None = None) -> str:
    """What axe-core finds serious or critical on ``page`` now (in ``include`` only, if given),
    "" if nothing: ``context`` (e.g. "job list, admin") and the page's address, then each rule's
    id, impact, help text and address, and the selectors and markup of its failing elements."""
    violations = axe_violations(page, include)
    if not violations:
        return ""
    lines = [f"{context or 'page'} at {page.url}: {len(violations)} serious or critical accessibility violation(s)"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            summary = " ".join((node.get("failureSummary") or "").split())
            markup = " ".join(node["html"].split())
            lines.append(f"    {target}  {markup[:200]}  {summary[:300]}")
    return "\n".join(lines)


def assert_accessible(page: Any, context: str = "", include: list[str] | None = None) -> None:
    """Fail with :func:`accessibility_report` if axe-core finds a serious or critical violation."""
    report = accessibility_report(page, context, include)
    if report:
        pytest.fail(report)


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
