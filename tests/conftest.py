"""Fixtures: a real Redis, and every database test run on SQLite and on PostgreSQL.

PostgreSQL is taken from ``JOBMONITOR_TEST_DATABASE_URL`` (default: the ``jobmonitor_test``
database on 127.0.0.1:5432, created if missing). Without a reachable server its runs are
skipped with the reason, unless ``JOBMONITOR_REQUIRE_POSTGRES=1`` (set by the test command
and CI) turns that into a failure. Redis comes from ``JOBMONITOR_TEST_REDIS_URL`` (default
database 15 on 127.0.0.1:6379), which is flushed before each test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import SimpleWorker, Worker

from flask_jobmonitor import JobStatus
from flask_jobmonitor.records.models import Base, job_table
from flask_jobmonitor.state import get_state
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.worker.process import create_worker

from .app_factory import QUEUE_NAMES, create_app, db, jobmonitor

REDIS_URL = os.environ.get("JOBMONITOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "JOBMONITOR_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_test"
)
REQUIRE_POSTGRES = os.environ.get("JOBMONITOR_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:  # pragma: no cover - environment problem, reported clearly
        pytest.exit(f"the tests need a real Redis at {REDIS_URL}: {error}", returncode=3)
    return REDIS_URL


def _ensure_postgres_database(url: str) -> None:
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if not exists:
                connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def _drop_postgres_database(url: str) -> None:
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'jobs.db'}"
    else:
        # one database per test run, so two runs on one machine never truncate each other's rows
        base = sa.make_url(POSTGRES_URL)
        url = base.set(database=f"{base.database}_{os.getpid()}").render_as_string(hide_password=False)
        try:
            _ensure_postgres_database(url)
        except Exception as error:
            message = f"PostgreSQL not reachable at {url}: {error}"
            if REQUIRE_POSTGRES:
                pytest.fail(message)
            pytest.skip(message)
    engine = sa.create_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    if request.param == "postgresql":
        _drop_postgres_database(url)


def _empty_tables(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def app(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    Redis.from_url(redis_url).delete(*(f"rq:queue:{name}" for name in QUEUE_NAMES.values()))
    application = create_app(database_url, redis_url, str(tmp_path / "files"))
    with application.app_context():
        _empty_tables(db.engine)
        yield application
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    return db.engine


def run_worker(app: Flask, worker_class: type[Any] = SimpleWorker, **options: Any) -> Any:
    """Run a burst worker of ``worker_class`` until the queues are empty; return the worker."""
    worker = create_worker(app, worker_class=worker_class, **options)
    _stop_pubsub_listener_first(worker)
    worker.work(burst=True)
    return worker


def _stop_pubsub_listener_first(worker: Any) -> None:
    """Make a burst worker's exit prompt. RQ unsubscribes its command listener and only then
    tells the listener thread to stop; when the thread reads the UNSUBSCRIBE reply in between,
    it waits for the next message (60 s) and RQ's ``join(timeout=1)`` adds a second to about
    one run in five. Stopping the thread before unsubscribing closes that window."""
    unsubscribe = worker.unsubscribe

    def stop_then_unsubscribe() -> None:
        if worker.pubsub_thread is not None:
            worker.pubsub_thread.stop()
        unsubscribe()

    worker.unsubscribe = stop_then_unsubscribe


@pytest.fixture(params=[SimpleWorker, Worker], ids=["simple", "forking"])
def worker_class(request: pytest.FixtureRequest) -> type[Any]:
    return request.param


# -- helpers shared by the test modules ------------------------------------------------------------


def build_app(database_url: str, **config: Any) -> Flask:
    """An extra app on the shared ``db``/``jobmonitor`` objects, configured only by ``config``.

    Unlike ``create_app`` it sets no JOBMONITOR_* value of its own, so a test can see defaults
    and set any key (including JOBMONITOR_FLUSH_INTERVAL).
    """
    application = Flask("jobmonitor_tests_extra")
    application.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=database_url, **config)
    db.init_app(application)
    jobmonitor.init_app(application)
    return application


@contextmanager
def pushed(application: Flask) -> Iterator[Flask]:
    """Push ``application``'s app context; close its database connections when done."""
    try:
        with application.app_context():
            yield application
    finally:
        with application.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


def insert_job(engine: sa.Engine, **values: Any) -> str:
    """Insert a bare job row (status ``queued`` unless given) and return its id."""
    now = utcnow()
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "a job",
        "task": "tests.tasks.noop",
        "params": {"args": [], "kwargs": {}},
        "status": JobStatus.QUEUED.value,
        "queue_name": "jobmonitor",
        "created_at": now,
        "status_changed_at": now,
    }
    row.update(values)
    with engine.begin() as connection:
        connection.execute(sa.insert(job_table).values(**row))
    return str(row["id"])


def job_row(engine: sa.Engine, job_id: str) -> sa.Row[Any]:
    """The job's row as stored now (read with Core, so no session cache is involved)."""
    with engine.connect() as connection:
        return connection.execute(sa.select(job_table).where(job_table.c.id == job_id)).one()


def count_rows(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def files_under(root: str | Path) -> list[Path]:
    """Every file below ``root`` (an absent folder has none)."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@contextmanager
def recorded_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect the SQL text of every statement ``engine`` sends while the block runs."""
    statements: list[str] = []

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before_cursor_execute)


def rq_queue_sizes(app: Flask) -> dict[str, int]:
    """How many RQ jobs wait in each of the app's queues."""
    state = get_state(app)
    return {priority: state.queue(priority).count for priority in ("high", "default", "low")}


def task_checkpoint(row: Any) -> dict[str, Any] | None:
    """The checkpoint a task saved, as ``ctx.checkpoint`` shows it: the stored one without the
    package's own bookkeeping keys (``_jobmonitor_*``)."""
    if row.checkpoint is None:
        return None
    return {key: value for key, value in row.checkpoint.items() if not key.startswith("_jobmonitor")}
