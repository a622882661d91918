"""The statistics page (``stats.compute`` per day and per hour, charts, tables, CSV) and the queue
health page, on SQLite and PostgreSQL, with jobs whose times and statuses are known.

Every figure is checked against a value this module computes itself from the same rows. The
95th percentile is PostgreSQL's ``percentile_cont`` (linear interpolation) on both databases:
SQLite's is computed in Python the same way (see ``stats/figures.py``). The data
hold buckets where the two agree (21 durations) and buckets where they differ, and each
database is checked against its own definition.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from rq import Worker
from rq.worker import WorkerStatus

from flask_jobmonitor.jobs import control
from flask_jobmonitor.records.models import job_table, stats_bucket_table
from flask_jobmonitor.records.transitions import apply_transition
from flask_jobmonitor.state import get_state
from flask_jobmonitor.stats import cache as stats_cache
from flask_jobmonitor.stats.figures import Bucket, StatsRange, compute, parse_range, prepare_days, queue_health
from flask_jobmonitor.timeutil import utcnow

from .. import tasks
from ..support.databases import recorded_statements
from ..support.extensions import QUEUE_NAMES, db
from ..support.rows import add_job
from ..support.web import enqueue


def t(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    """A time in 2026 (naive UTC, as the package stores)."""
    return datetime(2026, month, day, hour, minute, second)


# -- the data ------------------------------------------------------------------------------------


def spec(type_: str, created, started=None, ended=None, status="completed", system=False) -> dict[str, Any]:
    return {
        "type": type_,
        "created_at": created,
        "started_at": started,
        "ended_at": ended,
        "status": status,
        "is_system": system,
    }


#: 1 March: two types, waits and durations known; the hour 10 holds two durations (the two p95
#: definitions differ), the hour 11 a queued, a running and a cancelled job; one job is created
#: at 23:59:59 and starts the next day (it counts where it was created).
#: 2 March: only a system job (the day must come out empty).
#: 3 March: 21 imports in the hour 08 (waits 0..20 s, durations 10..210 s): both p95 agree.
#: 28 February 23:59:59 and 4 March 00:00 are just outside the range 1-3 March.
JOBS: list[dict[str, Any]] = [
    spec("import", t(1, 10, 0), t(1, 10, 0, 10), t(1, 10, 1, 10)),  # wait 10, duration 60
    spec("import", t(1, 10, 30), t(1, 10, 30, 30), t(1, 10, 32, 30), "failed"),  # wait 30, duration 120
    spec("import", t(1, 10, 5), t(1, 10, 5, 1), t(1, 10, 6, 1), "failed", system=True),
    spec("export", t(1, 11, 15), t(1, 11, 15, 5), t(1, 11, 15, 35), "stopped"),  # wait 5, duration 30
    spec("export", t(1, 11, 45), status="queued"),
    spec("import", t(1, 11, 50), t(1, 11, 52), status="running"),  # wait 120, no duration yet
    spec("import", t(1, 11, 20), status="cancelled"),
    spec("export", t(1, 23, 59, 59), t(2, 0, 0, 9), t(2, 0, 0, 19)),  # wait 10, duration 10
    spec("export", t(2, 9, 0), t(2, 9, 0, 1), t(2, 9, 5), "failed", system=True),
    *(
        spec(
            "import",
            t(3, 8, i),
            t(3, 8, i, i),
            t(3, 8, i, i) + timedelta(seconds=10 * (i + 1)),
            "failed" if i == 20 else "stopped" if i == 19 else "completed",
        )
        for i in range(21)
    ),
    spec("import", t(28, 23, 59, 59, month=2), t(1, 0, 0, 5), t(1, 0, 1, 5)),
    spec("export", t(4, 0, 0), t(4, 0, 0, 1), t(4, 0, 0, 2), "failed"),
]


@pytest.fixture
def jobs(engine) -> list[str]:
    ids = []
    for number, values in enumerate(JOBS):
        ids.append(
            add_job(
                engine,
                None if values["is_system"] else "clerk_a",
                name=f"job {number}",
                status_changed_at=values["ended_at"] or values["started_at"] or values["created_at"],
                **values,
            )
        )
    return ids


# -- the reference figures -----------------------------------------------------------------------


def p95_nearest_rank(values: list[float]) -> float:
    """The smallest value with at least 95 % of the values at or below it."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def p95_interpolated(values: list[float]) -> float:
    """PostgreSQL's percentile_cont(0.95): linear between the two closest ranks."""
    ordered = sorted(values)
    position = 0.95 * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# both databases interpolate like PostgreSQL's percentile_cont (stats.percentile_cont on SQLite)
P95 = {name: p95_interpolated for name in ("sqlite", "postgresql", "mysql", "mariadb")}


