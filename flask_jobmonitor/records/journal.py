"""What code other than a job's own run records about the job: a line in its log, and the close
of the step that was running when the job was ended from outside.

People's actions (jobs/control.py), recovery (jobs/maintenance.py), the end of a family
(jobs/families.py) and a pause of all jobs (jobs/pause_all.py) write through here, in the
caller's transaction. Each names itself in the ``logger`` of its lines (``flask_jobmonitor.control``
...): the job's log page shows it. A running task's own lines go through its JobContext instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from ..timeutil import utcnow
from .models import log_table, step_table


def write_log(
    connection: sa.Connection, logger: str, job_ids: Sequence[str], message: str, level: int = logging.INFO
) -> None:
    """Write ``message`` into the log of each of ``job_ids`` (one INSERT for all of them)."""
    if not job_ids:
        return
    entry = {"created_at": utcnow(), "level": level, "logger": logger, "message": message}
    connection.execute(sa.insert(log_table), [{"job_id": job_id, **entry} for job_id in job_ids])


def close_running_step(connection: sa.Connection, job_id: str, status: str, now: datetime) -> None:
    """End the step of ``job_id`` that was running when the job was ended from outside (force
    stop, recovery), as ``status``."""
    connection.execute(
        sa.update(step_table)
        .where(step_table.c.job_id == job_id, step_table.c.status == "running")
        .values(status=status, ended_at=now)
    )
