"""Progress that moves: a step's progress reaches the pages' JSON while the step still runs,
whatever the task does with its own database transaction (context.py, live.py).

A real RQ worker (SimpleWorker, in this thread) runs a task that writes a row per item through
the host's ``db.session``; another thread reads what a person's page would read, and releases
the task (a Redis key) once it saw progress, or after a generous deadline. No timing assert:
the task keeps advancing until the watcher has seen what it waits for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from flask_jobmonitor.keys import live_key
from flask_jobmonitor.records.models import job_table

from .. import tasks
from ..support.web import enqueue
from ..support.workers import run_worker

WATCH_SECONDS = 45  # how long the watcher waits for progress before it gives up (and fails)


@pytest.fixture
def scratch(engine: sa.Engine) -> sa.Engine:
    tasks.scratch_table.create(engine, checkfirst=True)
    return engine


def run_while_watching(app: Flask, redis_url: str, job_id: str, saw: Callable[[], Any]) -> list[Any]:
    """Run the queued job with a real worker while another thread calls ``saw()`` every 0.1 s;
    the first truthy answer (or the deadline, or an error) releases the job. Returns the
    truthy answers seen (empty: never)."""
    redis = Redis.from_url(redis_url)
    seen: list[Any] = []
    errors: list[BaseException] = []

    def watch() -> None:
        deadline = time.monotonic() + WATCH_SECONDS
        try:
            while time.monotonic() < deadline:
                answer = saw()
                if answer:
                    seen.append(answer)
                    return
                time.sleep(0.1)
        except BaseException as error:  # reported by the test thread
            errors.append(error)
        finally:
            redis.set(tasks.release_key(job_id), 1, ex=600)

    watcher = threading.Thread(target=watch, name="watcher")
    watcher.start()
    try:
        run_worker(app)
    finally:
        redis.set(tasks.release_key(job_id), 1, ex=600)
        watcher.join()
    if errors:
        raise errors[0]
    return seen


def stored_row(engine: sa.Engine, job_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.select(job_table).where(job_table.c.id == job_id)).one()


def test_progress_shows_in_the_json_while_the_task_holds_its_transaction_open(
    app, scratch, client_for, redis_url, database_url
):
    job_id = enqueue(app, tasks.saves_in_one_transaction)
    client = client_for("clerk_a")

    def progress_in_json() -> Any:
        detail = client.get(f"/jobmonitor/api/jobs/{job_id}").get_json()
        summary = client.get(f"/jobmonitor/api/jobs?ids={job_id}").get_json()["jobs"][0]
        step = detail["steps"][0]
        moving = step["done"] > 0 and summary["progress_done"] > 0
        return detail if detail["status"] == step["status"] == "running" and moving else None

    seen = run_while_watching(app, redis_url, job_id, progress_in_json)
    assert seen, f"the step showed no progress within {WATCH_SECONDS} s while it ran"
    detail = seen[0]
    assert detail["steps"][0]["status_label"] == "Running"
    row = stored_row(scratch, job_id)
    assert row.status == "completed"
    assert row.progress_done > 0  # and the end of the step reached SQL
    assert not Redis.from_url(redis_url).exists(live_key(job_id))  # SQL is the record again


def test_progress_of_a_task_committing_in_batches_reaches_sql_while_the_step_runs(app, scratch, redis_url):
    job_id = enqueue(app, tasks.saves_in_batches, commit_every=10)

    def progress_in_sql() -> Any:
        row = stored_row(scratch, job_id)
        return row.status == "running" and row.current_step == 1 and row.progress_done > 0

    seen = run_while_watching(app, redis_url, job_id, progress_in_sql)
    assert seen, f"the job's row showed no progress within {WATCH_SECONDS} s while the step ran"
    assert stored_row(scratch, job_id).status == "completed"