def truncate(value: datetime, granularity: str) -> datetime:
    value = value.replace(minute=0, second=0, microsecond=0)
    return value if granularity == "hour" else value.replace(hour=0)


def reference(
    dialect: str, start: datetime, end: datetime, granularity: str, type_: str = "", system: bool = False
) -> list[Bucket]:
    """The figures of every bucket of [start, end), computed here from JOBS."""
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    out: list[Bucket] = []
    moment = start
    while moment < end:
        rows = [
            job
            for job in JOBS
            if moment <= job["created_at"] < moment + step
            and (system or not job["is_system"])
            and (not type_ or job["type"] == type_)
        ]
        waits = [(j["started_at"] - j["created_at"]).total_seconds() for j in rows if j["started_at"]]
        durations = [(j["ended_at"] - j["started_at"]).total_seconds() for j in rows if j["ended_at"]]
        out.append(
            Bucket(
                start=moment,
                created=len(rows),
                started=len(waits),
                failed=sum(j["status"] == "failed" for j in rows),
                stopped=sum(j["status"] == "stopped" for j in rows),
                wait_avg=sum(waits) / len(waits) if waits else None,
                wait_min=min(waits) if waits else None,
                wait_max=max(waits) if waits else None,
                duration_avg=sum(durations) / len(durations) if durations else None,
                duration_p95=P95[dialect](durations) if durations else None,
            )
        )
        moment += step
    return out


FIGURES = ("wait_avg", "wait_min", "wait_max", "duration_avg", "duration_p95")


def assert_buckets(actual: list[Bucket], expected: list[Bucket]) -> None:
    assert [b.start for b in actual] == [b.start for b in expected]
    for got, want in zip(actual, expected, strict=True):
        where = got.start.isoformat()
        assert (got.created, got.started, got.failed, got.stopped) == (
            want.created,
            want.started,
            want.failed,
            want.stopped,
        ), where
        for name in FIGURES:
            value, wanted = getattr(got, name), getattr(want, name)
            if wanted is None:
                assert value is None, (where, name)
            else:
                # SQLite measures with julianday(): doubles of days, exact to ~0.1 ms
                assert value == pytest.approx(wanted, abs=1e-3), (where, name)


def stats_for(engine, **args: str):
    with engine.connect() as connection:
        return compute(connection, parse_range(args, utcnow()))


# -- stats.compute -------------------------------------------------------------------------------


def test_per_day_figures(engine, jobs):
    dialect = engine.dialect.name
    stats = stats_for(engine, **{"from": "2026-03-01", "to": "2026-03-03"})
    assert (stats.range.start, stats.range.end, stats.range.granularity) == (t(1, 0), t(4, 0), "day")
    assert_buckets(stats.buckets, reference(dialect, t(1, 0), t(4, 0), "day"))
    first, empty, third = stats.buckets
    # the same figures by hand, so the reference above is checked too
    assert (first.created, first.started, first.failed, first.stopped) == (7, 5, 1, 1)
    assert (first.wait_avg, first.wait_min, first.wait_max) == pytest.approx((35, 5, 120), abs=1e-3)
    assert first.duration_avg == pytest.approx(55, abs=1e-3)  # 60, 120, 30, 10
    # 10, 30, 60, 120: rank ceil(3.8) = 4 -> 120; interpolated 60 + 0.85 * 60 = 111
    assert first.duration_p95 == pytest.approx(111, abs=1e-3)
    assert empty == Bucket(t(2, 0))  # a system job does not count; the day is there, empty
    assert (third.created, third.started, third.failed, third.stopped) == (21, 21, 1, 1)
    assert (third.wait_avg, third.wait_min, third.wait_max) == pytest.approx((10, 0, 20), abs=1e-3)
    assert third.duration_avg == pytest.approx(110, abs=1e-3)
    assert third.duration_p95 == pytest.approx(200, abs=1e-3)  # both definitions: the 20th of 21


def test_per_hour_figures(engine, jobs):
    dialect = engine.dialect.name
    stats = stats_for(engine, **{"from": "2026-03-01", "to": "2026-03-01", "granularity": "hour"})
    assert len(stats.buckets) == 24
    assert_buckets(stats.buckets, reference(dialect, t(1, 0), t(2, 0), "hour"))
    by_hour = {b.start.hour: b for b in stats.buckets}
    ten, eleven, last = by_hour[10], by_hour[11], by_hour[23]
    assert (ten.created, ten.started, ten.failed, ten.stopped) == (2, 2, 1, 0)
    assert (ten.wait_avg, ten.duration_avg) == pytest.approx((20, 90), abs=1e-3)
    assert ten.duration_p95 == pytest.approx(117, abs=1e-3)
    assert (eleven.created, eleven.started, eleven.failed, eleven.stopped) == (4, 2, 0, 1)
    assert (eleven.wait_avg, eleven.wait_min, eleven.wait_max) == pytest.approx((62.5, 5, 120), abs=1e-3)
    assert (eleven.duration_avg, eleven.duration_p95) == pytest.approx((30, 30), abs=1e-3)
    assert (last.created, last.wait_avg, last.duration_p95) == (
        1,
        pytest.approx(10, abs=1e-3),
        pytest.approx(10, abs=1e-3),
    )
    for hour in set(range(24)) - {10, 11, 23}:
        assert by_hour[hour] == Bucket(t(1, hour)), hour  # empty hours are there, as zeros


