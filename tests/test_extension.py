"""The extension object: init_app, settings, per-app state, SQLite preparation and the CLI."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_jobmonitor import ConfigError, JobMonitor, JobMonitorState, JobStatus, NotInitialized
from flask_jobmonitor.config import DEFAULTS
from flask_jobmonitor.records.models import Base, Job, job_table
from flask_jobmonitor.storage import LocalStorage

from .support.apps import build_app
from .support.databases import count_rows, drop_database, ensure_database, pushed
from .support.extensions import QUEUE_NAMES, db, jobmonitor
from .support.rows import job_row
from .tasks import noop


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new, empty SQLite database of this test alone."""
    return f"sqlite:///{tmp_path / 'own.db'}"


@pytest.fixture
def empty_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the same kind as ``database_url`` that has no jobmonitor tables."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = sa.make_url(database_url)
    url = base.set(database=f"{base.database}_empty").render_as_string(hide_password=False)
    ensure_database(url)
    yield url
    drop_database(url)


# -- init_app and settings -----------------------------------------------------------------------


def test_init_app_puts_every_default_in_app_config(sqlite_url):
    application = build_app(sqlite_url)

    for key, value in DEFAULTS.items():
        assert application.config[key] == value, key
    assert application.config["JOBMONITOR_FLUSH_INTERVAL"] == 0.5
    assert application.config["JOBMONITOR_QUEUE_NAMES"] == {
        "high": "jobmonitor-high",
        "default": "jobmonitor",
        "low": "jobmonitor-low",
    }


def test_init_app_keeps_values_the_host_set(sqlite_url):
    application = build_app(sqlite_url, JOBMONITOR_FLUSH_INTERVAL=3, JOBMONITOR_LOG_LEVEL="warning")

    settings = jobmonitor.state(application).settings
    assert application.config["JOBMONITOR_FLUSH_INTERVAL"] == 3
    assert settings.flush_interval == 3.0
    assert settings.log_level == 30


def test_state_is_stored_in_app_extensions(sqlite_url):
    application = build_app(sqlite_url)

    state = application.extensions["jobmonitor"]
    assert isinstance(state, JobMonitorState)
    assert state.app is application
    assert state.extension is jobmonitor
    assert state.db is db
    assert jobmonitor.state(application) is state
    with application.app_context():
        assert jobmonitor.state() is state


def test_default_settings_derive_storage_from_instance_path_and_order_queues(sqlite_url):
    application = build_app(sqlite_url)

    settings = jobmonitor.state(application).settings
    assert settings.storage_path == os.path.join(application.instance_path, "jobmonitor-files")
    assert settings.queues_in_priority_order == ["jobmonitor-high", "jobmonitor", "jobmonitor-low"]
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.log_level == 20
    storage = jobmonitor.state(application).storage
    assert isinstance(storage, LocalStorage)
    assert storage.root == settings.storage_path


def test_two_apps_in_one_process_have_separate_state_and_settings(tmp_path):
    first = build_app(
        f"sqlite:///{tmp_path / 'first.db'}",
        JOBMONITOR_FLUSH_INTERVAL=0.25,
        JOBMONITOR_STORAGE_PATH=str(tmp_path / "first-files"),
        JOBMONITOR_REDIS_URL="redis://127.0.0.1:6379/14",
    )
    second = build_app(
        f"sqlite:///{tmp_path / 'second.db'}",
        JOBMONITOR_FLUSH_INTERVAL=4,
        JOBMONITOR_STORAGE_PATH=str(tmp_path / "second-files"),
        JOBMONITOR_QUEUE_NAMES={"high": "b-high", "default": "b", "low": "b-low"},
    )

    one, two = jobmonitor.state(first), jobmonitor.state(second)
    assert one is not two
    assert (one.app, two.app) == (first, second)
    assert (one.settings.flush_interval, two.settings.flush_interval) == (0.25, 4.0)
    assert one.settings.redis_url.endswith("/14") and two.settings.redis_url.endswith("/0")
    assert one.queue("low").name == "jobmonitor-low"
    assert two.queue("low").name == "b-low"
    assert one.storage.root != two.storage.root  # type: ignore[attr-defined]
    assert one.tasks is two.tasks  # tasks are code: one registry per extension object
    with pushed(first):
        assert one.engine.url.database.endswith("first.db")
    with pushed(second):
        assert two.engine.url.database.endswith("second.db")


