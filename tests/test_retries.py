"""Retries (tasks.RetryPolicy, worker/runner.py): a run that raises an error its task's policy
retries is recorded as an attempt and queued again for its next try, through RQ's own ``Retry``;
the page and the JSON say "retry 2 of 3 at 14:05"; a stop, a cancel, an error the policy does not
retry and the last retry end the job as before. On both worker classes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq.job import Job as RQJob
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from sqlalchemy.orm import Session

from flask_jobmonitor import JobMonitor, RetryPolicy, events
from flask_jobmonitor.jobs import control
from flask_jobmonitor.jobs.maintenance import recover
from flask_jobmonitor.jobs.signals import read_signal, send_signal
from flask_jobmonitor.records.models import Job, attempt_table, file_table, job_table
from flask_jobmonitor.state import JobMonitorState, get_state
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.worker.process import create_worker

from . import retry_tasks as rt
from .support.apps import build_app, emptied
from .support.databases import pushed
from .support.extensions import jobmonitor
from .support.rows import job_row, log_messages, notifications, steps_of, subtasks
from .support.users import User
from .support.waiting import wait_status
from .support.workers import run_worker, worker_thread

ADA = User("1", "Ada Admin", ["admin"])


@pytest.fixture
def app(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    application = build_app(
        database_url,
        redis_url,
        str(tmp_path / "files"),
        name="jobmonitor_retry_tests",
        login="header",
        users={ADA.id: ADA},
        admin="Retry tests",
        WTF_CSRF_ENABLED=False,
        JOBMONITOR_STOP_CHECK_INTERVAL=0.02,
        JOBMONITOR_FLASH_ON_ENQUEUE=False,
    )
    with pushed(emptied(application, redis_url)):
        try:
            yield application
        finally:
            rt.delete_keys(Redis.from_url(redis_url))


@pytest.fixture
def state(app: Flask) -> JobMonitorState:
    return get_state(app)


def _runs(state: JobMonitorState, job_id: str) -> int:
    return int(state.redis.get(rt.runs_key(job_id)) or 0)


def _attempts(engine: sa.Engine, job_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(attempt_table).where(attempt_table.c.job_id == job_id).order_by(attempt_table.c.number)
            )
        )


def job_row_object(engine: sa.Engine, job_id: str) -> Job:
    with Session(engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def _files(engine: sa.Engine, job_id: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(file_table).where(file_table.c.job_id == job_id)))


def _heard(signal: Any) -> Iterator[list[dict[str, Any]]]:
    heard: list[dict[str, Any]] = []

    def receiver(sender: Flask, **fields: Any) -> None:
        fields.pop("job")
        heard.append(fields)

    signal.connect(receiver)
    try:
        yield heard
    finally:
        signal.disconnect(receiver)


@pytest.fixture
def retrying_heard() -> Iterator[list[dict[str, Any]]]:
    yield from _heard(events.job_retrying)


@pytest.fixture
def ended_heard() -> Iterator[list[dict[str, Any]]]:
    yield from _heard(events.job_ended)


# -- the policy -------------------------------------------------------------------------------


def test_a_policy_is_built_from_rqs_retry_or_a_number_and_checked_when_the_task_is_declared():
    policy = RetryPolicy.build(Retry(max=3, interval=[10, 60]), ConnectionError)
    assert (policy.max, policy.intervals, policy.on) == (3, (10, 60), (ConnectionError,))
    # RQ's own rule: past the last interval given, the last one again
    assert [policy.interval(n) for n in range(4)] == [10, 60, 60, 60]
    assert RetryPolicy.build(2, (OSError, ValueError)).intervals == (0,)
    assert policy.applies_to(ConnectionResetError()) and not policy.applies_to(ValueError())

    monitor = JobMonitor()
    with pytest.raises(ValueError, match="max"):
        monitor.task(retry=0)(lambda ctx: None)
    with pytest.raises(TypeError, match="retry must be"):
        monitor.task(retry="3")(lambda ctx: None)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="retry must be"):
        monitor.task(retry=True)(lambda ctx: None)
    with pytest.raises(TypeError, match="retry_on"):
        monitor.task(retry=1, retry_on=KeyboardInterrupt)(lambda ctx: None)
    with pytest.raises(TypeError, match="retry_on"):
        monitor.task(retry=1, retry_on=())(lambda ctx: None)


# -- a retry that succeeds ------------------------------------------------------------------------


def test_a_failed_run_is_tried_again_and_the_retry_starts_over(
    app, state, engine, worker_class, retrying_heard, ended_heard
):
    job = jobmonitor.enqueue(rt.flaky, fail_times=1, user=ADA)

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert (row.status, row.retries, _runs(state, job.id)) == ("completed", 1, 2)
    assert row.error_message is None
    (attempt,) = _attempts(engine, job.id)
    assert attempt.number == 1 and attempt.retry_at is not None and attempt.worker_name
    assert "ConnectionError" in attempt.error_message and "hung up (run 1)" not in attempt.error_message
    assert "hung up (run 1)" in attempt.error_detail and "Traceback" in attempt.error_detail
    assert attempt.started_at <= attempt.ended_at <= attempt.retry_at
    # the retry started over: its own results only, its steps and progress counted once
    assert [(s.name, s.message) for s in subtasks(engine, job.id)] == [
        ("row 1", "saved by run 2"),
        ("row 2", "saved by run 2"),
    ]
    assert [(f.filename, f.kind) for f in _files(engine, job.id)] == [("result.txt", "output")]
    steps = steps_of(engine, job.id)
    assert [(steps[n].status, steps[n].done) for n in ("Read", "Save")] == [("completed", 2), ("completed", 2)]
    assert row.progress_done == 2 and row.current_step == 2
    messages = log_messages(engine, job.id)
    assert any(m.startswith("Attempt 1 failed; retry 1 of 2 at ") for m in messages), messages
    # one end, and the person hears of that end only
    assert notifications(engine, job.id) == [("1", "completed")]
    if worker_class is SimpleWorker:  # a forked horse's signals are heard in the horse (test_events.py)
        assert [(h["job_id"], h["retry"]) for h in retrying_heard] == [(job.id, 1)]
        assert retrying_heard[0]["retry_at"] == attempt.retry_at
        assert [(h["job_id"], h["outcome"]) for h in ended_heard] == [(job.id, "completed")]


def test_after_the_last_retry_the_job_fails_with_every_attempt_listed(app, state, engine, worker_class, ended_heard):
    job = jobmonitor.enqueue(rt.flaky, fail_times=9, user=ADA)

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert (row.status, row.retries, _runs(state, job.id)) == ("failed", 2, 3)
    assert [(a.number, a.retry_at is not None) for a in _attempts(engine, job.id)] == [(1, True), (2, True), (3, False)]
    assert "Attempt 3 failed; no retry left (2 of 2 used)." in log_messages(engine, job.id)
    assert notifications(engine, job.id) == [("1", "failed")]
    if worker_class is SimpleWorker:
        assert [h["outcome"] for h in ended_heard] == ["failed"]
    # RQ agrees: the job is in its failed registry, not scheduled
    assert job.id in Queue(row.queue_name, connection=state.redis).failed_job_registry.get_job_ids()


def test_an_error_the_policy_does_not_retry_fails_the_job_at_once(app, state, engine, worker_class):
    job = jobmonitor.enqueue(rt.fails_otherwise, user=ADA)

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert (row.status, row.retries, _runs(state, job.id)) == ("failed", 0, 1)
    ((number, retry_at),) = [(a.number, a.retry_at) for a in _attempts(engine, job.id)]
    assert (number, retry_at) == (1, None)


def test_a_resumable_task_retries_from_its_checkpoint(app, state, engine, worker_class):
    job = jobmonitor.enqueue(rt.resumes_after_failure, count=4, user=ADA)

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert (row.status, row.retries, _runs(state, job.id)) == ("completed", 1, 2)
    # rows 0 and 1 were saved by the first run and not done again
    assert [(s.name, s.message) for s in subtasks(engine, job.id)] == [
        ("row 0", "run 1"),
        ("row 1", "run 1"),
        ("row 2", "run 2"),
        ("row 3", "run 2"),
    ]
    assert steps_of(engine, job.id)["Rows"].done == 4


# -- a retry that waits -------------------------------------------------------------------------


def test_a_retry_waits_in_rqs_scheduled_registry_until_its_time(app, state, engine, worker_class):
    job = jobmonitor.enqueue(rt.fails_then_waits, user=ADA)
    before = utcnow()

    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert (row.status, row.retries, row.ended_at) == ("queued", 1, None)
    assert timedelta(seconds=59) <= row.enqueued_at - before <= timedelta(seconds=90)  # 60 s after the failure
    (attempt,) = _attempts(engine, job.id)
    assert attempt.retry_at == row.enqueued_at
    queue = Queue(row.queue_name, connection=state.redis)
    registry = ScheduledJobRegistry(queue=queue)
    assert registry.get_job_ids() == [job.id]
    due = registry.get_scheduled_time(job.id).replace(tzinfo=None)
    assert abs((due - row.enqueued_at).total_seconds()) < 2

    # its time comes: RQ's scheduler queues it, a worker runs it, and the next retry waits ten minutes
    state.redis.zadd(registry.key, {job.id: time.time() - 1})
    scheduler = RQScheduler([queue], connection=state.redis)
    scheduler.prepare_registries([queue.name])
    scheduler.enqueue_scheduled_jobs()
    run_worker(app, worker_class)

    row = job_row(engine, job.id)
    assert (row.status, row.retries, _runs(state, job.id)) == ("queued", 2, 2)
    assert timedelta(seconds=540) <= row.enqueued_at - utcnow() <= timedelta(seconds=601)  # 600 s after it
    assert [a.number for a in _attempts(engine, job.id)] == [1, 2]


def test_a_job_waiting_for_its_retry_can_be_cancelled_and_never_runs_again(app, state, engine):
    job = jobmonitor.enqueue(rt.fails_then_waits, user=ADA)
    run_worker(app)
    assert job_row(engine, job.id).status == "queued"

    control.cancel(state, job.id, ADA)

    assert job_row(engine, job.id).status == "cancelled"
    queue = Queue(job_row(engine, job.id).queue_name, connection=state.redis)
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []
    # even were RQ to hand it over once more, its claim is refused
    queue.enqueue_job(RQJob.fetch(job.id, connection=state.redis))
    run_worker(app)
    assert (job_row(engine, job.id).status, _runs(state, job.id)) == ("cancelled", 1)


def test_a_run_asked_to_stop_that_then_raises_fails_and_is_not_retried(app, state, engine, worker_class):
    job = jobmonitor.enqueue(rt.raises_when_told, user=ADA)
    with worker_thread(app, worker_class):
        state.redis.blpop([rt.arrival_key(job.id)], timeout=20)
        control.stop(state, job.id, ADA)
        assert job_row(engine, job.id).status == "stopping"
        state.redis.rpush(rt.go_key(job.id), "go")
        row = wait_status(engine, job.id, ("failed", "stopped", "queued"))

    assert (row.status, row.retries, _runs(state, job.id)) == ("failed", 0, 1)
    assert [a.retry_at for a in _attempts(engine, job.id)] == [None]


def test_deleting_a_retried_job_deletes_its_attempts(app, state, engine):
    job = jobmonitor.enqueue(rt.flaky, fail_times=9, user=ADA)
    run_worker(app)
    assert len(_attempts(engine, job.id)) == 3

    control.delete(state, job.id, ADA)

    assert _attempts(engine, job.id) == []


# -- recovery, shutdown and signals around a retry that waits ------------------------------------


def _age(engine: sa.Engine, job_id: str, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(job_table).where(job_table.c.id == job_id).values(**values))


def _scheduled_at(state: JobMonitorState, queue: Queue, job_id: str) -> Any:
    registry = ScheduledJobRegistry(queue=queue)
    return registry.get_scheduled_time(job_id).replace(tzinfo=None) if job_id in registry.get_job_ids() else None


def test_recovery_leaves_a_waiting_retry_to_rqs_scheduler_and_gives_a_lost_one_back_for_its_time(app, state, engine):
    job = jobmonitor.enqueue(rt.fails_then_waits, user=ADA)
    run_worker(app)
    row = job_row(engine, job.id)
    queue = Queue(row.queue_name, connection=state.redis)
    long_ago = utcnow() - timedelta(hours=1)
    _age(engine, job.id, status_changed_at=long_ago)  # looked at by recovery's pass

    assert recover(state).resubmitted == []
    assert _scheduled_at(state, queue, job.id) is not None and queue.count == 0

    # Redis loses it: recovery hands it back to RQ for its time, not at once
    RQJob.fetch(job.id, connection=state.redis).delete()
    assert recover(state).resubmitted == [job.id]
    assert queue.count == 0
    assert abs((_scheduled_at(state, queue, job.id) - row.enqueued_at).total_seconds()) < 2


def test_recovery_queues_a_retry_that_no_scheduler_moved_long_past_its_time(app, state, engine):
    job = jobmonitor.enqueue(rt.fails_then_waits, user=ADA)
    run_worker(app)
    queue = Queue(job_row(engine, job.id).queue_name, connection=state.redis)
    long_ago = utcnow() - timedelta(hours=1)
    _age(engine, job.id, status_changed_at=long_ago, enqueued_at=long_ago)

    assert recover(state).resubmitted == [job.id]

    assert _scheduled_at(state, queue, job.id) is None and queue.count == 1
    run_worker(app)
    assert (job_row(engine, job.id).retries, _runs(state, job.id)) == (2, 2)


def test_a_shutting_down_worker_does_not_queue_a_waiting_retry_early(app, state, engine):
    job = jobmonitor.enqueue(rt.fails_then_waits, user=ADA)
    run_worker(app)
    queue = Queue(job_row(engine, job.id).queue_name, connection=state.redis)
    worker = create_worker(app)

    worker._requeue_if_lost(job.id, queue)  # what the worker checks after a shutdown signal

    assert queue.count == 0 and _scheduled_at(state, queue, job.id) is not None


def test_a_job_that_started_children_is_not_retried(app, state, engine):
    job = jobmonitor.enqueue(rt.spawns_then_fails, user=ADA)

    run_worker(app)

    row = job_row(engine, job.id)
    assert (row.status, row.retries, _runs(state, job.id)) == ("failed", 0, 1)
    assert "Not retried: this job has started child jobs." in log_messages(engine, job.id)
    assert [a.retry_at for a in _attempts(engine, job.id)] == [None]


def test_a_pause_asked_of_the_failed_run_does_not_reach_its_retry(app, state, engine):
    job = jobmonitor.enqueue(rt.raises_when_told, user=ADA)
    with worker_thread(app):
        state.redis.blpop([rt.arrival_key(job.id)], timeout=20)
        send_signal(state, job.id, "pause")  # a deploy asked, the task raised before its checkpoint
        state.redis.rpush(rt.go_key(job.id), "go")
        # the retry has begun: the failed run's signal was cleared before RQ had it again
        assert state.redis.blpop([rt.arrival_key(job.id)], timeout=20) is not None
        assert job_row(engine, job.id).retries == 1
        assert read_signal(state, job.id) is None
        state.redis.rpush(rt.go_key(job.id), *["go"] * 3)  # let the retries fail to the end
    assert job_row(engine, job.id).status == "failed"


def test_a_delayed_job_of_a_task_that_retries_has_no_retry_limit_yet(app, state, engine):
    job = jobmonitor.enqueue(rt.fails_then_waits, user=ADA, delay=3600)
    with app.test_request_context():
        from flask_jobmonitor.web.presenters import job_summary

        summary = job_summary(job_row_object(engine, job.id), utcnow())
    assert (summary["retries"], summary["retry_limit"]) == (0, None)
    assert summary["scheduled_for"] is not None
