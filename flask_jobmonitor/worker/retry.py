"""Retrying database writes through a short outage, so a job's record is not lost because the
database was unreachable for a moment (failover, restart, network blip).

A worker that is shutting down retries no longer than its shutdown allows (see shutdown.py):
the retries end with the shutdown's deadline, so a write that keeps failing cannot hold a
worker past ``JOBMONITOR_SHUTDOWN_GRACE`` (nor a cold shutdown at all)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from . import shutdown

log = logging.getLogger("flask_jobmonitor.internal.retry")
T = TypeVar("T")
#: Errors that say "the database is not reachable right now", not "this statement is wrong".
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)


def retry_db(action: Callable[[], T], seconds: float, what: str) -> T:
    """Call ``action`` until it succeeds or ``seconds`` have passed, backing off 0.5 s to 5 s
    between tries; the last transient error is re-raised when time runs out, or when the
    process got a shutdown signal whose deadline comes first."""
    deadline = time.monotonic() + seconds
    delay = 0.5
    while True:
        try:
            return action()
        except TRANSIENT_ERRORS as error:
            if time.monotonic() + delay > _limit(deadline):
                raise
            log.warning("%s: database unreachable (%s); retrying in %.1f s", what, type(error).__name__, delay)
            # a shutdown signal during the back-off ends it, with no further try
            if not _sleep_until(time.monotonic() + delay, deadline):
                raise
            delay = min(5.0, delay * 2)


def _limit(deadline: float) -> float:
    stop_by = shutdown.retry_deadline()
    return deadline if stop_by is None else min(deadline, stop_by)


def _sleep_until(until: float, deadline: float) -> bool:
    """Sleep until ``until`` in short naps; False as soon as a shutdown's deadline has passed."""
    while True:
        now = time.monotonic()
        if now >= _limit(deadline):
            return False
        if now >= until:
            return True
        time.sleep(min(0.1, until - now))
