"""The job list: parsing its filters from query parameters, and the query that serves a page.

Built to stay fast on a table of millions of jobs:
* every filter the page offers has an index that ends in ``created_at`` (see models.py), so
  "newest first" is an index scan that stops after one page;
* there is no exact ``COUNT(*)``: the page fetches one row more than it shows to know whether
  a next page exists;
* a far page selects only ids with OFFSET (an index-only walk) and then loads those rows;
* name search on PostgreSQL uses a full-text index over name, description and parameters
  (word-prefix matching) instead of a leading-wildcard ``LIKE``.

Malformed parameters raise :class:`InvalidFilter` with a message for a 400 answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .models import Job, job_table, search_document
from .status import FINISHED_STATUSES, JobStatus
from .timeutil import utcnow

PAGE_SIZES = (20, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 100_000
STATUS_GROUPS: Mapping[str, frozenset[str]] = {
    "processed": frozenset(s.value for s in FINISHED_STATUSES),
    "unprocessed": frozenset(s.value for s in JobStatus if s not in FINISHED_STATUSES),
}
SORTABLE: Mapping[str, sa.ColumnElement[Any]] = {
    "created": job_table.c.created_at,
    "name": job_table.c.name,
    "type": job_table.c.type,
    "status": job_table.c.status,
    "user": job_table.c.run_by_name,
    "started": job_table.c.started_at,
    "ended": job_table.c.ended_at,
    "errors": job_table.c.error_count,
    "duration": job_table.c.ended_at,  # replaced per dialect by _interval()
    "waiting": job_table.c.started_at,  # replaced per dialect by _interval()
    "progress": job_table.c.progress_done,
}
_ID_PREFIX = re.compile(r"^[0-9a-f]{4,8}(-[0-9a-f]{0,12}){0,4}$")


class InvalidFilter(ValueError):
    """A query parameter of the job list has a value that cannot be used; the message says which."""


@dataclass(frozen=True)
class ListFilters:
    """The job list's state, as parsed from (and rendered back into) query parameters."""

    q: str = ""
    type: str = ""
    user: str = ""
    status: str = ""
    group: str = ""
    category: str = ""
    date_from: datetime | None = None
    date_to: datetime | None = None
    show_system: bool = False
    parent: str = ""
    sort: str = "created"
    descending: bool = True
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE

    def to_args(self, **changes: Any) -> dict[str, Any]:
        """Query parameters that reproduce these filters (with ``changes``), defaults left out."""
        filters = replace(self, **changes)
        args: dict[str, Any] = {}
        for name in ("q", "type", "user", "status", "group", "category", "parent"):
            if getattr(filters, name):
                args[name] = getattr(filters, name)
        if filters.date_from:
            args["from"] = filters.date_from.date().isoformat()
        if filters.date_to:
            args["to"] = (filters.date_to - timedelta(days=1)).date().isoformat()
        if filters.show_system:
            args["system"] = "1"
        if filters.sort != "created" or not filters.descending:
            args["sort"] = filters.sort
            args["dir"] = "desc" if filters.descending else "asc"
        if filters.page != 1:
            args["page"] = filters.page
        if filters.per_page != DEFAULT_PAGE_SIZE:
            args["per_page"] = filters.per_page
        return args

    @property
    def is_filtered(self) -> bool:
        """True if anything but sorting and paging narrows the list."""
        return any((self.q, self.type, self.user, self.status, self.group, self.date_from, self.date_to, self.parent))


