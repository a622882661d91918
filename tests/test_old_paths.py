"""What was written down before the package moved into folders keeps working: RQ jobs that name
``flask_jobmonitor.runner.run_job``, rq-scheduler entries that name
``flask_jobmonitor.schedules.launch_scheduled``, and the imports the docs gave host apps."""

from __future__ import annotations

import sqlalchemy as sa
from rq_scheduler import Scheduler

import flask_jobmonitor
from flask_jobmonitor.jobs.schedules import LAUNCHER_PATH, LEGACY_LAUNCHER_PATH, RETENTION_SCHEDULE, create_scheduler
from flask_jobmonitor.jobs.submit import LEGACY_RUNNER_PATH, RUNNER_PATH
from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.state import get_state

from .support.extensions import jobmonitor
from .support.rows import insert_job, job_row
from .support.workers import run_worker


def test_a_job_queued_under_the_old_runner_path_runs(app, engine, worker_class):
    assert RUNNER_PATH != LEGACY_RUNNER_PATH
    job_id = insert_job(engine, task="tests.tasks.noop")
    get_state(app).queue().enqueue(LEGACY_RUNNER_PATH, job_id, job_id=job_id)

    run_worker(app, worker_class)

    row = job_row(engine, job_id)
    assert (row.status, row.attempt) == ("completed", 1)


def test_a_schedule_written_under_the_old_launcher_path_launches_and_is_rewritten(app, engine):
    state = get_state(app)
    state.queue("high").enqueue(LEGACY_LAUNCHER_PATH, RETENTION_SCHEDULE)  # a due entry of before

    run_worker(app)

    with engine.connect() as connection:
        launched = connection.execute(sa.select(job_table.c.task, job_table.c.status)).all()
    assert [(row.task, row.status) for row in launched] == [(RETENTION_SCHEDULE, "completed")]

    scheduler = Scheduler(connection=state.redis)
    schedule = jobmonitor.schedule(RETENTION_SCHEDULE, "0 3 * * *", name="old-launcher")
    try:
        # the entry as the release before wrote it
        scheduler.cron(schedule.cron, func=LEGACY_LAUNCHER_PATH, args=[schedule.name], id=schedule.rq_id)
        [entry] = [e for e in scheduler.get_jobs() if e.id == schedule.rq_id]
        assert entry.func_name == LEGACY_LAUNCHER_PATH

        create_scheduler(app)  # the new release's scheduler starts

        [entry] = [e for e in scheduler.get_jobs() if e.id == schedule.rq_id]
        assert entry.func_name == LAUNCHER_PATH
    finally:
        del jobmonitor.schedules[schedule.name]
        for entry in scheduler.get_jobs():
            if entry.id == schedule.rq_id:
                scheduler.cancel(entry)
                entry.delete()


def test_the_public_api_covers_what_a_host_imports():
    for name in ("JobMonitor", "JobContext", "create_worker", "Base", "upgrade", "stamp", "control", "Job"):
        assert name in flask_jobmonitor.__all__ and hasattr(flask_jobmonitor, name), name
    for action in ("stop", "force_stop", "resume", "cancel", "restart", "delete", "set_priority"):
        assert callable(getattr(flask_jobmonitor.control, action)), action
    from flask_jobmonitor.worker import create_worker  # where the docs sent worker scripts before

    assert create_worker is flask_jobmonitor.create_worker
