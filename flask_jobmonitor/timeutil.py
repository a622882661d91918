"""One clock for the whole package: naive UTC datetimes; and the calendar of a time zone.

Naive UTC is stored because SQLite has no time zone type; keeping PostgreSQL the same means
the two databases return identical values and comparisons never mix aware and naive times.
Conversion to the viewer's time zone happens only when a page renders (:func:`to_local`).

Dates given in query parameters (``from``, ``to`` of the job list and of the statistics) are
read here too, by :func:`parse_date` and :func:`day_after`, so that both kinds of page read
them alike. Such a date is a day of the viewer's zone: :func:`day_start` turns it into the
naive UTC moment it begins, so that a filter stays a range on the stored UTC column. A local
day is not always 24 hours long: 23 hours on the day clocks go forward, 25 on the day they go
back, and :func:`offset_segments` says where in a UTC range the zone's offset changes.

A zone is any ``tzinfo``; :func:`as_zone` turns a name (``"Europe/Paris"``) or a pytz zone
(what Flask-Babel returns) into a :class:`zoneinfo.ZoneInfo`, whose local-to-UTC arithmetic
is right across daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidFilter
from .i18n import gettext

UTC = timezone.utc
_TICK = timedelta(microseconds=1)


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (microseconds kept)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def parse_date(args: Mapping[str, str], name: str) -> datetime | None:
    """The date in query parameter ``name`` (``YYYY-MM-DD``), None if empty; InvalidFilter if malformed."""
    raw = (args.get(name, "") or "").strip()
    if not raw:
        return None
    try:
        value = datetime.strptime(raw[:10], "%Y-%m-%d")
    except ValueError:
        raise InvalidFilter(
            gettext("%(name)s must be a date like 2026-01-31, got %(value)s", name=name, value=repr(raw))
        ) from None
    return value


def day_after(value: datetime, name: str) -> datetime:
    """The start of the day after ``value`` (an inclusive "to" date), or InvalidFilter at the
    end of the calendar."""
    try:
        return value + timedelta(days=1)
    except OverflowError:
        raise InvalidFilter(gettext("%(name)s must be a date before 9999-12-31", name=name)) from None


def parse_day_bound(args: Mapping[str, str], name: str, zone: tzinfo, *, end: bool = False) -> datetime | None:
    """The naive UTC moment the day in query parameter ``name`` begins in ``zone`` (``end``: the
    day after it, for an inclusive "to"); None if empty; InvalidFilter if malformed or out of
    the calendar."""
    value = parse_date(args, name)
    if value is None:
        return None
    if end:
        value = day_after(value, name)
    try:
        return day_start(value.date(), zone)
    except OverflowError:
        raise InvalidFilter(gettext("%(name)s must be a date between 0001-01-02 and 9999-12-30", name=name)) from None


def as_zone(value: str | tzinfo) -> tzinfo:
    """The zone named ``value`` (an IANA name such as ``"Europe/Paris"``, or ``"UTC"``), or
    ``value`` itself if it is a ``tzinfo``; a pytz zone becomes the ZoneInfo of the same name.
    ValueError if the name is no zone this machine knows."""
    if isinstance(value, tzinfo):
        name = getattr(value, "zone", None)  # pytz: its tzinfo is wrong for local-to-UTC arithmetic
        return as_zone(name) if isinstance(name, str) else value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a time zone is a name such as 'Europe/Paris', got {value!r}")
    if value.strip().upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'") from None


def to_local(value: datetime, zone: tzinfo) -> datetime:
    """The naive UTC ``value`` as an aware datetime of ``zone``."""
    return value.replace(tzinfo=UTC).astimezone(zone)


def to_utc(value: datetime) -> datetime:
    """An aware datetime as naive UTC (the stored form)."""
    return value.astimezone(UTC).replace(tzinfo=None)


def local_date(value: datetime, zone: tzinfo) -> date:
    """The day of ``zone`` that the naive UTC moment ``value`` falls in."""
    return to_local(value, zone).date()


def day_start(day: date, zone: tzinfo) -> datetime:
    """The naive UTC moment the day ``day`` of ``zone`` begins. Where clocks skip midnight
    (a few zones change there), the first moment that exists: ZoneInfo reads a skipped wall
    time with the offset before the change, which lands on the change itself."""
    local = datetime(day.year, day.month, day.day, tzinfo=zone)
    return to_utc(local)


def offset_segments(zone: tzinfo, start: datetime, end: datetime) -> list[tuple[datetime, timedelta]]:
    """The pieces of [``start``, ``end``) (naive UTC) where ``zone`` keeps one UTC offset: each
    as (the naive UTC moment the piece ends, its offset), in order; the last one ends at ``end``.

    UTC and fixed zones give one piece. Offsets change at most a few times a year, so the range
    is walked by days and each change found by bisection."""

    def offset(moment: datetime) -> timedelta:
        return to_local(moment, zone).utcoffset() or timedelta(0)

    pieces: list[tuple[datetime, timedelta]] = []
    current = offset(start)
    cursor = start
    while cursor < end:
        probe = min(cursor + timedelta(days=1), end - _TICK)
        if probe <= cursor or offset(probe) == current:
            if probe >= end - _TICK:
                break
            cursor = probe
            continue
        low, high = cursor, probe  # the offset is ``current`` at low and another at high
        while high - low > _TICK:
            middle = low + (high - low) // 2
            if offset(middle) == current:
                low = middle
            else:
                high = middle
        pieces.append((high, current))
        current = offset(high)
        cursor = high
    pieces.append((end, current))
    return pieces
