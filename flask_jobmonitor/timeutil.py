"""One clock for the whole package: naive UTC datetimes.

Naive UTC is stored because SQLite has no time zone type; keeping PostgreSQL the same means
the two databases return identical values and comparisons never mix aware and naive times.
Conversion to the viewer's time zone happens only when a page renders.

Dates given in query parameters (``from``, ``to`` of the job list and of the statistics) are
read here too, by :func:`parse_date` and :func:`day_after`, so that both kinds of page read
them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from .errors import InvalidFilter


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
        raise InvalidFilter(f"{name} must be a date like 2026-01-31, got {raw!r}") from None
    return value


def day_after(value: datetime, name: str) -> datetime:
    """The start of the day after ``value`` (an inclusive "to" date), or InvalidFilter at the
    end of the calendar."""
    try:
        return value + timedelta(days=1)
    except OverflowError:
        raise InvalidFilter(f"{name} must be a date before 9999-12-31") from None
