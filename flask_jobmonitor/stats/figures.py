"""Aggregates for the statistics page and queue health, computed in SQL on SQLite and PostgreSQL.

Every query is bounded by a ``created_at`` range (an index range scan), so the page costs what
the chosen range holds, not what the whole table holds; and with the cache of closed hours and
days (stats/cache.py) what it holds beyond them: the tail that can still change, and buckets a
recent status change made stale. The p95 duration is PostgreSQL's
``percentile_cont``; SQLite has no percentile function, so there the same interpolation is
computed in Python from the durations of the range (SQLite serves small single-machine installs).

The page writes every duration with :func:`format_duration`, in its tables, its chart tooltips
and its chart axes alike, so a wait of 0.2 s reads "0.2s" in the table as on the chart.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker

from ..errors import InvalidFilter
from ..records.models import job_table
from ..records.status import ACTIVE_STATUSES, JobStatus
from ..timeutil import day_after, parse_date, utcnow
from . import cache as stats_cache

log = logging.getLogger("flask_jobmonitor.internal.stats")

GRANULARITIES = stats_cache.GRANULARITIES
MAX_BUCKETS = 24 * 62  # two months of hours, or 4 years of days
DEFAULT_DAYS = 14


def format_duration(seconds: float | None, decimals: int | None = None) -> str:
    """A duration as the statistics page writes it: ``0.04s``, ``0.2s``, ``4.5s``, ``35s``,
    ``2m 00s``, ``1h 02m 05s``; None is an em dash.

    Under ten seconds it keeps one decimal (two under 0.1 s), so that short waits do not all
    read "0s"; ``decimals`` fixes the precision instead (a chart axis: enough to tell its
    ticks apart). From a minute on, whole seconds.
    """
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 60 and (decimals is not None or seconds < 10):
        places = decimals if decimals is not None else (0 if seconds == 0 else 1 if seconds >= 0.1 else 2)
        text = f"{seconds:.{places}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return f"{text}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


@dataclass(frozen=True)
class StatsRange:
    """The period and granularity the page shows."""

    start: datetime
    end: datetime
    granularity: str
    type: str = ""

    @property
    def step(self) -> timedelta:
        return timedelta(hours=1) if self.granularity == "hour" else timedelta(days=1)

    def buckets(self) -> list[datetime]:
        """Start of every bucket in the range, so empty hours or days show as zero."""
        first = _truncate(self.start, self.granularity)
        out = []
        while first < self.end:
            out.append(first)
            first += self.step
        return out


def _truncate(value: datetime, granularity: str) -> datetime:
    value = value.replace(minute=0, second=0, microsecond=0)
    return value if granularity == "hour" else value.replace(hour=0)


#: The query parameters :func:`parse_range` reads: the ones a link to the same range carries.
RANGE_PARAMS = ("from", "to", "granularity", "type")


def parse_range(args: Any, now: datetime) -> StatsRange:
    """Read ``from``, ``to`` (dates, inclusive), ``granularity`` and ``type``; raise InvalidFilter."""
    granularity = args.get("granularity", "") or "day"
    if granularity not in GRANULARITIES:
        raise InvalidFilter(f"granularity must be one of {', '.join(GRANULARITIES)}; got {granularity!r}")

    end = day_after((parse_date(args, "to") or now).replace(hour=0, minute=0, second=0, microsecond=0), "to")
    try:
        start = parse_date(args, "from") or end - timedelta(days=DEFAULT_DAYS)
    except OverflowError:  # "to" in the first days of year 1: no default period before it
        raise InvalidFilter(f"with no from, to must be {DEFAULT_DAYS} days after 0001-01-01 or later") from None
    if start >= end:
        raise InvalidFilter("from must be on or before to")
    result = StatsRange(start, end, granularity, (args.get("type", "") or "").strip()[:64])
    # counted, not listed: a range from year 1 per hour would be millions of buckets
    if (end - _truncate(start, granularity)) / result.step > MAX_BUCKETS:
        raise InvalidFilter(f"that range has more than {MAX_BUCKETS} {granularity}s; choose a shorter range or per day")
    return result


@dataclass
class Bucket:
    """The figures of one hour or day."""

    start: datetime
    created: int = 0
    started: int = 0
    failed: int = 0
    stopped: int = 0
    wait_avg: float | None = None
    wait_min: float | None = None
    wait_max: float | None = None
    duration_avg: float | None = None
    duration_p95: float | None = None


@dataclass
class Statistics:
    """The page's figures: one row per bucket, and per-type totals."""

    range: StatsRange
    buckets: list[Bucket]
    by_type: list[dict[str, Any]] = field(default_factory=list)

    CSV_COLUMNS = (
        "start",
        "created",
        "started",
        "failed",
        "stopped",
        "wait_avg_s",
        "wait_min_s",
        "wait_max_s",
        "duration_avg_s",
        "duration_p95_s",
    )

    def csv_rows(self) -> list[list[Any]]:
        """The figures as CSV rows (header first)."""
        rows: list[list[Any]] = [list(self.CSV_COLUMNS)]
        for b in self.buckets:
            rows.append(
                [
                    b.start.isoformat(sep=" "),
                    b.created,
                    b.started,
                    b.failed,
                    b.stopped,
                    *(
                        None if v is None else round(v, 3)
                        for v in (b.wait_avg, b.wait_min, b.wait_max, b.duration_avg, b.duration_p95)
                    ),
                ]
            )
        return rows


