"""The job list: parsing its filters from query parameters, and the queries that serve a page.

Built to stay fast on a table of ten million jobs; each rule below has a plan test in
``tests/web/test_list_plans.py`` that fails when it breaks:

* Newest (or oldest) first is the only order an index serves whatever the filters: every
  filter the page offers has an index that ends in ``(is_system, created_at, id)`` (see
  models.py), so the page's id query walks one index in order and stops after one page. It
  orders by ``created_at, id`` with no ``NULLS LAST`` (``created_at`` is never NULL, and the
  clause would stop PostgreSQL from using the indexes).
* "System jobs shown" would leave ``is_system`` unconstrained and so the indexes unordered: the
  query then reads each ``is_system`` value's branch in index order and merges the two.
* Pages after the first are keyset pages (``after`` / ``before`` cursors of creation time and
  id), so "Older" costs the same however far someone goes; ``last=1`` is the oldest page, read
  backwards. ``page=N`` still works (an index-only OFFSET walk) so old links stay valid.
* Every other order (name, status, duration, errors...) sorts a bounded window: the
  ``SORT_WINDOW`` newest jobs that match the filters, read like a newest-first page. The page
  says so when the window was full; narrower filters sort further back. Duration and waiting
  depend on the current time and could not be indexed anyway.
* There is no exact ``COUNT(*)``: a page fetches one row more than it shows to know whether a
  next page exists.
* Child jobs are left out of the top level unless asked for (``children=1``) or a parent is
  named (``parent=``): without another indexed filter the condition ``parent_id IS NULL`` is
  served by ``ix_jobmonitor_job_parent_created (parent_id, is_system, created_at, id)``, an
  ordered walk like every other filter's index; with one, that filter's index stays the walk
  and children are filtered out of its rows (see ``_top_level``).
* "New jobs since the page was opened" (:func:`newer_page`) is a keyset read of the same
  index walk: the jobs that come before the newest job shown, oldest first, at most a page.
* Search uses a full-text index, never a leading-wildcard ``LIKE`` over the table: PostgreSQL's
  GIN index over name, description and parameters, and on SQLite the FTS5 table
  ``jobmonitor_job_search`` (see search.py, which also holds the fall-back for a SQLite built
  without FTS5).

Malformed parameters raise :class:`InvalidFilter` with a message for a 400 answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import InvalidFilter
from ..i18n import N_, gettext
from ..records.dialects import MYSQL_DIALECTS, flag_is, keyset_beyond
from ..records.models import Job, file_table, job_table
from ..records.status import FINISHED_STATUSES, JobStatus
from ..timeutil import UTC, local_date, parse_day_bound, utcnow
from . import search

PAGE_SIZES = (20, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE = 100_000
#: How many of the newest matching jobs a sort other than by creation orders (see module doc).
SORT_WINDOW = 10_000
STATUS_GROUPS: Mapping[str, frozenset[str]] = {
    "processed": frozenset(s.value for s in FINISHED_STATUSES),
    "unprocessed": frozenset(s.value for s in JobStatus if s not in FINISHED_STATUSES),
}
#: The words of the groups in the list's filter (translated where shown).
GROUP_LABELS: Mapping[str, str] = {"processed": N_("Processed"), "unprocessed": N_("Unprocessed")}
#: The list's quick date filters: a label and how many days before today (in the viewer's zone).
QUICK_DAYS: tuple[tuple[str, int], ...] = ((N_("Today"), 0), (N_("Yesterday"), 1))
#: Sort keys and the column each one reads ("duration" and "waiting" are computed from two).
SORTABLE: Mapping[str, str] = {
    "created": "created_at",
    "name": "name",
    "type": "type",
    "status": "status",
    "user": "run_by_name",
    "started": "started_at",
    "ended": "ended_at",
    "errors": "error_count",
    "duration": "started_at",
    "waiting": "created_at",
    "progress": "progress_done",
}
#: The sorts an index serves at any size: keyset pages, no window.
INDEXED_SORTS = frozenset({"created"})
_WINDOW_COLUMNS = ("id", "created_at", "started_at", "ended_at", *sorted(set(SORTABLE.values()) - {"created_at"}))
_CURSOR = re.compile(r"^(\d{8}T\d{6}\.\d{6})_([0-9A-Za-z-]{1,36})$")
_CURSOR_TIME = "%Y%m%dT%H%M%S.%f"


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: the creation time and id of a job of the list.

    A cursor holds values, not a reference: it stays valid after its job was deleted.
    """

    created_at: datetime
    id: str

    @property
    def token(self) -> str:
        return f"{self.created_at.strftime(_CURSOR_TIME)}_{self.id}"

    @classmethod
    def parse(cls, name: str, raw: str) -> Cursor:
        match = _CURSOR.match(raw)
        try:
            if match is None:
                raise ValueError
            return cls(datetime.strptime(match.group(1), _CURSOR_TIME), match.group(2))
        except ValueError:
            raise InvalidFilter(
                gettext("%(name)s is not a position in the job list; open the list from its first page", name=name)
            ) from None

    @classmethod
    def of(cls, job: Job) -> Cursor:
        return cls(job.created_at, job.id)


