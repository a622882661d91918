"""Prometheus metrics of the tracked jobs, cheap to scrape at any table size.

Switched on by ``JOBMONITOR_METRICS`` (and the extra ``metrics``: ``prometheus_client``); served
at ``<prefix>/metrics`` (web/metrics.py). Rules:

* **Nothing scans the job table.** What grows with history is counted as it happens, in Redis
  (keys.py ``metrics_key``): each job start (``job_started``) and end (``job_ended``, with its
  outcome) adds to counters and histograms, in the process where it happens (a worker, a web
  request that cancels a queued job, recovery). Redis is shared by every process of the app, so
  the counters are the app's, whichever process serves the scrape, and survive restarts. What is
  true now is read from indexes: the unfinished jobs by status and type (the status index: a
  handful of rows however many finished jobs there are), the oldest waiting job per queue, the
  queues' lengths (RQ) and the workers (RQ's registry).
* **Counters only grow.** A job that ends twice (stopped, then resumed and completed) counts
  twice in ``jobmonitor_jobs_ended_total``, once per end. Should Redis lose the counters, they
  start again from zero, which Prometheus reads as a counter reset (``rate()`` is right).
* **A scrape never fails for a missing part**: Redis or the database unreachable gives
  ``jobmonitor_redis_up 0`` / ``jobmonitor_database_up 0`` and the metrics that do not need it.
  A count lost because Redis was down at a job's end is lost (logged), the job is not touched.
* **Histograms** of the time a job waited before a worker started it (per start: a resumed job
  waits again) and of its run time (first start to end), per job type, with fixed buckets
  (:data:`WAIT_BUCKETS`, :data:`RUN_BUCKETS`) so ``histogram_quantile`` works across processes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, Worker

from .. import events
from ..keys import PAUSE_ALL_KEY, metrics_key
from ..records.models import Job, job_table
from ..records.status import ACTIVE_STATUSES
from ..state import JobMonitorState, get_state
from ..timeutil import utcnow
from .figures import waiting_by_queue

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError:  # optional dependency (extra "metrics"): extension.py refuses JOBMONITOR_METRICS without it
    Collector = object  # type: ignore[assignment,misc]

log = logging.getLogger("flask_jobmonitor.internal.metrics")

#: Upper bounds (seconds) of the buckets of the time a job waits for a worker.
WAIT_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 4 * 3600)
#: Upper bounds (seconds) of the buckets of a job's run time.
RUN_BUCKETS: tuple[float, ...] = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600)
_SEPARATOR = "\x1f"  # between the labels of a hash field: never in a type or an outcome
_SUM = "sum"


def available() -> bool:
    """Whether ``prometheus_client`` is installed."""
    return Collector is not object


def _key(state: JobMonitorState, name: str) -> str:
    return metrics_key(state.settings.queue_names["default"], name)


def _bucket(seconds: float, bounds: Sequence[float]) -> str:
    """The index of the first bucket ``seconds`` fits in (``len(bounds)``: +Inf), as a field."""
    for index, bound in enumerate(bounds):
        if seconds <= bound:
            return str(index)
    return str(len(bounds))


# -- counting, where jobs start and end -----------------------------------------------------------


def connect(app: Flask) -> None:
    """Count ``app``'s job starts and ends (the extension calls it when ``JOBMONITOR_METRICS`` is on)."""
    events.job_started.connect(_started, sender=app)
    events.job_ended.connect(_ended, sender=app)


def _started(app: Flask, *, job_id: str, job: Job | None, **_fields: Any) -> None:
    if job is None or job.started_at is None:
        return
    state = get_state(app)
    waited = (job.started_at - (job.enqueued_at or job.created_at)).total_seconds()
    try:
        with state.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(_key(state, "started"), job.type, 1)
            _observe(pipe, _key(state, "wait"), job.type, max(0.0, waited), WAIT_BUCKETS)
            pipe.execute()
    except RedisError as error:
        log.warning("the start of job %s is not counted in the metrics: %s", job_id, error)


def _ended(app: Flask, *, job_id: str, job: Job | None, outcome: str, **_fields: Any) -> None:
    if job is None:
        return
    state = get_state(app)
    try:
        with state.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(_key(state, "ended"), f"{job.type}{_SEPARATOR}{outcome}", 1)
            if job.started_at is not None and job.ended_at is not None:
                ran = max(0.0, (job.ended_at - job.started_at).total_seconds())
                _observe(pipe, _key(state, "run"), job.type, ran, RUN_BUCKETS)
            pipe.execute()
    except RedisError as error:
        log.warning("the end of job %s is not counted in the metrics: %s", job_id, error)


def _observe(pipe: Any, key: str, job_type: str, seconds: float, bounds: Sequence[float]) -> None:
    pipe.hincrby(key, f"{job_type}{_SEPARATOR}{_bucket(seconds, bounds)}", 1)
    pipe.hincrbyfloat(key, f"{job_type}{_SEPARATOR}{_SUM}", seconds)


# -- reading, at a scrape ---------------------------------------------------------------------------


