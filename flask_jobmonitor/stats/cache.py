"""The statistics page's figures of closed hours and days, kept in ``jobmonitor_stats_bucket``.

A 90-day or one-year range aggregated from the raw jobs costs what the range holds (0.6 s and
1.2 s at 1,000,000 jobs on PostgreSQL, see docs/performance.md); read from one row per bucket it
costs a few milliseconds. A bucket is only worth keeping once it can no longer change, and a
kept one must be dropped the moment it would show something else than the jobs do:

* **Written** by :func:`store` after the page computed the bucket from the jobs, if the bucket
  ended more than :data:`MARGIN` ago and none of its jobs (under the row's filters) was active
  (queued, running, stopping or paused). Empty buckets are kept too.
* **Dropped** by :func:`drop_stale` when a job of the bucket changed status: every transition
  stamps ``status_changed_at``, and each page view first drops the buckets of the jobs changed
  since the last view (a range scan of ``ix_jobmonitor_job_status_changed``), then moves the
  watermark. A stopped job resumed or cancelled months later therefore refreshes its day. And
  by :func:`forget` in the same transaction that deletes jobs (a person, or the retention job),
  which also notes the hours in ``jobmonitor_stats_stale`` for the next view to drop again: a
  view that read the jobs just before the delete may keep its buckets just after it.
* :data:`MARGIN` covers a change stamped just before a computation but committed just after it,
  a page view racing another, and app servers whose clocks differ by less than it.

**Time zones.** A bucket is a range of UTC moments [start, end), whatever zone asked for it,
and two zones that ask for the same range share its row. The row's ``granularity`` column says
which shape it has (:func:`cache_code`): ``hour`` and ``day`` are UTC-aligned hours and days
(UTC, and the hours of every zone whose offset is whole hours: Paris' hours are UTC hours);
``zh`` is an hour of a half-hour zone, ``z23``, ``z24``, ``z25`` a local day of that many
hours starting at its zone's midnight (Paris: 23:00 or 22:00 UTC; 23 and 25 hours on the days
clocks change). Such rows are dropped by range (every bucket overlapping a changed hour), the
UTC-aligned ones exactly as before; a zone-shaped bucket of another length (a 23.5-hour day at
Lord Howe Island) is not kept.

Every function here is best effort for its caller: :func:`flask_jobmonitor.stats.figures.compute` falls back to the jobs
when the cache cannot be read or written (a SQLite file busy with a worker's write, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ..records.bulkwrite import in_chunks
from ..records.dialects import MYSQL_DIALECTS
from ..records.models import job_table, stats_bucket_table, stats_stale_table, stats_watermark_table
from ..timeutil import day_start, utcnow

MARGIN = timedelta(minutes=10)
GRANULARITIES = ("hour", "day")
_WATERMARK_ID = 1
_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
#: Codes of the zone-shaped rows, and the longest bucket each may be.
_ZONE_CODES = {"zh": _HOUR, "z23": timedelta(hours=23), "z24": _DAY, "z25": timedelta(hours=25)}
_CODES = {"hour": ("hour", "zh"), "day": ("day", "z23", "z24", "z25")}


def cache_code(granularity: str, start: datetime, end: datetime) -> str | None:
    """The ``granularity`` column of the bucket [``start``, ``end``) (naive UTC), or None if a
    bucket of that shape is not kept (see the module's docstring)."""
    length = end - start
    aligned = start.minute == start.second == start.microsecond == 0
    if granularity == "hour" and length == _HOUR:
        return "hour" if aligned else "zh"
    if granularity == "day":
        if length == _DAY and aligned and start.hour == 0:
            return "day"
        code = f"z{length // _HOUR}"
        if length % _HOUR == timedelta(0) and code in _ZONE_CODES:
            return code
    return None


def bucket_expression(
    dialect: str,
    column: sa.ColumnElement[Any],
    granularity: str,
    segments: Sequence[tuple[datetime, timedelta]] = (),
) -> sa.ColumnElement[Any]:
    """The bucket ``column`` falls in, computed by the database: for hours the UTC start of
    the local hour, for days the local date (midnight); :func:`bucket_start` reads either.

    ``segments`` are the zone's offsets over the range read (``timeutil.offset_segments``);
    none, or one offset of zero, is UTC: the plain expression, exactly as without zones. A
    zone whose offset changes in the range gets a CASE over created_at, one branch per offset
    (twice a year); hours of a zone with whole-hour offsets are UTC hours and need none.
    """
    offsets = [int(offset.total_seconds()) for _, offset in segments] or [0]
    if granularity == "hour" and all(seconds % 3600 == 0 for seconds in offsets):
        offsets = [0]
    branches = [_shifted(dialect, column, granularity, seconds) for seconds in offsets]
    if len(set(offsets)) == 1:
        return branches[0]
    whens = [
        (column < sa.literal_column(f"'{until.isoformat(sep=' ', timespec='microseconds')}'"), branch)
        for (until, _), branch in zip(segments[:-1], branches[:-1], strict=True)
    ]
    return sa.case(*whens, else_=branches[-1])


def _shifted(dialect: str, column: sa.ColumnElement[Any], granularity: str, seconds: int) -> sa.ColumnElement[Any]:
    """The truncation of ``column`` moved by ``seconds`` (the zone's offset): the local date of
    a day; for an hour, moved back again, the UTC start of the local hour."""
    if dialect == "sqlite":
        pattern = "%Y-%m-%d %H:00:00" if granularity == "hour" else "%Y-%m-%d 00:00:00"
        if not seconds:
            return sa.func.strftime(pattern, column)
        local = sa.func.strftime(pattern, column, sa.literal_column(f"'{seconds:+d} seconds'"))
        return local if granularity == "day" else sa.func.datetime(local, sa.literal_column(f"'{-seconds:+d} seconds'"))
    if dialect in MYSQL_DIALECTS:
        # DATE_FORMAT's text, which as_datetime reads; a shifted hour is moved back as a DATETIME
        pattern = "'%Y-%m-%d %H:00:00'" if granularity == "hour" else "'%Y-%m-%d 00:00:00'"
        if not seconds:
            return sa.func.date_format(column, sa.literal_column(pattern))
        moved = sa.func.date_add(column, sa.literal_column(f"INTERVAL {seconds} SECOND"))
        day_or_hour = sa.func.date_format(moved, sa.literal_column(pattern))
        if granularity == "day":
            return day_or_hour
        return sa.func.date_sub(sa.cast(day_or_hour, sa.DateTime), sa.literal_column(f"INTERVAL {seconds} SECOND"))
    if not seconds:
        return sa.func.date_trunc(granularity, column)
    shift: sa.ColumnElement[Any] = sa.literal_column(f"interval '{seconds} seconds'", sa.Interval)
    local = sa.func.date_trunc(granularity, column + shift)
    return local if granularity == "day" else local - shift


def as_datetime(value: Any) -> datetime:
    """A bucket start as the database returned it (SQLite: text) as a naive datetime."""
    start = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return start.replace(tzinfo=None)


def bucket_start(value: Any, granularity: str, zone: tzinfo) -> datetime:
    """The naive UTC start of the bucket :func:`bucket_expression` returned as ``value``."""
    moment = as_datetime(value)
    if granularity == "day":
        return day_start(date(moment.year, moment.month, moment.day), zone)
    return moment


def drop_stale(connection: sa.Connection, now: datetime) -> None:
    """Drop the cached buckets of every job whose status changed since the last call (less
    :data:`MARGIN`), then move the watermark to ``now``. Without a watermark (first use, or the
    table emptied by hand) nothing cached can be trusted: everything is dropped."""
    checked_at = connection.execute(
        sa.select(stats_watermark_table.c.checked_at).where(stats_watermark_table.c.id == _WATERMARK_ID)
    ).scalar()
    if checked_at is None:
        connection.execute(sa.delete(stats_bucket_table))
        connection.execute(sa.insert(stats_watermark_table).values(id=_WATERMARK_ID, checked_at=now))
        return
    since = checked_at - MARGIN
    c = job_table.c
    hour = bucket_expression(connection.dialect.name, c.created_at, "hour")
    changed = sa.select(hour).distinct().where(c.status_changed_at >= since)
    hours = {as_datetime(value) for value in connection.execute(changed).scalars()}
    s = stats_stale_table.c
    hours.update(connection.execute(sa.select(s.hour).distinct().where(s.noted_at >= since)).scalars())
    _delete_buckets(connection, sorted(hours))
    connection.execute(sa.delete(stats_stale_table).where(s.noted_at < since - MARGIN))
    connection.execute(
        sa.update(stats_watermark_table)
        .where(stats_watermark_table.c.id == _WATERMARK_ID, stats_watermark_table.c.checked_at < now)
        .values(checked_at=now)
    )


def forget(connection: sa.Connection, created_at: Iterable[datetime], now: datetime | None = None) -> None:
    """Drop the cached buckets that counted jobs created at ``created_at`` (they are being
    deleted), and note their hours for the next page view to drop once more."""
    hours = sorted({moment.replace(minute=0, second=0, microsecond=0, tzinfo=None) for moment in created_at})
    if not hours:
        return
    _delete_buckets(connection, hours)
    noted_at = now or utcnow()
    connection.execute(sa.insert(stats_stale_table), [{"hour": hour, "noted_at": noted_at} for hour in hours])


def _delete_buckets(connection: sa.Connection, hours: list[datetime]) -> None:
    """Drop every kept bucket that counts jobs created in one of the UTC ``hours``: the
    UTC-aligned rows by their exact starts, the zone-shaped ones by range."""
    t = stats_bucket_table.c
    days = sorted({hour.replace(hour=0) for hour in hours})
    for granularity, starts in (("hour", hours), ("day", days)):
        for chunk in in_chunks(starts):
            connection.execute(
                sa.delete(stats_bucket_table).where(t.granularity == granularity, t.bucket_start.in_(chunk))
            )
    # runs of changed hours less than 23 hours apart: a local day starting between two of them
    # overlaps the later one, so deleting by run drops no bucket that counts no changed hour
    runs: list[list[datetime]] = []
    for hour in hours:
        if runs and hour - runs[-1][1] < timedelta(hours=23):
            runs[-1][1] = hour + _HOUR
        else:
            runs.append([hour, hour + _HOUR])
    for batch in in_chunks(runs, 100):
        overlapping = [
            sa.and_(t.granularity == code, t.bucket_start > first - length, t.bucket_start < end)
            for first, end in batch
            for code, length in _ZONE_CODES.items()
        ]
        connection.execute(sa.delete(stats_bucket_table).where(sa.or_(*overlapping)))


def load(
    connection: sa.Connection,
    granularity: str,
    include_system: bool,
    type_filter: str,
    start: datetime,
    end: datetime,
    codes: dict[datetime, str] | None = None,
) -> dict[datetime, sa.Row[Any]]:
    """The cached rows of one filter between ``start`` and ``end``, by bucket start: those of
    ``codes`` (bucket start -> :func:`cache_code`), or every row of ``granularity``'s UTC shape."""
    t = stats_bucket_table.c
    wanted = _CODES[granularity] if codes is not None else (granularity,)
    rows = connection.execute(
        sa.select(stats_bucket_table).where(
            t.granularity.in_(wanted),
            t.include_system.is_(include_system),
            t.type == type_filter,
            t.bucket_start >= start,
            t.bucket_start < end,
        )
    ).all()
    return {
        row.bucket_start: row
        for row in rows
        if codes is None or codes.get(as_datetime(row.bucket_start)) == row.granularity
    }


def closed_before(now: datetime) -> datetime:
    """Buckets that end at or before this moment may be kept (if none of their jobs is active)."""
    return now - MARGIN


def store(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Keep ``rows`` (columns of ``jobmonitor_stats_bucket``); a row another page view kept
    meanwhile stays as it is."""
    if not rows:
        return
    dialect = connection.dialect.name
    statement: Any = sa.insert(stats_bucket_table)  # elsewhere a duplicate fails the store (best effort)
    if dialect == "postgresql":
        statement = postgresql.insert(stats_bucket_table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(stats_bucket_table).on_conflict_do_nothing()
    elif dialect in MYSQL_DIALECTS:  # a duplicate key "updates" a column to its own value: kept as it is
        inserted = mysql.insert(stats_bucket_table)
        statement = inserted.on_duplicate_key_update(granularity=stats_bucket_table.c.granularity)
    for chunk in in_chunks(rows):
        connection.execute(statement, list(chunk))


def clear(connection: sa.Connection) -> int:
    """Drop every cached bucket (``flask jobmonitor clear-stats-cache``); return how many."""
    return int(connection.execute(sa.delete(stats_bucket_table)).rowcount or 0)
