"""Tasks with a retry policy (``tests/test_retries.py``), registered on the shared test
``jobmonitor`` when this module is imported, before any worker starts (a forked work horse
inherits them). A task counts its runs in Redis, so that a run in a forked horse is counted too,
and the test tells a run what to do through the same keys."""

from __future__ import annotations

import os
from typing import Any

from rq import Retry

from flask_jobmonitor import JobContext
from flask_jobmonitor.state import get_state

from .support.extensions import jobmonitor

_PREFIX = f"jm-retry-test:{os.getpid()}:"


def runs_key(job_id: str) -> str:
    """The Redis counter of the runs of job ``job_id``."""
    return f"{_PREFIX}runs:{job_id}"


def arrival_key(job_id: str) -> str:
    """The Redis list a waiting run pushes its run number onto when it has begun."""
    return f"{_PREFIX}arrived:{job_id}"


def go_key(job_id: str) -> str:
    """The Redis list a waiting run pops before it raises."""
    return f"{_PREFIX}go:{job_id}"


def delete_keys(redis: Any) -> None:
    keys = list(redis.scan_iter(f"{_PREFIX}*", count=10000))
    if keys:
        redis.delete(*keys)


def _count_run(ctx: JobContext) -> int:
    return int(get_state().redis.incr(runs_key(ctx.job_id)))


@jobmonitor.task(type="test", steps=["Read", "Save"], retry=Retry(max=2), retry_on=(ConnectionError, TimeoutError))
def flaky(ctx: JobContext, fail_times: int = 1) -> None:
    """Reads two rows, writes a result per row and a file, then raises ConnectionError on its
    first ``fail_times`` runs."""
    run = _count_run(ctx)
    with ctx.step("Read", total=2) as step:
        step.advance(2)
    with ctx.step("Save") as step:
        for row in (1, 2):
            ctx.subtask(f"row {row}", "done", f"saved by run {run}")
            step.advance()
        ctx.add_output_file("result.txt", f"run {run}".encode())
        if run <= fail_times:
            raise ConnectionError(f"the supplier's server hung up (run {run})")


@jobmonitor.task(type="test", retry=Retry(max=3), retry_on=ConnectionError)
def fails_otherwise(ctx: JobContext) -> None:
    """Raises an error its policy does not retry."""
    _count_run(ctx)
    raise ValueError("price is not a number")


@jobmonitor.task(type="test", retry=Retry(max=3, interval=[60, 600]))
def fails_then_waits(ctx: JobContext) -> None:
    """Fails every run; its retries wait a minute, then ten."""
    run = _count_run(ctx)
    raise ConnectionError(f"down (run {run})")


@jobmonitor.task(type="test", resumable=True, steps=["Rows"], retry=1)
def resumes_after_failure(ctx: JobContext, count: int = 4) -> None:
    """Saves a checkpoint per row; its first run fails after two rows, the retry continues."""
    run = _count_run(ctx)
    start = ctx.checkpoint.get("next", 0)
    with ctx.step("Rows", total=count) as step:
        for row in range(start, count):
            if run == 1 and row == 2:
                raise ConnectionError("lost the connection at row 2")
            ctx.subtask(f"row {row}", "done", f"run {run}")
            step.advance()
            ctx.save_checkpoint(next=row + 1)


@jobmonitor.task(type="test", retry=Retry(max=3))
def raises_when_told(ctx: JobContext) -> None:
    """Says it has begun, waits until the test says go, then raises (a run the test may ask to
    stop or cancel meanwhile)."""
    run = _count_run(ctx)
    redis = get_state().redis
    redis.rpush(arrival_key(ctx.job_id), run)
    redis.blpop([go_key(ctx.job_id)], timeout=20)
    raise ConnectionError(f"down (run {run})")


@jobmonitor.task(type="test", retry=Retry(max=3))
def spawns_then_fails(ctx: JobContext) -> None:
    """Starts a child job, then raises: not retried (its child goes on)."""
    from .tasks import noop

    _count_run(ctx)
    ctx.spawn(noop, name="child of a failing parent")
    raise ConnectionError("down after spawning")
