"""Statistics in a time zone: days and hours of Europe/Paris and America/New_York across the
daylight-saving changes of 2026 (days of 23 and 25 hours, the hour clocks skip and the hour they
repeat), from the jobs and from the cache of closed buckets, on SQLite and PostgreSQL.

Every figure is checked against buckets this module computes itself with ``zoneinfo`` from the
same rows; the cache is checked to give what the jobs give, to keep a local day under its own
shape (``z23``, ``z24``, ``z25``) and to drop it when one of its jobs changes.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from flask_jobmonitor.records.models import stats_bucket_table
from flask_jobmonitor.records.transitions import apply_transition
from flask_jobmonitor.stats.figures import StatsRange, compute, parse_range

from ..support.databases import recorded_statements
from ..support.extensions import db
from ..support.rows import add_job
from ..support.users import log_in
from ..support.zones import DST_DAYS, DST_IDS

LATER = datetime(2027, 1, 1)  # every bucket of 2026 is closed by then


def engine_of(app: Any) -> sa.Engine:
    with app.app_context():
        return db.engine


def moments_around(start: datetime, end: datetime) -> list[datetime]:
    """Job creation times at the edges of the local day [start, end) and at each of its
    first hours, where the clocks change (02:00 local in both zones, 01:00 or 02:00 UTC after
    the day's start)."""
    second, hour = timedelta(seconds=1), timedelta(hours=1)
    inside = [start + hour * n + timedelta(minutes=30) for n in range(5)]
    return [start - second, start, *inside, end - second, end]


def add_jobs(engine: sa.Engine, moments: list[datetime]) -> None:
    for n, created in enumerate(moments):
        add_job(
            engine,
            owner="admin",
            status="completed",
            created_at=created,
            started_at=created + timedelta(seconds=n + 1),  # a wait of n + 1 seconds
            ended_at=created + timedelta(seconds=n + 11),
        )


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.replace(tzinfo=timezone.utc).astimezone(zone).date()


def local_hour(moment: datetime, zone: ZoneInfo) -> datetime:
    """The start of the local hour ``moment`` falls in, as an aware datetime (its offset tells
    the two 01:00 of a fall-back night apart)."""
    local = moment.replace(tzinfo=timezone.utc).astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0)


def range_of(zone: str, first: str, last: str, granularity: str = "day") -> StatsRange:
    return parse_range({"from": first, "to": last, "granularity": granularity}, LATER, ZoneInfo(zone))


def figures(engine: sa.Engine, stats_range: StatsRange, cache: bool = False) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        stats = compute(connection, stats_range, cache=cache, now=LATER)
    return [(stats.local_start(b), b.created, b.started, b.wait_min, b.wait_max) for b in stats.buckets]


@pytest.mark.parametrize(("zone", "day", "start", "end"), DST_DAYS, ids=DST_IDS)
@pytest.mark.parametrize("cache", [False, True], ids=["jobs", "cache"])
def test_days_are_local_days_of_23_or_25_hours_at_the_changes(make_app, zone, day, start, end, cache):
    app = make_app(JOBMONITOR_TIMEZONE=zone)
    engine = engine_of(app)
    moments = moments_around(start, end)
    add_jobs(engine, moments)
    the_day = date.fromisoformat(day)
    before, after = the_day - timedelta(days=1), the_day + timedelta(days=1)
    stats_range = range_of(zone, before.isoformat(), after.isoformat())

    spans = stats_range.spans()
    assert [e - s for s, e in spans] == [timedelta(hours=24), end - start, timedelta(hours=24)]
    assert spans[1] == (start, end)
    tz = ZoneInfo(zone)
    counts = Counter(local_day(m, tz) for m in moments)
    waits = {d: [n + 1 for n, m in enumerate(moments) if local_day(m, tz) == d] for d in counts}
    expected = [
        (
            datetime(d.year, d.month, d.day, tzinfo=tz),
            counts[d],
            counts[d],
            min(waits[d], default=None),
            max(waits[d], default=None),
        )
        for d in (before, the_day, after)
    ]
    assert counts[the_day] == 7 and counts[before] == 1 and counts[after] == 1
    first = figures(engine, stats_range, cache)
    assert [row[:3] for row in first] == [row[:3] for row in expected]
    assert [value for row in first for value in row[3:]] == pytest.approx(
        [v for row in expected for v in row[3:]], abs=1e-3
    )
    assert [row[0].utcoffset() for row in first] == [e[0].utcoffset() for e in expected]
    if cache:  # the second view reads what the first kept, and finds the same figures
        codes = {row.granularity for row in fetch_cache(engine)}
        assert codes == {"z24", f"z{(end - start) // timedelta(hours=1)}"}
        assert figures(engine, stats_range, cache) == first


