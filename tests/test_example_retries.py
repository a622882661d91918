"""The example's supplier sync (example_app/tasks.py ``sync_supplier_stock``): its demo supplier
does not answer the first try, so a clerk who launches it sees it wait for its retry ("Retry 1 of
3 at ...") and then complete, with a real worker and RQ's own scheduler."""

from __future__ import annotations

import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler

from flask_jobmonitor.records.models import attempt_table, job_table, subtask_table
from flask_jobmonitor.state import get_state

from .support.databases import dispose_engines
from .support.examples import build_catalogue, log_in
from .support.queues import empty_queues
from .support.workers import run_worker


@pytest.fixture
def catalogue(redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = build_catalogue(f"sqlite:///{tmp_path / 'catalogue.db'}", redis_url, tmp_path / "files")
    empty_queues(redis_url, ("high", "default", "low"))
    yield app
    empty_queues(redis_url, ("high", "default", "low"))
    dispose_engines(app)


def _job(app: Flask) -> dict[str, Any]:
    with app.app_context(), get_state(app).engine.connect() as connection:
        return dict(connection.execute(sa.select(job_table)).mappings().one())


def _count(app: Flask, table: sa.Table) -> int:
    with app.app_context(), get_state(app).engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_a_clerk_sees_the_supplier_sync_wait_for_its_retry_then_complete(catalogue: Flask) -> None:
    clerk = log_in(catalogue, "clerk")
    assert clerk.post("/supplier-sync").status_code == 302

    run_worker(catalogue)

    job = _job(catalogue)
    assert (job["status"], job["retries"]) == ("queued", 1)
    listed = unescape(clerk.get("/admin/jobs/").get_data(as_text=True))
    assert "Retry 1 of 3 at " in listed
    page = unescape(clerk.get(f"/admin/jobs/{job['id']}/").get_data(as_text=True))
    assert "The supplier's stock feed did not answer within 10 seconds." in page  # its public message
    assert "1 failed attempt" in page

    # fifteen seconds later RQ's scheduler (which every worker runs) queues it again
    state = get_state(catalogue)
    queue = Queue(job["queue_name"], connection=state.redis)
    registry = ScheduledJobRegistry(queue=queue)
    assert registry.get_job_ids() == [job["id"]]
    state.redis.zadd(registry.key, {job["id"]: time.time() - 1})
    scheduler = RQScheduler([queue], connection=state.redis)
    scheduler.prepare_registries([queue.name])
    scheduler.enqueue_scheduled_jobs()
    run_worker(catalogue)

    job = _job(catalogue)
    assert (job["status"], job["retries"], job["attempt"]) == ("completed", 1, 2)
    assert _count(catalogue, attempt_table) == 1 and _count(catalogue, subtask_table) > 0
    page = unescape(clerk.get(f"/admin/jobs/{job['id']}/").get_data(as_text=True))
    assert "Completed" in page and "1 failed attempt" in page
