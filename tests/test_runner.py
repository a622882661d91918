"""The runner: claiming a job, running its task, recording the outcome in SQL and in RQ."""

from __future__ import annotations

import dataclasses
import logging

import sqlalchemy as sa
from rq import SimpleWorker
from rq.job import Job as RQJob
from rq.job import JobStatus as RQJobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from flask_jobmonitor import JobStatus
from flask_jobmonitor.records.models import JobLog, JobNotification, JobStep, job_table
from flask_jobmonitor.records.transitions import apply_transition
from flask_jobmonitor.state import get_state
from flask_jobmonitor.worker.handover import HORSE_COMPLETED, HORSE_NOT_STARTED, HORSE_STARTED
from flask_jobmonitor.worker.runner import claim, settle_after_horse

from . import tasks
from .support.extensions import db, jobmonitor
from .support.rows import job_row
from .support.workers import run_worker
from .tasks import fails, fails_for_people, fails_revealing, noop, records_param


def notifications_of(job_id: str) -> list[tuple[str, str]]:
    rows = db.session.scalars(sa.select(JobNotification).where(JobNotification.job_id == job_id))
    return [(n.user_id, n.event) for n in rows]


def rq_registry(app, registry_class):  # type: ignore[no-untyped-def]
    state = get_state(app)
    return registry_class(queue=state.queue("default"))


def test_successful_job_is_completed_with_its_run_recorded(app, engine, worker_class):
    job = jobmonitor.enqueue(noop, user=("7", "Ann"))

    worker = run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.COMPLETED, row.error_message
    assert row.attempt == 1
    assert row.worker_name == worker.name
    assert row.created_at <= row.started_at <= row.ended_at
    assert row.status_changed_at >= row.ended_at
    assert row.error_message is None
    assert notifications_of(job.id) == [("7", "completed")]
    assert job.id in rq_registry(app, FinishedJobRegistry)
    assert RQJob.fetch(job.id, connection=get_state(app).redis).return_value() == "completed"


def test_job_of_nobody_completes_without_a_notification(app, engine):
    job = jobmonitor.enqueue(noop)

    run_worker(app)

    assert job_row(engine, job.id).status == JobStatus.COMPLETED
    assert notifications_of(job.id) == []


UNEXPECTED = "The job failed because of an unexpected error ({}). An administrator can see the details."


def test_failing_job_is_failed_with_message_step_traceback_and_notification(app, engine, worker_class):
    job = jobmonitor.enqueue(fails, user=("7", "Ann"))

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.FAILED
    # every viewer reads the class only; the text and traceback are the detail (failures.py)
    assert row.error_message == UNEXPECTED.format("ValueError")
    assert "Traceback (most recent call last)" in row.error_detail
    assert "raise ValueError(message)" in row.error_detail
    assert row.error_detail.endswith("ValueError: boom")
    assert row.attempt == 1
    assert row.started_at <= row.ended_at
    [step] = db.session.scalars(sa.select(JobStep).where(JobStep.job_id == job.id))
    assert (step.name, step.status) == ("Work", "failed")
    logs = list(db.session.scalars(sa.select(JobLog).where(JobLog.job_id == job.id).order_by(JobLog.id)))
    assert [(log.level, log.message) for log in logs] == [
        (logging.WARNING, "about to fail"),
        (logging.ERROR, UNEXPECTED.format("ValueError")),
    ]
    assert logs[-1].step_id == step.id
    assert (row.error_count, row.warning_count) == (1, 1)
    assert notifications_of(job.id) == [("7", "failed")]
    assert job.id in rq_registry(app, FailedJobRegistry)
    assert RQJob.fetch(job.id, connection=get_state(app).redis).get_status() == RQJobStatus.FAILED


def test_a_failure_keeps_sql_parameters_and_paths_out_of_what_every_viewer_reads(app, engine, worker_class, caplog):
    job = jobmonitor.enqueue(fails_revealing, user=("7", "Ann"))

    with caplog.at_level(logging.ERROR, logger="flask_jobmonitor.internal.runner"):
        run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.FAILED
    assert row.error_message == UNEXPECTED.format("RuntimeError")
    logs = list(db.session.scalars(sa.select(JobLog.message).where(JobLog.job_id == job.id)))
    for public in [row.error_message, *logs]:
        for secret in ("SQL", "INSERT", "SECRET-SKU", "/srv/secret-app", "Traceback", tasks.__file__):
            assert secret not in public
    assert tasks.INTERNAL_ERROR_TEXT in row.error_detail and "Traceback" in row.error_detail
    if worker_class is SimpleWorker:  # the forking worker's horse logs in its own process
        [record] = [r for r in caplog.records if r.name == "flask_jobmonitor.internal.runner"]
        assert job.id in record.getMessage() and record.exc_info is not None
        assert tasks.INTERNAL_ERROR_TEXT in str(record.exc_info[1])


def test_a_job_failed_error_is_shown_to_everyone_as_is(app, engine, worker_class):
    job = jobmonitor.enqueue(fails_for_people, user=("7", "Ann"))

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert (row.status, row.error_message) == ("failed", "the import failed at line 17: price is not a number")
    logs = list(db.session.scalars(sa.select(JobLog.message).where(JobLog.job_id == job.id)))
    assert logs == ["the import failed at line 17: price is not a number"]
    assert "JobFailed: the import failed at line 17" in row.error_detail
    assert notifications_of(job.id) == [("7", "failed")]