@dataclass(frozen=True)
class ListFilters:
    """The job list's state, as parsed from (and rendered back into) query parameters."""

    q: str = ""
    type: str = ""
    user: str = ""
    status: str = ""
    group: str = ""
    category: str = ""
    date_from: datetime | None = None  # naive UTC: the start of the "from" day in ``zone``
    date_to: datetime | None = None  # naive UTC: the end of the (inclusive) "to" day in ``zone``
    show_system: bool = False
    parent: str = ""
    show_children: bool = False  # child jobs shown at the top level too (else under their parent)
    sort: str = "created"
    descending: bool = True
    page: int = 1
    per_page: int = DEFAULT_PAGE_SIZE
    after: Cursor | None = None  # the jobs that come after this one in the list's order
    before: Cursor | None = None  # the jobs that come before it
    last: bool = False  # the last page
    zone: tzinfo = UTC  # the viewer's zone, whose days "from" and "to" name

    @property
    def top_level_only(self) -> bool:
        """Child jobs are left out (shown under their parent) unless asked for, listed by parent,
        or searched for: a search (a pasted job id, a file name) finds children too."""
        return not (self.parent or self.show_children or self.q)

    def to_args(self, **changes: Any) -> dict[str, Any]:
        """Query parameters that reproduce these filters (with ``changes``), defaults left out."""
        filters = replace(self, **changes)
        args: dict[str, Any] = {}
        for name in ("q", "type", "user", "status", "group", "category", "parent"):
            if getattr(filters, name):
                args[name] = getattr(filters, name)
        if filters.date_from:
            args["from"] = local_date(filters.date_from, filters.zone).isoformat()
        if filters.date_to:
            args["to"] = (local_date(filters.date_to, filters.zone) - timedelta(days=1)).isoformat()
        if filters.show_system:
            args["system"] = "1"
        if filters.show_children:
            args["children"] = "1"
        if filters.sort != "created" or not filters.descending:
            args["sort"] = filters.sort
            args["dir"] = "desc" if filters.descending else "asc"
        if filters.page != 1:
            args["page"] = filters.page
        if filters.per_page != DEFAULT_PAGE_SIZE:
            args["per_page"] = filters.per_page
        if filters.after is not None:
            args["after"] = filters.after.token
        if filters.before is not None:
            args["before"] = filters.before.token
        if filters.last:
            args["last"] = "1"
        return args

    def first_page_args(self, **changes: Any) -> dict[str, Any]:
        """Query parameters of the first page of these filters with ``changes`` (no page, no cursor)."""
        return self.to_args(**{"page": 1, "after": None, "before": None, "last": False, **changes})

    def one_day_args(self, day: date) -> dict[str, Any]:
        """Query parameters of the first page of these filters narrowed to ``day``, a day of the
        viewer's zone (``from`` and ``to`` both that day)."""
        return {**self.first_page_args(), "from": day.isoformat(), "to": day.isoformat()}

    def is_one_day(self, day: date) -> bool:
        """True if the list shows ``day`` (of the viewer's zone) and no other."""
        args = self.to_args()
        return args.get("from") == args.get("to") == day.isoformat()

    @property
    def is_filtered(self) -> bool:
        """True if anything but sorting and paging narrows the list."""
        return any((self.q, self.type, self.user, self.status, self.group, self.date_from, self.date_to, self.parent))

    @property
    def is_first_page(self) -> bool:
        return self.page == 1 and self.after is None and self.before is None and not self.last


def quick_days(now: datetime, zone: tzinfo) -> list[tuple[str, date]]:
    """The days of :data:`QUICK_DAYS` (translated label, day) as they are in ``zone`` at ``now``
    (naive UTC): at 23:30 UTC, "Today" is already tomorrow in Tokyo."""
    today = local_date(now, zone)
    return [(gettext(label), today - timedelta(days=back)) for label, back in QUICK_DAYS]