def _seconds(dialect: str, start: sa.ColumnElement[Any], end: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    if dialect == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    # date_part is double precision; EXTRACT returns numeric since PostgreSQL 14, and averaging
    # numeric was a quarter of the page's time at 1,000,000 jobs (bench/bench_stats.py)
    return sa.func.date_part("epoch", end - start)


#: A bucket's figures: the same names in :class:`Bucket` and in ``jobmonitor_stats_bucket``.
_FIGURES = tuple(f.name for f in fields(Bucket) if f.name != "start")
_ACTIVE = sorted(s.value for s in ACTIVE_STATUSES)
#: More separate runs of uncached buckets than this are read as one span from first to last.
_MAX_SPANS = 20


@dataclass
class _LiveBucket:
    """One bucket computed from the jobs: its figures, its per-type sums, its active jobs."""

    bucket: Bucket
    by_type: dict[str, list[float]] = field(default_factory=dict)  # type: [created, failed, d_sum, d_n]
    active: int = 0


def compute(
    connection: sa.Connection,
    stats_range: StatsRange,
    include_system: bool = False,
    *,
    cache: bool = False,
    now: datetime | None = None,
) -> Statistics:
    """All figures of ``stats_range``. With ``cache``, closed buckets come from
    ``jobmonitor_stats_bucket`` (see stats/cache.py) and only the others are aggregated from the
    jobs, in two grouped queries (plus the p95 on SQLite), which are then kept if closed; the
    cache's writes are committed on ``connection``, so pass one without a transaction of its own
    (``engine.connect()``, not ``engine.begin()``)."""
    now = now or utcnow()
    starts = stats_range.buckets()
    cached = _read_cache(connection, stats_range, include_system, now) if cache else {}
    missing = [start for start in starts if start not in cached]
    live = _compute_live(connection, stats_range, include_system, missing)
    if cache and missing:
        _write_cache(connection, stats_range, include_system, missing, live, now)
    buckets: list[Bucket] = []
    totals: dict[str, list[float]] = {}
    for start in starts:
        if start in cached:
            row = cached[start]
            bucket = Bucket(start=start, **{name: getattr(row, name) for name in _FIGURES})
            per_type: dict[str, list[float]] = row.by_type or {}
        else:
            computed = live.get(start)
            bucket = computed.bucket if computed else Bucket(start)
            per_type = computed.by_type if computed else {}
        buckets.append(bucket)
        for job_type, sums in per_type.items():
            total = totals.setdefault(job_type, [0, 0, 0.0, 0])
            for index, value in enumerate(sums):
                total[index] += value
    by_type = [
        {
            "type": job_type,
            "created": int(created),
            "failed": int(failed),
            "duration_avg": duration_sum / durations if durations else None,
        }
        for job_type, (created, failed, duration_sum, durations) in totals.items()
    ]
    by_type.sort(key=lambda entry: (-int(entry["created"] or 0), str(entry["type"])))
    return Statistics(stats_range, buckets, by_type)


#: Days :func:`prepare_days` computes ahead: the longest range the page offers per day in one go.
PREPARED_DAYS = 365


def prepare_days(connection: sa.Connection, now: datetime | None = None, days: int = PREPARED_DAYS) -> int:
    """Compute (and keep) the per-day figures of the last ``days`` days, as the statistics page
    with its default filters would; return how many of them are kept. Days already kept cost
    nothing; the daily retention job calls this so that people seldom meet a cold range."""
    now = now or utcnow()
    end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    stats_range = StatsRange(end - timedelta(days=days), end, "day")
    compute(connection, stats_range, cache=True, now=now)
    return len(stats_cache.load(connection, "day", False, "", stats_range.start, stats_range.end))


def _read_cache(
    connection: sa.Connection, stats_range: StatsRange, include_system: bool, now: datetime
) -> dict[datetime, sa.Row[Any]]:
    try:
        stats_cache.drop_stale(connection, now)
        connection.commit()
        return stats_cache.load(
            connection, stats_range.granularity, include_system, stats_range.type, stats_range.start, stats_range.end
        )
    except sa.exc.DBAPIError as error:  # table not migrated yet, database busy: the jobs still answer
        connection.rollback()
        log.warning("statistics cache not read (%s); computing from the jobs", error)
        return {}


def _write_cache(
    connection: sa.Connection,
    stats_range: StatsRange,
    include_system: bool,
    missing: list[datetime],
    live: dict[datetime, _LiveBucket],
    now: datetime,
) -> None:
    closed_before = stats_cache.closed_before(now)
    rows = []
    for start in missing:
        computed = live.get(start) or _LiveBucket(Bucket(start))
        if start + stats_range.step > closed_before or computed.active:
            continue
        rows.append(
            {
                "granularity": stats_range.granularity,
                "include_system": include_system,
                "type": stats_range.type,
                "bucket_start": start,
                **{name: getattr(computed.bucket, name) for name in _FIGURES},
                "by_type": computed.by_type,
                "computed_at": now,
            }
        )
    try:
        stats_cache.store(connection, rows)
        connection.commit()
    except sa.exc.DBAPIError as error:
        connection.rollback()
        log.warning("statistics cache not written (%s); the next view computes these buckets again", error)


def _spans(starts: list[datetime], step: timedelta) -> list[tuple[datetime, datetime]]:
    """Consecutive bucket starts joined into [start, end) spans."""
    spans: list[tuple[datetime, datetime]] = []
    for start in starts:
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + step)
        else:
            spans.append((start, start + step))
    if len(spans) > _MAX_SPANS:
        spans = [(spans[0][0], spans[-1][1])]
    return spans


