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
* **A retried run ends as a run**: a run that failed and is tried again (``job_retrying``,
  tasks.RetryPolicy) counts in ``jobmonitor_jobs_ended_total`` with ``outcome="retried"``, and
  its run time in the run histogram; the job's own end counts when it comes.
* **Counters only grow.** A job that ends twice (stopped, then resumed and completed) counts
  twice in ``jobmonitor_jobs_ended_total``, once per end. Should Redis lose the counters, they
  start again from zero, which Prometheus reads as a counter reset (``rate()`` is right).
* **A scrape never fails for a missing part**: Redis or the database unreachable gives
  ``jobmonitor_redis_up 0`` / ``jobmonitor_database_up 0`` and the metrics that do not need it.
  A count lost because Redis was down at a job's end is lost (logged), the job is not touched.
* **Histograms, per run**: the time a job waited for a worker (from being queued, or queued
  again to resume, to the worker's claim) and the time the run took (from that claim to the
  run's end: a job stopped and resumed counts two runs, the days it sat stopped in neither);
  per job type, with fixed buckets (:data:`WAIT_BUCKETS`, :data:`RUN_BUCKETS`) so
  ``histogram_quantile`` works across processes. A bucket is stored under its bound, so a change
  of the bounds never moves old counts under new ones (old bounds are no longer read). The
  claim time of a running job is kept in Redis (``claimed``) until its run ends.
* **Several processes, one set of counters**: every web process serves the same Redis counters,
  so a dashboard that scrapes many takes the ``max`` over instances before summing (the Grafana
  dashboard does).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
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
    from prometheus_client.utils import floatToGoString
except ImportError:  # optional dependency (extra "metrics"): extension.py refuses JOBMONITOR_METRICS without it
    Collector = object  # type: ignore[assignment,misc]

log = logging.getLogger("flask_jobmonitor.internal.metrics")

#: Upper bounds (seconds) of the buckets of the time a job waits for a worker.
WAIT_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 3600, 4 * 3600)
#: Upper bounds (seconds) of the buckets of a job's run time.
RUN_BUCKETS: tuple[float, ...] = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600)
_SEPARATOR = "\x1f"  # between the labels of a hash field: never in a type or an outcome
#: The outcome under which a run that failed and is tried again counts (the job itself goes on).
RETRIED = "retried"
_SUM = "sum"


def available() -> bool:
    """Whether ``prometheus_client`` is installed."""
    return Collector is not object


def _key(state: JobMonitorState, name: str) -> str:
    return metrics_key(state.settings.queue_names["default"], name)


def _bucket(seconds: float, bounds: Sequence[float]) -> str:
    """The bound of the first bucket ``seconds`` fits in, as Prometheus writes ``le`` ("+Inf"
    past the last): the hash field counts under its bound, not its place in the list."""
    for bound in bounds:
        if seconds <= bound:
            return floatToGoString(bound)
    return "+Inf"


# -- counting, where jobs start and end -----------------------------------------------------------


def connect(app: Flask) -> None:
    """Count ``app``'s job starts and ends (the extension calls it when ``JOBMONITOR_METRICS`` is on)."""
    events.job_started.connect(_started, sender=app)
    events.job_ended.connect(_ended, sender=app)
    events.job_retrying.connect(_retried, sender=app)


#: How long a run's claim time is kept when its end is never seen (a lost worker's run, failed
#: by recovery without a start of its own): a day past the longest run RQ allows.
CLAIM_TTL_EXTRA_SECONDS = 24 * 3600


def _started(app: Flask, *, job_id: str, job: Job | None, **_fields: Any) -> None:
    if job is None:
        return
    state = get_state(app)
    claimed = job.status_changed_at  # the claim moved it to running: this run's start
    waited = (claimed - (job.enqueued_at or job.created_at)).total_seconds()
    try:
        with state.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(_key(state, "started"), job.type, 1)
            _observe(pipe, _key(state, "wait"), job.type, max(0.0, waited), WAIT_BUCKETS)
            pipe.set(
                _claim_key(state, job_id),
                claimed.isoformat(),
                ex=state.settings.job_timeout + CLAIM_TTL_EXTRA_SECONDS,
            )
            pipe.execute()
    except RedisError as error:
        log.warning("the start of job %s is not counted in the metrics: %s", job_id, error)


def _retried(app: Flask, *, job_id: str, job: Job | None, **_fields: Any) -> None:
    """A run that failed and is tried again ends as a run (outcome ``retried``); the job goes on."""
    _ended(app, job_id=job_id, job=job, outcome=RETRIED, run_ended_at=utcnow())


def _ended(
    app: Flask, *, job_id: str, job: Job | None, outcome: str, run_ended_at: datetime | None = None, **_fields: Any
) -> None:
    if job is None:
        return
    state = get_state(app)
    ended_at = run_ended_at or job.ended_at
    try:
        with state.redis.pipeline(transaction=False) as pipe:
            pipe.get(_claim_key(state, job_id))
            pipe.delete(_claim_key(state, job_id))
            raw_claim, _ = pipe.execute()
        with state.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(_key(state, "ended"), f"{job.type}{_SEPARATOR}{outcome}", 1)
            if raw_claim is not None and ended_at is not None:  # this run's time; none for a job not running
                claimed = datetime.fromisoformat(raw_claim.decode() if isinstance(raw_claim, bytes) else raw_claim)
                ran = max(0.0, (ended_at - claimed).total_seconds())
                _observe(pipe, _key(state, "run"), job.type, ran, RUN_BUCKETS)
            pipe.execute()
    except RedisError as error:
        log.warning("the end of job %s is not counted in the metrics: %s", job_id, error)


def _claim_key(state: JobMonitorState, job_id: str) -> str:
    return f"{_key(state, 'claimed')}:{job_id}"


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
        except Exception as error:  # the database, or anything else: a scrape answers what it can
            log.warning(
                "metrics without the database: %s", error, exc_info=not isinstance(error, sa.exc.SQLAlchemyError)
            )
            up.add_metric([], 0)
            yield up
            return
        counts = {(status, job_type): int(count) for status, job_type, count in rows}
        # every status of every registered type, 0 included: a series does not vanish when it
        # drops to 0, and an alert can test it
        types = sorted({task.type for task in state.tasks} | {job_type for _status, job_type in counts})
        for status in sorted(s.value for s in ACTIVE_STATUSES):
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
        except Exception as error:  # Redis, or RQ reading a worker's record: a scrape answers what it can
            log.warning("metrics without Redis: %s", error, exc_info=not isinstance(error, RedisError))
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
        for bound in (*(floatToGoString(bound) for bound in bounds), "+Inf"):
            cumulative += float(parts.get(bound, 0))
            buckets.append((bound, cumulative))
        family.add_metric([job_type], buckets, sum_value=float(parts.get(_SUM, 0.0)))
    return family


__all__ = ["RUN_BUCKETS", "WAIT_BUCKETS", "JobMonitorCollector", "available", "connect"]
