"""Applying a move of the status machine (status.py) in SQL: the one way a job's status changes.

Every change of a job's status, from the web (a person clicking Stop) or from a worker (a task
finishing), goes through :func:`apply_transition`, which issues one conditional ``UPDATE ...
WHERE id = ? AND status IN (...)``. Two actors racing for the same row therefore cannot both
win: the loser's UPDATE matches no row and it gets
:class:`~flask_jobmonitor.errors.TransitionRefused`. :func:`apply_transition_where` is the same
move for many jobs at once (a parent's children).

MySQL/MariaDB have no ``UPDATE ... RETURNING`` (records/dialects.py): there the columns asked
for are read by a SELECT after the UPDATE, in its transaction (the UPDATE holds the row's lock,
so what is read is what was written: callers that ask for columns run in a transaction), and a
move of many jobs first locks the rows it will move (``SELECT ... FOR UPDATE``), then moves
them with the same condition; should fewer move (no transaction held the locks), it answers
only the rows it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..errors import JobNotFound, TransitionRefused
from ..timeutil import utcnow
from .dialects import updates_return
from .models import job_table as table
from .status import JobStatus, Transition, get_transition


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
            cls._built["NEXT_ATTEMPT"] = table.c.attempt + 1
            cls._built["FIRST_START"] = sa.func.coalesce(table.c.started_at, sa.bindparam("_now"))
        return cls._built[name]


NEXT_ATTEMPT = "NEXT_ATTEMPT"
FIRST_START = "FIRST_START"
# (action, fenced, value names and expression ids, returning columns) -> prepared UPDATE
_statements: dict[tuple[Any, ...], sa.Update] = {}
# returning columns -> the SELECT that reads them after the UPDATE where UPDATE cannot return
_reads: dict[tuple[str, ...], sa.Select[Any]] = {}


def _read_back(connection: sa.Connection, job_id: str, returning: tuple[sa.ColumnElement[Any], ...]) -> sa.Row[Any]:
    """The ``returning`` columns of job ``job_id``, read after this transaction's UPDATE of it."""
    key = tuple(str(column) for column in returning)
    statement = _reads.get(key)
    if statement is None:
        statement = _reads[key] = sa.select(*returning).where(table.c.id == sa.bindparam("_id"))
    return connection.execute(statement, {"_id": job_id}).one()


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
    move = get_transition(action)
    now = now or utcnow()
    values = values or {}
    if returning and not updates_return(connection.dialect):
        apply_transition(connection, job_id, action, attempt=attempt, values=values, now=now)  # or raise
        return _read_back(connection, job_id, returning)
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
    move = get_transition(action)
    now = now or utcnow()
    movable = sa.and_(condition, table.c.status.in_([s.value for s in move.sources]))
    row_values = {"status": move.target.value, "status_changed_at": now, **(values or {})}
    if updates_return(connection.dialect):
        statement = sa.update(table).where(movable).values(**row_values).returning(table.c.id, *returning)
        return list(connection.execute(statement).all())
    ids = list(connection.execute(sa.select(table.c.id).where(movable).with_for_update()).scalars())
    if not ids:
        return []
    moved: sa.ColumnElement[bool] = table.c.id.in_(ids)
    if connection.execute(sa.update(table).where(moved, movable).values(**row_values)).rowcount != len(ids):
        # a row changed between the SELECT and the UPDATE (no transaction held its lock): only
        # the rows this move wrote, by their new status and this move's time
        moved = sa.and_(table.c.id.in_(ids), table.c.status == move.target.value, table.c.status_changed_at == now)
    return list(connection.execute(sa.select(table.c.id, *returning).where(moved)).all())
