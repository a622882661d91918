"""The job status machine: the statuses, the allowed moves, and the one function that applies a move.

This module is the only place that knows which status may follow which. Every change of a
job's status, from the web (a person clicking Stop) or from a worker (a task finishing), goes
through :func:`apply_transition`, which issues one conditional ``UPDATE ... WHERE id = ? AND
status IN (...)``. Two actors racing for the same row therefore cannot both win: the loser's
UPDATE matches no row and it gets :class:`~flask_jobmonitor.errors.TransitionRefused`.
:func:`apply_transition_where` is the same move for many jobs at once (a parent's children).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..errors import JobNotFound, TransitionRefused
from ..timeutil import utcnow


class JobStatus(str, enum.Enum):
    """Where a tracked job is in its life. The values are what the database stores."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    PAUSED = "paused"
    #: the task returned; the job waits for its child jobs to end (it holds no worker)
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


#: Statuses of a job that has not ended: it holds, or is about to hold, a worker, or (``waiting``)
#: its children still run. Such a job may not be deleted.
ACTIVE_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.STOPPING, JobStatus.PAUSED, JobStatus.WAITING}
)
#: Statuses a job ends in. ``stopped`` is final unless a person resumes or cancels it.
FINISHED_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELLED})
#: Statuses from which "restart / submit again" creates a new job.
RESTARTABLE_STATUSES = FINISHED_STATUSES
#: Statuses whose job can be deleted with its records.
DELETABLE_STATUSES = FINISHED_STATUSES


@dataclass(frozen=True)
class Transition:
    """One allowed move: the statuses it leaves from and the status it arrives at."""

    name: str
    sources: frozenset[JobStatus]
    target: JobStatus


def _move(name: str, sources: set[JobStatus], target: JobStatus) -> tuple[str, Transition]:
    return name, Transition(name, frozenset(sources), target)


S = JobStatus
#: The whole machine. Read it top to bottom as "action: from any of these -> to that".
TRANSITIONS: Mapping[str, Transition] = dict(
    [
        # a worker picks the job up
        _move("start", {S.QUEUED}, S.RUNNING),
        # the task returned; a stop requested too late to take effect does not undo finished work
        _move("finish", {S.RUNNING, S.STOPPING}, S.COMPLETED),
        # the task raised, its worker died, or it could not even be queued
        _move("fail", {S.QUEUED, S.RUNNING, S.STOPPING, S.PAUSED}, S.FAILED),
        # a person asks a running job to stop at its next checkpoint
        _move("request_stop", {S.RUNNING}, S.STOPPING),
        # the task reached a checkpoint and honoured the stop request
        _move("stopped", {S.STOPPING}, S.STOPPED),
        # the work was killed through RQ's stop command (a waiting parent: its children are)
        _move("force_stop", {S.RUNNING, S.STOPPING, S.WAITING}, S.STOPPED),
        # a warm shutdown (deploy) reached a checkpoint of a resumable task
        _move("pause", {S.RUNNING}, S.PAUSED),
        # a stopped job is resumed by a person, a paused one automatically after a deploy
        _move("resume", {S.STOPPED, S.PAUSED}, S.QUEUED),
        # an abandoned run of a resumable task is queued again to continue from its checkpoint
        _move("requeue", {S.RUNNING, S.STOPPING}, S.QUEUED),
        # a queued job will never run; a stopped one is discarded for good; a paused one (a
        # deploy interrupted it, nothing runs it now) will not continue
        _move("cancel", {S.QUEUED, S.STOPPED, S.PAUSED}, S.CANCELLED),
        # a person cancels a running job: it is asked to stop, and ends cancelled at its checkpoint
        _move("request_cancel", {S.RUNNING}, S.STOPPING),
        # the task reached a checkpoint and honoured a cancel request (see control.cancel)
        _move("cancelled_at_checkpoint", {S.STOPPING}, S.CANCELLED),
        # families (see families.py): the task of a job with children returned, so it waits for
        # them, holding no worker (momentarily, if they have all ended already)
        _move("wait_for_children", {S.RUNNING, S.STOPPING}, S.WAITING),
        # a person asks a waiting parent to stop: its children are stopped, it keeps waiting for them
        _move("stop_family", {S.WAITING}, S.WAITING),
        # its last child ended: the family's outcome. Every child completed ...
        _move("family_completed", {S.WAITING}, S.COMPLETED),
        # ... one failed ("2 of 13 child jobs failed") ...
        _move("family_failed", {S.WAITING}, S.FAILED),
        # ... or none failed but some were stopped or cancelled
        _move("family_stopped", {S.WAITING}, S.STOPPED),
    ]
)
del S


def get_transition(action: str) -> Transition:
    """Return the transition called ``action`` or raise ``KeyError`` naming the known ones."""
    try:
        return TRANSITIONS[action]
    except KeyError:
        raise KeyError(f"unknown job transition {action!r}; known: {', '.join(TRANSITIONS)}") from None


def is_allowed(status: JobStatus | str, action: str) -> bool:
    """Tell whether ``action`` may be applied to a job that is in ``status``."""
    return JobStatus(status) in get_transition(action).sources


class ValueExpressions:
    """SQL expressions that transitions may write, built once so their statements can be cached.

    ``NEXT_ATTEMPT`` bumps the attempt number (fencing off the previous run); ``FIRST_START``
    keeps the first ``started_at`` of a job that is resumed. Any other SQL expression passed in
    ``values`` works too, but its statement is built afresh on every call.
    """

    _built: dict[str, sa.ColumnElement[Any]] = {}

    @classmethod
    def get(cls, name: str) -> sa.ColumnElement[Any]:
        if not cls._built:
            from .models import job_table as table

            cls._built["NEXT_ATTEMPT"] = table.c.attempt + 1
            cls._built["FIRST_START"] = sa.func.coalesce(table.c.started_at, sa.bindparam("_now"))
        return cls._built[name]


