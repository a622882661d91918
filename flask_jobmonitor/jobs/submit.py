"""Handing a job row to RQ: the RQ job has the row's id and runs :data:`RUNNER_PATH` with it.

Used when a job is first enqueued (enqueue.py), when a held child is released (children.py),
and when a stopped, paused or forgotten job goes back to its queue (enqueue.requeue, recovery
in maintenance.py). If Redis refuses, the row is moved to ``failed`` with the reason and
:class:`~flask_jobmonitor.errors.EnqueueError` is raised: no job is left ``queued`` that no
worker will ever see.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from .. import events
from ..errors import EnqueueError
from ..records.failures import describe as describe_failure
from ..records.models import Job
from ..records.status import JobStatus
from ..records.transitions import apply_transition
from ..state import JobMonitorState
from ..timeutil import utcnow
from .signals import clear_signal

#: The function RQ runs for every tracked job (it looks the job up by id), by the name RQ stores
#: in the job. The name is a stable entry point, flask_jobmonitor/runner.py, which forwards to
#: worker/runner.py: jobs queued by an earlier release keep their name, and during a rolling
#: restart a worker of either release runs the jobs the other queued.
RUNNER_PATH = "flask_jobmonitor.runner.run_job"
#: Every function name under which RQ may hold a tracked job (the runner's own module path too).
RUNNER_PATHS = frozenset({RUNNER_PATH, "flask_jobmonitor.worker.runner.run_job"})


def resubmit_by_id(state: JobMonitorState, job_id: str, *, at_front: bool = False) -> None:
    """Hand an existing ``queued`` job row to RQ again (released child, job Redis forgot, run
    requeued by recovery); any old stop or pause signal is cleared first. A job whose
    ``enqueued_at`` is still to come (delayed, or a retry waiting for its time) is handed over
    for that time, through RQ's scheduler, not at once."""
    clear_signal(state, job_id)
    with Session(state.engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        session.expunge(job)
    timeout = state.tasks.get(job.task).timeout if job.task in state.tasks else None
    now = utcnow()
    if job.enqueued_at is not None and job.enqueued_at > now:
        submit_to_rq(state, job, timeout=timeout, delay=job.enqueued_at - now)
    else:
        submit_to_rq(state, job, timeout=timeout, at_front=at_front)


def submit_to_rq(
    state: JobMonitorState,
    job: Job,
    *,
    timeout: int | None = None,
    at_front: bool = False,
    delay: timedelta | None = None,
) -> None:
    """Put an existing ``queued`` job row on its RQ queue (after ``delay``, through RQ's
    scheduler), or mark it failed and raise EnqueueError."""
    try:
        queue = state.queue("low" if job.low_priority else "default")
        options: dict[str, Any] = {
            "job_id": job.id,
            "job_timeout": timeout or state.settings.job_timeout,
            "result_ttl": state.settings.rq_result_ttl,
            "failure_ttl": state.settings.rq_result_ttl,
            "description": job.name,
        }
        if delay:
            queue.enqueue_in(delay, RUNNER_PATH, job.id, **options)
        else:
            queue.enqueue(RUNNER_PATH, job.id, at_front=at_front, **options)
    except RedisError as error:
        # the error's own text (host, port) is for people allowed to see details (failures.py)
        reason = "Redis is unreachable"
        values = {"error_message": reason, "error_detail": describe_failure(error).detail, "ended_at": utcnow()}
        with state.engine.begin() as connection:
            apply_transition(connection, job.id, "fail", values=values)
        job.status = JobStatus.FAILED.value
        job.error_message = reason
        events.send(state, events.job_ended, job.id, outcome=JobStatus.FAILED)
        raise EnqueueError(job.id, reason) from error