def _integer(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidFilter(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise InvalidFilter(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_date(args: Mapping[str, str], name: str) -> datetime | None:
    """The date in query parameter ``name`` (``YYYY-MM-DD``), None if empty; InvalidFilter if malformed."""
    raw = (args.get(name, "") or "").strip()
    if not raw:
        return None
    try:
        value = datetime.strptime(raw[:10], "%Y-%m-%d")
    except ValueError:
        raise InvalidFilter(f"{name} must be a date like 2026-01-31, got {raw!r}") from None
    return value


def day_after(value: datetime, name: str) -> datetime:
    """The start of the day after ``value`` (an inclusive "to" date), or InvalidFilter at the
    end of the calendar."""
    try:
        return value + timedelta(days=1)
    except OverflowError:
        raise InvalidFilter(f"{name} must be a date before 9999-12-31") from None


def _choice(args: Mapping[str, str], name: str, allowed: Sequence[str]) -> str:
    raw = args.get(name, "").strip()
    if raw and raw not in allowed:
        raise InvalidFilter(f"{name} must be one of {', '.join(allowed)}; got {raw!r}")
    return raw


def parse_filters(args: Mapping[str, str]) -> ListFilters:
    """Read the list's query parameters; raise InvalidFilter for any value that makes no sense."""
    status = _choice(args, "status", [s.value for s in JobStatus])
    group = _choice(args, "group", list(STATUS_GROUPS))
    sort = _choice(args, "sort", list(SORTABLE)) or "created"
    direction = _choice(args, "dir", ["asc", "desc"]) or "desc"
    date_from = parse_date(args, "from")
    date_to = parse_date(args, "to")
    if date_to is not None:
        date_to = day_after(date_to, "to")  # "to" is inclusive: the whole day
    if date_from and date_to and date_from >= date_to:
        raise InvalidFilter("from must be on or before to")
    per_page = _integer(args, "per_page", DEFAULT_PAGE_SIZE, 1, max(PAGE_SIZES))
    texts = {}
    for name, limit in (("q", 200), ("type", 64), ("user", 64), ("category", 64), ("parent", 36)):
        value = args.get(name, "").strip()
        if len(value) > limit:
            raise InvalidFilter(f"{name} is longer than {limit} characters")
        if "\x00" in value:
            raise InvalidFilter(f"{name} contains a NUL character")
        texts[name] = value
    return ListFilters(
        q=texts["q"],
        type=texts["type"],
        user=texts["user"],
        status=status,
        group=group,
        category=texts["category"],
        parent=texts["parent"],
        date_from=date_from,
        date_to=date_to,
        show_system=args.get("system", "") in ("1", "true", "on"),
        sort=sort,
        descending=direction == "desc",
        page=_integer(args, "page", 1, 1, MAX_PAGE),
        per_page=per_page,
    )


@dataclass
class JobPage:
    """One page of the list."""

    jobs: list[Job]
    filters: ListFilters
    has_next: bool
    children: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # id -> (finished, total)

    @property
    def has_previous(self) -> bool:
        return self.filters.page > 1

    @property
    def first_index(self) -> int:
        return (self.filters.page - 1) * self.filters.per_page + 1


def _tsquery(q: str) -> str:
    """A prefix query for PostgreSQL's ``to_tsquery``: every word typed must start a word of the
    job. Words are split on spaces only and quoted, so ``products.csv`` is looked up as the one
    token PostgreSQL's parser makes of it, and ``products`` also finds ``products.csv``."""
    tokens = [token.replace("'", "").replace("\\", "").replace(":", "") for token in q.lower().split()]
    return " & ".join(f"'{token}':*" for token in tokens if token.strip("&|!()<>*"))


def _search_condition(dialect: str, q: str) -> sa.ColumnElement[bool]:
    conditions: list[sa.ColumnElement[bool]] = []
    lowered = q.lower()
    if _ID_PREFIX.match(lowered):
        # range on the primary key instead of LIKE, so any collation can use the index
        conditions.append(sa.and_(job_table.c.id >= lowered, job_table.c.id < lowered + "\uffff"))
    if dialect == "postgresql":
        query = _tsquery(q)
        if query:
            conditions.append(search_document().op("@@")(sa.func.to_tsquery("simple", query)))
    else:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            sa.or_(
                job_table.c.name.ilike(pattern, escape="\\"),
                job_table.c.description.ilike(pattern, escape="\\"),
                sa.cast(job_table.c.params, sa.Text).ilike(pattern, escape="\\"),
            )
        )
    if not conditions:
        return sa.false()
    return sa.or_(*conditions)


def build_conditions(
    filters: ListFilters, dialect: str, *, visible_to: str | None, allow_system: bool
) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions for ``filters``. ``visible_to`` limits to one user's jobs (no view-all)."""
    c = job_table.c
    conditions: list[sa.ColumnElement[bool]] = []
    if not (filters.show_system and allow_system):
        conditions.append(c.is_system.is_(False))
    if visible_to is not None:
        conditions.append(c.run_by_id == visible_to)
    if filters.user:
        conditions.append(c.run_by_id == filters.user)
    if filters.status:
        conditions.append(c.status == filters.status)
    if filters.group:
        conditions.append(c.status.in_(sorted(STATUS_GROUPS[filters.group])))
    if filters.type:
        conditions.append(c.type == filters.type)
    if filters.category:
        conditions.append(c.category == filters.category)
    if filters.parent:
        conditions.append(c.parent_id == filters.parent)
    if filters.date_from:
        conditions.append(c.created_at >= filters.date_from)
    if filters.date_to:
        conditions.append(c.created_at < filters.date_to)
    if filters.q:
        conditions.append(_search_condition(dialect, filters.q))
    return conditions


def fetch_page(
    connection: sa.Connection, filters: ListFilters, *, visible_to: str | None, allow_system: bool
) -> JobPage:
    """Load one page of jobs for ``filters`` (see the module docstring for how it stays fast)."""
    c = job_table.c
    conditions = build_conditions(filters, connection.dialect.name, visible_to=visible_to, allow_system=allow_system)
    key = _sort_key(filters.sort, connection.dialect.name)
    # jobs without a value (never started, still running...) come last either way, on both databases
    first = key.desc().nulls_last() if filters.descending else key.asc().nulls_last()
    order = [first, c.id.desc()] if filters.descending else [first, c.id.asc()]
    offset = (filters.page - 1) * filters.per_page
    ids_query = sa.select(c.id).where(*conditions).order_by(*order).limit(filters.per_page + 1).offset(offset)
    ids = list(connection.execute(ids_query).scalars())
    has_next = len(ids) > filters.per_page
    ids = ids[: filters.per_page]
    if not ids:
        return JobPage([], filters, False)
    from sqlalchemy.orm import Session

    with Session(bind=connection) as session:
        rows = {job.id: job for job in session.execute(sa.select(Job).where(c.id.in_(ids))).scalars()}
        session.expunge_all()
    jobs = [rows[i] for i in ids if i in rows]
    return JobPage(jobs, filters, has_next, children_progress(connection, [j.id for j in jobs]))


def matching_ids(
    connection: sa.Connection, filters: ListFilters, *, visible_to: str | None, allow_system: bool, limit: int
) -> list[str]:
    """Ids of the (newest) jobs matching ``filters``, at most ``limit``: the "all matching" bulk scope."""
    c = job_table.c
    conditions = build_conditions(filters, connection.dialect.name, visible_to=visible_to, allow_system=allow_system)
    query = sa.select(c.id).where(*conditions).order_by(c.created_at.desc(), c.id.desc()).limit(limit)
    return list(connection.execute(query).scalars())


def _sort_key(name: str, dialect: str) -> sa.ColumnElement[Any]:
    """The ORDER BY expression of a sort key. Duration and waiting are computed the way the page
    shows them (``Job.duration_seconds`` / ``waiting_seconds``): until now while still open."""
    c = job_table.c
    now = sa.literal(utcnow(), sa.DateTime)
    if name == "duration":
        return _interval(c.started_at, sa.func.coalesce(c.ended_at, now), dialect)
    if name == "waiting":
        return _interval(c.created_at, sa.func.coalesce(c.started_at, c.ended_at, now), dialect)
    return SORTABLE[name]


def _interval(start: sa.ColumnElement[Any], end: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    if dialect == "sqlite":
        return sa.func.julianday(end) - sa.func.julianday(start)
    return end - start


def children_progress(connection: sa.Connection, job_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """For each of ``job_ids`` that has children: (finished children, all children)."""
    if not job_ids:
        return {}
    c = job_table.c
    finished = sa.func.sum(sa.case((c.status.in_([s.value for s in FINISHED_STATUSES]), 1), else_=0))
    rows = connection.execute(
        sa.select(c.parent_id, finished, sa.func.count()).where(c.parent_id.in_(list(job_ids))).group_by(c.parent_id)
    )
    return {parent: (int(done or 0), int(total)) for parent, done, total in rows}


def distinct_types(connection: sa.Connection) -> list[str]:
    """Job types for the type filter: the registered tasks' types plus those seen recently."""
    c = job_table.c
    recent = sa.select(c.type).order_by(c.created_at.desc()).limit(5000).subquery()
    return sorted(t for t in connection.execute(sa.select(sa.distinct(recent.c.type))).scalars() if t)
