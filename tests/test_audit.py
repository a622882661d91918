"""The audit trail's writing outside a request (jobs/audit.py): pausing and resuming all jobs,
the retention job and its pruning, the command line as the origin, code calling ``perform``, and
an entry that cannot be written."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from flask_jobmonitor.jobs import audit, control
from flask_jobmonitor.jobs import pause_all as pausing
from flask_jobmonitor.jobs.maintenance import delete_old_jobs
from flask_jobmonitor.records.models import Job, audit_table
from flask_jobmonitor.state import get_state
from flask_jobmonitor.timeutil import utcnow

from .support.extensions import db
from .support.rows import add_job, status_of
from .support.users import USERS


def entries(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(audit_table).order_by(audit_table.c.id)).all())


def test_code_acting_for_a_person_is_recorded_as_code(app, engine):
    job_id = add_job(engine, owner="clerk_a", status="queued")
    job = db.session.get(Job, job_id)

    control.perform(get_state(app), "cancel", job, USERS["admin"])

    [entry] = entries(engine)
    assert (entry.actor_name, entry.action, entry.job_id, entry.origin) == ("Ada Admin", "cancel", job_id, "code")


def test_pausing_and_resuming_all_jobs_are_recorded_without_a_job(app, engine):
    state = get_state(app)
    try:
        pausing.pause_all(state, USERS["admin"])
        pausing.resume_all(state, ("7", "Olga Operator"))
        pausing.resume_all(state, USERS["admin"])  # nothing was paused: nothing done, nothing written
    finally:
        pausing.resume_all(state)

    assert [(e.action, e.actor_name, e.job_id) for e in entries(engine)] == [
        ("pause_all", "Ada Admin", None),
        ("resume_all", "Olga Operator", None),
    ]


def test_the_command_line_is_the_origin_of_its_commands_and_its_user_has_no_id(app, engine):
    state = get_state(app)
    runner = app.test_cli_runner()
    try:
        result = runner.invoke(args=["jobmonitor", "pause", "--no-wait"])
        assert result.exit_code == 0, result.output
    finally:
        runner.invoke(args=["jobmonitor", "resume"])
        pausing.resume_all(state)

    first, second = entries(engine)
    assert (first.action, first.origin, first.actor_id) == ("pause_all", "command line", None)
    assert first.actor_name.endswith("(command line)")
    assert (second.action, second.origin) == ("resume_all", "command line")


def test_the_retention_job_says_how_many_jobs_it_deleted_and_keeps_the_entries_of_others(app, engine):
    old = utcnow() - timedelta(days=100)
    kept_entry = add_job(engine, owner="clerk_a", status="completed", name="Deleted by a person")
    control.perform(get_state(app), "delete", db.session.get(Job, kept_entry), USERS["admin"])
    for _ in range(3):
        add_job(engine, owner="clerk_a", status="completed", created_at=old)

    assert delete_old_jobs(get_state(app), 90) == 3
    assert delete_old_jobs(get_state(app), 90) == 0  # nothing deleted: nothing written

    written = entries(engine)
    assert [(e.action, e.job_name) for e in written] == [("delete", "Deleted by a person"), ("retention", None)]
    assert (written[1].actor_id, written[1].actor_name) == (None, None)  # the system
    assert written[1].detail == "3 finished jobs (with their children) older than 90 days deleted"


def test_prune_deletes_entries_older_than_the_setting_only(app, engine):
    state = get_state(app)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(
            sa.insert(audit_table),
            [
                {"created_at": now - timedelta(days=401), "action": "stop"},
                {"created_at": now - timedelta(days=399), "action": "cancel"},
            ],
        )

    assert state.settings.audit_retention_days == 400
    assert audit.prune(state) == 1
    assert [e.action for e in entries(engine)] == ["cancel"]
    assert audit.prune(state, days=1) == 1
    assert entries(engine) == []


def test_an_entry_that_cannot_be_written_is_logged_and_the_action_stands(app, engine, monkeypatch, caplog):
    job_id = add_job(engine, owner="clerk_a", status="queued")

    def database_gone(*_: object, **__: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    real_insert = sa.insert
    monkeypatch.setattr(
        audit.sa, "insert", lambda table: database_gone() if table is audit_table else real_insert(table)
    )
    caplog.set_level(logging.ERROR, logger="flask_jobmonitor.internal.audit")

    control.perform(get_state(app), "cancel", db.session.get(Job, job_id), USERS["admin"])

    assert status_of(engine, job_id) == "cancelled"
    assert f"audit entry not written: Ada Admin did cancel to {job_id} (code)" in caplog.text


def test_the_cleanup_command_is_recorded_with_its_user_from_the_command_line(app, engine):
    for _ in range(2):
        add_job(engine, owner="clerk_a", status="completed", created_at=utcnow() - timedelta(days=40))

    result = app.test_cli_runner().invoke(args=["jobmonitor", "cleanup", "--days", "30"])

    assert result.exit_code == 0, result.output
    [entry] = entries(engine)
    assert (entry.action, entry.origin, entry.actor_id) == ("retention", "command line", None)
    assert entry.actor_name.endswith("(command line)")
    assert entry.detail == "2 finished jobs (with their children) older than 30 days deleted"


def test_an_action_redis_refuses_after_it_was_done_is_recorded_saying_so(app, engine, database_url, tmp_path):
    from flask_jobmonitor.errors import EnqueueError

    from .support.apps import build_app
    from .support.databases import pushed

    job_id = add_job(engine, owner="clerk_a", status="completed", task="tests.tasks.noop", name="Export")
    down = build_app(database_url, "redis://127.0.0.1:1/0", str(tmp_path / "down"))
    with pushed(down):
        with pytest.raises(EnqueueError):
            control.perform(get_state(down), "restart", db.session.get(Job, job_id), USERS["admin"])
        [entry] = entries(db.engine)
    assert (entry.action, entry.job_id, entry.job_name) == ("restart", job_id, "Export")
    assert entry.detail.startswith("Redis refused the job ") and entry.detail.endswith("it is recorded failed")