def test_per_hour_over_several_days(engine, jobs):
    stats = stats_for(engine, **{"from": "2026-03-01", "to": "2026-03-03", "granularity": "hour"})
    assert len(stats.buckets) == 72
    assert_buckets(stats.buckets, reference(engine.dialect.name, t(1, 0), t(4, 0), "hour"))
    assert [b.start for b in stats.buckets if b.created] == [t(1, 10), t(1, 11), t(1, 23), t(3, 8)]


def test_type_filter(engine, jobs):
    dialect = engine.dialect.name
    stats = stats_for(engine, **{"from": "2026-03-01", "to": "2026-03-03", "type": "export"})
    assert_buckets(stats.buckets, reference(dialect, t(1, 0), t(4, 0), "day", type_="export"))
    first = stats.buckets[0]
    assert (first.created, first.started, first.failed, first.stopped) == (3, 2, 0, 1)
    # durations 30 and 10: rank ceil(1.9) = 2 -> 30; interpolated 10 + 0.95 * 20 = 29
    assert first.duration_p95 == pytest.approx(29, abs=1e-3)
    assert stats.buckets[2] == Bucket(t(3, 0))
    assert [row["type"] for row in stats.by_type] == ["export"]


def test_by_type_totals(engine, jobs):
    stats = stats_for(engine, **{"from": "2026-03-01", "to": "2026-03-03"})
    imports, exports = stats.by_type
    assert (imports["type"], imports["created"], imports["failed"]) == ("import", 25, 2)
    assert imports["duration_avg"] == pytest.approx((60 + 120 + sum(10 * (i + 1) for i in range(21))) / 23, abs=1e-3)
    assert (exports["type"], exports["created"], exports["failed"]) == ("export", 3, 0)
    assert exports["duration_avg"] == pytest.approx(20, abs=1e-3)


def test_system_jobs_are_excluded_unless_asked_for(engine, jobs):
    dialect = engine.dialect.name
    stats = stats_for(engine, **{"from": "2026-03-01", "to": "2026-03-03"})
    assert sum(b.created for b in stats.buckets) == 7 + 21
    with engine.connect() as connection:
        with_system = compute(connection, StatsRange(t(1, 0), t(4, 0), "day"), include_system=True)
    assert_buckets(with_system.buckets, reference(dialect, t(1, 0), t(4, 0), "day", system=True))
    assert (with_system.buckets[0].created, with_system.buckets[0].failed) == (8, 2)
    assert (with_system.buckets[1].created, with_system.buckets[1].failed) == (1, 1)


def test_a_range_without_jobs_is_all_zeros(engine, jobs):
    stats = stats_for(engine, **{"from": "2025-01-01", "to": "2025-01-07"})
    assert stats.buckets == [Bucket(datetime(2025, 1, day)) for day in range(1, 8)]
    assert stats.by_type == []


# -- the cache of closed buckets (stats/cache.py) -------------------------------------------------

#: A moment long after the test data, so that every bucket of March 2026 counts as closed.
LATER = datetime(2026, 6, 1)


def cached_stats(engine, stats_range: StatsRange, now: datetime = LATER, system: bool = False):
    with engine.connect() as connection:
        return compute(connection, stats_range, include_system=system, cache=True, now=now)


def cached_rows(engine) -> dict[tuple[str, bool, str, datetime], Any]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(stats_bucket_table)).all()
    return {(r.granularity, r.include_system, r.type, r.bucket_start): r for r in rows}


def assert_same_statistics(got, want) -> None:
    assert_buckets(got.buckets, want.buckets)
    assert [(e["type"], e["created"], e["failed"]) for e in got.by_type] == [
        (e["type"], e["created"], e["failed"]) for e in want.by_type
    ]
    for mine, theirs in zip(got.by_type, want.by_type, strict=True):
        assert mine["duration_avg"] == pytest.approx(theirs["duration_avg"], abs=1e-3)