def _integer(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidFilter(
            gettext("%(name)s must be a whole number, got %(value)s", name=name, value=repr(raw))
        ) from None
    if not low <= value <= high:
        raise InvalidFilter(
            gettext(
                "%(name)s must be between %(low)s and %(high)s, got %(value)s",
                name=name,
                low=low,
                high=high,
                value=value,
            )
        )
    return value


def _choice(args: Mapping[str, str], name: str, allowed: Sequence[str]) -> str:
    raw = args.get(name, "").strip()
    if raw and raw not in allowed:
        raise InvalidFilter.not_one_of(name, allowed, raw)
    return raw


def _position(args: Mapping[str, str], sort: str, page: int) -> tuple[Cursor | None, Cursor | None, bool]:
    after = Cursor.parse("after", args["after"].strip()) if args.get("after", "").strip() else None
    before = Cursor.parse("before", args["before"].strip()) if args.get("before", "").strip() else None
    last = args.get("last", "") in ("1", "true", "on")
    if sum((after is not None, before is not None, last)) > 1:
        raise InvalidFilter(gettext("after, before and last cannot be combined"))
    if (after or before or last) and page != 1:
        raise InvalidFilter(gettext("page cannot be combined with after, before or last"))
    if (after or before or last) and sort not in INDEXED_SORTS:
        raise InvalidFilter(
            gettext("after, before and last page through the list by creation time, not by %(sort)s", sort=sort)
        )
    return after, before, last


def parse_filters(args: Mapping[str, str], zone: tzinfo = UTC) -> ListFilters:
    """Read the list's query parameters; raise InvalidFilter for any value that makes no sense.

    ``from`` and ``to`` are days of ``zone`` (the viewer's): the filter is the range of UTC
    moments from the start of the one to the end of the other, 23 or 25 hours long for a day
    when clocks change, and stays a range on ``created_at`` (an index range)."""
    status = _choice(args, "status", [s.value for s in JobStatus])
    group = _choice(args, "group", list(STATUS_GROUPS))
    sort = _choice(args, "sort", list(SORTABLE)) or "created"
    direction = _choice(args, "dir", ["asc", "desc"]) or "desc"
    date_from = parse_day_bound(args, "from", zone)
    date_to = parse_day_bound(args, "to", zone, end=True)  # "to" is inclusive: the whole day
    if date_from and date_to and date_from >= date_to:
        raise InvalidFilter(gettext("from must be on or before to"))
    per_page = _integer(args, "per_page", DEFAULT_PAGE_SIZE, 1, max(PAGE_SIZES))
    page = _integer(args, "page", 1, 1, MAX_PAGE)
    texts = {}
    for name, limit in (("q", 200), ("type", 64), ("user", 64), ("category", 64), ("parent", 36)):
        value = args.get(name, "").strip()
        if len(value) > limit:
            raise InvalidFilter(gettext("%(name)s is longer than %(limit)s characters", name=name, limit=limit))
        if "\x00" in value:
            raise InvalidFilter(gettext("%(name)s contains a NUL character", name=name))
        texts[name] = value
    after, before, last = _position(args, sort, page)
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
        show_children=args.get("children", "") in ("1", "true", "on"),
        sort=sort,
        descending=direction == "desc",
        page=page,
        per_page=per_page,
        after=after,
        before=before,
        last=last,
        zone=zone,
    )


@dataclass
class JobPage:
    """One page of the list, with what its navigation links need."""

    jobs: list[Job]
    filters: ListFilters
    has_next: bool
    has_previous: bool = False
    children: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # id -> (finished, total)
    families: Mapping[str, Family] = field(default_factory=dict)  # id -> its children's counts
    results: Mapping[str, Result] = field(default_factory=dict)  # id -> the file to offer in its row
    #: The page's place among the matching jobs, when it is known (offset pages, not cursor pages).
    offset: int | None = 0
    #: Set when a sort other than by creation ordered only the SORT_WINDOW newest matching jobs.
    window: int | None = None
    #: Set when a search on SQLite read only search.SEARCH_WINDOW matches of its words for this page.
    searched: int | None = None
    #: Where the next page goes on when that search stopped before the page was full.
    resume: Cursor | None = None

    @property
    def newest(self) -> str | None:
        """The position of the page's first job, from which the live list asks for newer jobs
        (see :func:`newer_ids`): only on the first page of the newest-first order, else None
        (new jobs do not belong on other pages); "" when that page is empty."""
        if not (self.filters.sort == "created" and self.filters.descending and self.filters.is_first_page):
            return None
        return Cursor.of(self.jobs[0]).token if self.jobs else ""

    @property
    def first_index(self) -> int | None:
        return None if self.offset is None else self.offset + 1

    @property
    def labels(self) -> tuple[str, str, str, str]:
        """Words of the four links: first, previous, next, last page."""
        if self.filters.sort == "created" and self.filters.descending:
            return (N_("Newest"), N_("Newer"), N_("Older"), N_("Oldest"))
        return (N_("First"), N_("Previous"), N_("Next"), N_("Last"))

    def previous_args(self) -> dict[str, Any] | None:
        if not self.has_previous:
            return None
        filters = self.filters
        if filters.sort in INDEXED_SORTS and self.jobs:
            return filters.first_page_args(before=Cursor.of(self.jobs[0]))
        if filters.page > 1:
            return filters.first_page_args(page=filters.page - 1)
        return filters.first_page_args()

    def next_args(self) -> dict[str, Any] | None:
        if self.resume is not None:
            return self.filters.first_page_args(after=self.resume)
        if not self.has_next or not self.jobs:
            return None
        if self.filters.sort in INDEXED_SORTS:
            return self.filters.first_page_args(after=Cursor.of(self.jobs[-1]))
        return self.filters.first_page_args(page=self.filters.page + 1)

    def last_args(self) -> dict[str, Any] | None:
        """The last page: a link only where it can be read directly (the indexed order)."""
        if not self.has_next or self.filters.sort not in INDEXED_SORTS:
            return None
        return self.filters.first_page_args(last=True)