def test_changing_one_apps_queue_names_does_not_change_another_apps(sqlite_url, monkeypatch):
    # guard the module-level defaults: if they leak, the rest of the suite must not see it
    monkeypatch.setitem(DEFAULTS, "JOBMONITOR_QUEUE_NAMES", dict(DEFAULTS["JOBMONITOR_QUEUE_NAMES"]))
    first = build_app(sqlite_url)
    first.config["JOBMONITOR_QUEUE_NAMES"]["low"] = "changed-by-the-first-app"

    second = build_app(sqlite_url)

    assert second.config["JOBMONITOR_QUEUE_NAMES"]["low"] == "jobmonitor-low"
    assert jobmonitor.state(second).settings.queue_names["low"] == "jobmonitor-low"


def test_two_apps_write_jobs_into_their_own_databases(app, redis_url, tmp_path):
    other = build_app(
        f"sqlite:///{tmp_path / 'other.db'}",
        JOBMONITOR_REDIS_URL=redis_url,
        JOBMONITOR_STORAGE_PATH=str(tmp_path),
        JOBMONITOR_QUEUE_NAMES=QUEUE_NAMES,
    )
    with pushed(other):
        Base.metadata.create_all(db.engine)
        job = jobmonitor.enqueue(noop)
        assert db.session.get(Job, job.id) is not None

    assert db.session.get(Job, job.id) is None
    assert count_rows(db.engine, job_table) == 0


