"""Notifications that tell a user one of their jobs has ended."""

from __future__ import annotations

import sqlalchemy as sa

from .models import notification_table
from .timeutil import utcnow

#: The events a user is told about. "started" is not among them: the launching request already
#: says so with a flash message, and a notification per start would bury the ones that matter.
NOTIFIED_EVENTS = ("completed", "failed", "stopped")


def add_notification(connection: sa.Connection, user_id: str | None, job_id: str, event: str) -> None:
    """Record that ``user_id`` should be told about ``event`` on ``job_id`` (nobody: nothing)."""
    if user_id is None or event not in NOTIFIED_EVENTS:
        return
    connection.execute(
        sa.insert(notification_table).values(user_id=user_id, job_id=job_id, event=event, created_at=utcnow())
    )
