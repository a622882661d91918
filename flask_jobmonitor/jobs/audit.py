"""The audit trail: who did what to which jobs, when and from where, kept after the jobs are gone.

A job's own log says "Stop requested by Ada Admin", but it goes with the job: once the job is
deleted (by a person or by the retention job), nothing says who deleted it, or who stopped it
before. The audit trail is the record across jobs that stays. Its rules:

* **One entry per action and job**, written by the entry points people use: ``control.perform``
  (the job pages, the JSON API and code acting for a person), ``control.perform_bulk`` (one
  entry per job it was done to, sharing a ``batch`` id), pausing and resuming all jobs
  (pause_all.py, no job), and the retention job (one entry saying how many jobs it deleted).
  Not by what these call in turn: the children a stop cascades to are part of the stop.
* **Written after the action succeeded**, in its own transaction: an action that was refused or
  failed leaves no entry. One that was done and then refused by Redis (a restart's new job, a
  resumed job: ``EnqueueError``) is written, saying so. If the entry cannot be written (the
  database went away in between), the action stands and the error is logged with what it
  would have said.
* **Append-only, and kept when its job is deleted**: no foreign key; the job's name, task and
  owner are copied into the entry. Nothing updates an entry; only :func:`prune` deletes the
  oldest, after ``JOBMONITOR_AUDIT_RETENTION_DAYS``.
* **From where**: the request's remote address (as the host's WSGI stack reports it: behind a
  proxy, set up Werkzeug's ``ProxyFix`` so that it is the client's), ``command line`` for the
  ``flask jobmonitor`` commands (cli.py says so with :func:`acting_from`), ``code`` otherwise (a
  task, the retention job, a shell).
* Who: the user's id and display name as the job records name people (users.py); the command
  line's user has a name and no id; ``None`` and no name is the system.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import has_request_context, request

from ..records.models import audit_table
from ..state import JobMonitorState
from ..timeutil import utcnow
from ..users import describe_user

log = logging.getLogger("flask_jobmonitor.internal.audit")

#: What an entry may say was done, besides the actions of ``control.REGISTRY``.
PAUSE_ALL = "pause_all"
RESUME_ALL = "resume_all"
RETENTION = "retention"
ENABLE_SCHEDULE = "enable_schedule"
DISABLE_SCHEDULE = "disable_schedule"
#: Longest detail kept (a message of the action).
_MAX_DETAIL = 2000


@dataclass(frozen=True)
class JobNamed:
    """What an entry copies of a job: enough to name it once it is deleted."""

    id: str
    name: str | None
    task: str | None
    owner: str | None

    @classmethod
    def of(cls, job: Any) -> JobNamed:
        return cls(job.id, job.name, job.task, job.run_by_name)


def new_batch() -> str:
    """An id shared by the entries of one bulk request."""
    return str(uuid.uuid4())


#: Where actions come from outside a request, when not from code (set by :func:`acting_from`).
_acting_from: ContextVar[str | None] = ContextVar("jobmonitor_acting_from", default=None)
#: What the ``flask jobmonitor`` commands act from.
COMMAND_LINE = "command line"


@contextmanager
def acting_from(place: str) -> Iterator[None]:
    """Record the actions taken in the block as coming from ``place`` (cli.py: "command line")."""
    token = _acting_from.set(place)
    try:
        yield
    finally:
        _acting_from.reset(token)


def origin() -> str:
    """Where the action comes from: the request's remote address, the place set by
    :func:`acting_from` (the command line), or code (a task, a shell)."""
    if has_request_context():
        return (request.remote_addr or "unknown address")[:255]
    return _acting_from.get() or "code"


def record(
    state: JobMonitorState,
    action: str,
    user: Any,
    jobs: Iterable[JobNamed] = (),
    *,
    batch: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one entry per job of ``jobs`` (one without a job when there is none): ``user`` did
    ``action``. Never raises: the action it records has happened (see the module docstring)."""
    actor_id, actor_name = describe_user(user)
    now = utcnow()
    where = origin()
    named: list[JobNamed | None] = [*jobs] or [None]
    rows = [
        {
            "created_at": now,
            "actor_id": actor_id,
            "actor_name": actor_name[:255] if actor_name else None,
            "action": action,
            "job_id": job.id if job else None,
            "job_name": job.name[:255] if job and job.name else None,
            "job_task": job.task[:255] if job and job.task else None,
            "job_owner": job.owner[:255] if job and job.owner else None,
            "batch": batch,
            "origin": where,
            "detail": detail[:_MAX_DETAIL] if detail else None,
        }
        for job in named
    ]
    try:
        with state.engine.begin() as connection:
            connection.execute(sa.insert(audit_table), rows)
    except Exception:  # the database, or anything else: the action stands, the log says it
        log.exception(
            "audit entry not written: %s did %s to %s (%s)",
            actor_name or "the system",
            action,
            ", ".join(job.id for job in named if job) or "no job",
            where,
        )


def prune(state: JobMonitorState, days: int | None = None) -> int:
    """Delete the entries older than ``days`` (default ``JOBMONITOR_AUDIT_RETENTION_DAYS``; None
    keeps everything); return how many. In batches, like the jobs' retention."""
    keep = days if days is not None else state.settings.audit_retention_days
    if keep is None:
        return 0
    cutoff = utcnow() - timedelta(days=keep)
    c = audit_table.c
    total = 0
    while True:
        with state.engine.begin() as connection:
            ids = list(
                connection.execute(  # the oldest first, a range of the created_at index
                    sa.select(c.id).where(c.created_at < cutoff).order_by(c.created_at, c.id).limit(1000)
                ).scalars()
            )
            if not ids:
                return total
            connection.execute(sa.delete(audit_table).where(c.id.in_(ids)))
        total += len(ids)
