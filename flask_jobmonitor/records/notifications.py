"""Notifications that tell a user one of their jobs has ended.

One notification per family: a child job (one with a root) does not tell its user about its own
end unless ``JOBMONITOR_NOTIFY_CHILDREN`` is on; its family's root does, once, when the family
has ended (families.py). Every path that records the end of a job calls :func:`notify_end`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..timeutil import utcnow
from .models import notification_table

if TYPE_CHECKING:
    from ..state import JobMonitorState

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


def notifies(state: JobMonitorState, user_id: str | None, root_id: str | None) -> bool:
    """Whether the end of a job run by ``user_id`` with root ``root_id`` is told to its user."""
    return user_id is not None and (root_id is None or state.settings.notify_children)


def notify_end(
    state: JobMonitorState,
    connection: sa.Connection,
    user_id: str | None,
    job_id: str,
    event: str,
    *,
    root_id: str | None,
) -> None:
    """Tell ``user_id`` that job ``job_id`` (whose root is ``root_id``; None for a top-level job)
    ended with ``event``, unless it is a child and children do not notify (see the docstring)."""
    if notifies(state, user_id, root_id):
        add_notification(connection, user_id, job_id, event)
