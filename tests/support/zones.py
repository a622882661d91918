"""Days of 2026 when clocks change, for the time zone tests of the list and the statistics.

Each as (zone, the day as the page's ``from``/``to`` take it, its start and end in naive UTC):
Europe/Paris 03-29 (23 hours) and 10-25 (25 hours); America/New_York 03-08 (23 hours) and
11-01 (25 hours).
"""

from __future__ import annotations

from datetime import datetime

DST_DAYS = [
    ("Europe/Paris", "2026-03-29", datetime(2026, 3, 28, 23), datetime(2026, 3, 29, 22)),
    ("Europe/Paris", "2026-10-25", datetime(2026, 10, 24, 22), datetime(2026, 10, 25, 23)),
    ("America/New_York", "2026-03-08", datetime(2026, 3, 8, 5), datetime(2026, 3, 9, 4)),
    ("America/New_York", "2026-11-01", datetime(2026, 11, 1, 4), datetime(2026, 11, 2, 5)),
]
DST_IDS = [f"{zone}-{day}" for zone, day, _, _ in DST_DAYS]
