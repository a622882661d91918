"""Waiting for something to happen: poll until a condition holds, never a fixed sleep.

Every wait has a timeout and fails with what it waited for and the last value it saw. The
default poll interval (0.1 s) suits work that takes seconds; a test that races a worker passes a
shorter one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sqlalchemy as sa

from .rows import job_row

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, message: str = "", interval: float = 0.1) -> T:
    """Call ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {message} (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def wait_row(
    engine: sa.Engine,
    job_id: str,
    condition: Callable[[sa.Row[Any]], bool],
    timeout: float = 10.0,
    what: str = "",
    interval: float = 0.1,
) -> sa.Row[Any]:
    """Poll the job's row until ``condition`` holds; return that row."""
    last: list[sa.Row[Any]] = []

    def check() -> sa.Row[Any] | None:
        current = job_row(engine, job_id)
        last[:] = [current]
        return current if condition(current) else None

    try:
        found = wait_for(check, timeout, what or f"job {job_id}", interval)
    except AssertionError as error:
        current = last[0] if last else None
        details = "" if current is None else f" status={current.status} attempt={current.attempt}"
        raise AssertionError(f"{error}{details} error={getattr(current, 'error_message', None)!r}") from None
    assert found is not None
    return found


def wait_status(
    engine: sa.Engine, job_id: str, statuses: str | Iterable[str], timeout: float = 10.0, interval: float = 0.1
) -> sa.Row[Any]:
    """Poll the job's row until its status is ``statuses`` (one, or any of several); return the row."""
    wanted = {statuses} if isinstance(statuses, str) else set(statuses)
    return wait_row(
        engine, job_id, lambda r: r.status in wanted, timeout, f"job {job_id} to become {sorted(wanted)}", interval
    )
