"""What RQ and rq-scheduler store by dotted name keeps working whatever the package's layout:
jobs queued as ``flask_jobmonitor.runner.run_job`` and schedules launched as
``flask_jobmonitor.schedules.launch_scheduled`` (stable entry points, forwarding to the modules
that hold the code), and the names the docs tell host apps to import."""

from __future__ import annotations

import sqlalchemy as sa
from rq_scheduler import Scheduler

import flask_jobmonitor
from flask_jobmonitor.jobs.schedules import LAUNCHER_PATH, RETENTION_SCHEDULE, create_scheduler
from flask_jobmonitor.jobs.submit import RUNNER_PATH, RUNNER_PATHS
from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.state import get_state

from .support.extensions import jobmonitor
from .support.rows import insert_job, job_row
from .support.workers import run_worker

#: The names releases before the package's folders stored in RQ and rq-scheduler.
STORED_BEFORE = ("flask_jobmonitor.runner.run_job", "flask_jobmonitor.schedules.launch_scheduled")


def test_the_stored_names_are_those_of_every_release():
    assert (RUNNER_PATH, LAUNCHER_PATH) == STORED_BEFORE
    assert "flask_jobmonitor.worker.runner.run_job" in RUNNER_PATHS


def test_a_job_queued_under_the_stored_runner_name_runs(app, engine, worker_class):
    first = insert_job(engine, task="tests.tasks.noop")
    second = insert_job(engine, task="tests.tasks.noop")
    get_state(app).queue().enqueue(STORED_BEFORE[0], first, job_id=first)  # as an earlier release queued it
    get_state(app).queue().enqueue("flask_jobmonitor.worker.runner.run_job", second, job_id=second)

    run_worker(app, worker_class)

    assert [(job_row(engine, i).status, job_row(engine, i).attempt) for i in (first, second)] == [("completed", 1)] * 2


def test_a_schedule_stored_under_the_launcher_name_launches_and_another_name_is_rewritten(app, engine):
    state = get_state(app)
    state.queue("high").enqueue(STORED_BEFORE[1], RETENTION_SCHEDULE)  # a due entry, as stored

    run_worker(app)

    with engine.connect() as connection:
        launched = connection.execute(sa.select(job_table.c.task, job_table.c.status)).all()
    assert [(row.task, row.status) for row in launched] == [(RETENTION_SCHEDULE, "completed")]

    scheduler = Scheduler(connection=state.redis)
    schedule = jobmonitor.schedule(RETENTION_SCHEDULE, "0 3 * * *", name="other-launcher")
    try:
        other = "flask_jobmonitor.jobs.schedules.launch_scheduled"
        scheduler.cron(schedule.cron, func=other, args=[schedule.name], id=schedule.rq_id)
        [entry] = [e for e in scheduler.get_jobs() if e.id == schedule.rq_id]
        assert entry.func_name == other

        create_scheduler(app)  # a release's scheduler starts

        [entry] = [e for e in scheduler.get_jobs() if e.id == schedule.rq_id]
        assert entry.func_name == LAUNCHER_PATH
    finally:
        del jobmonitor.schedules[schedule.name]
        for entry in scheduler.get_jobs():
            if entry.id == schedule.rq_id:
                scheduler.cancel(entry)
                entry.delete()


def test_the_public_api_covers_what_a_host_imports():
    names = ("JobMonitor", "JobContext", "create_worker", "Base", "upgrade", "stamp", "control", "Job", "Storage")
    for name in (*names, "JobPermissions", "create_sqlite_search", "StopRequested", "PermissionDenied"):
        assert name in flask_jobmonitor.__all__ and hasattr(flask_jobmonitor, name), name
    for action in ("stop", "force_stop", "resume", "cancel", "restart", "delete", "set_priority", "perform"):
        assert callable(getattr(flask_jobmonitor.control, action)), action
    from flask_jobmonitor.worker import create_worker  # where the docs sent worker scripts before

    assert create_worker is flask_jobmonitor.create_worker