def test_job_cancelled_before_a_worker_picks_it_is_not_run(app, engine, worker_class):
    job = jobmonitor.enqueue(records_param, value="must not run", user=("7", "Ann"))
    with engine.begin() as connection:
        apply_transition(connection, job.id, "cancel")

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.CANCELLED
    assert (row.attempt, row.started_at, row.worker_name, row.checkpoint) == (0, None, None, None)
    assert notifications_of(job.id) == []
    assert RQJob.fetch(job.id, connection=get_state(app).redis).return_value() == (
        "not run: the job was no longer queued"
    )


def test_job_naming_an_unregistered_task_fails_naming_the_task(app, engine):
    job = jobmonitor.enqueue(noop, user=("7", "Ann"))
    with engine.begin() as connection:
        connection.execute(sa.update(job_table).where(job_table.c.id == job.id).values(task="tests.tasks.removed"))

    run_worker(app)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.FAILED
    assert row.error_message == UNEXPECTED.format("UnknownTask")
    assert "'tests.tasks.removed'" in row.error_detail
    assert row.error_count == 1
    assert row.ended_at is not None
    assert notifications_of(job.id) == [("7", "failed")]
    assert job.id in rq_registry(app, FailedJobRegistry)


def test_claim_moves_a_queued_job_to_running_and_bumps_the_attempt(app, engine):
    job = jobmonitor.enqueue(records_param, 3, user=("7", "Ann"))

    run = claim(get_state(app), job.id, "worker-1")

    assert run is not None
    assert (run.job_id, run.attempt, run.task) == (job.id, 1, "tests.tasks.records_param")
    assert run.params == {"args": [3], "kwargs": {}}
    assert (run.run_by_id, run.run_by_name, run.checkpoint) == ("7", "Ann", None)
    row = job_row(engine, job.id)
    assert (row.status, row.attempt, row.worker_name) == ("running", 1, "worker-1")
    assert row.started_at is not None


def test_claim_of_a_job_that_is_not_queued_returns_none(app, engine):
    job = jobmonitor.enqueue(noop)
    claim(get_state(app), job.id, "worker-1")
    before = job_row(engine, job.id)

    assert claim(get_state(app), job.id, "worker-2") is None

    assert job_row(engine, job.id) == before


def test_second_claim_after_requeue_keeps_the_first_start_time(app, engine):
    job = jobmonitor.enqueue(noop)
    claim(get_state(app), job.id, "worker-1")
    first_start = job_row(engine, job.id).started_at
    with engine.begin() as connection:
        apply_transition(connection, job.id, "requeue")

    run = claim(get_state(app), job.id, "worker-2")

    assert run is not None and run.attempt == 2
    row = job_row(engine, job.id)
    assert (row.started_at, row.worker_name, row.ended_at) == (first_start, "worker-2", None)


# -- a forking worker settles the run its horse ran (HandOver.horse_outcome) -------------------------


def _claimed_by_a_forking_worker(app, task):  # type: ignore[no-untyped-def]
    job = jobmonitor.enqueue(task)
    get_state(app).queue("default").empty()  # the worker has dequeued it
    return job, claim(get_state(app), job.id, "fork-1")


def test_a_horse_that_completed_is_recorded_completed_whatever_rq_says(app, engine):
    job, run = _claimed_by_a_forking_worker(app, noop)

    settle_after_horse(get_state(app), run, HORSE_COMPLETED, "exit status 1")

    assert job_row(engine, job.id).status == JobStatus.COMPLETED


def test_a_horse_that_died_in_its_task_fails_a_task_that_cannot_resume(app, engine):
    job, run = _claimed_by_a_forking_worker(app, noop)

    settle_after_horse(get_state(app), run, HORSE_STARTED, "killed by signal 9")

    row = job_row(engine, job.id)
    assert row.status == JobStatus.FAILED
    assert row.error_message == "the work horse of worker fork-1 ended unexpectedly (killed by signal 9)"


def test_a_horse_that_died_before_its_task_began_queues_the_job_again(app, engine):
    """RQ's own bookkeeping in the horse failed (Redis went away) before the task ran: nothing
    was done, so even a task that cannot resume is queued again instead of failed."""
    job, run = _claimed_by_a_forking_worker(app, noop)

    settle_after_horse(get_state(app), run, HORSE_NOT_STARTED, "exit status 1")

    row = job_row(engine, job.id)
    assert (row.status, row.recoveries) == (JobStatus.QUEUED, 1)
    assert get_state(app).queue("default").job_ids == [job.id]
    messages = db.session.scalars(sa.select(JobLog.message).where(JobLog.job_id == job.id)).all()
    assert any("queued again (its work had not begun)" in m for m in messages)
    run_worker(app)
    assert job_row(engine, job.id).status == JobStatus.COMPLETED


def test_a_job_whose_horse_keeps_dying_before_it_begins_ends_failed(app, engine):
    state = get_state(app)
    state.settings = dataclasses.replace(state.settings, max_recoveries=0)
    job, run = _claimed_by_a_forking_worker(app, noop)

    settle_after_horse(get_state(app), run, HORSE_NOT_STARTED, "exit status 1")

    row = job_row(engine, job.id)
    assert row.status == JobStatus.FAILED
    assert "after 0 recoveries" in row.error_message
