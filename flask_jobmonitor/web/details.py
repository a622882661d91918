"""What the job detail page shows: subtasks, logs, files and relatives, and the time left in
words. The steps' time estimates are computed in records/estimates.py.

Each grid (subtasks, logs, children) is paginated by index range on ``(job_id, id)`` so a job
with 100,000 subtasks and log lines opens as fast as one with ten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..errors import InvalidFilter
from ..i18n import N_, gettext
from ..records.models import attempt_table, file_table, job_table, log_table, subtask_table

GRID_PAGE_SIZE = 50
LOG_LEVELS: Mapping[str, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40}
#: The words of the log levels (translated where shown).
LEVEL_WORDS: Mapping[int, str] = {
    10: N_("Debug"),
    20: N_("Info"),
    30: N_("Warning"),
    40: N_("Error"),
    50: N_("Critical"),
}
#: The subtask statuses the package and the example tasks use, marked for the catalogues: a
#: subtask's status is the task's own word, shown through gettext so a host may translate its own.
SUBTASK_WORDS = (N_("done"), N_("error"), N_("failed"), N_("warning"), N_("skipped"), N_("created"), N_("updated"))


def level_name(level: int | str) -> str:
    """A log level (10 ... 50, or its name in ``LOG_LEVELS``) in the request's language."""
    number = LOG_LEVELS.get(level, 0) if isinstance(level, str) else level
    word = LEVEL_WORDS.get(number)
    return gettext(word) if word else str(level)


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
        raise InvalidFilter(
            gettext("%(name)s must be a whole number, got %(value)s", name=name, value=repr(value))
        ) from None
    if not 1 <= page <= 1_000_000:
        raise InvalidFilter(
            gettext(
                "%(name)s must be between %(low)s and %(high)s, got %(value)s",
                name=name,
                low=1,
                high=1000000,
                value=page,
            )
        )
    return page


def time_left_text(seconds: float | None) -> str:
    """How a person reads the time left: "About 2 min left"; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 45:
        return gettext("Less than a minute left")
    minutes = max(1, round(seconds / 60))
    if minutes < 90:
        return gettext("About %(minutes)s min left", minutes=minutes)
    hours, rest = divmod(5 * round(minutes / 5), 60)
    if rest:
        return gettext("About %(hours)s h %(minutes)s min left", hours=hours, minutes=rest)
    return gettext("About %(hours)s h left", hours=hours)


#: The query parameters of the detail page's grids (below): the ones its own links carry.
DETAIL_PARAMS = ("subtask_status", "subtask_page", "log_level", "log_q", "log_page", "children_page")


def subtask_grid(
    connection: sa.Connection,
    job_id: str,
    status: str,
    page_arg: str | None,
    names: tuple[str, str] = ("subtask_status", "subtask_page"),
) -> Grid:
    """A page of the job's subtasks, oldest first, optionally of one status (``names``: what the
    request calls the two parameters, for the error that names one)."""
    status_name, page_name = names
    page = _page(page_arg, page_name)
    t = subtask_table.c
    query = sa.select(subtask_table).where(t.job_id == job_id)
    if status:
        if len(status) > 32:
            raise InvalidFilter(gettext("%(name)s is longer than %(limit)s characters", name=status_name, limit=32))
        if "\x00" in status:
            raise InvalidFilter(gettext("%(name)s contains a NUL character", name=status_name))
        query = query.where(t.status == status)
    return _grid(connection, query.order_by(t.id), page)


def subtask_counts(connection: sa.Connection, job_id: str) -> dict[str, int]:
    """How many subtasks the job has per status."""
    t = subtask_table.c
    rows = connection.execute(sa.select(t.status, sa.func.count()).where(t.job_id == job_id).group_by(t.status))
    return {status: int(count) for status, count in rows}


def log_grid(
    connection: sa.Connection,
    job_id: str,
    level: str,
    text: str,
    page_arg: str | None,
    names: tuple[str, str, str] = ("log_level", "log_q", "log_page"),
) -> Grid:
    """A page of the job's log, oldest first, at or above ``level`` and containing ``text``
    (``names``: what the request calls the three parameters)."""
    level_name_, text_name, page_name = names
    page = _page(page_arg, page_name)
    t = log_table.c
    query = sa.select(log_table).where(t.job_id == job_id)
    if level:
        if level not in LOG_LEVELS:
            raise InvalidFilter.not_one_of(level_name_, LOG_LEVELS, level)
        query = query.where(t.level >= LOG_LEVELS[level])
    if text:
        if len(text) > 200:
            raise InvalidFilter(gettext("%(name)s is longer than %(limit)s characters", name=text_name, limit=200))
        if "\x00" in text:
            raise InvalidFilter(gettext("%(name)s contains a NUL character", name=text_name))
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


def attempts_of(connection: sa.Connection, job: Any, tasks: Any, with_detail: bool = False) -> list[Any]:
    """The failed attempts of ``job`` (retries, tasks.RetryPolicy), the first first; no query for
    a job that never retried and whose task (in the registry ``tasks``) has no retry policy.
    ``with_detail``: with the exceptions' text and traceback (jobmonitor.view_tracebacks only),
    else ``error_detail`` is None."""
    task = tasks.find(job.task)
    if not job.retries and (task is None or task.retry is None):
        return []
    a = attempt_table.c
    detail = a.error_detail if with_detail else sa.null().label("error_detail")
    query = sa.select(a.number, a.started_at, a.ended_at, a.worker_name, a.error_message, a.retry_at, detail)
    return list(connection.execute(query.where(a.job_id == job.id).order_by(a.number)).all())


def restarts_of(connection: sa.Connection, job_id: str) -> list[Any]:
    """Jobs that were started as a restart of this one (with who ran them, for the permission
    check: a restart someone else ran may be a job the viewer may not open)."""
    c = job_table.c
    query = sa.select(c.id, c.name, c.status, c.created_at, c.run_by_id, c.is_system)
    return list(connection.execute(query.where(c.restarted_from_id == job_id).order_by(c.created_at)).all())


def _grid(connection: sa.Connection, query: sa.Select[Any], page: int) -> Grid:
    rows = connection.execute(query.limit(GRID_PAGE_SIZE + 1).offset((page - 1) * GRID_PAGE_SIZE)).all()
    return Grid(list(rows[:GRID_PAGE_SIZE]), page, len(rows) > GRID_PAGE_SIZE)
