"""Job rows written and read with SQLAlchemy Core, so no session cache stands between a test and
what the database holds now.

``insert_job`` writes a bare row; ``add_job`` writes the row of a job one of the web users
(``users.USERS``) ran. The readers return rows (``sa.Row``) or plain values, in a stable order.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from flask_jobmonitor import JobStatus
from flask_jobmonitor.records.models import (
    job_table,
    log_table,
    notification_table,
    step_table,
    subtask_table,
)
from flask_jobmonitor.timeutil import utcnow

from .databases import fetch_all
from .extensions import QUEUE_NAMES
from .users import USERS


def _bare_row(**values: Any) -> dict[str, Any]:
    """A bare job row (status ``queued`` unless given), ``values`` laid over it."""
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
    return row


def insert_job(engine: sa.Engine, **values: Any) -> str:
    """Insert a bare job row (status ``queued`` unless given) and return its id."""
    row = _bare_row(**values)
    with engine.begin() as connection:
        connection.execute(sa.insert(job_table).values(**row))
    return str(row["id"])


def new_job_row(owner: str | None = "clerk_a", **values: Any) -> dict[str, Any]:
    """A job row run by ``owner`` (a key of ``USERS``, or None for nobody) on the default queue,
    every counter written out, for :func:`add_job` or an insert of many rows at once. Its status
    changed when it was created."""
    now = utcnow()
    user = USERS[owner] if owner else None
    row: dict[str, Any] = {
        "type": "general",
        "category": "general",
        "is_system": False,
        "low_priority": False,
        "queue_name": QUEUE_NAMES["default"],
        "run_by_id": user.id if user else None,
        "run_by_name": user.name if user else None,
        "created_at": now,
        "status_changed_at": values.get("created_at", now),
        "progress_done": 0,
        "current_step": 0,
        "step_count": 0,
        "error_count": 0,
        "warning_count": 0,
        "attempt": 0,
        "stop_forced": False,
    }
    row.update(values)
    return _bare_row(**row)


def add_job(engine: sa.Engine, owner: str | None = "clerk_a", **values: Any) -> str:
    """Insert a job row run by ``owner`` (:func:`new_job_row`); return its id."""
    return insert_job(engine, **new_job_row(owner, **values))


def stop_heartbeat(engine: sa.Engine, job_id: str) -> None:
    """Age the job's heartbeat by an hour: its worker is dead, as recovery will see it."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(job_table).where(job_table.c.id == job_id).values(heartbeat_at=utcnow() - timedelta(hours=1))
        )


def job_row(engine: sa.Engine, job_id: str) -> sa.Row[Any]:
    """The job's row as stored now."""
    with engine.connect() as connection:
        return connection.execute(sa.select(job_table).where(job_table.c.id == job_id)).one()


def status_of(engine: sa.Engine, job_id: str) -> str:
    """The job's status as stored now."""
    return str(job_row(engine, job_id).status)


def task_checkpoint(job: Any) -> dict[str, Any]:
    """The checkpoint a task saved, as ``ctx.checkpoint`` shows it: the stored one without the
    package's own bookkeeping keys (``_jobmonitor_*``); empty when none was saved."""
    return {key: value for key, value in (job.checkpoint or {}).items() if not key.startswith("_jobmonitor")}


def children(engine: sa.Engine, parent_id: str) -> list[sa.Row[Any]]:
    """The rows of the job's children, by name."""
    return fetch_all(engine, sa.select(job_table).where(job_table.c.parent_id == parent_id).order_by(job_table.c.name))


def subtasks(engine: sa.Engine, job_id: str) -> list[sa.Row[Any]]:
    """The job's subtask rows, in the order they were written."""
    c = subtask_table.c
    return fetch_all(engine, sa.select(subtask_table).where(c.job_id == job_id).order_by(c.id))


def subtask_names(engine: sa.Engine, job_id: str) -> list[str]:
    """The names of the job's subtasks, in the order they were written."""
    return [r.name for r in subtasks(engine, job_id)]


def log_messages(engine: sa.Engine, job_id: str) -> list[str]:
    """The messages of the job's log lines, in the order they were written."""
    c = log_table.c
    return [r.message for r in fetch_all(engine, sa.select(c.message).where(c.job_id == job_id).order_by(c.id))]


def steps_of(engine: sa.Engine, job_id: str) -> dict[str, Any]:
    """The job's step rows by step name (in step order)."""
    c = step_table.c
    return {r.name: r for r in fetch_all(engine, sa.select(step_table).where(c.job_id == job_id).order_by(c.position))}


def notifications(engine: sa.Engine, job_id: str) -> list[tuple[str, str]]:
    """(user id, event) of each notification about the job, oldest first."""
    n = notification_table.c
    statement = sa.select(n.user_id, n.event).where(n.job_id == job_id).order_by(n.id)
    return [(r.user_id, r.event) for r in fetch_all(engine, statement)]
