"""One clock: naive UTC."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from flask_jobmonitor.errors import InvalidFilter
from flask_jobmonitor.timeutil import UTC, as_zone, day_start, offset_segments, parse_day_bound, utcnow


def test_utcnow_is_naive_utc():
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    now = utcnow()
    after = datetime.now(timezone.utc).replace(tzinfo=None)

    assert now.tzinfo is None
    assert before <= now <= after


# -- the calendar of a zone ------------------------------------------------------------------------


def test_a_local_day_starts_at_its_local_midnight_in_utc_and_lasts_23_or_25_hours_at_the_changes():
    paris, new_york = as_zone("Europe/Paris"), as_zone("America/New_York")
    assert day_start(date(2026, 3, 29), paris) == datetime(2026, 3, 28, 23)
    assert day_start(date(2026, 3, 30), paris) - day_start(date(2026, 3, 29), paris) == timedelta(hours=23)
    assert day_start(date(2026, 10, 26), paris) - day_start(date(2026, 10, 25), paris) == timedelta(hours=25)
    assert day_start(date(2026, 3, 8), new_york) == datetime(2026, 3, 8, 5)
    assert day_start(date(2026, 11, 2), new_york) - day_start(date(2026, 11, 1), new_york) == timedelta(hours=25)
    assert day_start(date(2026, 3, 29), UTC) == datetime(2026, 3, 29)


def test_offset_segments_split_a_range_where_the_offset_changes():
    paris = as_zone("Europe/Paris")
    assert offset_segments(paris, datetime(2026, 3, 28, 23), datetime(2026, 3, 29, 22)) == [
        (datetime(2026, 3, 29, 1), timedelta(hours=1)),
        (datetime(2026, 3, 29, 22), timedelta(hours=2)),
    ]
    assert offset_segments(paris, datetime(2026, 1, 1), datetime(2027, 1, 1)) == [
        (datetime(2026, 3, 29, 1), timedelta(hours=1)),
        (datetime(2026, 10, 25, 1), timedelta(hours=2)),
        (datetime(2027, 1, 1), timedelta(hours=1)),
    ]
    # a change in the last second of the range is found too
    assert offset_segments(paris, datetime(2026, 3, 29, 0, 59, 59), datetime(2026, 3, 29, 1, 0, 1)) == [
        (datetime(2026, 3, 29, 1), timedelta(hours=1)),
        (datetime(2026, 3, 29, 1, 0, 1), timedelta(hours=2)),
    ]
    assert offset_segments(UTC, datetime(2026, 1, 1), datetime(2027, 1, 1)) == [(datetime(2027, 1, 1), timedelta(0))]


def test_as_zone_reads_names_and_keeps_tzinfos():
    assert as_zone("UTC") is UTC
    assert as_zone("utc") is UTC
    assert as_zone(" Asia/Tokyo ") == ZoneInfo("Asia/Tokyo")
    assert as_zone(ZoneInfo("Asia/Tokyo")) == ZoneInfo("Asia/Tokyo")
    for bad in ("Mars/Olympus", "", "../etc/passwd", 3):
        with pytest.raises(ValueError):
            as_zone(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "zone", "end"),
    [({"from": "0001-01-01"}, "Asia/Tokyo", False), ({"to": "9999-12-31"}, "UTC", True)],
    ids=["first-day-east-of-utc", "last-day"],
)
def test_a_day_at_the_ends_of_the_calendar_is_a_filter_error_not_a_crash(args, zone, end):
    name = next(iter(args))
    with pytest.raises(InvalidFilter, match=name):
        parse_day_bound(args, name, as_zone(zone), end=end)