def _compute_live(
    connection: sa.Connection, stats_range: StatsRange, include_system: bool, starts: list[datetime]
) -> dict[datetime, _LiveBucket]:
    """The buckets at ``starts`` aggregated from the jobs (those with no job are left out)."""
    if not starts:
        return {}
    dialect = connection.dialect.name
    c = job_table.c
    bucket = stats_cache.bucket_expression(dialect, c.created_at, stats_range.granularity).label("bucket")
    waiting = _seconds(dialect, c.created_at, c.started_at)
    duration = _seconds(dialect, c.started_at, c.ended_at)
    spans = _spans(starts, stats_range.step)
    conditions: list[Any] = [
        sa.or_(*(sa.and_(c.created_at >= start, c.created_at < end) for start, end in spans))
        if len(spans) > 1
        else sa.and_(c.created_at >= spans[0][0], c.created_at < spans[0][1])
    ]
    if not include_system:
        conditions.append(c.is_system.is_(False))
    if stats_range.type:
        conditions.append(c.type == stats_range.type)
    failed = sa.case((c.status == JobStatus.FAILED.value, 1), else_=0)
    columns: list[Any] = [
        bucket,
        sa.func.count().label("created"),
        sa.func.count(c.started_at).label("started"),
        sa.func.sum(failed).label("failed"),
        sa.func.sum(sa.case((c.status == JobStatus.STOPPED.value, 1), else_=0)).label("stopped"),
        sa.func.avg(waiting).label("wait_avg"),
        sa.func.min(waiting).label("wait_min"),
        sa.func.max(waiting).label("wait_max"),
        sa.func.avg(duration).label("duration_avg"),
        sa.func.sum(sa.case((c.status.in_(_ACTIVE), 1), else_=0)).label("active"),
    ]
    if dialect == "postgresql":
        columns.append(sa.func.percentile_cont(0.95).within_group(duration).label("duration_p95"))
    wanted = set(starts)
    found: dict[datetime, _LiveBucket] = {}
    for row in connection.execute(sa.select(*columns).where(*conditions).group_by(bucket)):
        start = stats_cache.as_datetime(row.bucket)
        if start not in wanted:  # one span over several runs also reads cached buckets between them
            continue
        found[start] = _LiveBucket(
            Bucket(
                start=start,
                created=int(row.created),
                started=int(row.started or 0),
                failed=int(row.failed or 0),
                stopped=int(row.stopped or 0),
                wait_avg=_float(row.wait_avg),
                wait_min=_float(row.wait_min),
                wait_max=_float(row.wait_max),
                duration_avg=_float(row.duration_avg),
                duration_p95=_float(getattr(row, "duration_p95", None)),
            ),
            active=int(row.active or 0),
        )
    if dialect != "postgresql" and found:
        _p95_in_python(connection, bucket, duration, conditions, found)
    per_type = sa.select(
        bucket, c.type, sa.func.count(), sa.func.sum(failed), sa.func.sum(duration), sa.func.count(duration)
    ).where(*conditions)
    for raw, job_type, created, failures, duration_sum, durations in connection.execute(
        per_type.group_by(bucket, c.type)
    ):
        computed = found.get(stats_cache.as_datetime(raw))
        if computed is not None:
            computed.by_type[job_type] = [int(created), int(failures or 0), float(duration_sum or 0.0), int(durations)]
    return found


