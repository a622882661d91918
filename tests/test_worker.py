"""Workers: any RQ worker class runs tracked jobs in the app context; forked horses are DB-safe."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from flask import has_app_context
from flask.globals import app_ctx
from rq import SimpleWorker, Worker

from flask_jobmonitor import JobStatus
from flask_jobmonitor.jobs.maintenance import recover
from flask_jobmonitor.state import get_state
from flask_jobmonitor.worker import runner
from flask_jobmonitor.worker.process import AppWorkerMixin, _use_fresh_pool, create_worker, worker_class_for

from .support.extensions import QUEUE_NAMES, db, jobmonitor
from .support.rows import job_row, stop_heartbeat
from .support.workers import run_worker
from .tasks import backend_pid, noop, waits_for_completion_of


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
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no server connection to tell apart")
    backend = "SELECT pg_backend_pid()" if engine.dialect.name == "postgresql" else "SELECT CONNECTION_ID()"
    with engine.connect() as connection:
        parent_backend = connection.exec_driver_sql(backend).scalar()
    job = jobmonitor.enqueue(backend_pid)

    run_worker(app, Worker)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.COMPLETED, row.error_message
    assert row.checkpoint["pid"] != os.getpid()  # it really ran in a forked process
    assert row.checkpoint["backend"] != parent_backend
    # the parent's pooled connection survived the horse (which must not have closed it)
    with engine.connect() as connection:
        assert connection.exec_driver_sql(backend).scalar() == parent_backend
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


def test_forking_worker_records_a_completion_before_the_next_job_runs(app, engine):
    # the parent records "completed" once the horse exited; the next job sees it while it runs
    first = jobmonitor.enqueue(noop)
    second = jobmonitor.enqueue(waits_for_completion_of, first.id)

    run_worker(app, Worker)

    assert job_row(engine, first.id).status == JobStatus.COMPLETED
    watcher = job_row(engine, second.id)
    assert watcher.status == JobStatus.COMPLETED, watcher.error_message
    assert watcher.checkpoint["seen"] == "completed"


def test_a_completion_the_worker_did_not_live_to_record_is_recorded_by_recovery(app, engine, monkeypatch):
    # a worker killed between its horse's end and the record: RQ holds the "completed" result
    monkeypatch.setattr(runner, "settle_after_horse", lambda *args: None)
    job = jobmonitor.enqueue(noop)
    run_worker(app, Worker)
    assert job_row(engine, job.id).status == JobStatus.RUNNING
    stop_heartbeat(engine, job.id)

    report = recover(get_state(app))

    assert report.completed == [job.id]
    assert job_row(engine, job.id).status == JobStatus.COMPLETED


def test_a_horse_gets_the_fresh_pool_with_listeners_added_after_it_was_made(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    inherited = engine.pool
    inherited_connection = inherited.connect()
    fresh = inherited.recreate()
    connected: list[object] = []
    sa.event.listen(engine, "connect", lambda dbapi_connection, record: connected.append(dbapi_connection))

    _use_fresh_pool(engine, fresh)

    assert engine.pool is fresh
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT 2").scalar() == 2
    assert len(connected) == 1  # the listener came along to the fresh pool
    # the inherited pool and its connection were left alone (they are the parent's)
    assert inherited_connection.cursor().execute("SELECT 3").fetchone() == (3,)
    inherited_connection.close()
    engine.dispose()


def test_a_workers_new_redis_connections_do_not_read_the_package_metadata_again(app, monkeypatch):
    """redis-py 7.1+ reads its own version from the installed package's metadata for every new
    connection; a work horse opens one for every job (about 2 ms, bench_core.py). The worker's
    connections carry the version read once (state._worker_connection_options)."""
    from importlib import metadata

    pytest.importorskip("redis.driver_info")
    connection = get_state(app).redis_for_workers()
    reads: list[str] = []
    real_version = metadata.version
    monkeypatch.setattr(metadata, "version", lambda name: reads.append(name) or real_version(name))

    fresh = connection.connection_pool.make_connection()  # as a horse's first command does

    assert reads == []
    assert fresh.driver_info is not None and fresh.driver_info.lib_version == real_version("redis")
    fresh.disconnect()


def test_a_forking_worker_opens_the_capture_log_levels_before_its_first_fork(app, monkeypatch):
    """Opening the levels empties every logger's cache (0.5 ms per job when each horse did it):
    the worker does it once at start-up (runner.warm_up), and its horses inherit it."""
    import logging

    from flask_jobmonitor.worker import context

    state = get_state(app)
    task_logger = logging.getLogger(context.TASK_LOGGER_NAME)
    monkeypatch.setattr(context, "_opened_level", None)
    monkeypatch.setattr(task_logger, "level", logging.NOTSET)

    runner.warm_up(state)

    assert context._opened_level == state.settings.log_level
    assert task_logger.level == state.settings.log_level