BAD_VALUES = [
    ("JOBMONITOR_FLUSH_INTERVAL", -1),
    ("JOBMONITOR_FLUSH_INTERVAL", 0),
    ("JOBMONITOR_FLUSH_INTERVAL", "often"),
    ("JOBMONITOR_FLUSH_INTERVAL", None),
    ("JOBMONITOR_FLUSH_INTERVAL", math.nan),
    ("JOBMONITOR_FLUSH_MAX_ROWS", 0),
    ("JOBMONITOR_JOB_TIMEOUT", -60),
    ("JOBMONITOR_RQ_RESULT_TTL", "forever"),
    ("JOBMONITOR_SQLITE_BUSY_TIMEOUT_MS", -5),
    ("JOBMONITOR_REDIS_URL", "http://127.0.0.1:6379/0"),
    ("JOBMONITOR_REDIS_URL", "127.0.0.1:6379"),
    ("JOBMONITOR_REDIS_URL", ""),
    ("JOBMONITOR_REDIS_URL", None),
    ("JOBMONITOR_QUEUE_NAMES", {"high": "h", "default": "d"}),
    ("JOBMONITOR_QUEUE_NAMES", {"high": "h", "default": "d", "low": "l", "urgent": "u"}),
    ("JOBMONITOR_QUEUE_NAMES", {"high": "same", "default": "same", "low": "l"}),
    ("JOBMONITOR_QUEUE_NAMES", {"high": "h", "default": "", "low": "l"}),
    ("JOBMONITOR_QUEUE_NAMES", {"high": "h", "default": 3, "low": "l"}),
    ("JOBMONITOR_QUEUE_NAMES", ["h", "d", "l"]),
    ("JOBMONITOR_LOG_LEVEL", "LOUD"),
    ("JOBMONITOR_LOG_LEVEL", None),
    ("JOBMONITOR_REFRESH_INTERVAL", 0),
    ("JOBMONITOR_URL_PREFIX", "jobs"),
    ("JOBMONITOR_URL_PREFIX", "/jobs/"),
    ("JOBMONITOR_PERMISSION_CHECKER", "myapp.permissions.check"),
    ("JOBMONITOR_CATEGORIES", ["import", "export"]),
    ("JOBMONITOR_NOTIFY_CHILDREN", "false"),
    ("JOBMONITOR_SYSTEM_JOBS_STOPPABLE", 1),
    ("JOBMONITOR_RUN_AT_HOSTS", "shop.example.com"),
    ("JOBMONITOR_RUN_AT_HOSTS", ["https://shop.example.com"]),
    ("JOBMONITOR_RUN_AT_HOSTS", ["*.example.com"]),
    ("JOBMONITOR_RUN_AT_HOSTS", ["shop.example.com:8080"]),
    ("JOBMONITOR_MAX_UPLOAD_BYTES", 0),
    ("JOBMONITOR_MAX_UPLOAD_BYTES", -1),
    ("JOBMONITOR_MAX_UPLOAD_BYTES", 1.5),
    ("JOBMONITOR_MAX_UPLOAD_BYTES", "10MB"),
    ("JOBMONITOR_MAX_UPLOAD_BYTES", True),
    ("JOBMONITOR_AUDIT_RETENTION_DAYS", 0),
    ("JOBMONITOR_AUDIT_RETENTION_DAYS", "400"),
    ("JOBMONITOR_AUDIT_RETENTION_DAYS", 1.5),
    ("JOBMONITOR_SECURITY_HEADERS", "no"),
    ("JOBMONITOR_CONTENT_SECURITY_POLICY", ""),
    ("JOBMONITOR_CONTENT_SECURITY_POLICY", "default-src 'self'\r\nX-Injected: 1"),
    ("JOBMONITOR_CONTENT_SECURITY_POLICY", ["default-src 'self'"]),
    ("JOBMONITOR_TIMEZONE", "Mars/Olympus"),
    ("JOBMONITOR_TIMEZONE", "CEST"),
    ("JOBMONITOR_TIMEZONE", ""),
    ("JOBMONITOR_TIMEZONE", None),
    ("JOBMONITOR_TIMEZONE", 2),
    ("JOBMONITOR_TIMEZONE", "../../etc/passwd"),
    ("JOBMONITOR_TIMEZONE_SELECTOR", "Europe/Paris"),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES, ids=repr)
def test_bad_setting_raises_config_error_naming_the_key(sqlite_url, key, value):
    application = Flask("bad_config")
    application.config.update(SQLALCHEMY_DATABASE_URI=sqlite_url, **{key: value})
    db.init_app(application)

    with pytest.raises(ConfigError, match=key):
        jobmonitor.init_app(application)

    assert "jobmonitor" not in application.extensions


@pytest.mark.parametrize(("level", "number"), [("debug", 10), ("WARNING", 30), (25, 25)])
def test_log_level_accepts_names_in_any_case_and_numbers(sqlite_url, level, number):
    application = build_app(sqlite_url, JOBMONITOR_LOG_LEVEL=level)

    assert jobmonitor.state(application).settings.log_level == number


def test_init_app_before_db_init_app_raises_config_error():
    application = Flask("no_db")
    application.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"

    with pytest.raises(ConfigError, match=r"db\.init_app"):
        JobMonitor(db=SQLAlchemy()).init_app(application)


def test_init_app_without_any_db_object_raises_config_error():
    application = Flask("no_db_object")

    with pytest.raises(ConfigError, match="Flask-SQLAlchemy"):
        JobMonitor().init_app(application)


def test_init_app_accepts_db_given_to_init_app(sqlite_url):
    application = Flask("db_late")
    application.config["SQLALCHEMY_DATABASE_URI"] = sqlite_url
    own_db = SQLAlchemy(application)
    extension = JobMonitor()

    extension.init_app(application, db=own_db)

    assert extension.state(application).db is own_db