def build_conditions(
    filters: ListFilters, connection: sa.Connection, *, visible_to: str | None
) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions for ``filters`` except ``is_system`` (see :func:`system_values`) and,
    where SQLite's FTS5 answers it, the search. ``visible_to`` limits to one user's jobs."""
    c = job_table.c
    conditions: list[sa.ColumnElement[bool]] = []
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
    elif filters.top_level_only:
        conditions.append(_top_level(narrowed=_narrowed(filters, visible_to)))
    if filters.date_from:
        conditions.append(c.created_at >= filters.date_from)
    if filters.date_to:
        conditions.append(c.created_at < filters.date_to)
    if filters.q and not search.has_fts(connection):
        conditions.append(search.condition(connection, filters.q))
    return conditions


def _narrowed(filters: ListFilters, visible_to: str | None) -> bool:
    """Whether a filter with its own index (user, status, type, category) narrows the list."""
    return bool(visible_to or filters.user or filters.status or filters.type or filters.category)


def leading_columns(filters: ListFilters, visible_to: str | None) -> tuple[str, ...]:
    """Columns the conditions hold constant that must lead the ORDER BY for an index to serve
    it: PostgreSQL does not take ``parent_id IS NULL`` as fixing ``parent_id`` (it does for
    ``=``), so the top level orders by ``parent_id, created_at, id`` - the same rows in the
    same order, read along ``ix_jobmonitor_job_parent_created`` without a sort."""
    if not filters.top_level_only or _narrowed(filters, visible_to):
        return ()
    return ("parent_id",)


def _top_level(*, narrowed: bool) -> sa.ColumnElement[bool]:
    """Jobs without a parent. Alone, ``parent_id IS NULL`` is the walk of
    ``ix_jobmonitor_job_parent_created``. With a filter that has its own index (user, status,
    type, category) that index must stay the walk, or a rare status would be searched for
    along every top-level job: the same condition is then written so that no index can take
    it (a filter on the rows that index yields; children are a minority of any filter's rows).
    PostgreSQL estimates that form from statistics of the expression (models.py), so that it
    still expects most jobs to pass it and keeps walking the filter's index."""
    c = job_table.c
    if narrowed:
        # the literal '' (not a bound parameter): PostgreSQL matches the expression against
        # the statistics models.TOP_LEVEL_STATISTICS_DDL keeps of it, text for text
        return sa.func.coalesce(c.parent_id, sa.literal_column("''")) == ""
    return c.parent_id.is_(None)


def system_values(filters: ListFilters, allow_system: bool) -> tuple[bool, ...]:
    """The ``is_system`` values the list shows: ordinary jobs, and system jobs if asked and allowed."""
    return (False, True) if filters.show_system and allow_system else (False,)


def newest_first(
    conditions: Sequence[sa.ColumnElement[bool]],
    systems: Sequence[bool],
    columns: Sequence[str] = ("id", "created_at"),
    *,
    dialect: str,
    descending: bool = True,
    limit: int,
    offset: int = 0,
    leading: Sequence[str] = (),
) -> sa.Select[Any] | sa.CompoundSelect:
    """``columns`` of the jobs matching ``conditions``, newest first (or oldest first), as an
    index walk that stops after ``offset + limit`` rows.

    Each ``is_system`` value is its own branch, so that every index ``(..., is_system,
    created_at, id)`` is read in order; with two branches the query is a ``UNION ALL`` of two
    ordered index walks (SQLite merges them; PostgreSQL sorts the at most ``offset + limit``
    rows of each) instead of reading and sorting every matching row.
    """
    c = job_table.c
    if dialect in MYSQL_DIALECTS:
        # MySQL/MariaDB drop a column fixed by an equality from the order on their own, but sort
        # when the order names one fixed by IS NULL (the top level's parent_id)
        leading = ()
    order = [*leading, "created_at", "id"]  # leading: columns fixed by the conditions (see leading_columns)
    columns = [*columns, *(name for name in order if name not in columns)]  # a UNION orders by its own columns

    def branch(value: bool) -> sa.Select[Any]:
        return sa.select(*(c[name] for name in columns)).where(*conditions, flag_is(c.is_system, value, dialect))

    if len(systems) == 1:
        keys: list[Any] = [c[name] for name in order]
        query: sa.Select[Any] | sa.CompoundSelect = branch(systems[0])
    elif dialect != "sqlite":
        # PostgreSQL and MySQL/MariaDB do not merge the ordered branches of a UNION ALL (they
        # append and sort them all); each branch stops after offset + limit rows instead, so
        # only that many are sorted
        def first_rows(value: bool) -> Any:
            ranked = branch(value).order_by(*(c[name].desc() if descending else c[name].asc() for name in order))
            return sa.select(ranked.limit(limit + offset).subquery())

        merged = sa.union_all(*(first_rows(value) for value in systems)).subquery("merged")
        query = sa.select(*(merged.c[name] for name in columns))
        keys = [merged.c[name] for name in order]
    else:
        # SQLite merges the ordered branches of a compound SELECT with its own ORDER BY
        query = sa.union_all(*(branch(value) for value in systems))
        keys = [query.selected_columns[name] for name in order]
    ordered = [key.desc() if descending else key.asc() for key in keys]
    return query.order_by(*ordered).limit(limit).offset(offset or None)


def _beyond(cursor: Cursor, descending: bool, dialect: str) -> sa.ColumnElement[bool]:
    """Rows that come after ``cursor`` in the order (a condition an index range answers)."""
    return keyset_beyond(
        (job_table.c.created_at, job_table.c.id),
        (sa.literal(cursor.created_at, sa.DateTime), sa.literal(cursor.id, sa.String)),
        descending=descending,
        dialect=dialect,
    )


def _moves_on(position: Cursor, cursor: Cursor, descending: bool) -> bool:
    """Whether ``position`` comes strictly after ``cursor`` in the order."""
    here, there = (position.created_at, position.id), (cursor.created_at, cursor.id)
    return here < there if descending else here > there


@dataclass
class _Source:
    """The jobs matching one request's filters, read in creation order: as an index walk
    (:func:`newest_first`), or where SQLite's FTS5 answers the search, as a walk of its matches
    (:func:`search.newest_matches`)."""

    connection: sa.Connection
    filters: ListFilters
    conditions: list[sa.ColumnElement[bool]]
    systems: tuple[bool, ...]
    facets: dict[str, str] | None  # FTS5 facet values; None: not an FTS5 search (see rows())
    leading: tuple[str, ...] = ()  # see leading_columns
    #: Where the last :meth:`rows` stopped early: an FTS5 search that read search.SEARCH_WINDOW
    #: matches before it had enough rows (the next page goes on from there)
    resume: Cursor | None = None

    @classmethod
    def of(cls, connection: sa.Connection, filters: ListFilters, visible_to: str | None, allow_system: bool) -> _Source:
        conditions = build_conditions(filters, connection, visible_to=visible_to)
        systems = system_values(filters, allow_system)
        facets = None
        if filters.q and search.has_fts(connection):
            facets = {"t": filters.type, "c": filters.category, "u": filters.user or visible_to or ""}
            facets = {key: value for key, value in facets.items() if value}
            if len(systems) == 1:
                facets["s"] = "1" if systems[0] else "0"
                conditions.append(job_table.c.is_system.is_(systems[0]))
        return cls(connection, filters, conditions, systems, facets, leading_columns(filters, visible_to))

    def rows(
        self,
        columns: Sequence[str] = ("id", "created_at"),
        *,
        descending: bool,
        limit: int,
        offset: int = 0,
        beyond: Cursor | None = None,
        up_to: Cursor | None = None,
        bounded: bool = True,
    ) -> list[Any]:
        """Rows ``offset`` to ``offset + limit`` in creation order (``descending``: newest
        first), of those that come after ``beyond``, or that do not come after ``up_to``.
        ``bounded``: a SQLite search may stop at search.SEARCH_WINDOW matches (see resume)."""
        self.resume = None
        extra = []
        name = self.connection.dialect.name
        if beyond is not None:
            extra.append(_beyond(beyond, descending, name))
        if up_to is not None:
            extra.append(sa.not_(_beyond(up_to, descending, name)))
        if self.facets is None:
            dialect = self.connection.dialect.name
            query = newest_first(
                [*self.conditions, *extra],
                self.systems,
                columns,
                dialect=dialect,
                descending=descending,
                limit=limit,
                offset=offset,
                leading=self.leading,
            )
            return list(self.connection.execute(query))
        earliest, latest = self.filters.date_from, self.filters.date_to
        # the cursor bounds the document numbers too, so FTS5 starts its walk there
        for cursor, later in ((beyond, not descending), (up_to, descending)):
            if cursor is not None and later:
                earliest = max(earliest or cursor.created_at, cursor.created_at)
            elif cursor is not None:
                latest = min(latest or cursor.created_at, cursor.created_at)
        facets = self.facets

        def read(bounded: bool) -> search.Matches:
            return search.newest_matches(
                self.connection,
                self.filters.q,
                [*self.conditions, *extra],
                [*columns, *(name for name in ("id", "created_at") if name not in columns)],
                facets=facets,
                descending=descending,
                limit=limit,
                offset=offset,
                created_from=earliest,
                created_before=latest,
                bounded=bounded,
            )

        matches = read(bounded=bounded)
        resume = Cursor(*matches.resume) if matches.resume else None
        if resume is not None and beyond is not None and not _moves_on(resume, beyond, descending):
            # the window ended in the cursor's own millisecond (SEARCH_WINDOW matches created
            # in one millisecond): a next page would start here again, so read on instead
            matches, resume = read(bounded=False), None
        self.resume = resume
        return matches.rows


def _keyset_page(source: _Source) -> tuple[list[str], bool, bool, int | None, Cursor | None]:
    """Ids of one page in creation order, whether pages come before and after it, its offset
    (offset pages only), and where a search that stopped early goes on (see _Source.resume)."""
    filters = source.filters
    size, descending = filters.per_page, filters.descending

    def ids(reverse: bool, limit: int, **position: Any) -> list[str]:
        return [row.id for row in source.rows(descending=descending != reverse, limit=limit, **position)]

    # A page after (before) a cursor has a page before (after) it if a job lies on the cursor's
    # own side; a search that stopped at its window cannot tell, so it says there may be one.
    if filters.after is not None:
        found = ids(False, size + 1, beyond=filters.after)
        resume = source.resume
        has_previous = bool(ids(False, 1, up_to=filters.after)) or source.resume is not None
        return found[:size], has_previous, len(found) > size or resume is not None, None, resume
    if filters.before is not None:
        found = ids(True, size + 1, beyond=filters.before)
        more = source.resume is not None
        has_next = bool(ids(True, 1, up_to=filters.before)) or source.resume is not None
        return list(reversed(found[:size])), len(found) > size or more, has_next, None, None
    if filters.last:
        found = ids(True, size + 1)
        return list(reversed(found[:size])), len(found) > size or source.resume is not None, False, None, None
    offset = (filters.page - 1) * size
    found = ids(False, size + 1, offset=offset)
    resume = source.resume
    return found[:size], filters.page > 1, len(found) > size or resume is not None, offset, resume


def _window_page(source: _Source) -> tuple[list[str], bool, int, int | None]:
    """Ids of one page sorted by a key no index serves: within the ``SORT_WINDOW`` newest
    matching jobs. Returns the ids, whether a next page exists, the offset, and how many jobs
    were sorted if older matching jobs were left out of the sort (else None)."""
    filters, connection = source.filters, source.connection
    size = filters.per_page
    offset = (filters.page - 1) * size
    if offset >= SORT_WINDOW:
        return [], False, offset, SORT_WINDOW
    dialect = connection.dialect.name
    matched: Any = None
    if source.facets is None and dialect == "postgresql":
        # one read of the SORT_WINDOW + 1 newest matching jobs, numbered newest first: the one
        # beyond the window is not sorted, it only tells that more matched. A second look for
        # it, in any order, made PostgreSQL bitmap-read every job of a user with many (146,000
        # of 10M: own-jobs sorts 163-178 ms in bench_list at 48638a7, against 80-97 at 1M)
        walked = newest_first(
            source.conditions,
            source.systems,
            _WINDOW_COLUMNS,
            dialect=dialect,
            limit=SORT_WINDOW + 1,
            leading=source.leading,
        ).subquery("newest")
        rank = sa.func.row_number().over(order_by=(walked.c.created_at.desc(), walked.c.id.desc()))
        ranked = sa.select(
            *(walked.c[name] for name in _WINDOW_COLUMNS),
            rank.label("jm_rank"),
            sa.func.count().over().label("jm_matched"),
        ).subquery("ranked")
        window: Any = (
            sa.select(*(ranked.c[name] for name in (*_WINDOW_COLUMNS, "jm_matched")))
            .where(ranked.c.jm_rank <= SORT_WINDOW)
            .subquery("window")
        )
        matched = window.c.jm_matched
        full = False  # known from the page's rows, below
        sorted_count = SORT_WINDOW
    elif source.facets is None:
        window = newest_first(
            source.conditions,
            source.systems,
            _WINDOW_COLUMNS,
            dialect=dialect,
            limit=SORT_WINDOW,
            leading=source.leading,
        ).subquery("window")
        # on SQLite, numbering the window cost more than a second look (admin sorts 28.6 ->
        # 69.0 ms at 1M jobs, bench_list at ee7292b); that look needs no order: it stops at
        # the SORT_WINDOW + 1st match in any order (walking to it newest first cost as much as
        # the window itself)
        beyond = (
            sa.select(job_table.c.id)
            .where(*source.conditions, job_table.c.is_system.in_(source.systems))
            .limit(1)
            .offset(SORT_WINDOW)
        )
        full = connection.execute(beyond).first() is not None
        sorted_count = SORT_WINDOW
    else:  # FTS5 found the window's jobs: sort those rows by id
        newest = [row.id for row in source.rows(("id",), descending=True, limit=SORT_WINDOW + 1)]
        # a search that stopped at its own window sorted only the jobs it found
        full = len(newest) > SORT_WINDOW or source.resume is not None
        sorted_count = min(len(newest), SORT_WINDOW)
        window = (
            sa.select(*(job_table.c[name] for name in _WINDOW_COLUMNS))
            .where(job_table.c.id.in_(newest[:SORT_WINDOW]))
            .subquery("window")
        )
    key = _sort_key(filters.sort, dialect, window)
    ordered = key.desc() if filters.descending else key.asc()
    # MySQL/MariaDB have no NULLS LAST: the rows without a value are put after the others
    first = [key.is_(None).asc(), ordered] if dialect in MYSQL_DIALECTS else [ordered.nulls_last()]
    tie = window.c.id.desc() if filters.descending else window.c.id.asc()
    columns = [window.c.id] if matched is None else [window.c.id, matched]
    rows = connection.execute(sa.select(*columns).order_by(*first, tie).limit(size + 1).offset(offset or None)).all()
    found = [row[0] for row in rows]
    if matched is not None and rows:
        full = rows[0][1] > SORT_WINDOW
    has_next = len(found) > size and offset + size < SORT_WINDOW
    return found[:size], has_next, offset, sorted_count if full else None


def fetch_page(
    connection: sa.Connection, filters: ListFilters, *, visible_to: str | None, allow_system: bool
) -> JobPage:
    """Load one page of jobs for ``filters`` (see the module docstring for how it stays fast)."""
    source = _Source.of(connection, filters, visible_to, allow_system)
    window = resume = None
    if filters.sort in INDEXED_SORTS:
        ids, has_previous, has_next, offset, resume = _keyset_page(source)
    else:
        ids, has_next, offset, window = _window_page(source)
        has_previous = filters.page > 1
    searched = search.SEARCH_WINDOW if resume else None  # keyset pages only: their next page goes on
    if not ids:
        return JobPage(
            [], filters, has_next, has_previous, offset=offset, window=window, searched=searched, resume=resume
        )

    with Session(bind=connection) as session:
        rows = {job.id: job for job in session.execute(sa.select(Job).where(job_table.c.id.in_(ids))).scalars()}
        session.expunge_all()
    jobs = [rows[i] for i in ids if i in rows]
    families = family_progress(connection, [j.id for j in jobs])
    return JobPage(
        jobs,
        filters,
        has_next,
        has_previous,
        {key: (family.done, family.total) for key, family in families.items()},
        families,
        results_of(connection, [j.id for j in jobs]),
        offset=offset,
        window=window,
        searched=searched,
        resume=resume,
    )


def load_jobs(connection: sa.Connection, ids: Sequence[str]) -> list[Job]:
    """The jobs with ``ids``, in that order (ids not found are left out)."""
    if not ids:
        return []
    with Session(bind=connection) as session:
        rows = {job.id: job for job in session.execute(sa.select(Job).where(job_table.c.id.in_(list(ids)))).scalars()}
        session.expunge_all()
    return [rows[i] for i in ids if i in rows]


#: At most this many new jobs are counted (the page says "50+ new jobs" beyond).
NEWER_LIMIT = 50


def newer_ids(
    connection: sa.Connection,
    filters: ListFilters,
    since: Cursor,
    *,
    visible_to: str | None,
    allow_system: bool,
    limit: int = NEWER_LIMIT,
) -> list[str]:
    """Ids of the jobs matching ``filters`` created after ``since`` (the newest job a page
    shows), newest first, at most ``limit``: the jobs that appeared since the page was drawn.

    A keyset read of the list's own index walk, oldest first from the cursor (so it costs the
    same at any table size), reversed here."""
    source = _Source.of(connection, filters, visible_to, allow_system)
    rows = source.rows(("id", "created_at"), descending=False, limit=limit, beyond=since)
    return [row.id for row in reversed(rows)]


#: How far before the newest job a live list shows it looks again for jobs it does not show:
#: a job's creation time is taken before its row commits (its uploaded files are stored in
#: between), so a job may become visible after a newer one was already announced.
LATE_WINDOW = timedelta(seconds=30)


def late_ids(
    connection: sa.Connection,
    filters: ListFilters,
    since: Cursor,
    *,
    visible_to: str | None,
    allow_system: bool,
    limit: int = NEWER_LIMIT,
) -> list[str]:
    """Ids of the jobs matching ``filters`` created just before ``since`` (at most
    :data:`LATE_WINDOW` earlier, the ``limit`` nearest), newest first: the caller leaves out
    those its page already shows. The same index walk as the "Older" page from ``since``."""
    source = _Source.of(connection, filters, visible_to, allow_system)
    rows = source.rows(("id", "created_at"), descending=True, limit=limit, beyond=since)
    # an empty list asks from the first instant (year 1): nothing is earlier
    floor = since.created_at - min(LATE_WINDOW, since.created_at - datetime.min)
    return [row.id for row in rows if row.created_at >= floor]


class Family(NamedTuple):
    """A parent's children: how many ended, how many in all, how many failed, and the sum of
    their fractions done (an ended child counts 1, a running one its progress)."""

    done: int
    total: int
    failed: int
    fraction: float

    @property
    def active(self) -> int:
        """How many of the children have not ended."""
        return self.total - self.done


def family_progress(connection: sa.Connection, job_ids: Sequence[str]) -> dict[str, Family]:
    """For each of ``job_ids`` that has children: their counts (one grouped query through
    ``ix_jobmonitor_job_parent_created``)."""
    if not job_ids:
        return {}
    c = job_table.c
    ended = c.status.in_([s.value for s in FINISHED_STATUSES])
    finished = sa.func.sum(sa.case((ended, 1), else_=0))
    failed = sa.func.sum(sa.case((c.status == JobStatus.FAILED.value, 1), else_=0))
    fraction = sa.func.sum(
        sa.case(
            (ended, 1.0),
            (c.progress_total > 0, sa.cast(c.progress_done, sa.Float) / c.progress_total),
            else_=0.0,
        )
    )
    rows = connection.execute(
        sa.select(c.parent_id, finished, sa.func.count(), failed, fraction)
        .where(c.parent_id.in_(list(job_ids)))
        .group_by(c.parent_id)
    )
    return {
        parent: Family(int(done or 0), int(total), int(bad or 0), min(float(part or 0.0), float(total)))
        for parent, done, total, bad, part in rows
    }


class Result(NamedTuple):
    """The file a list row offers as the job's result."""

    file_id: int
    filename: str
    kind: str


def results_of(connection: sa.Connection, job_ids: Sequence[str]) -> dict[str, Result]:
    """For each of ``job_ids`` that has one: its newest output file, else its newest error
    report (one query by ``ix_jobmonitor_file_job_id``)."""
    if not job_ids:
        return {}
    f = file_table.c
    rows = connection.execute(
        sa.select(f.id, f.job_id, sa.func.coalesce(f.original_name, f.filename).label("filename"), f.kind)
        .where(f.job_id.in_(list(job_ids)), f.kind.in_(("output", "error_report")))
        .order_by(f.id)
    )
    found: dict[str, Result] = {}
    for row in rows:
        held = found.get(row.job_id)
        if held is None or row.kind == "output" or held.kind != "output":
            found[row.job_id] = Result(row.id, row.filename, row.kind)
    return found


#: At most this many users are offered in the list's user drop-down.
USER_CHOICES = 500


def users_with_jobs(connection: sa.Connection, limit: int = USER_CHOICES) -> list[tuple[str, str]]:
    """(id, name) of the users who ran jobs, by id: a skip scan of
    ``ix_jobmonitor_job_run_by_created`` (one index probe per user, whatever the job count)."""
    table = job_table.name
    query = sa.text(
        f"""
        WITH RECURSIVE users(id) AS (
            SELECT (SELECT MIN(run_by_id) FROM {table})
            UNION ALL
            SELECT (SELECT MIN(j.run_by_id) FROM {table} j WHERE j.run_by_id > users.id)
            FROM users WHERE users.id IS NOT NULL
        )
        SELECT users.id,
               (SELECT n.run_by_name FROM {table} n WHERE n.run_by_id = users.id LIMIT 1) AS name
        FROM users WHERE users.id IS NOT NULL LIMIT :limit
        """
    )
    return [(row.id, row.name or row.id) for row in connection.execute(query, {"limit": limit})]


def user_choices(users: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(id, label) for the list's user picker, from :func:`users_with_jobs`: the label is the
    user's name, with the id after it when another user has the same name ("Sam Smith (42)"),
    so every label picks exactly one user."""
    seen: dict[str, int] = {}
    for _, name in users:
        seen[name] = seen.get(name, 0) + 1
    return [(user_id, f"{name} ({user_id})" if seen[name] > 1 and name != user_id else name) for user_id, name in users]


def user_has_jobs(connection: sa.Connection, user_id: str) -> bool:
    """Whether anyone with this id ever ran a job (one probe of ``ix_jobmonitor_job_run_by_created``):
    the list tells a user id it does not know apart from a user whose jobs are all filtered out."""
    query = sa.select(job_table.c.id).where(job_table.c.run_by_id == user_id).limit(1)
    return connection.execute(query).first() is not None


def matching_ids(
    connection: sa.Connection, filters: ListFilters, *, visible_to: str | None, allow_system: bool, limit: int
) -> list[str]:
    """Ids of the (newest) jobs matching ``filters``, at most ``limit``: the "all matching" bulk
    scope. A SQLite search reads on past its window here: an action on "all matching" jobs must
    not leave out the ones a page would have found on its next page."""
    source = _Source.of(connection, filters, visible_to, allow_system)
    return [row.id for row in source.rows(("id",), descending=True, limit=limit, bounded=False)]


def _sort_key(name: str, dialect: str, table: Any) -> sa.ColumnElement[Any]:
    """The ORDER BY expression of a sort key over ``table`` (the window). Duration and waiting
    are computed the way the page shows them (``Job.duration_seconds`` / ``waiting_seconds``):
    until now while still open."""
    c = table.c
    now = sa.literal(utcnow(), sa.DateTime)
    if name == "duration":
        return _interval(c.started_at, sa.func.coalesce(c.ended_at, now), dialect)
    if name == "waiting":
        return _interval(c.created_at, sa.func.coalesce(c.started_at, c.ended_at, now), dialect)
    return c[SORTABLE[name]]


def _interval(start: sa.ColumnElement[Any], end: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    if dialect == "sqlite":
        return sa.func.julianday(end) - sa.func.julianday(start)
    if dialect in MYSQL_DIALECTS:  # DATETIME minus DATETIME is arithmetic on their digits there
        return sa.func.timestampdiff(sa.literal_column("MICROSECOND"), start, end)
    return end - start


def children_progress(connection: sa.Connection, job_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """For each of ``job_ids`` that has children: (finished children, all children)."""
    return {key: (family.done, family.total) for key, family in family_progress(connection, job_ids).items()}