@pytest.mark.parametrize(
    ("granularity", "type_", "system"),
    [("day", "", False), ("hour", "", False), ("day", "export", False), ("hour", "import", True)],
)
def test_cached_buckets_give_the_figures_the_jobs_give(engine, jobs, granularity, type_, system):
    dialect = engine.dialect.name
    stats_range = StatsRange(t(1, 0), t(4, 0), granularity, type_)
    expected = reference(dialect, t(1, 0), t(4, 0), granularity, type_=type_, system=system)
    with engine.connect() as connection:
        uncached = compute(connection, stats_range, include_system=system)

    first = cached_stats(engine, stats_range, system=system)  # computed from the jobs, then kept
    kept = cached_rows(engine)
    with recorded_statements(engine) as statements:
        second = cached_stats(engine, stats_range, system=system)

    for stats in (first, second):
        assert_buckets(stats.buckets, expected)
        assert_same_statistics(stats, uncached)
    # every bucket is kept but those that still hold a queued or running job (1 March 11:00)
    open_bucket = t(1, 11) if granularity == "hour" else t(1, 0)
    open_jobs = not type_ or type_ == "export" or granularity == "day"
    expected_keys = {
        (granularity, system, type_, b.start) for b in expected if not (open_jobs and b.start == open_bucket)
    }
    if type_ == "import" and granularity == "hour":  # the running import is in 1 March 11:00 too
        expected_keys.discard((granularity, system, type_, t(1, 11)))
    assert set(kept) == expected_keys
    # the second view reads the open bucket alone from the jobs
    job_reads = [s for s in statements if "FROM jobmonitor_job" in s and "GROUP BY" in s]
    assert job_reads and all("jobmonitor_job.created_at >=" in s for s in job_reads)
    assert len(kept) == len(cached_rows(engine))


def test_a_bucket_is_kept_only_once_it_ended_a_margin_ago(engine, jobs):
    stats_range = StatsRange(t(3, 0), t(4, 0), "day")
    cached_stats(engine, stats_range, now=t(4, 0) + stats_cache.MARGIN - timedelta(seconds=1))
    assert cached_rows(engine) == {}
    cached_stats(engine, stats_range, now=t(4, 0) + stats_cache.MARGIN)
    assert list(cached_rows(engine)) == [("day", False, "", t(3, 0))]


def test_a_status_change_drops_the_cached_bucket_of_its_job(engine, jobs):
    stats_range = StatsRange(t(1, 0), t(4, 0), "day")
    before = cached_stats(engine, stats_range, now=utcnow())
    assert before.buckets[2].stopped == 1
    assert ("day", False, "", t(3, 0)) in cached_rows(engine)
    stopped_job = jobs[JOBS.index(next(j for j in JOBS if j["status"] == "stopped" and j["created_at"].day == 3))]

    with engine.begin() as connection:  # a person discards the stopped job months later
        apply_transition(connection, stopped_job, "cancel", values={"ended_at": utcnow()})

    after = cached_stats(engine, stats_range, now=utcnow())
    assert (after.buckets[2].stopped, after.buckets[2].created) == (0, 21)
    with engine.connect() as connection:
        assert_same_statistics(after, compute(connection, stats_range))


def test_deleting_jobs_drops_their_buckets_even_if_a_racing_view_kept_them_again(app, engine, jobs):
    stats_range = StatsRange(t(1, 0), t(4, 0), "day")
    cached_stats(engine, stats_range, now=utcnow())
    kept_before = cached_rows(engine)
    assert ("day", False, "", t(3, 0)) in kept_before
    victim = jobs[JOBS.index(next(j for j in JOBS if j["created_at"].day == 3))]

    with app.app_context():
        control.delete(get_state(app), victim)

    assert ("day", False, "", t(3, 0)) not in cached_rows(engine)
    # a view that read the jobs just before the delete keeps its (now wrong) bucket just after it
    with engine.begin() as connection:
        stale = kept_before[("day", False, "", t(3, 0))]
        connection.execute(sa.insert(stats_bucket_table).values(**stale._asdict()))
    after = cached_stats(engine, stats_range, now=utcnow())
    assert after.buckets[2].created == 20
    with engine.connect() as connection:
        assert_same_statistics(after, compute(connection, stats_range))


def test_a_delete_still_deletes_when_the_cache_tables_were_never_migrated(app, engine, jobs, monkeypatch, caplog):
    def not_migrated(connection: sa.Connection, *_args: Any) -> None:
        connection.execute(sa.text("DELETE FROM jobmonitor_stats_not_migrated"))  # the database refuses it

    monkeypatch.setattr(stats_cache, "forget", not_migrated)
    victim = jobs[0]
    with app.app_context():
        control.delete(get_state(app), victim)
    with engine.connect() as connection:
        assert connection.execute(sa.select(job_table.c.id).where(job_table.c.id == victim)).first() is None
    assert "statistics cache not updated for deleted jobs" in caplog.text


