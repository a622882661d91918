"""Aggregates for the statistics page and queue health, computed in SQL on SQLite and PostgreSQL.

Every query is bounded by a ``created_at`` range (an index range scan), so the page costs what
the chosen range holds, not what the whole table holds; and with the cache of closed hours and
days (stats/cache.py) what it holds beyond them: the tail that can still change, and buckets a
recent status change made stale. The p95 duration is PostgreSQL's
``percentile_cont``; SQLite has no percentile function, so there the same interpolation is
computed in Python from the durations of the range (SQLite serves small single-machine installs).

Hours and days are those of a time zone (:class:`StatsRange` ``zone``, the viewer's): a bucket
is a range of UTC moments, from one local midnight (or hour) to the next, so a day is 23 or 25
hours long when clocks change, and the grouping in SQL follows the zone's offset
(``cache.bucket_expression``). In UTC the queries are exactly those without zones.

The page writes every duration with :func:`format_duration`, in its tables, its chart tooltips
and its chart axes alike, so a wait of 0.2 s reads "0.2s" in the table as on the chart.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker

from ..errors import InvalidFilter
from ..i18n import N_, decimal_symbol, format_number, gettext, ngettext
from ..records.dialects import MYSQL_DIALECTS, flag_is
from ..records.models import job_table
from ..records.status import ACTIVE_STATUSES, JobStatus
from ..timeutil import UTC, day_start, local_date, offset_segments, parse_date, to_local, utcnow
from . import cache as stats_cache

log = logging.getLogger("flask_jobmonitor.internal.stats")

GRANULARITIES = stats_cache.GRANULARITIES
#: RQ's worker states, marked for the catalogues (the queue health page shows them translated).
WORKER_STATES = (N_("idle"), N_("busy"), N_("suspended"), N_("started"))
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
        return f"{text.replace('.', decimal_symbol())}s"
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
    """The period and granularity the page shows: [``start``, ``end``) in naive UTC, from one
    midnight of ``zone`` to another."""

    start: datetime
    end: datetime
    granularity: str
    type: str = ""
    zone: tzinfo = UTC

    @property
    def step(self) -> timedelta:
        """The usual length of a bucket (a day of 23 or 25 hours is the exception)."""
        return timedelta(hours=1) if self.granularity == "hour" else timedelta(days=1)

    def spans(self) -> list[tuple[datetime, datetime]]:
        """Every bucket of the range as [start, end) in naive UTC, so empty hours or days show
        as zero: local days from midnight to midnight, hours of an hour each (a local hour is
        an hour of UTC whatever the offset; the hour clocks skip has no bucket, the hour they
        repeat has two)."""
        if self.granularity == "hour":
            first = _truncate(self.start, "hour") if self.zone is UTC else self.start
            starts = []
            while first < self.end:
                starts.append(first)
                first += self.step
        else:
            day = local_date(self.start, self.zone)
            starts = []
            while (moment := day_start(day, self.zone)) < self.end:
                starts.append(moment)
                day += timedelta(days=1)
        return list(zip(starts, [*starts[1:], self.end], strict=True))

    def buckets(self) -> list[datetime]:
        """Start of every bucket in the range (naive UTC)."""
        return [start for start, _ in self.spans()]

    def local(self, moment: datetime) -> datetime:
        """A naive UTC moment (a bucket's start) in the range's zone."""
        return to_local(moment, self.zone)

    @property
    def first_day(self) -> date:
        """The range's first day, in its zone (the page's "from")."""
        return local_date(self.start, self.zone)

    @property
    def last_day(self) -> date:
        """The range's last day, in its zone (the page's "to", inclusive)."""
        return local_date(self.end - timedelta(microseconds=1), self.zone)


def _truncate(value: datetime, granularity: str) -> datetime:
    value = value.replace(minute=0, second=0, microsecond=0)
    return value if granularity == "hour" else value.replace(hour=0)


#: The query parameters :func:`parse_range` reads: the ones a link to the same range carries.
RANGE_PARAMS = ("from", "to", "granularity", "type")


def parse_range(args: Any, now: datetime, zone: tzinfo = UTC) -> StatsRange:
    """Read ``from``, ``to`` (days of ``zone``, inclusive; default: the 14 days up to today
    there), ``granularity`` and ``type``; raise InvalidFilter."""
    granularity = args.get("granularity", "") or "day"
    if granularity not in GRANULARITIES:
        raise InvalidFilter.not_one_of("granularity", GRANULARITIES, granularity)

    to_value = parse_date(args, "to")
    last_day = to_value.date() if to_value else local_date(now, zone)
    from_value = parse_date(args, "from")
    try:
        first_day = from_value.date() if from_value else last_day - timedelta(days=DEFAULT_DAYS - 1)
    except OverflowError:  # "to" in the first days of year 1: no default period before it
        raise InvalidFilter(
            gettext("with no from, to must be %(days)s days after 0001-01-01 or later", days=DEFAULT_DAYS)
        ) from None
    if first_day > last_day:
        raise InvalidFilter(gettext("from must be on or before to"))
    try:
        start = day_start(first_day, zone)
    except OverflowError:
        raise InvalidFilter(gettext("%(name)s must be a date between 0001-01-02 and 9999-12-30", name="from")) from None
    try:
        end = day_start(last_day + timedelta(days=1), zone)
    except OverflowError:
        raise InvalidFilter(gettext("%(name)s must be a date before 9999-12-31", name="to")) from None
    result = StatsRange(start, end, granularity, (args.get("type", "") or "").strip()[:64], zone)
    # counted, not listed: a range from year 1 per hour would be millions of buckets
    if (end - _truncate(start, granularity)) / result.step > MAX_BUCKETS:
        too_long = (
            N_("that range has more than %(count)s hours; choose a shorter range or per day")
            if granularity == "hour"
            else N_("that range has more than %(count)s days; choose a shorter range or per day")
        )
        raise InvalidFilter(gettext(too_long, count=MAX_BUCKETS))
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

    #: The CSV's header, in the request's language (the values stay machine-readable: ISO
    #: times, decimal points, seconds).
    CSV_COLUMNS = (
        N_("Start"),
        N_("Created"),
        N_("Started"),
        N_("Failed"),
        N_("Stopped"),
        N_("Average wait (s)"),
        N_("Shortest wait (s)"),
        N_("Longest wait (s)"),
        N_("Average duration (s)"),
        N_("95th percentile duration (s)"),
    )

    def local_start(self, bucket: Bucket) -> datetime:
        """When ``bucket`` starts, in the range's zone (an aware datetime)."""
        return self.range.local(bucket.start)

    def csv_rows(self) -> list[list[Any]]:
        """The figures as CSV rows (header first); each bucket's start in the range's zone, with
        its offset ("2026-03-29 00:00:00+01:00")."""
        rows: list[list[Any]] = [[gettext(column) for column in self.CSV_COLUMNS]]
        for b in self.buckets:
            rows.append(
                [
                    self.local_start(b).isoformat(sep=" "),
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
    if dialect in MYSQL_DIALECTS:
        return sa.func.timestampdiff(sa.literal_column("MICROSECOND"), start, end) / 1e6
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
    ends = dict(stats_range.spans())
    starts = list(ends)
    codes = {start: stats_cache.cache_code(stats_range.granularity, start, end) for start, end in ends.items()}
    cached = _read_cache(connection, stats_range, include_system, now, codes) if cache else {}
    missing = [start for start in starts if start not in cached]
    live = _compute_live(connection, stats_range, include_system, [(start, ends[start]) for start in missing])
    if cache and missing:
        _write_cache(connection, stats_range, include_system, [(start, ends[start]) for start in missing], live, now)
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


def prepare_days(
    connection: sa.Connection, now: datetime | None = None, days: int = PREPARED_DAYS, zone: tzinfo = UTC
) -> int:
    """Compute (and keep) the per-day figures of the last ``days`` days of ``zone``, as the
    statistics page with its default filters would; return how many of them are kept. Days
    already kept cost nothing; the daily retention job calls this (for JOBMONITOR_TIMEZONE) so
    that people seldom meet a cold range."""
    now = now or utcnow()
    today = local_date(now, zone)
    stats_range = StatsRange(
        day_start(today - timedelta(days=days - 1), zone), day_start(today + timedelta(days=1), zone), "day", zone=zone
    )
    compute(connection, stats_range, cache=True, now=now)
    codes = {start: code for start, end in stats_range.spans() if (code := stats_cache.cache_code("day", start, end))}
    return len(stats_cache.load(connection, "day", False, "", stats_range.start, stats_range.end, codes))


def _read_cache(
    connection: sa.Connection,
    stats_range: StatsRange,
    include_system: bool,
    now: datetime,
    codes: dict[datetime, str | None],
) -> dict[datetime, sa.Row[Any]]:
    kept = {start: code for start, code in codes.items() if code is not None}
    try:
        stats_cache.drop_stale(connection, now)
        connection.commit()
        return stats_cache.load(
            connection,
            stats_range.granularity,
            include_system,
            stats_range.type,
            stats_range.start,
            stats_range.end,
            kept,
        )
    except sa.exc.DBAPIError as error:  # table not migrated yet, database busy: the jobs still answer
        connection.rollback()
        log.warning("statistics cache not read (%s); computing from the jobs", error)
        return {}


def _write_cache(
    connection: sa.Connection,
    stats_range: StatsRange,
    include_system: bool,
    missing: list[tuple[datetime, datetime]],
    live: dict[datetime, _LiveBucket],
    now: datetime,
) -> None:
    closed_before = stats_cache.closed_before(now)
    rows = []
    for start, end in missing:
        computed = live.get(start) or _LiveBucket(Bucket(start))
        code = stats_cache.cache_code(stats_range.granularity, start, end)
        if code is None or end > closed_before or computed.active:
            continue
        rows.append(
            {
                "granularity": code,
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


def _spans(buckets: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Consecutive [start, end) buckets joined into [start, end) spans."""
    spans: list[tuple[datetime, datetime]] = []
    for start, end in buckets:
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    if len(spans) > _MAX_SPANS:
        spans = [(spans[0][0], spans[-1][1])]
    return spans


def _compute_live(
    connection: sa.Connection,
    stats_range: StatsRange,
    include_system: bool,
    buckets: list[tuple[datetime, datetime]],
) -> dict[datetime, _LiveBucket]:
    """The ``buckets`` ([start, end) in UTC) aggregated from the jobs (those with no job are
    left out), keyed by start."""
    if not buckets:
        return {}
    dialect = connection.dialect.name
    c = job_table.c
    spans = _spans(buckets)
    granularity, zone = stats_range.granularity, stats_range.zone
    segments = offset_segments(zone, spans[0][0], spans[-1][1]) if zone is not UTC else []
    bucket = stats_cache.bucket_expression(dialect, c.created_at, granularity, segments).label("bucket")

    def start_of(raw: Any) -> datetime:
        return stats_cache.bucket_start(raw, granularity, zone)

    waiting = _seconds(dialect, c.created_at, c.started_at)
    duration = _seconds(dialect, c.started_at, c.ended_at)
    conditions: list[Any] = [
        sa.or_(*(sa.and_(c.created_at >= start, c.created_at < end) for start, end in spans))
        if len(spans) > 1
        else sa.and_(c.created_at >= spans[0][0], c.created_at < spans[0][1])
    ]
    if not include_system:
        conditions.append(flag_is(c.is_system, False, dialect))
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
    wanted = {start for start, _ in buckets}
    found: dict[datetime, _LiveBucket] = {}
    for row in connection.execute(sa.select(*columns).where(*conditions).group_by(bucket)):
        start = start_of(row.bucket)
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
        _p95_in_python(connection, bucket, duration, conditions, found, start_of)
    per_type = sa.select(
        bucket, c.type, sa.func.count(), sa.func.sum(failed), sa.func.sum(duration), sa.func.count(duration)
    ).where(*conditions)
    for raw, job_type, created, failures, duration_sum, durations in connection.execute(
        per_type.group_by(bucket, c.type)
    ):
        computed = found.get(start_of(raw))
        if computed is not None:
            computed.by_type[job_type] = [int(created), int(failures or 0), float(duration_sum or 0.0), int(durations)]
    return found


def _p95_in_python(
    connection: sa.Connection,
    bucket: Any,
    duration: Any,
    conditions: Sequence[Any],
    found: dict[datetime, _LiveBucket],
    start_of: Callable[[Any], datetime],
) -> None:
    values: dict[datetime, list[float]] = {}
    query = sa.select(bucket, duration).where(
        *conditions, job_table.c.ended_at.is_not(None), job_table.c.started_at.is_not(None)
    )
    for raw, seconds in connection.execute(query):
        values.setdefault(start_of(raw), []).append(float(seconds))
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


def waiting_by_queue(connection: sa.Connection, now: datetime) -> dict[str, tuple[int, datetime | None]]:
    """Queue name -> (jobs queued that could start now, when the oldest of them was queued): read
    through the status index (the queued jobs only, however many have ended)."""
    c = job_table.c
    rows = connection.execute(
        sa.select(c.queue_name, sa.func.count(), sa.func.min(c.enqueued_at))
        .where(c.status == JobStatus.QUEUED.value, c.enqueued_at.is_not(None), c.enqueued_at <= now)
        .group_by(c.queue_name)
    ).all()
    return {name: (int(count), oldest) for name, count, oldest in rows}


def queue_health(
    connection: sa.Connection,
    redis: Redis,
    queue_names: Sequence[str],
    now: datetime,
    wait_warning_seconds: float,
) -> QueueHealth:
    """Queued jobs per queue (RQ and SQL), oldest waiting job, workers, jobs per minute, warnings."""
    sql_waiting = waiting_by_queue(connection, now)
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
        log.warning("queue health without Redis: %s", error)
        redis_error = gettext("Redis is unreachable: the queues and workers cannot be read.")
        warnings.append(redis_error)
    for name in queue_names:
        count, oldest = sql_waiting.get(name, (0, None))
        age = (now - oldest).total_seconds() if oldest else None
        queues.append({"name": name, "rq_length": rq_lengths.get(name), "sql_queued": count, "oldest_wait": age})
        if age is not None and age > wait_warning_seconds:
            warnings.append(
                ngettext(
                    "Jobs in %(queue)s wait %(num)s minute; consider starting more workers.",
                    "Jobs in %(queue)s wait %(num)s minutes; consider starting more workers.",
                    round(age / 60),
                    queue=name,
                )
            )
    busy = sum(1 for w in workers if w["state"] == "busy")
    if queues and workers and busy == len(workers) and any(q["sql_queued"] for q in queues):
        warnings.append(gettext("Every worker is busy and jobs are waiting."))
    if not workers and redis_error is None:
        warnings.append(gettext("No worker is running: queued jobs will not start."))
    per_minute = _per_minute(connection, now)
    waits = _recent_waits(connection, now)
    if waits[0] is not None and waits[1] is not None and waits[0] > 2 * waits[1] and waits[0] > 30:
        warnings.append(
            gettext(
                "Waits are growing: %(recent)s s on average in the last 15 minutes, %(before)s s before.",
                recent=format_number(round(waits[0])),
                before=format_number(round(waits[1])),
            )
        )
    return QueueHealth(queues, len(workers), busy, workers, per_minute, warnings, redis_error)


def _per_minute(connection: sa.Connection, now: datetime) -> list[tuple[datetime, int]]:
    """Jobs that ended in each of the last 60 minutes."""
    c = job_table.c
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=59)
    dialect = connection.dialect.name
    if dialect == "sqlite":
        minute = sa.func.strftime("%Y-%m-%d %H:%M:00", c.ended_at)
    elif dialect in MYSQL_DIALECTS:
        minute = sa.func.date_format(c.ended_at, sa.literal_column("'%Y-%m-%d %H:%i:00'"))
    else:
        minute = sa.func.date_trunc("minute", c.ended_at)
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
