"""Recurring jobs through rq-scheduler and one-off delayed jobs through RQ's own scheduler."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rq.registry import ScheduledJobRegistry
from rq_scheduler import Scheduler

from flask_jobmonitor.jobs.schedules import LAUNCHER_PATH, create_scheduler, scheduled_runs
from flask_jobmonitor.tasks import SCHEDULE_ID_PREFIX

from . import reliability_tasks as rt
from .support.extensions import jobmonitor
from .support.reliability import QUEUES, reliability_env
from .support.rows import job_row, task_checkpoint
from .support.waiting import wait_status
from .support.workers import run_worker

NAME = "reliability.greet"


@pytest.fixture
def rel(database_url: str, redis_url: str, tmp_path: Path):
    with reliability_env(database_url, redis_url, tmp_path) as env:
        yield env


@pytest.fixture
def schedules(rel) -> Iterator[None]:
    """Leave the shared ``jobmonitor`` with the schedules it had, and rq-scheduler with none of ours."""
    before = dict(jobmonitor.schedules)
    yield
    jobmonitor.schedules.clear()
    jobmonitor.schedules.update(before)
    if rel._app is not None:
        scheduler = Scheduler(connection=rel.redis)
        for entry in scheduler.get_jobs():
            if entry.id.startswith(SCHEDULE_ID_PREFIX):
                scheduler.cancel(entry)
                entry.delete()


def held(scheduler: Scheduler) -> dict[str, str]:
    """The schedules rq-scheduler holds: entry id -> cron string."""
    return {e.id: e.meta.get("cron_string") for e in scheduler.get_jobs() if e.id.startswith(SCHEDULE_ID_PREFIX)}


def test_scheduler_holds_exactly_the_registered_schedules(rel, schedules):
    rel.start()
    greet = jobmonitor.schedule(rt.greets_on_schedule, "* * * * *", name=NAME, greeting="hi")
    scheduler = create_scheduler(rel.app)
    other = scheduler.enqueue_in(timedelta(hours=1), rt.greets_on_schedule.func)

    registered = {s.rq_id: s.cron for s in jobmonitor.schedules.values()}
    assert held(scheduler) == registered
    assert greet.rq_id in registered
    entry = next(e for e in scheduler.get_jobs() if e.id == greet.rq_id)
    assert (entry.func_name, entry.args, entry.origin) == (LAUNCHER_PATH, [NAME], QUEUES["high"])

    jobmonitor.schedule(rt.greets_on_schedule, "*/5 * * * *", name=NAME, greeting="hi")
    create_scheduler(rel.app)  # a new release starts its scheduler: the changed cron replaces the old
    assert held(scheduler)[greet.rq_id] == "*/5 * * * *"
    assert [e.id for e in scheduler.get_jobs()].count(greet.rq_id) == 1

    del jobmonitor.schedules[NAME]
    create_scheduler(rel.app)
    assert greet.rq_id not in held(scheduler)
    assert held(scheduler) == {s.rq_id: s.cron for s in jobmonitor.schedules.values()}
    assert other.id in {e.id for e in scheduler.get_jobs()}  # entries not ours are left alone
    scheduler.cancel(other)


def test_a_scheduled_launch_run_by_a_worker_creates_a_normal_tracked_job(rel, schedules):
    rel.start()
    jobmonitor.schedule(rt.greets_on_schedule, "* * * * *", name=NAME, greeting="hi")
    scheduler = create_scheduler(rel.app)
    entry = next(e for e in scheduler.get_jobs() if e.id == jobmonitor.schedules[NAME].rq_id)

    scheduler.enqueue_job(entry)  # what rq-scheduler does at the due time
    run_worker(rel.app)

    (job,) = scheduled_runs(rel.state, NAME)
    assert (job.name, job.task, job.status, job.is_system) == (
        f"{NAME} (scheduled)",
        rt.greets_on_schedule.name,
        "completed",
        False,
    )
    assert task_checkpoint(job_row(rel.engine, job.id))["greeting"] == "hi"
    assert held(scheduler)[entry.id] == "* * * * *"  # and it stays scheduled for the next minute


@pytest.mark.parametrize("cron", ["not a cron", "61 * * * *", "* * * *", ""])
def test_an_invalid_cron_is_refused_with_value_error(rel, schedules, cron):
    rel.start()

    with pytest.raises(ValueError, match="cron"):
        jobmonitor.schedule(rt.greets_on_schedule, cron, name=NAME)

    assert NAME not in jobmonitor.schedules


@pytest.mark.slow
def test_a_delayed_job_runs_after_its_delay_only_with_a_worker_running_rqs_scheduler(rel):
    rel.start()
    rel.worker("rq.SimpleWorker", scheduler=False)
    first = jobmonitor.enqueue(rt.greets_on_schedule, delay=1, greeting="later")

    time.sleep(3)
    waiting = job_row(rel.engine, first.id)
    assert (waiting.status, waiting.started_at) == ("queued", None)
    assert first.id in ScheduledJobRegistry(QUEUES["default"], connection=rel.redis).get_job_ids()

    rel.worker("rq.SimpleWorker", scheduler=True)
    assert wait_status(rel.engine, first.id, ("completed", "failed"), 30).status == "completed"

    second = jobmonitor.enqueue(rt.greets_on_schedule, delay=1, greeting="soon")
    done = wait_status(rel.engine, second.id, ("completed", "failed"), 30)
    assert done.status == "completed"
    # RQ keeps the due time in whole seconds: the job is due at the start of the second in which
    # its delay ends, and RQ's scheduler looks every second
    due = math.floor(_timestamp(done.created_at) + 1)
    assert due <= _timestamp(done.started_at) < due + 3, (done.created_at, done.started_at)
    assert task_checkpoint(done)["greeting"] == "soon"


def _timestamp(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=timezone.utc).timestamp()
