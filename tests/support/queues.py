"""RQ queues of the test hosts: emptied before a test, and how many jobs wait in each."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from redis import Redis
from rq.registry import ScheduledJobRegistry

from flask_jobmonitor.keys import metrics_key
from flask_jobmonitor.state import get_state

from .extensions import QUEUE_NAMES


def empty_queues(redis_url: str, names: Iterable[str] = QUEUE_NAMES.values()) -> None:
    """Delete the RQ queues called ``names`` (default: this process's) on ``redis_url``, with the
    jobs RQ's scheduler holds for them (delayed jobs, retries), and the metrics counters of the
    apps whose default queue is one of them (stats/metrics.py)."""
    names = list(names)
    redis = Redis.from_url(redis_url)
    keys = [f"rq:queue:{name}" for name in names]
    keys += [ScheduledJobRegistry(name, connection=redis).key for name in names]
    keys += [metrics_key(name, kind) for name in names for kind in ("started", "ended", "wait", "run")]
    redis.delete(*keys)
    for name in names:  # the claim times of runs the metrics time (stats/metrics.py)
        stale = list(redis.scan_iter(match=metrics_key(name, "claimed") + ":*", count=1000))
        if stale:
            redis.delete(*stale)


def rq_queue_sizes(app: Flask) -> dict[str, int]:
    """How many RQ jobs wait in each of the app's queues."""
    state = get_state(app)
    return {priority: state.queue(priority).count for priority in ("high", "default", "low")}
