"""Workers: any RQ worker class runs tracked jobs in the app context; forked horses are DB-safe."""

from __future__ import annotations

import os

import pytest
from flask import has_app_context
from flask.globals import app_ctx
from rq import SimpleWorker, Worker

from flask_jobmonitor import JobStatus
from flask_jobmonitor.worker import AppWorkerMixin, create_worker, worker_class_for

from .app_factory import QUEUE_NAMES, db, jobmonitor
from .conftest import job_row, run_worker
from .tasks import backend_pid, noop


def test_worker_class_for_mixes_in_the_app_context_once():
    simple = worker_class_for(SimpleWorker)

    assert issubclass(simple, AppWorkerMixin)
    assert issubclass(simple, SimpleWorker)
    assert worker_class_for(SimpleWorker) is simple
    assert worker_class_for(simple) is simple
    assert worker_class_for(Worker) is not simple


def test_create_worker_listens_to_the_queues_by_priority(app):
    worker = create_worker(app, worker_class=SimpleWorker, name="prio")

    assert worker.queue_names() == [QUEUE_NAMES["high"], QUEUE_NAMES["default"], QUEUE_NAMES["low"]]
    assert worker.name == "prio"
    assert worker.app is app


def test_create_worker_with_chosen_queues(app):
    worker = create_worker(app, [QUEUE_NAMES["low"]], worker_class=SimpleWorker)

    assert worker.queue_names() == [QUEUE_NAMES["low"]]


def test_default_priority_job_runs_before_a_low_priority_one(app, engine):
    low = jobmonitor.enqueue(noop, low_priority=True)
    normal = jobmonitor.enqueue(noop)

    run_worker(app)

    assert job_row(engine, normal.id).started_at <= job_row(engine, low.id).started_at


def test_worker_pushes_the_app_context_itself(app, engine, worker_class):
    job = jobmonitor.enqueue(noop)
    # the fixture holds an app context: take it away so that only the worker's own one exists
    held = app_ctx._get_current_object()
    held.pop()
    try:
        assert not has_app_context()
        run_worker(app, worker_class)
    finally:
        held.push()

    assert job_row(engine, job.id).status == JobStatus.COMPLETED


def test_forked_horse_uses_its_own_database_connection(app, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("pg_backend_pid() is PostgreSQL's")
    with engine.connect() as connection:
        parent_backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    job = jobmonitor.enqueue(backend_pid)

    run_worker(app, Worker)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.COMPLETED, row.error_message
    assert row.checkpoint["pid"] != os.getpid()  # it really ran in a forked process
    assert row.checkpoint["backend"] != parent_backend
    # the parent's pooled connection survived the horse (which must not have closed it)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() == parent_backend
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    assert db.session.execute(db.select(db.literal(1))).scalar() == 1


def test_simple_worker_runs_the_job_in_this_process(app, engine):
    job = jobmonitor.enqueue(backend_pid)

    run_worker(app, SimpleWorker)

    assert job_row(engine, job.id).checkpoint["pid"] == os.getpid()


def test_forking_worker_runs_many_jobs_on_postgres_and_sqlite(app, engine):
    jobs = [jobmonitor.enqueue(noop) for _ in range(5)]

    run_worker(app, Worker)

    assert {job_row(engine, j.id).status for j in jobs} == {"completed"}