def test_without_a_watermark_nothing_cached_is_trusted(engine, jobs):
    stats_range = StatsRange(t(3, 0), t(4, 0), "day")
    bogus = {
        "granularity": "day",
        "include_system": False,
        "type": "",
        "bucket_start": t(3, 0),
        "created": 999,
        "started": 0,
        "failed": 0,
        "stopped": 0,
        "by_type": {},
        "computed_at": t(4, 0),
    }
    with engine.begin() as connection:  # e.g. rows copied in by hand, without the watermark
        connection.execute(sa.insert(stats_bucket_table).values(**bogus))
    assert cached_stats(engine, stats_range).buckets[0].created == 21
    assert cached_rows(engine)[("day", False, "", t(3, 0))].created == 21


def test_the_page_works_from_the_jobs_when_the_cache_cannot_be_read(engine, jobs, monkeypatch, caplog):
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise sa.exc.OperationalError("SELECT ...", {}, Exception("no such table: jobmonitor_stats_bucket"))

    monkeypatch.setattr(stats_cache, "drop_stale", broken)
    monkeypatch.setattr(stats_cache, "store", broken)
    stats = cached_stats(engine, StatsRange(t(1, 0), t(4, 0), "day"))
    assert_buckets(stats.buckets, reference(engine.dialect.name, t(1, 0), t(4, 0), "day"))
    assert "statistics cache not read" in caplog.text and "statistics cache not written" in caplog.text


def test_the_page_uses_the_cache_unless_switched_off(make_app):
    for setting, kept in ((False, 0), (True, 3)):
        application = make_app(JOBMONITOR_STATS_CACHE=setting)
        with application.app_context():
            engine = get_state(application).engine
        for number, values in enumerate(JOBS):
            add_job(engine, None if values["is_system"] else "clerk_a", name=f"job {number}", **values)
        client = application.test_client()
        assert client.get("/_test/login/admin").status_code == 200
        page = client.get("/admin/job-statistics/?from=2026-03-02&to=2026-03-04")
        assert page.status_code == 200
        assert len(cached_rows(engine)) == kept


def test_prepare_days_keeps_the_closed_days_a_long_range_will_ask_for(engine, jobs):
    with engine.connect() as connection:
        kept = prepare_days(connection, now=LATER + timedelta(hours=1), days=100)
    # 22 February to 1 June: all but 1 March (a queued and a running job) and 1 June (not over)
    assert kept == 98
    days = {key[3] for key in cached_rows(engine)}
    assert t(1, 0) not in days and {t(2, 0), t(3, 0), t(4, 0)} <= days
    with recorded_statements(engine) as statements:
        stats = cached_stats(engine, StatsRange(t(2, 0), t(4, 0), "day"))
    assert_buckets(stats.buckets, reference(engine.dialect.name, t(2, 0), t(4, 0), "day"))
    assert not [s for s in statements if "FROM jobmonitor_job" in s and "GROUP BY" in s]


