"""live.py: a blocked job's live progress in Redis, and the rules by which pages lay it over SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from redis import Redis

from flask_jobmonitor.keys import live_key
from flask_jobmonitor.records import live
from flask_jobmonitor.records.models import Job

JOB_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
STARTED = datetime(2026, 3, 2, 12, 0, 0)


def progress(attempt: int = 1, step: int = 3, done: int = 40, total: int | None = 108, **step_values: Any):
    values: dict[str, Any] = {
        "position": step,
        "status": "running",
        "done": done,
        "total": total,
        "counters": {"created": done},
        "started_at": STARTED,
        "ended_at": None,
    }
    values.update(step_values)
    return live.LiveProgress(attempt, step, done, total, (live.LiveStep(**values),))


def job(status: str = "running", attempt: int = 1, step: int = 3, done: int = 0, total: int | None = 108) -> Job:
    return Job(id=JOB_ID, status=status, attempt=attempt, current_step=step, progress_done=done, progress_total=total)


@pytest.fixture
def redis(redis_url: str) -> Redis:
    client = Redis.from_url(redis_url)
    client.flushdb()
    return client


def test_published_progress_is_read_back_as_it_was(redis):
    published = progress()
    live.publish(redis, JOB_ID, published)
    assert live.read_live(redis, [JOB_ID, "another"]) == {JOB_ID: published}
    assert 0 < redis.ttl(live_key(JOB_ID)) <= live.LIVE_TTL_SECONDS
    live.clear(redis, JOB_ID)
    assert live.read_live(redis, [JOB_ID]) == {}


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"v": 99, "attempt": 1}', b'{"v": 1}'])
def test_a_value_this_release_cannot_read_is_ignored(redis, raw):
    redis.set(live_key(JOB_ID), raw)
    assert live.read_live(redis, [JOB_ID]) == {}


def test_redis_down_means_the_stored_values_alone():
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    assert live.read_live(unreachable, [JOB_ID]) == {}


def test_a_running_jobs_progress_moves_forward_to_the_live_value():
    record = job(done=0)
    live.overlay_job(record, progress(done=40))
    assert (record.current_step, record.progress_done, record.progress_total) == (3, 40, 108)


def test_a_later_step_wins_over_more_items_of_an_earlier_one():
    record = job(step=2, done=120, total=120)
    live.overlay_job(record, progress(step=3, done=5))
    assert (record.current_step, record.progress_done) == (3, 5)


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (job(done=60), "SQL is further"),
        (job(step=4, done=0), "SQL is at a later step"),
        (job(status="completed"), "the job ended"),
        (job(status="queued"), "the job is not running"),
        (job(attempt=2), "another attempt runs the job"),
    ],
)
def test_live_progress_never_moves_a_job_backwards_nor_outlives_its_run(record, why):
    before = (record.current_step, record.progress_done)
    live.overlay_job(record, progress(done=40))
    assert (record.current_step, record.progress_done) == before, why


def test_a_step_still_open_in_sql_takes_the_live_values():
    stored = {"position": 3, "status": "pending", "done": 0, "total": None, "counters": {}, "started_at": None}
    merged = live.overlay_step(dict(stored, ended_at=None), progress().step(3))
    assert (merged["status"], merged["done"], merged["total"], merged["counters"]) == (
        "running",
        40,
        108,
        {"created": 40},
    )
    assert merged["started_at"] == STARTED


@pytest.mark.parametrize(
    "stored",
    [
        {"status": "completed", "done": 108},  # SQL already has the end of the step
        {"status": "running", "done": 60},  # SQL is further
    ],
)
def test_a_step_sql_has_further_along_keeps_its_sql_values(stored):
    values = dict(stored, position=3, total=108, counters={}, started_at=STARTED, ended_at=None)
    assert live.overlay_step(values, progress().step(3)) == values