def _p95_in_python(
    connection: sa.Connection,
    bucket: Any,
    duration: Any,
    conditions: Sequence[Any],
    found: dict[datetime, _LiveBucket],
) -> None:
    values: dict[datetime, list[float]] = {}
    query = sa.select(bucket, duration).where(
        *conditions, job_table.c.ended_at.is_not(None), job_table.c.started_at.is_not(None)
    )
    for raw, seconds in connection.execute(query):
        values.setdefault(stats_cache.as_datetime(raw), []).append(float(seconds))
    for start, durations in values.items():
        if start in found:
            found[start].bucket.duration_p95 = percentile_cont(durations, 0.95)


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's ``percentile_cont``: linear interpolation between the two closest ranks, so
    the page shows the same p95 on SQLite as on PostgreSQL."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# -- queue health -------------------------------------------------------------------------------


@dataclass
class QueueHealth:
    """Queues, workers and throughput right now."""

    queues: list[dict[str, Any]]
    workers_online: int
    workers_busy: int
    workers: list[dict[str, Any]]
    per_minute: list[tuple[datetime, int]]
    warnings: list[str]
    redis_error: str | None = None


def queue_health(
    connection: sa.Connection,
    redis: Redis,
    queue_names: Sequence[str],
    now: datetime,
    wait_warning_seconds: float,
) -> QueueHealth:
    """Queued jobs per queue (RQ and SQL), oldest waiting job, workers, jobs per minute, warnings."""
    c = job_table.c
    waiting_rows = connection.execute(
        sa.select(c.queue_name, sa.func.count(), sa.func.min(c.enqueued_at))
        .where(c.status == JobStatus.QUEUED.value, c.enqueued_at.is_not(None), c.enqueued_at <= now)
        .group_by(c.queue_name)
    ).all()
    sql_waiting = {name: (int(count), oldest) for name, count, oldest in waiting_rows}
    warnings: list[str] = []
    queues: list[dict[str, Any]] = []
    workers: list[dict[str, Any]] = []
    redis_error = None
    rq_lengths: dict[str, int | None] = {}
    try:
        for name in queue_names:
            rq_lengths[name] = Queue(name, connection=redis).count
        for worker in Worker.all(connection=redis):
            workers.append(
                {
                    "name": worker.name,
                    "state": str(worker.get_state()),
                    "queues": ", ".join(worker.queue_names()),
                    "current_job": worker.get_current_job_id(),
                    "last_heartbeat": worker.last_heartbeat,
                }
            )
    except RedisError as error:
        redis_error = f"Redis is unreachable: {error}"
        warnings.append(redis_error)
    for name in queue_names:
        count, oldest = sql_waiting.get(name, (0, None))
        age = (now - oldest).total_seconds() if oldest else None
        queues.append({"name": name, "rq_length": rq_lengths.get(name), "sql_queued": count, "oldest_wait": age})
        if age is not None and age > wait_warning_seconds:
            warnings.append(f"Jobs in {name} wait {age / 60:.0f} minutes; consider starting more workers.")
    busy = sum(1 for w in workers if w["state"] == "busy")
    if queues and workers and busy == len(workers) and any(q["sql_queued"] for q in queues):
        warnings.append("Every worker is busy and jobs are waiting.")
    if not workers and redis_error is None:
        warnings.append("No worker is running: queued jobs will not start.")
    per_minute = _per_minute(connection, now)
    waits = _recent_waits(connection, now)
    if waits[0] is not None and waits[1] is not None and waits[0] > 2 * waits[1] and waits[0] > 30:
        warnings.append(
            f"Waits are growing: {waits[0]:.0f} s on average in the last 15 minutes, {waits[1]:.0f} s before."
        )
    return QueueHealth(queues, len(workers), busy, workers, per_minute, warnings, redis_error)


