"""One clock for the whole package: naive UTC datetimes.

Naive UTC is stored because SQLite has no time zone type; keeping PostgreSQL the same means
the two databases return identical values and comparisons never mix aware and naive times.
Conversion to the viewer's time zone happens only when a page renders.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Return the current time as a naive UTC datetime (microseconds kept)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