def test_clear_stats_cache_command_drops_every_bucket(app, engine, jobs):
    cached_stats(engine, StatsRange(t(2, 0), t(4, 0), "day"))
    assert len(cached_rows(engine)) == 2
    result = app.test_cli_runner().invoke(args=["jobmonitor", "clear-stats-cache"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "statistics cache cleared: 2 buckets dropped"
    assert cached_rows(engine) == {}


# -- parse_range ---------------------------------------------------------------------------------


def test_parse_range_defaults_to_the_last_14_days_per_day():
    now = datetime(2026, 3, 10, 15, 30)
    stats_range = parse_range({}, now)
    assert (stats_range.start, stats_range.end, stats_range.granularity, stats_range.type) == (
        datetime(2026, 2, 25),
        datetime(2026, 3, 11),
        "day",
        "",
    )
    assert len(stats_range.buckets()) == 14


BAD_RANGES = [
    ({"from": "2026-02-30"}, "from must be a date like 2026-01-31, got '2026-02-30'"),
    ({"to": "yesterday"}, "to must be a date like 2026-01-31, got 'yesterday'"),
    ({"from": "2026-03-05", "to": "2026-03-01"}, "from must be on or before to"),
    (
        {"from": "2026-01-01", "to": "2026-03-04", "granularity": "hour"},
        "that range has more than 1488 hours; choose a shorter range or per day",
    ),
    (
        {"from": "2020-01-01", "to": "2026-01-01"},
        "that range has more than 1488 days; choose a shorter range or per day",
    ),
    ({"granularity": "week"}, "granularity must be one of hour, day; got 'week'"),
    ({"to": "9999-12-31"}, "to must be a date before 9999-12-31"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_RANGES, ids=[m.split(" ")[0] + str(i) for i, (_, m) in enumerate(BAD_RANGES)]
)
def test_a_bad_range_answers_400_on_the_page_with_the_message(client_for, jobs, args, message):
    for extra in ({}, {"format": "csv"}):
        response = client_for("admin").get("/admin/job-statistics/", query_string={**args, **extra})
        assert response.status_code == 400
        assert response.mimetype == "text/html"
        body = response.get_data(as_text=True)
        assert message in html.unescape(body)
        assert 'role="alert"' in body
        assert "<svg" not in body


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with TimeoutError after ``seconds`` (main thread, Unix)."""

    def expire(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("granularity", ["hour", "day"])
def test_a_huge_range_is_refused_without_listing_its_buckets_first(client_for, granularity):
    """From year 1 per hour is 17.7 million buckets: the limit must be checked before they are
    built (building them took 40 s and 1 GB for one request)."""
    client = client_for("admin")
    with time_limit(3):
        response = client.get(f"/admin/job-statistics/?from=0001-01-01&to=2026-03-01&granularity={granularity}")
    assert response.status_code == 400
    assert f"that range has more than 1488 {granularity}s" in html.unescape(response.get_data(as_text=True))


def test_the_longest_range_per_hour_is_accepted(client_for, jobs):
    # 1 January to 3 March: 62 days, 1488 hours
    response = client_for("admin").get("/admin/job-statistics/?from=2026-01-01&to=2026-03-03&granularity=hour")
    assert response.status_code == 200


# -- the page ------------------------------------------------------------------------------------


def cells(*values: object) -> str:
    return "".join(f"<td>{value}</td>" for value in values)


def test_the_page_renders_three_charts_and_the_tables(client_for, engine, jobs):
    response = client_for("admin").get("/admin/job-statistics/?from=2026-03-01&to=2026-03-03")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.count("<svg") == 3
    for title in ("Jobs created", "Waiting time before a worker started the job", "Duration"):
        assert f"<title>{title}</title>" in body
    assert body.count("jm-stats-table") == 4
    # created, started, failed, stopped; waits; durations (p95 by the database's definition)
    assert cells("2026-03-01", 7, 5, 1, 1) in body
    assert cells("2026-03-03", 21, 21, 1, 1) in body
    assert cells("2026-03-01", "35s", "5s", "2m 00s") in body
    assert cells("2026-03-03", "10s", "0s", "20s") in body
    p95 = "1m 51s"
    assert cells("2026-03-01", "55s", p95) in body
    assert cells("2026-03-03", "1m 50s", "3m 20s") in body
    assert "<td>2026-03-02</td>" not in body  # the tables list days with jobs; the charts show every day
    created_chart = body[body.index("<title>Jobs created</title>") :]
    assert ">03-02</text>" in created_chart[: created_chart.index("</svg>")]
    assert cells("import", 25, 2, "1m 48s") in body  # by type: 2490 s / 23
    assert cells("export", 3, 0, "20s") in body


def test_the_page_per_hour_with_a_type(client_for, jobs):
    response = client_for("admin").get(
        "/admin/job-statistics/?from=2026-03-01&to=2026-03-01&granularity=hour&type=export"
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.count("<svg") == 3
    assert cells("2026-03-01 11:00 UTC", 2, 1, 0, 1) in body
    assert cells("2026-03-01 23:00 UTC", 1, 1, 0, 0) in body
    assert "2026-03-01 10:00" not in body  # only imports then
    assert '<option value="export" selected>export</option>' in body


def test_csv_has_the_header_and_one_row_per_bucket(client_for, engine, jobs):
    response = client_for("admin").get("/admin/job-statistics/?from=2026-03-01&to=2026-03-03&format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition == "attachment; filename=job-statistics-20260301-20260303.csv"  # "to" is included
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == [
        "Start",
        "Created",
        "Started",
        "Failed",
        "Stopped",
        "Average wait (s)",
        "Shortest wait (s)",
        "Longest wait (s)",
        "Average duration (s)",
        "95th percentile duration (s)",
    ]
    expected = reference(engine.dialect.name, t(1, 0), t(4, 0), "day")
    assert len(rows) == 1 + len(expected) == 4
    for row, bucket in zip(rows[1:], expected, strict=True):
        assert row[:5] == [
            bucket.start.isoformat(sep=" ") + "+00:00",  # the zone's offset: UTC by default
            str(bucket.created),
            str(bucket.started),
            str(bucket.failed),
            str(bucket.stopped),
        ]
        for text, name in zip(row[5:], FIGURES, strict=True):
            wanted = getattr(bucket, name)
            if wanted is None:
                assert text == "", (bucket.start, name)
            else:
                assert float(text) == pytest.approx(wanted, abs=1e-3), (bucket.start, name)
    assert rows[2] == ["2026-03-02 00:00:00+00:00", "0", "0", "0", "0", "", "", "", "", ""]
    assert rows[1][:8] == ["2026-03-01 00:00:00+00:00", "7", "5", "1", "1", "35.0", "5.0", "120.0"]


def test_csv_per_hour_has_a_row_per_hour(client_for, jobs):
    response = client_for("admin").get(
        "/admin/job-statistics/?from=2026-03-01&to=2026-03-02&granularity=hour&format=csv"
    )
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 1 + 48
    assert [row[0] for row in rows[1:3]] == ["2026-03-01 00:00:00+00:00", "2026-03-01 01:00:00+00:00"]
    assert rows[11][:5] == ["2026-03-01 10:00:00+00:00", "2", "2", "1", "0"]


# -- access ----------------------------------------------------------------------------------------

PAGES = ["/admin/job-statistics/", "/admin/job-statistics/?format=csv", "/admin/queues/"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("who", ["clerk_a", "clerk_b", "auditor", "manager"])
def test_pages_are_403_without_view_statistics(client_for, jobs, path, who):
    response = client_for(who).get(path)
    assert response.status_code == 403
    assert "import" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_anonymous_to_the_login_view(client_for, jobs, path):
    response = client_for(None).get(path)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_ok_for_admin(client_for, jobs, path):
    assert client_for("admin").get(path).status_code == 200


# -- queue health --------------------------------------------------------------------------------


@pytest.fixture
def worker(app):
    """A registered (idle) RQ worker on the default and low queues; unregistered afterwards."""
    state = get_state(app)
    registered = Worker(
        [state.queue("default"), state.queue("low")], connection=state.redis, name=f"jm-stats-{uuid.uuid4().hex[:8]}"
    )
    registered.register_birth()
    registered.set_state(WorkerStatus.IDLE)
    yield registered
    registered.register_death()


def queue_row(body: str, name: str) -> tuple[str, str, str]:
    match = re.search(
        rf"<tr><td><code>{re.escape(name)}</code></td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", body
    )
    assert match, name
    return match.group(1), match.group(2), match.group(3)


def minutes_ago(minutes: float) -> datetime:
    return utcnow() - timedelta(minutes=minutes)


def test_queue_health_figures(app, engine, worker):
    enqueue(app, tasks.noop, "clerk_a")
    enqueue(app, tasks.noop, "clerk_b")
    enqueue(app, tasks.noop, "clerk_a", low_priority=True)
    now = utcnow()
    add_job(engine, "clerk_a", queue_name=QUEUE_NAMES["high"], enqueued_at=now - timedelta(minutes=10))
    add_job(engine, "clerk_a", status="running", enqueued_at=now - timedelta(hours=1))  # not waiting
    state = get_state(app)
    with engine.connect() as connection:
        health = queue_health(connection, state.redis, state.settings.queues_in_priority_order, now, 300)
    by_name = {q["name"]: q for q in health.queues}
    assert [q["name"] for q in health.queues] == [QUEUE_NAMES[level] for level in ("high", "default", "low")]
    high, default, low = (by_name[QUEUE_NAMES[level]] for level in ("high", "default", "low"))
    assert (high["rq_length"], high["sql_queued"], high["oldest_wait"]) == (0, 1, 600.0)  # a record RQ lost
    assert (default["rq_length"], default["sql_queued"]) == (2, 2)
    assert 0 <= default["oldest_wait"] < 60
    assert (low["rq_length"], low["sql_queued"]) == (1, 1)
    assert (health.workers_online, health.workers_busy) == (1, 0)
    [listed] = health.workers
    assert (listed["name"], listed["state"], listed["current_job"]) == (worker.name, "idle", None)
    assert listed["queues"] == f"{QUEUE_NAMES['default']}, {QUEUE_NAMES['low']}"
    assert health.warnings == [f"Jobs in {QUEUE_NAMES['high']} wait 10 minutes; consider starting more workers."]
    assert health.redis_error is None


def test_queue_health_page_shows_queues_workers_and_the_wait_warning(app, engine, client_for, worker):
    enqueue(app, tasks.noop, "clerk_a")
    enqueue(app, tasks.noop, "clerk_a")
    add_job(engine, "clerk_a", queue_name=QUEUE_NAMES["default"], enqueued_at=minutes_ago(7))
    response = client_for("admin").get("/admin/queues/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    rq_length, sql_queued, oldest = queue_row(body, QUEUE_NAMES["default"])
    assert (rq_length, sql_queued) == ("2", "3")
    assert re.fullmatch(r"7m 0\ds", oldest), oldest
    assert queue_row(body, QUEUE_NAMES["high"]) == ("0", "0", "—")
    assert queue_row(body, QUEUE_NAMES["low"]) == ("0", "0", "—")
    assert f"<code>{worker.name}</code></td><td>idle</td>" in body
    assert "1 online, 0 busy" in body
    warnings = [html.unescape(w) for w in re.findall(r'data-jm="warning">.*?</i> (.*?)</div>', body)]
    assert warnings == [f"Jobs in {QUEUE_NAMES['default']} wait 7 minutes; consider starting more workers."]
    assert "No worker is running" not in body
    assert body.count("<svg") == 1


def test_no_wait_warning_below_the_threshold(app, engine, client_for, worker):
    add_job(engine, "clerk_a", queue_name=QUEUE_NAMES["default"], enqueued_at=minutes_ago(4))  # < 300 s
    body = client_for("admin").get("/admin/queues/").get_data(as_text=True)
    assert 'data-jm="warning"' not in body


def test_the_wait_warning_follows_the_setting(make_app, worker):
    app = make_app(JOBMONITOR_WAIT_WARNING_SECONDS=120)

    with app.app_context():
        engine = db.engine
    add_job(engine, "clerk_a", queue_name=QUEUE_NAMES["low"], enqueued_at=minutes_ago(4))
    client = app.test_client()
    client.get("/_test/login/admin")
    body = html.unescape(client.get("/admin/queues/").get_data(as_text=True))
    assert f"Jobs in {QUEUE_NAMES['low']} wait 4 minutes; consider starting more workers." in body


def test_no_worker_running_is_said(app, engine, client_for):
    enqueue(app, tasks.noop, "clerk_a")
    state = get_state(app)
    assert Worker.all(connection=state.redis) == [], "another process has an RQ worker registered in the test Redis"
    body = html.unescape(client_for("admin").get("/admin/queues/").get_data(as_text=True))
    assert "No worker is running: queued jobs will not start." in body
    assert '<td colspan="4" class="text-muted">No worker is running.</td>' in body
    assert "0 online, 0 busy" in body


def test_every_worker_busy_with_jobs_waiting_is_said(app, engine, client_for, worker):
    enqueue(app, tasks.noop, "clerk_a")
    worker.set_state(WorkerStatus.BUSY)
    body = html.unescape(client_for("admin").get("/admin/queues/").get_data(as_text=True))
    assert "Every worker is busy and jobs are waiting." in body
    assert "1 online, 1 busy" in body


def test_throughput_counts_jobs_ended_in_the_last_hour(app, engine, client_for, worker):
    for minutes in (1, 5, 30, 59):
        add_job(
            engine, "clerk_a", status="completed", started_at=minutes_ago(minutes + 1), ended_at=minutes_ago(minutes)
        )
    add_job(engine, "clerk_a", status="failed", started_at=minutes_ago(121), ended_at=minutes_ago(120))
    body = client_for("admin").get("/admin/queues/").get_data(as_text=True)
    assert "(4 in all)" in body
    state = get_state(app)
    with engine.connect() as connection:
        health = queue_health(connection, state.redis, state.settings.queues_in_priority_order, utcnow(), 300)
    assert len(health.per_minute) == 60
    assert sum(n for _, n in health.per_minute) == 4


def test_queue_rows_count_only_queued_records(app, engine):
    """A queued record counts in the SQL column; a running one or one held back (no enqueued_at) not."""
    add_job(engine, "clerk_a", enqueued_at=minutes_ago(1))
    add_job(engine, "clerk_a")  # a child held back by fair share has no enqueued_at
    add_job(engine, "clerk_a", status="running", enqueued_at=minutes_ago(1))
    state = get_state(app)
    with engine.connect() as connection:
        sql_queued = {
            q["name"]: q["sql_queued"]
            for q in queue_health(
                connection, state.redis, state.settings.queues_in_priority_order, utcnow(), 300
            ).queues
        }
    assert sql_queued[QUEUE_NAMES["default"]] == 1
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar() == 3


def test_a_job_scheduled_for_later_is_not_reported_as_waiting(make_app, worker):
    """A job enqueued with ``delay`` sits in RQ's scheduled registry until it is due: it has not
    waited for a worker, so it must not raise "consider starting more workers"."""
    app = make_app(JOBMONITOR_WAIT_WARNING_SECONDS=0.5)
    job_id = enqueue(app, tasks.noop, "clerk_a", delay=timedelta(hours=2))
    time.sleep(1)
    state = get_state(app)
    assert state.queue("default").count == 0  # not in the queue yet: scheduled
    client = app.test_client()
    client.get("/_test/login/admin")
    body = html.unescape(client.get("/admin/queues/").get_data(as_text=True))
    with app.app_context(), db.engine.connect() as connection:
        status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == job_id)).scalar()
    assert status == "queued"
    assert "consider starting more workers" not in body
