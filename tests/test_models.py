"""The models: tables of their own, derived times, and records that go with their job."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from flask_jobmonitor import JobStatus
from flask_jobmonitor.records.models import (
    Base,
    Job,
    file_table,
    job_table,
    log_table,
    notification_table,
    step_table,
    subtask_table,
)

from .support.databases import count_rows
from .support.extensions import db
from .support.rows import insert_job

T0 = datetime(2024, 1, 1, 12, 0, 0)
CHILD_TABLES = [step_table, subtask_table, log_table, file_table, notification_table]


def add_records(engine: sa.Engine, job_id: str) -> None:
    """One row of every kind that belongs to a job."""
    with engine.begin() as connection:
        step_id = connection.execute(
            sa.insert(step_table).values(job_id=job_id, position=1, name="Step", status="running", done=0, counters={})
        ).inserted_primary_key[0]
        connection.execute(
            sa.insert(subtask_table).values(job_id=job_id, step_id=step_id, name="row 1", status="done", created_at=T0)
        )
        connection.execute(
            sa.insert(log_table).values(job_id=job_id, step_id=step_id, created_at=T0, level=20, message="hello")
        )
        connection.execute(
            sa.insert(file_table).values(
                job_id=job_id,
                kind="output",
                filename="a.txt",
                content_type="text/plain",
                size=1,
                storage_key=f"{job_id}/{'0' * 32}",
                created_at=T0,
            )
        )
        connection.execute(
            sa.insert(notification_table).values(user_id="7", job_id=job_id, event="completed", created_at=T0)
        )


def test_every_table_is_prefixed_and_in_the_extensions_own_metadata():
    assert Base.metadata is not db.metadata
    assert all(name.startswith("jobmonitor_") for name in Base.metadata.tables)
    assert {t.name for t in CHILD_TABLES} | {"jobmonitor_job"} <= set(Base.metadata.tables)


def test_list_page_indexes_exist_in_the_database(app, engine):
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("jobmonitor_job")}

    assert {
        "ix_jobmonitor_job_run_by_created",
        "ix_jobmonitor_job_status_created",
        "ix_jobmonitor_job_type_created",
        "ix_jobmonitor_job_parent_created",
        "ix_jobmonitor_job_root_status",
        "ix_jobmonitor_job_system_created",
    } <= indexes


def test_long_texts_and_microseconds_are_kept_on_every_database(app, engine):
    """A traceback or a log line may pass 64 KiB (MySQL/MariaDB's TEXT, which strict mode
    refuses), and the lists' order needs the microseconds (a plain DATETIME there rounds them):
    records/sqltypes.py."""
    created = datetime(2026, 11, 1, 8, 0, 0, 123456)
    traceback = "Traceback (most recent call last):\n" + "  File 'x.py', line 1\n" * 4000  # ~90 KiB
    job_id = insert_job(engine, created_at=created, status="failed", error_detail=traceback)
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(job_table.c.created_at, job_table.c.error_detail).where(job_table.c.id == job_id)
        ).one()
    assert row.created_at == created
    assert row.error_detail == traceback


def test_the_packages_own_connections_read_committed_rows_on_mariadb(app, engine):
    """InnoDB's default REPEATABLE READ keeps a transaction's first snapshot; the package's
    engine reads what was committed since, whatever the host's default (records/dialects.py)."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("SQLite and PostgreSQL read committed rows already")
    from flask_jobmonitor.state import get_state

    job_id = insert_job(engine, status="queued")
    status = sa.select(job_table.c.status).where(job_table.c.id == job_id)
    with engine.connect() as host, get_state(app).engine.connect() as package:
        assert host.execute(status).scalar() == package.execute(status).scalar() == "queued"
        with engine.begin() as writer:  # committed while both transactions are open
            writer.execute(job_table.update().where(job_table.c.id == job_id).values(status="cancelled"))
        assert package.execute(status).scalar() == "cancelled"
        assert host.execute(status).scalar() == "queued"  # the host's engine kept its snapshot


def test_an_engine_already_reading_committed_rows_is_used_as_it_is(app, engine):
    if engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("MySQL/MariaDB only")
    from flask_jobmonitor.records.dialects import read_committed

    host = sa.create_engine(engine.url, isolation_level="READ COMMITTED")
    try:
        assert read_committed(host) is not host  # not known before its first connection
        with host.connect():
            pass
        assert read_committed(host) is host  # no statements per checkout then
    finally:
        host.dispose()


def test_deleting_a_job_row_deletes_everything_recorded_about_it(app, engine):
    job_id = insert_job(engine)
    kept_id = insert_job(engine)
    add_records(engine, job_id)
    add_records(engine, kept_id)

    with engine.begin() as connection:
        connection.execute(sa.delete(job_table).where(job_table.c.id == job_id))

    assert {table.name: count_rows(engine, table) for table in CHILD_TABLES} == {
        table.name: 1 for table in CHILD_TABLES
    }


def test_deleting_a_job_through_the_session_deletes_its_records(app, engine):
    job_id = insert_job(engine)
    add_records(engine, job_id)

    db.session.delete(db.session.get(Job, job_id))
    db.session.commit()

    assert {table.name: count_rows(engine, table) for table in CHILD_TABLES} == {
        table.name: 0 for table in CHILD_TABLES
    }


def test_waiting_is_until_start_or_now():
    job = Job(created_at=T0, started_at=None)
    assert job.waiting_seconds(T0 + timedelta(seconds=30)) == 30
    job.started_at = T0 + timedelta(seconds=5)
    assert job.waiting_seconds(T0 + timedelta(seconds=30)) == 5


def test_duration_is_none_before_start_then_until_end_or_now():
    job = Job(created_at=T0, started_at=None, ended_at=None)
    assert job.duration_seconds(T0) is None
    job.started_at = T0 + timedelta(seconds=5)
    assert job.duration_seconds(T0 + timedelta(seconds=65)) == 60
    job.ended_at = T0 + timedelta(seconds=15)
    assert job.duration_seconds(T0 + timedelta(seconds=65)) == 10


def test_derived_times_are_never_negative():
    job = Job(created_at=T0, started_at=T0 + timedelta(seconds=5), ended_at=None)

    assert job.waiting_seconds(T0 - timedelta(seconds=10)) == 5
    assert job.duration_seconds(T0) == 0


@pytest.mark.parametrize("status", list(JobStatus))
def test_job_status_property_gives_the_enum(status):
    assert Job(status=status.value).job_status is status
