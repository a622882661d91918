"""The one module that reaches RQ's internals: what RQ (3.0) offers no public API for. Other
modules import it as ``rq_internals``, so that every use reads as what it is.

Everywhere else the package talks to RQ through its public API: ``Queue`` (``enqueue``,
``push_job_id``, ``get_job_position``, ``count``, ``key``), ``Job`` (``fetch``, ``cancel``,
``delete``, ``results``), ``Worker.all``, ``rq.command.send_stop_job_command`` and
``rq.suspension`` (``suspend``, ``resume``, ``is_suspended``). What it cannot do that way is
here, each with the internal it relies on and why:

* **The fields of RQ's job hash** (``Job.key_for(id)``): ``status`` read for many jobs in one
  pipeline (:func:`job_statuses`), ``origin`` read alone (:func:`job_origin`: recovery asks for
  many jobs whether they still wait in their queue, and ``Job.fetch`` would decode every hash,
  and raise on one it cannot decode) and written alone (:func:`move_queued_job`).
  ``Job.fetch_many`` restores whole hashes (results deserialised) and fails for all of them on
  one hash it cannot restore; ``Job.save`` writes every field, and would put back a status a
  worker changed meanwhile.
* **The lists of RQ's queues** (``Queue.key``): every copy of a job id removed from them
  (:func:`move_queued_job`; ``Queue.remove`` removes one copy, and a job resubmitted twice has
  two), and a job id taken back from a queue's intermediate list and pushed at the front of the
  queue in one transaction (:func:`put_back_at_front`; ``IntermediateQueue.remove`` takes no
  pipeline).
* **RQ's suspension key** (``rq.suspension.WORKERS_SUSPENDED``) read inside a pipeline of ours
  (:func:`check_suspension`): ``is_suspended`` runs a pipeline of its own, one more round trip.
* **A worker's private attributes**: ``_stop_requested`` (:func:`stop_requested`), and
  ``_shutdown_requested_date``, which RQ compares with the time of a second signal to drop
  duplicates (:func:`date_shutdown_request`).
* **The Redis commands with which RQ takes a job id off a queue** (``Queue.lpop`` and
  ``Queue.lmove`` call the worker's client's ``blpop``/``lpop``/``blmove``/``lmove``):
  :data:`POP_COMMANDS`, which the worker wraps to hold shutdown signals from the pop on.

rq-scheduler (the recurring schedules, jobs/schedules.py) offers no public read of when it will
next queue one entry, nor of whether a scheduler process runs: :func:`schedule_times` reads its
sorted set (``Scheduler.scheduled_jobs_key``) for the entries wanted, in one round trip, and
:func:`scheduler_running` looks for a live scheduler's key (``rq:scheduler_instance:<name>``,
which it refreshes every interval and marks with ``death`` when it stops). Its lock is no sign:
it is held only while it queues what is due.

The worker mixin (worker/process.py) also overrides methods of RQ's ``Worker`` (the hooks of
RQ's custom worker classes: ``execute_job``, ``perform_job``, ``prepare_execution``,
``monitor_work_horse``, ``wait_for_horse``, ``main_work_horse``,
``dequeue_job_and_maintain_ttl``, ``request_stop``, ``request_force_stop``,
``handle_warm_shutdown_request``); the order in which RQ calls them is described there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.job import Job
from rq.suspension import WORKERS_SUSPENDED
from rq.utils import now as rq_now
from rq_scheduler import Scheduler

#: RQ's statuses of a job that waits outside its queue's list: for its time in the scheduled
#: registry (a delayed job, a retry), or for the jobs it depends on.
HELD_ELSEWHERE = frozenset({"scheduled", "deferred"})

#: The methods of a Redis client with which RQ's ``Queue.lpop`` and ``Queue.lmove`` take a job id
#: off a queue, each with the position of its timeout argument (None: it does not block).
POP_COMMANDS: tuple[tuple[str, int | None], ...] = (("blpop", 1), ("lpop", None), ("blmove", 2), ("lmove", None))


def job_statuses(connection: Redis, job_ids: Sequence[str]) -> list[str | None]:
    """RQ's status of each job (None: RQ has no hash for it, or the hash has no status), read in
    one round trip. Raises RedisError."""
    with connection.pipeline() as pipeline:
        for job_id in job_ids:
            pipeline.hget(Job.key_for(job_id), "status")
        raw = pipeline.execute()
    return [value.decode() if value else None for value in raw]


def job_origin(connection: Redis, job_id: str) -> str | None:
    """The queue RQ's hash of ``job_id`` names as its origin; None without a hash or an origin.
    One HGET. Raises RedisError."""
    origin = connection.hget(Job.key_for(job_id), "origin")
    if not origin:
        return None
    return origin.decode() if isinstance(origin, bytes) else str(origin)


def move_queued_job(connection: Redis, job_id: str, queue_names: Iterable[str], target: Queue) -> bool:
    """Take every copy of ``job_id`` off the queues named ``queue_names`` (``target`` left out)
    and, if it was still in one, push it on ``target`` and make that queue its origin. False
    when a worker took it meanwhile: it is then not pushed again, so it can never run twice."""
    removed = 0
    for name in queue_names:
        if name != target.name:
            removed += int(connection.lrem(Queue(name, connection=connection).key, 0, job_id))
    if not removed:
        return False
    connection.hset(Job.key_for(job_id), "origin", target.name)
    target.push_job_id(job_id)
    return True


def put_back_at_front(connection: Redis, queue: Queue, job_id: str) -> None:
    """Put a job id that a worker popped back at the front of ``queue``, and off the queue's
    intermediate list where RQ moved it, in one transaction."""
    with connection.pipeline() as pipeline:
        pipeline.lrem(queue.intermediate_queue_key, 1, job_id)
        queue.push_job_id(job_id, pipeline=pipeline, at_front=True)
        pipeline.execute()


def check_suspension(pipeline: Pipeline) -> None:
    """Add to ``pipeline`` the read of RQ's suspension (``rq suspend``): its result is truthy
    when the workers are suspended."""
    pipeline.exists(WORKERS_SUSPENDED)


def stop_requested(worker: Any) -> bool:
    """Whether RQ's ``worker`` is to stop once its current job is done (a warm shutdown)."""
    return bool(worker._stop_requested)


def date_shutdown_request(worker: Any, seconds_ago: float) -> None:
    """Make RQ's ``worker`` believe its first shutdown signal came ``seconds_ago``: RQ takes a
    second signal within a second of the first for a duplicate and ignores it."""
    worker._shutdown_requested_date = rq_now() - timedelta(seconds=seconds_ago)


def schedule_times(connection: Redis, entry_ids: Sequence[str]) -> list[datetime | None]:
    """When rq-scheduler will next queue each of ``entry_ids`` (naive UTC; None: it holds no such
    entry). One round trip. Raises RedisError."""
    with connection.pipeline(transaction=False) as pipeline:
        for entry_id in entry_ids:
            pipeline.zscore(Scheduler.scheduled_jobs_key, entry_id)
        scores = pipeline.execute()
    return [
        None if score is None else datetime.fromtimestamp(float(score), timezone.utc).replace(tzinfo=None)
        for score in scores
    ]


def scheduler_running(connection: Redis) -> bool:
    """Whether an rq-scheduler process runs on this Redis: one of the schedulers' keys is alive
    (they expire a few seconds after a scheduler's last loop) and not marked dead. Raises
    RedisError."""
    for key in connection.scan_iter(match=Scheduler.redis_scheduler_namespace_prefix + "*", count=1000):
        if not connection.hexists(key, "death"):
            return True
    return False
