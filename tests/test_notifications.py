"""Notifications: a user is told when one of their jobs ends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flask_jobmonitor.records.models import notification_table
from flask_jobmonitor.records.notifications import NOTIFIED_EVENTS, add_notification

from .support.rows import insert_job


def notifications(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(notification_table).order_by(notification_table.c.id))
        return [(r.user_id, r.job_id, r.event) for r in rows]


@pytest.mark.parametrize("event", NOTIFIED_EVENTS)
def test_ending_events_are_recorded_unread(app, engine, event):
    job_id = insert_job(engine)

    with engine.begin() as connection:
        add_notification(connection, "7", job_id, event)

    assert notifications(engine) == [("7", job_id, event)]
    with engine.connect() as connection:
        assert connection.execute(sa.select(notification_table.c.read_at)).scalar_one() is None


def test_started_is_not_notified(app, engine):
    job_id = insert_job(engine)

    with engine.begin() as connection:
        add_notification(connection, "7", job_id, "started")

    assert notifications(engine) == []


def test_a_job_of_nobody_notifies_nobody(app, engine):
    job_id = insert_job(engine)

    with engine.begin() as connection:
        add_notification(connection, None, job_id, "completed")

    assert notifications(engine) == []