class JobMonitorCollector(Collector):
    """The metrics of one app, read at each scrape (see the module docstring). Register it in a
    ``prometheus_client`` registry of your own to serve them with your app's other metrics."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # read at collect time only: registering does not query anything

    def collect(self) -> Iterator[Metric]:
        state = get_state(self.app)
        with self.app.app_context():
            yield from self._from_database(state)
            yield from self._from_redis(state)

    def _from_database(self, state: JobMonitorState) -> Iterator[Metric]:
        up = GaugeMetricFamily("jobmonitor_database_up", "1 when the job tables could be read at this scrape")
        active = GaugeMetricFamily(
            "jobmonitor_jobs", "Jobs that have not ended, by status and type", labels=["status", "type"]
        )
        oldest = GaugeMetricFamily(
            "jobmonitor_oldest_waiting_seconds",
            "Age of the oldest queued job that could start now, per queue (0 when none waits)",
            labels=["queue"],
        )
        try:
            c = job_table.c
            now = utcnow()
            with state.engine.connect() as connection:
                rows = connection.execute(
                    sa.select(c.status, c.type, sa.func.count())
                    .where(c.status.in_([status.value for status in ACTIVE_STATUSES]))
                    .group_by(c.status, c.type)
                ).all()
                waiting = waiting_by_queue(connection, now)
        except sa.exc.SQLAlchemyError as error:
            log.warning("metrics without the database: %s", error)
            up.add_metric([], 0)
            yield up
            return
        counts = {(status, job_type): int(count) for status, job_type, count in rows}
        for status in sorted(s.value for s in ACTIVE_STATUSES):  # every status, 0 included, for alerts
            types = sorted({job_type for (found, job_type) in counts if found == status}) or [""]
            for job_type in types:
                active.add_metric([status, job_type], counts.get((status, job_type), 0))
        for name in state.settings.queues_in_priority_order:
            _count, since = waiting.get(name, (0, None))
            oldest.add_metric([name], (now - since).total_seconds() if since else 0.0)
        up.add_metric([], 1)
        yield from (up, active, oldest)

    def _from_redis(self, state: JobMonitorState) -> Iterator[Metric]:
        up = GaugeMetricFamily("jobmonitor_redis_up", "1 when Redis could be read at this scrape")
        try:
            redis = state.redis
            with redis.pipeline(transaction=False) as pipe:
                for name in ("started", "ended", "wait", "run"):
                    pipe.hgetall(_key(state, name))
                pipe.exists(PAUSE_ALL_KEY)
                started, ended, wait, run, paused = pipe.execute()
            names = state.settings.queues_in_priority_order
            depths = {name: Queue(name, connection=redis).count for name in names}
            workers = [worker for worker in Worker.all(connection=redis) if set(worker.queue_names()) & set(names)]
            states = [str(worker.get_state()) for worker in workers]
        except RedisError as error:
            log.warning("metrics without Redis: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        started_total = CounterMetricFamily(
            "jobmonitor_jobs_started", "Job runs a worker started, by type", labels=["type"]
        )
        for job_type, count in sorted(_decoded(started).items()):
            started_total.add_metric([job_type], float(count))
        yield started_total
        ended_total = CounterMetricFamily(
            "jobmonitor_jobs_ended",
            "Job ends by type and outcome (completed, failed, stopped, cancelled)",
            labels=["type", "outcome"],
        )
        for field, count in sorted(_decoded(ended).items()):
            job_type, _, outcome = field.partition(_SEPARATOR)
            ended_total.add_metric([job_type, outcome], float(count))
        yield ended_total
        yield _histogram("jobmonitor_job_wait_seconds", "Time a job waited for a worker, per start", wait, WAIT_BUCKETS)
        yield _histogram("jobmonitor_job_run_seconds", "Time from a job's first start to its end", run, RUN_BUCKETS)
        depth = GaugeMetricFamily("jobmonitor_queue_depth", "Jobs in each RQ queue", labels=["queue"])
        for name, length in depths.items():
            depth.add_metric([name], length)
        yield depth
        alive = GaugeMetricFamily("jobmonitor_workers", "Workers alive on the app's queues, by state", labels=["state"])
        for worker_state in sorted(set(states) | {"busy", "idle"}):
            alive.add_metric([worker_state], states.count(worker_state))
        yield alive
        paused_all = GaugeMetricFamily("jobmonitor_paused_all", "1 while every job is paused for maintenance")
        paused_all.add_metric([], 1 if paused else 0)
        yield paused_all


def _decoded(raw: dict[Any, Any]) -> dict[str, str]:
    return {
        (key.decode() if isinstance(key, bytes) else key): (value.decode() if isinstance(value, bytes) else value)
        for key, value in raw.items()
    }


def _histogram(name: str, documentation: str, raw: dict[Any, Any], bounds: Sequence[float]) -> Metric:
    """A histogram family from a hash of per-bucket counts and sums (fields ``type<sep>index``)."""
    family = HistogramMetricFamily(name, documentation, labels=["type"])
    per_type: dict[str, dict[str, str]] = {}
    for field, value in _decoded(raw).items():
        job_type, _, part = field.partition(_SEPARATOR)
        per_type.setdefault(job_type, {})[part] = value
    for job_type, parts in sorted(per_type.items()):
        cumulative = 0.0
        buckets = []
        for index, bound in enumerate((*bounds, math.inf)):
            cumulative += float(parts.get(str(index), 0))
            buckets.append(("+Inf" if bound == math.inf else _bound(bound), cumulative))
        family.add_metric([job_type], buckets, sum_value=float(parts.get(_SUM, 0.0)))
    return family


def _bound(value: float) -> str:
    return str(float(value))


__all__ = ["RUN_BUCKETS", "WAIT_BUCKETS", "JobMonitorCollector", "available", "connect"]
