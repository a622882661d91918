"""Helpers of the web tests (``tests/web``): jobs launched for a user, fixed times, and what a
rendered job list shows."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from .extensions import jobmonitor
from .users import USERS

_ROW_ID = re.compile(r'<tr data-job-id="([0-9a-f-]{36})"')


def enqueue(app: Flask, task: Any, who: str | None = "clerk_a", **options: Any) -> str:
    """Enqueue ``task`` for user ``who`` (a key of ``USERS``) outside any request (no flash);
    return the job id."""
    with app.app_context():
        return jobmonitor.enqueue(task, user=USERS[who] if who else None, **options).id


def at(minutes: float, base: datetime = datetime(2026, 3, 2, 12, 0, 0)) -> datetime:
    """A fixed time ``minutes`` after noon on 2 March 2026 (naive UTC, as the package stores)."""
    return base + timedelta(minutes=minutes)


def listed_ids(html: str) -> list[str]:
    """The job ids of the rows of a rendered job list, in page order."""
    return _ROW_ID.findall(html)