@pytest.mark.parametrize(("zone", "day", "start", "end"), DST_DAYS, ids=DST_IDS)
@pytest.mark.parametrize("cache", [False, True], ids=["jobs", "cache"])
def test_hours_are_local_hours_the_skipped_one_absent_and_the_repeated_one_twice(
    make_app, zone, day, start, end, cache
):
    app = make_app(JOBMONITOR_TIMEZONE=zone)
    engine = engine_of(app)
    moments = moments_around(start, end)
    add_jobs(engine, moments)
    stats_range = range_of(zone, day, day, "hour")
    tz = ZoneInfo(zone)

    hours = [s for s, _ in stats_range.spans()]
    assert len(hours) == (end - start) // timedelta(hours=1)  # 23 or 25 buckets
    local_hours = [stats_range.local(h) for h in hours]
    wall = [h.strftime("%H") for h in local_hours]
    if end - start == timedelta(hours=23):
        assert "02" not in wall  # the hour clocks skip
    else:
        assert wall.count("01" if zone == "America/New_York" else "02") == 2  # the hour they repeat
        repeated = [h for h in local_hours if h.strftime("%H") == wall[2 if zone == "Europe/Paris" else 1]]
        assert len({h.utcoffset() for h in repeated}) == 2
    inside = [m for m in moments if start <= m < end]
    # by UTC start: aware datetimes of one zone compare by wall time, so the two 01:00 of a
    # fall-back night would be one key
    counts = Counter(local_hour(m, tz).astimezone(timezone.utc) for m in inside)
    result = figures(engine, stats_range, cache)
    assert {row[0].astimezone(timezone.utc): row[1] for row in result if row[1]} == dict(counts)
    assert sum(row[1] for row in result) == len(inside) == 7
    if cache:
        assert figures(engine, stats_range, cache) == result


def fetch_cache(engine: sa.Engine) -> list[Any]:
    with engine.connect() as connection:
        return connection.execute(sa.select(stats_bucket_table)).all()


def test_a_kept_local_day_is_dropped_when_one_of_its_jobs_changes(make_app):
    app = make_app(JOBMONITOR_TIMEZONE="Europe/Paris")
    engine = engine_of(app)
    # 22:30 UTC on March 29th is already March 30th in Paris (CEST, +2)
    job_id = add_job(
        engine,
        owner="admin",
        status="stopped",
        created_at=datetime(2026, 3, 29, 22, 30),
        started_at=datetime(2026, 3, 29, 22, 31),
        ended_at=datetime(2026, 3, 29, 22, 32),
        status_changed_at=datetime(2026, 3, 29, 22, 32),
    )
    stats_range = range_of("Europe/Paris", "2026-03-29", "2026-03-30")
    with engine.connect() as connection:
        before = compute(connection, stats_range, cache=True, now=LATER)
    assert [(b.created, b.stopped) for b in before.buckets] == [(0, 0), (1, 1)]
    assert {(row.granularity, row.bucket_start) for row in fetch_cache(engine)} == {
        ("z23", datetime(2026, 3, 28, 23)),
        ("z24", datetime(2026, 3, 29, 22)),
    }
    with engine.begin() as connection:
        apply_transition(connection, job_id, "cancel", now=LATER + timedelta(minutes=20))
    with engine.connect() as connection:
        after = compute(connection, stats_range, cache=True, now=LATER + timedelta(hours=1))
    assert [(b.created, b.stopped) for b in after.buckets] == [(0, 0), (1, 0)]