def test_state_of_an_app_without_init_app_raises_not_initialized():
    with pytest.raises(NotInitialized, match="never_initialised"):
        jobmonitor.state(Flask("never_initialised"))


def test_enqueue_in_an_app_without_init_app_raises_not_initialized():
    with Flask("never_initialised").app_context(), pytest.raises(NotInitialized):
        jobmonitor.enqueue(noop)


def test_redis_connection_is_made_lazily_so_an_app_starts_without_redis(sqlite_url):
    application = build_app(sqlite_url, JOBMONITOR_REDIS_URL="redis://127.0.0.1:1/0")

    state = jobmonitor.state(application)
    assert state._redis is None
    assert state.redis is state.redis


# -- SQLite --------------------------------------------------------------------------------------


def test_sqlite_database_is_put_in_wal_mode_with_a_busy_timeout(sqlite_url):
    application = build_app(sqlite_url, JOBMONITOR_SQLITE_BUSY_TIMEOUT_MS=4321)

    with pushed(application), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 4321
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_test_apps_sqlite_engine_uses_the_default_busy_timeout(app, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_in_memory_sqlite_gets_a_busy_timeout_but_no_wal():
    application = build_app("sqlite://", JOBMONITOR_SQLITE_BUSY_TIMEOUT_MS=777)

    with pushed(application), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 777
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_init_db_creates_the_tables(empty_database_url, redis_url, tmp_path):
    application = build_app(empty_database_url, JOBMONITOR_REDIS_URL=redis_url)

    with pushed(application):
        result = application.test_cli_runner().invoke(args=["jobmonitor", "init-db"])
        tables = set(sa.inspect(db.engine).get_table_names())
        again = application.test_cli_runner().invoke(args=["jobmonitor", "init-db"])

    assert result.exit_code == 0, result.output
    assert "jobmonitor tables ready" in result.output
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert again.exit_code == 0, again.output  # existing tables are left alone


def test_cli_worker_runs_the_queued_jobs(app, engine):
    first = jobmonitor.enqueue(noop)
    second = jobmonitor.enqueue(noop, low_priority=True)

    result = app.test_cli_runner().invoke(
        args=["jobmonitor", "worker", "--burst", "--worker-class", "rq.SimpleWorker", "--name", "cli-worker"]
    )

    assert result.exit_code == 0, result.output
    for job in (first, second):
        row = job_row(engine, job.id)
        assert row.status == JobStatus.COMPLETED
        assert row.worker_name == "cli-worker"


def test_cli_worker_listens_only_to_the_queues_it_is_given(app, engine):
    low = jobmonitor.enqueue(noop, low_priority=True)
    normal = jobmonitor.enqueue(noop)

    result = app.test_cli_runner().invoke(
        args=["jobmonitor", "worker", QUEUE_NAMES["low"], "--burst", "--worker-class", "rq.SimpleWorker"]
    )

    assert result.exit_code == 0, result.output
    assert job_row(engine, low.id).status == JobStatus.COMPLETED
    assert job_row(engine, normal.id).status == JobStatus.QUEUED


@pytest.mark.parametrize(
    ("worker_class", "expected"),
    [
        ("no.such.Module", "cannot import 'no.such.Module'"),
        ("rq.NoSuchWorker", "cannot import 'rq.NoSuchWorker'"),
        ("rq", "cannot import 'rq'"),
        ("flask.Flask", "'flask.Flask' is not an RQ worker class"),
        ("os.path.join", "'os.path.join' is not an RQ worker class"),
    ],
)
def test_cli_worker_with_a_bad_worker_class_gives_a_usage_error(app, engine, worker_class, expected):
    job = jobmonitor.enqueue(noop)

    result = app.test_cli_runner().invoke(args=["jobmonitor", "worker", "--burst", "--worker-class", worker_class])

    assert result.exit_code == 2
    assert "Invalid value for --worker-class" in result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert job_row(engine, job.id).status == JobStatus.QUEUED