def _per_minute(connection: sa.Connection, now: datetime) -> list[tuple[datetime, int]]:
    """Jobs that ended in each of the last 60 minutes."""
    c = job_table.c
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    dialect = connection.dialect.name
    minute = (
        sa.func.strftime("%Y-%m-%d %H:%M:00", c.ended_at)
        if dialect == "sqlite"
        else sa.func.date_trunc("minute", c.ended_at)
    )
    rows = connection.execute(sa.select(minute, sa.func.count()).where(c.ended_at >= start).group_by(minute)).all()
    counts = {
        (m if isinstance(m, datetime) else datetime.fromisoformat(m)).replace(tzinfo=None): int(n) for m, n in rows
    }
    return [(start + timedelta(minutes=i), counts.get(start + timedelta(minutes=i), 0)) for i in range(60)]


def _recent_waits(connection: sa.Connection, now: datetime) -> tuple[float | None, float | None]:
    """Average wait of jobs that started in the last 15 minutes, and in the 45 minutes before."""
    c = job_table.c
    waiting = _seconds(connection.dialect.name, c.created_at, c.started_at)

    def average(since: datetime, until: datetime) -> float | None:
        value = connection.execute(
            sa.select(sa.func.avg(waiting)).where(
                # is_system IN (...) lets the (is_system, created_at) index bound the range
                c.is_system.in_([False, True]),
                c.created_at >= since - timedelta(days=1),
                c.started_at >= since,
                c.started_at < until,
            )
        ).scalar()
        return _float(value)

    return average(now - timedelta(minutes=15), now), average(now - timedelta(hours=1), now - timedelta(minutes=15))