NEXT_ATTEMPT = "NEXT_ATTEMPT"
FIRST_START = "FIRST_START"
# (action, fenced, value names and expression ids, returning columns) -> prepared UPDATE
_statements: dict[tuple[Any, ...], sa.Update] = {}


def _prepared_update(
    move: Transition, fenced: bool, values: Mapping[str, Any], returning: tuple[sa.ColumnElement[Any], ...]
) -> sa.Update | None:
    """The cached UPDATE for this shape of transition, or None when a value is an ad-hoc SQL
    expression (such statements are built per call rather than filling the cache)."""
    shape: list[tuple[str, int | None]] = []
    for key, value in sorted(values.items()):
        if isinstance(value, sa.ClauseElement):
            if not any(value is expression for expression in ValueExpressions._built.values()):
                return None
            shape.append((key, id(value)))
        else:
            shape.append((key, None))
    cache_key = (move.name, fenced, tuple(shape), tuple(str(column) for column in returning))
    statement = _statements.get(cache_key)
    if statement is None:
        from .models import job_table as table

        condition = sa.and_(table.c.id == sa.bindparam("_id"), table.c.status.in_([s.value for s in move.sources]))
        if fenced:
            condition = sa.and_(condition, table.c.attempt == sa.bindparam("_attempt"))
        row_values: dict[str, Any] = {"status": move.target.value, "status_changed_at": sa.bindparam("_now")}
        for key, value in values.items():
            row_values[key] = value if isinstance(value, sa.ClauseElement) else sa.bindparam(f"v_{key}")
        statement = sa.update(table).where(condition).values(**row_values)
        if returning:
            statement = statement.returning(*returning)
        _statements[cache_key] = statement
    return statement


def apply_transition(
    connection: sa.Connection,
    job_id: str,
    action: str,
    *,
    attempt: int | None = None,
    values: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    returning: tuple[sa.ColumnElement[Any], ...] = (),
) -> sa.Row[Any] | None:
    """Move job ``job_id`` by ``action`` with one conditional UPDATE, or raise.

    ``attempt``, when given, fences the write to one run of the job: a run that was given up
    for dead and resumed elsewhere cannot overwrite its successor's status (docs/architecture.md,
    "Attempt fencing"). ``values`` are extra columns written in the same statement, such as
    ``ended_at`` or ``error_message``, so the status and its details never disagree; a value
    may be one of :class:`ValueExpressions` (e.g. ``ValueExpressions.get(NEXT_ATTEMPT)``).
    ``returning`` columns are read back by the same statement (one round trip for a worker
    that starts a job and needs its task and parameters); the row is returned, else None.

    The UPDATE of each shape of call is built once and reused: a worker issues two of them
    per job, and building them dominated the per-job cost of a tracked no-op job.

    Raises :class:`TransitionRefused` (the job exists but is in a status the move does not
    leave from, or belongs to another attempt) or :class:`JobNotFound`.
    """
    from .models import job_table as table  # models import this module for JobStatus

    move = get_transition(action)
    now = now or utcnow()
    values = values or {}
    statement = _prepared_update(move, attempt is not None, values, returning)
    if statement is not None:
        params: dict[str, Any] = {"_id": job_id, "_now": now, "_attempt": attempt}
        params.update((f"v_{k}", v) for k, v in values.items() if not isinstance(v, sa.ClauseElement))
        result = connection.execute(statement, params)
    else:
        condition = sa.and_(table.c.id == job_id, table.c.status.in_([s.value for s in move.sources]))
        if attempt is not None:
            condition = sa.and_(condition, table.c.attempt == attempt)
        row_values: dict[str, Any] = {"status": move.target.value, "status_changed_at": now, **values}
        adhoc = sa.update(table).where(condition).values(**row_values)
        result = connection.execute(adhoc.returning(*returning) if returning else adhoc)
    if returning:
        row = result.first()
        if row is not None:
            return row
    elif result.rowcount == 1:
        return None
    current = connection.execute(sa.select(table.c.status, table.c.attempt).where(table.c.id == job_id)).first()
    if current is None:
        raise JobNotFound(job_id)
    raise TransitionRefused(job_id, JobStatus(current.status), action, current.attempt, attempt)


def apply_transition_where(
    connection: sa.Connection,
    action: str,
    condition: sa.ColumnElement[bool],
    *,
    values: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    returning: tuple[sa.ColumnElement[Any], ...] = (),
) -> list[sa.Row[Any]]:
    """Move every job that matches ``condition`` and whose status ``action`` leaves from, in one
    conditional UPDATE; return the moved rows (their ``returning`` columns, the id first).

    For moves that act on many jobs at once, such as cancelling the thousands of queued children
    of a parent that is stopped: one statement instead of one per job. The move's own source
    statuses are always part of the WHERE, so a job that changed status meanwhile (a worker
    started it) is left out, not moved, and the caller sees that it is missing from the result.
    """
    from .models import job_table as table  # models import this module for JobStatus

    move = get_transition(action)
    now = now or utcnow()
    statement = (
        sa.update(table)
        .where(condition, table.c.status.in_([s.value for s in move.sources]))
        .values(status=move.target.value, status_changed_at=now, **(values or {}))
        .returning(table.c.id, *returning)
    )
    return list(connection.execute(statement).all())
