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

Every function here is best effort for its caller: :func:`flask_jobmonitor.stats.figures.compute` falls back to the jobs
when the cache cannot be read or written (a SQLite file busy with a worker's write, say).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..records.bulkwrite import in_chunks
from ..records.models import job_table, stats_bucket_table, stats_stale_table, stats_watermark_table
from ..timeutil import utcnow

MARGIN = timedelta(minutes=10)
GRANULARITIES = ("hour", "day")
_WATERMARK_ID = 1


def bucket_expression(dialect: str, column: sa.ColumnElement[Any], granularity: str) -> sa.ColumnElement[Any]:
    """The start of the hour or day ``column`` falls in, computed by the database."""
    if dialect == "sqlite":
        pattern = "%Y-%m-%d %H:00:00" if granularity == "hour" else "%Y-%m-%d 00:00:00"
        return sa.func.strftime(pattern, column)
    return sa.func.date_trunc(granularity, column)


def as_datetime(value: Any) -> datetime:
    """A bucket start as the database returned it (SQLite: text) as a naive UTC datetime."""
    start = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return start.replace(tzinfo=None)


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
    t = stats_bucket_table.c
    days = sorted({hour.replace(hour=0) for hour in hours})
    for granularity, starts in (("hour", hours), ("day", days)):
        for chunk in in_chunks(starts):
            connection.execute(
                sa.delete(stats_bucket_table).where(t.granularity == granularity, t.bucket_start.in_(chunk))
            )


def load(
    connection: sa.Connection, granularity: str, include_system: bool, type_filter: str, start: datetime, end: datetime
) -> dict[datetime, sa.Row[Any]]:
    """The cached rows of one filter between ``start`` and ``end``, by bucket start."""
    t = stats_bucket_table.c
    rows = connection.execute(
        sa.select(stats_bucket_table).where(
            t.granularity == granularity,
            t.include_system.is_(include_system),
            t.type == type_filter,
            t.bucket_start >= start,
            t.bucket_start < end,
        )
    ).all()
    return {row.bucket_start: row for row in rows}


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
    for chunk in in_chunks(rows):
        connection.execute(statement, list(chunk))


def clear(connection: sa.Connection) -> int:
    """Drop every cached bucket (``flask jobmonitor clear-stats-cache``); return how many."""
    return int(connection.execute(sa.delete(stats_bucket_table)).rowcount or 0)