def test_in_utc_the_statistics_query_is_the_one_without_zones(make_app):
    """UTC, the default, costs what it cost before zones: no CASE, no shifted times. A zone
    with whole-hour offsets per hour needs none either; its days shift created_at."""
    app = make_app()
    engine = engine_of(app)
    add_jobs(engine, [datetime(2026, 3, 29, 12)])
    for zone, granularity, shifted in (
        ("UTC", "day", False),
        ("UTC", "hour", False),
        ("Europe/Paris", "hour", False),
        ("Europe/Paris", "day", True),
    ):
        with recorded_statements(engine) as statements:
            figures(engine, range_of(zone, "2026-03-28", "2026-03-30", granularity))
        text = " ".join(statements).upper()
        assert ("CASE WHEN (JOBMONITOR_JOB.CREATED_AT <" in text) is shifted, (zone, granularity, text)
        assert bool(re.search(r"\bSECONDS?\b", text)) is shifted, (zone, granularity)


def test_the_csv_and_the_page_show_local_bucket_starts_with_their_offset(make_app):
    app = make_app(JOBMONITOR_TIMEZONE="America/New_York")
    engine = engine_of(app)
    add_jobs(engine, moments_around(datetime(2026, 11, 1, 4), datetime(2026, 11, 2, 5)))
    client = log_in(app.test_client(), "admin")
    answer = client.get("/admin/job-statistics/?from=2026-11-01&to=2026-11-01&granularity=hour&format=csv")
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    starts = [row[0] for row in rows[1:]]
    assert len(starts) == 25
    assert starts[:3] == ["2026-11-01 00:00:00-04:00", "2026-11-01 01:00:00-04:00", "2026-11-01 01:00:00-05:00"]
    assert starts[-1] == "2026-11-01 23:00:00-05:00"
    page = client.get("/admin/job-statistics/?from=2026-11-01&to=2026-11-01&granularity=hour").get_data(as_text=True)
    assert "<td>2026-11-01 01:00 EDT</td>" in page and "<td>2026-11-01 01:00 EST</td>" in page
    daily = client.get("/admin/job-statistics/?from=2026-11-01&to=2026-11-01&format=csv").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(daily)))[1][:2] == ["2026-11-01 00:00:00-04:00", "7"]


def test_the_default_range_ends_with_today_of_the_zone():
    late_evening_utc = datetime(2026, 3, 29, 23, 30)  # already March 30th in Paris
    stats_range = parse_range({}, late_evening_utc, ZoneInfo("Europe/Paris"))
    assert (stats_range.first_day, stats_range.last_day) == (date(2026, 3, 17), date(2026, 3, 30))
    assert len(stats_range.buckets()) == 14
    utc_range = parse_range({}, late_evening_utc)
    assert utc_range.last_day == date(2026, 3, 29)


@pytest.mark.parametrize("granularity", ["day", "hour"])
def test_a_half_hour_zone_has_its_own_days_and_hours_and_keeps_them(make_app, granularity):
    app = make_app(JOBMONITOR_TIMEZONE="Asia/Kolkata")  # +05:30 all year
    engine = engine_of(app)
    # 18:29 UTC is 23:59 on March 1st in Kolkata, 18:30 UTC midnight of March 2nd
    add_jobs(engine, [datetime(2026, 3, 1, 18, 29), datetime(2026, 3, 1, 18, 30), datetime(2026, 3, 1, 19, 29)])
    stats_range = range_of("Asia/Kolkata", "2026-03-01", "2026-03-02", granularity)
    first = figures(engine, stats_range, cache=True)
    created = {row[0].strftime("%Y-%m-%d %H:%M"): row[1] for row in first if row[1]}
    if granularity == "day":
        assert created == {"2026-03-01 00:00": 1, "2026-03-02 00:00": 2}
        assert {row.granularity for row in fetch_cache(engine)} == {"z24"}
    else:
        assert created == {"2026-03-01 23:00": 1, "2026-03-02 00:00": 2}
        assert [s.minute for s in stats_range.buckets()][:2] == [30, 30]  # local hours start at :30 UTC
        assert {row.granularity for row in fetch_cache(engine)} == {"zh"}
    assert figures(engine, stats_range, cache=True) == first
