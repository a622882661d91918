"""What the job detail page shows: steps with time estimates, subtasks, logs, files and relatives.

Each grid (subtasks, logs, children) is paginated by index range on ``(job_id, id)`` so a job
with 100,000 subtasks and log lines opens as fast as one with ten.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .listing import InvalidFilter
from .models import Job, file_table, job_table, log_table, step_table, subtask_table
from .status import JobStatus

GRID_PAGE_SIZE = 50
LOG_LEVELS: Mapping[str, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40}
#: How many past runs of the same task feed the estimate of a step that has not started.
ESTIMATE_SAMPLE = 20


@dataclass
class StepView:
    """A step as the detail page shows it."""

    id: int
    position: int
    name: str
    status: str
    done: int
    total: int | None
    counters: Mapping[str, int]
    started_at: datetime | None
    ended_at: datetime | None
    elapsed_seconds: float | None
    remaining_seconds: float | None
    estimated_seconds: float | None  # median of past runs, for a step that has not run yet

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "name": self.name,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "counters": dict(self.counters),
            "elapsed_seconds": self.elapsed_seconds,
            "remaining_seconds": self.remaining_seconds,
            "estimated_seconds": self.estimated_seconds,
        }


@dataclass
class Grid:
    """One page of a detail grid."""

    rows: list[Any]
    page: int
    has_next: bool


def _page(value: str | None, name: str) -> int:
    if not value:
        return 1
    try:
        page = int(value)
    except ValueError:
        raise InvalidFilter(f"{name} must be a whole number, got {value!r}") from None
    if not 1 <= page <= 1_000_000:
        raise InvalidFilter(f"{name} must be between 1 and 1000000, got {page}")
    return page


def steps_with_estimates(connection: sa.Connection, job: Job, now: datetime) -> list[StepView]:
    """The job's steps with elapsed time, remaining time from the current rate, and for steps
    not yet started the median duration of the same step in the task's last completed runs."""
    rows = connection.execute(
        sa.select(step_table).where(step_table.c.job_id == job.id).order_by(step_table.c.position)
    ).all()
    pending_names = [r.name for r in rows if r.status == "pending"]
    medians = _past_step_medians(connection, job, pending_names) if pending_names else {}
    views = []
    for row in rows:
        elapsed = remaining = None
        if row.started_at is not None:
            elapsed = max(0.0, ((row.ended_at or now) - row.started_at).total_seconds())
            if row.status == "running" and row.total and row.done:
                remaining = elapsed / row.done * max(0, row.total - row.done)
        views.append(
            StepView(
                id=row.id,
                position=row.position,
                name=row.name,
                status=row.status,
                done=row.done,
                total=row.total,
                counters=row.counters or {},
                started_at=row.started_at,
                ended_at=row.ended_at,
                elapsed_seconds=elapsed,
                remaining_seconds=remaining,
                estimated_seconds=medians.get(row.name),
            )
        )
    return views


def _past_step_medians(connection: sa.Connection, job: Job, names: Sequence[str]) -> dict[str, float]:
    recent_jobs = (
        sa.select(job_table.c.id)
        .where(
            job_table.c.task == job.task,
            job_table.c.status == JobStatus.COMPLETED.value,
            job_table.c.id != job.id,
        )
        .order_by(job_table.c.created_at.desc())
        .limit(ESTIMATE_SAMPLE)
        .subquery()
    )
    rows = connection.execute(
        sa.select(step_table.c.name, step_table.c.started_at, step_table.c.ended_at).where(
            step_table.c.job_id.in_(sa.select(recent_jobs.c.id)),
            step_table.c.name.in_(list(names)),
            step_table.c.started_at.is_not(None),
            step_table.c.ended_at.is_not(None),
        )
    ).all()
    durations: dict[str, list[float]] = {}
    for name, started, ended in rows:
        durations.setdefault(name, []).append((ended - started).total_seconds())
    return {name: statistics.median(values) for name, values in durations.items()}


def subtask_grid(connection: sa.Connection, job_id: str, status: str, page_arg: str | None) -> Grid:
    """A page of the job's subtasks, oldest first, optionally of one status."""
    page = _page(page_arg, "subtask_page")
    t = subtask_table.c
    query = sa.select(subtask_table).where(t.job_id == job_id)
    if status:
        if len(status) > 32:
            raise InvalidFilter("subtask_status is longer than 32 characters")
        if "\x00" in status:
            raise InvalidFilter("subtask_status contains a NUL character")
        query = query.where(t.status == status)
    return _grid(connection, query.order_by(t.id), page)


def subtask_counts(connection: sa.Connection, job_id: str) -> dict[str, int]:
    """How many subtasks the job has per status."""
    t = subtask_table.c
    rows = connection.execute(sa.select(t.status, sa.func.count()).where(t.job_id == job_id).group_by(t.status))
    return {status: int(count) for status, count in rows}


def log_grid(connection: sa.Connection, job_id: str, level: str, text: str, page_arg: str | None) -> Grid:
    """A page of the job's log, oldest first, at or above ``level`` and containing ``text``."""
    page = _page(page_arg, "log_page")
    t = log_table.c
    query = sa.select(log_table).where(t.job_id == job_id)
    if level:
        if level not in LOG_LEVELS:
            raise InvalidFilter(f"log_level must be one of {', '.join(LOG_LEVELS)}; got {level!r}")
        query = query.where(t.level >= LOG_LEVELS[level])
    if text:
        if len(text) > 200:
            raise InvalidFilter("log_q is longer than 200 characters")
        if "\x00" in text:
            raise InvalidFilter("log_q contains a NUL character")
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(t.message.ilike(pattern, escape="\\"))
    return _grid(connection, query.order_by(t.id), page)


def children_grid(connection: sa.Connection, job_id: str, page_arg: str | None) -> Grid:
    """A page of the job's direct children, oldest first."""
    page = _page(page_arg, "children_page")
    c = job_table.c
    query = sa.select(
        c.id, c.name, c.status, c.progress_done, c.progress_total, c.created_at, c.started_at, c.ended_at
    ).where(c.parent_id == job_id)
    return _grid(connection, query.order_by(c.created_at, c.id), page)


def files_of(connection: sa.Connection, job_id: str) -> list[Any]:
    """The job's files, inputs first."""
    t = file_table.c
    order = sa.case({"input": 0, "output": 1, "error_report": 2}, value=t.kind, else_=3)
    return list(connection.execute(sa.select(file_table).where(t.job_id == job_id).order_by(order, t.id)).all())


def restarts_of(connection: sa.Connection, job_id: str) -> list[Any]:
    """Jobs that were started as a restart of this one."""
    c = job_table.c
    return list(
        connection.execute(
            sa.select(c.id, c.name, c.status, c.created_at).where(c.restarted_from_id == job_id).order_by(c.created_at)
        ).all()
    )


def _grid(connection: sa.Connection, query: sa.Select[Any], page: int) -> Grid:
    rows = connection.execute(query.limit(GRID_PAGE_SIZE + 1).offset((page - 1) * GRID_PAGE_SIZE)).all()
    return Grid(list(rows[:GRID_PAGE_SIZE]), page, len(rows) > GRID_PAGE_SIZE)
