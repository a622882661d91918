"""Keeping the job table honest: abandoned runs, jobs Redis forgot, and old jobs.

* :func:`recover` finds ``running``/``stopping`` jobs whose heartbeat stopped (their worker died
  or its machine was lost) and either queues them again (a resumable task with attempts left
  continues from its checkpoint) or marks them ``failed`` with "worker <name> stopped responding";
  it also puts back on RQ the ``queued`` and ``paused`` jobs that Redis no longer holds (a Redis
  restart without persistence). It runs in every worker (one at a time, behind a Redis lock)
  every ``JOBMONITOR_ABANDONED_AFTER / 3`` seconds, and as ``flask jobmonitor recover``.
* It also ends the families whose parent still waits although its children have all ended
  (families.py; the process that recorded the last child's end died before it looked).
  A waiting parent holds no worker and sends no heartbeat: it is never taken for abandoned.
* :func:`delete_old_jobs` is the retention clean-up behind the daily system job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus as RQStatus
from rq.registry import ScheduledJobRegistry

from .. import events
from ..errors import JobNotFound, TransitionRefused
from ..keys import RECOVERY_LOCK
from ..records.journal import close_running_step, write_log
from ..records.models import job_table
from ..records.notifications import notify_end
from ..records.status import FINISHED_STATUSES, JobStatus
from ..records.transitions import apply_transition
from ..state import JobMonitorState, get_state
from ..timeutil import utcnow
from . import audit
from . import rq as rq_internals
from .children import release, roots_with_held_children
from .control import delete
from .families import child_ended, end_stuck_families
from .signals import read_signal
from .submit import resubmit_by_id

log = logging.getLogger("flask_jobmonitor.internal.maintenance")
#: The logger named in the lines recovery writes into a job's own log.
_LOG_AS = "flask_jobmonitor.maintenance"
_RQ_WAITING = {RQStatus.QUEUED, RQStatus.STARTED, RQStatus.SCHEDULED, RQStatus.DEFERRED}
_BATCH = 500


@dataclass
class RecoveryReport:
    """What one recovery pass did."""

    requeued: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    resubmitted: list[str] = field(default_factory=list)
    families_ended: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.requeued or self.completed or self.failed or self.stopped or self.resubmitted or self.families_ended
        )

    def __str__(self) -> str:
        return (
            f"{len(self.requeued)} requeued, {len(self.completed)} completed late, {len(self.failed)} failed, "
            f"{len(self.stopped)} stopped, "
            f"{len(self.resubmitted)} resubmitted to RQ, {len(self.families_ended)} families ended"
        )


def abandon_run(
    state: JobMonitorState,
    job: Any,
    reason: str,
    report: RecoveryReport | None = None,
    work_started: bool = True,
) -> str:
    """End the current run of ``job`` (a row with id, attempt, task, worker_name, status...) that
    will not finish by itself: requeue a resumable task with attempts left (or any task whose
    work, as its worker knows, never began), stop a job that was stopping, fail the rest. Each
    move is fenced by the run's attempt; once the job is no longer running, every write of the
    old run (if it still lives) is refused (see JobContext._fence)."""
    report = report if report is not None else RecoveryReport()
    now = utcnow()
    resumable = job.task in state.tasks and state.tasks.get(job.task).resumable
    can_run_again = resumable or not work_started
    fence: dict[str, Any] = {}
    root_id = getattr(job, "root_id", None)
    with state.engine.begin() as connection:
        try:
            if job.status == JobStatus.STOPPING.value and read_signal(state, job.id) == "cancel":
                apply_transition(
                    connection, job.id, "cancelled_at_checkpoint", attempt=job.attempt, values={"ended_at": now}
                )
                close_running_step(connection, job.id, "stopped", now)
                write_log(
                    connection,
                    _LOG_AS,
                    [job.id],
                    f"{reason}; it was being cancelled, so it is recorded cancelled.",
                    logging.WARNING,
                )
                outcome, bucket = "cancelled", report.stopped
            elif job.status == JobStatus.STOPPING.value:
                apply_transition(connection, job.id, "stopped", attempt=job.attempt, values={**fence, "ended_at": now})
                close_running_step(connection, job.id, "stopped", now)
                write_log(
                    connection,
                    _LOG_AS,
                    [job.id],
                    f"{reason}; it was stopping, so it is recorded stopped.",
                    logging.WARNING,
                )
                notify_end(state, connection, job.run_by_id, job.id, "stopped", root_id=root_id)
                outcome, bucket = "stopped", report.stopped
            elif can_run_again and (job.recoveries or 0) < state.settings.max_recoveries:
                apply_transition(
                    connection,
                    job.id,
                    "requeue",
                    attempt=job.attempt,
                    values={**fence, "recoveries": job_table.c.recoveries + 1},
                )
                close_running_step(connection, job.id, "stopped", now)
                again = "to continue from its checkpoint" if work_started else "(its work had not begun)"
                write_log(connection, _LOG_AS, [job.id], f"{reason}; queued again {again}.", logging.WARNING)
                outcome, bucket = "requeued", report.requeued
            else:
                message = reason if not can_run_again else f"{reason} (after {job.recoveries or 0} recoveries)"
                apply_transition(
                    connection,
                    job.id,
                    "fail",
                    attempt=job.attempt,
                    values={
                        **fence,
                        "ended_at": now,
                        "error_message": message,
                        "error_count": job_table.c.error_count + 1,
                    },
                )
                close_running_step(connection, job.id, "failed", now)
                write_log(connection, _LOG_AS, [job.id], message, logging.ERROR)
                notify_end(state, connection, job.run_by_id, job.id, "failed", root_id=root_id)
                outcome, bucket = "failed", report.failed
        except (TransitionRefused, JobNotFound) as refused:
            log.info("job %s: recovery skipped: %s", job.id, refused)
            return "skipped"
    bucket.append(job.id)
    if outcome == "requeued":
        events.send(state, events.job_queued, job.id, again=True)
        resubmit_by_id(state, job.id, at_front=True)
    else:
        events.send(state, events.job_ended, job.id, outcome=JobStatus(outcome))
        child_ended(state, getattr(job, "parent_id", None))
    log.warning("job %s %s: %s", job.id, outcome, reason)
    return outcome


def recover(state: JobMonitorState) -> RecoveryReport:
    """One recovery pass; see the module docstring. Safe to run from many places at once:
    every change is a conditional, attempt-fenced UPDATE."""
    report = RecoveryReport()
    now = utcnow()
    c = job_table.c
    cutoff = now - timedelta(seconds=state.settings.abandoned_after)
    columns = (c.id, c.attempt, c.task, c.status, c.worker_name, c.run_by_id, c.recoveries, c.parent_id, c.root_id)
    with state.engine.connect() as connection:
        abandoned = connection.execute(
            sa.select(*columns)
            .where(
                c.status.in_([JobStatus.RUNNING.value, JobStatus.STOPPING.value]),
                sa.func.coalesce(c.heartbeat_at, c.status_changed_at) < cutoff,
            )
            .limit(_BATCH)
        ).all()
        waiting = connection.execute(
            sa.select(c.id, c.status, c.enqueued_at)
            .where(
                c.status.in_([JobStatus.QUEUED.value, JobStatus.PAUSED.value]),
                c.enqueued_at.is_not(None),
                c.status_changed_at < cutoff,
            )
            .order_by(c.status_changed_at)
            .limit(_BATCH)
        ).all()
    finished_in_rq = _rq_statuses(state, [job.id for job in abandoned])
    for job in abandoned:
        if (
            finished_in_rq.get(job.id) == "finished"
            and _a_run_completed_in_rq(state, job.id)
            and _record_late_success(state, job)
        ):
            # the work was done: by an orphaned work horse after its worker died, or by a horse
            # whose worker died before it recorded the completion (see worker/process.py)
            report.completed.append(job.id)
            continue
        abandon_run(state, job, f"worker {job.worker_name or '(unknown)'} stopped responding", report)
    if waiting:
        _resubmit_forgotten(state, waiting, report)
    with state.engine.connect() as connection:
        roots = roots_with_held_children(connection)
    for root_id in roots:
        report.resubmitted.extend(release(state, root_id))
    report.families_ended.extend(end_stuck_families(state))
    return report


def _rq_statuses(state: JobMonitorState, job_ids: Sequence[str]) -> dict[str, str | None]:
    if not job_ids:
        return {}
    try:
        statuses = rq_internals.job_statuses(state.redis, job_ids)
    except RedisError as error:
        log.warning("cannot read RQ statuses: %s", error)
        return {}
    return dict(zip(job_ids, statuses, strict=True))


def _a_run_completed_in_rq(state: JobMonitorState, job_id: str) -> bool:
    """Whether one of the job's executions that RQ still remembers returned "completed".

    RQ's status "finished" alone is no proof: a second RQ entry of the same job whose claim was
    refused (it returns "not run: ...") also ends "finished", on the same job hash. A completed
    run is terminal in SQL, so a "completed" result can only come from the run that died."""
    try:
        results = RQJob.fetch(job_id, connection=state.redis).results()
    except (RedisError, NoSuchJobError, ValueError) as error:
        log.warning("job %s: cannot read its RQ results: %s", job_id, error)
        return False
    return any(result.return_value == "completed" for result in results)


def _record_late_success(state: JobMonitorState, job: Any) -> bool:
    now = utcnow()
    with state.engine.begin() as connection:
        try:
            apply_transition(connection, job.id, "finish", attempt=job.attempt, values={"ended_at": now})
        except (TransitionRefused, JobNotFound):
            return False
        close_running_step(connection, job.id, "completed", now)
        write_log(
            connection,
            _LOG_AS,
            [job.id],
            "Its worker stopped responding, but RQ recorded the job as finished.",
            logging.INFO,
        )
        notify_end(state, connection, job.run_by_id, job.id, "completed", root_id=job.root_id)
    log.warning("job %s: RQ finished it but its worker did not record it; recorded by recovery", job.id)
    events.send(state, events.job_ended, job.id, outcome=JobStatus.COMPLETED)
    child_ended(state, job.parent_id)
    return True


def _resubmit_forgotten(state: JobMonitorState, rows: Sequence[Any], report: RecoveryReport) -> None:
    """Queued (or paused) in SQL but unknown to RQ, or held by RQ's scheduler long past their
    time: put them back, oldest first (one still to come, at its time: submit.resubmit_by_id)."""
    cutoff = utcnow() - timedelta(seconds=state.settings.abandoned_after)
    try:
        statuses = rq_internals.job_statuses(state.redis, [row.id for row in rows])
    except RedisError as error:
        log.warning("cannot compare queued jobs with RQ: %s", error)
        return
    for row, rq_status in zip(rows, statuses, strict=True):
        if row.status == JobStatus.PAUSED.value:
            try:
                with state.engine.begin() as connection:
                    apply_transition(connection, row.id, "resume", values={"enqueued_at": utcnow()})
            except (TransitionRefused, JobNotFound):
                continue
        elif rq_status in _RQ_WAITING and _really_waiting(state, row, rq_status, cutoff):
            continue
        if row.status == JobStatus.PAUSED.value:  # a queued one was queued already: no news
            events.send(state, events.job_queued, row.id, again=True)
        resubmit_by_id(state, row.id, at_front=True)
        report.resubmitted.append(row.id)
        log.warning("job %s was %s in SQL but not waiting in RQ (%s): resubmitted", row.id, row.status, rq_status)


def _really_waiting(state: JobMonitorState, row: Any, rq_status: str, cutoff: Any) -> bool:
    """Whether RQ will still run a job that its record says is queued.

    "started" while the record is still queued (for longer than ABANDONED_AFTER) means a worker
    dequeued it and died before its claim reached the database; "queued" is true only if the
    id is still in its queue's list (the worker may have popped it and died); "scheduled" (a
    delayed job, a retry waiting for its time) is true until ABANDONED_AFTER past that time: no
    worker runs RQ's scheduler (workers started ``--without-scheduler``, or by code without
    ``with_scheduler=True``), so the job is taken out of the scheduled registry and queued now.
    """
    job_id = row.id
    if rq_status == "started":
        return False
    if rq_status == RQStatus.SCHEDULED and row.enqueued_at is not None and row.enqueued_at < cutoff:
        try:
            origin = rq_internals.job_origin(state.redis, job_id)
            if origin is not None:
                ScheduledJobRegistry(origin, connection=state.redis).remove(job_id)
        except RedisError:
            return True  # cannot tell: do not queue it twice
        log.warning("job %s: its time passed long ago and no scheduler queued it", job_id)
        return False
    if rq_status != "queued":
        return True  # scheduled or deferred: RQ holds it elsewhere
    try:
        origin = rq_internals.job_origin(state.redis, job_id)
        if origin is None:
            return False  # RQ forgot it meanwhile
        return Queue(origin, connection=state.redis).get_job_position(job_id) is not None
    except RedisError:
        return True  # cannot tell: do not queue it twice


def run_recovery_if_due(state: JobMonitorState) -> RecoveryReport | None:
    """Run :func:`recover` unless another process did within the last interval (Redis lock)."""
    interval = max(1, int(state.settings.abandoned_after / 3))
    try:
        if not state.redis.set(RECOVERY_LOCK, "1", nx=True, ex=interval):
            return None
    except RedisError as error:
        log.warning("recovery skipped, Redis unreachable: %s", error)
        return None
    return recover(state)


class RecoveryLoop:
    """A daemon thread in every worker that runs recovery every ``ABANDONED_AFTER / 3`` seconds."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobmonitor-recovery", daemon=True)

    def start(self) -> RecoveryLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        with self._app.app_context():
            state = get_state(self._app)
            interval = max(1.0, state.settings.abandoned_after / 3)
            while not self._stopped.wait(interval):
                try:
                    report = run_recovery_if_due(state)
                    if report:
                        log.warning("recovery: %s", report)
                except Exception:  # keep the loop alive: the next pass retries
                    log.exception("recovery pass failed")


def delete_old_jobs(state: JobMonitorState, older_than_days: int, batch: int = 500, user: Any = None) -> int:
    """Delete finished jobs created more than ``older_than_days`` ago, with all their records and
    files; return how many jobs were deleted (top-level jobs: each with its children). Works in
    batches so it never holds long locks. The audit trail says how many went, and who asked
    (``user``; None: the system), even when a later batch fails (audit.py)."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    c = job_table.c
    finished = [s.value for s in FINISHED_STATUSES]
    total = 0
    try:
        while True:
            with state.engine.connect() as connection:
                ids = list(
                    connection.execute(
                        sa.select(c.id)
                        .where(c.created_at < cutoff, c.status.in_(finished), c.parent_id.is_(None))
                        .order_by(c.created_at)
                        .limit(batch)
                    ).scalars()
                )
            if not ids:
                return total
            deleted_now = 0
            for job_id in ids:
                try:
                    delete(state, job_id)
                    deleted_now += 1
                    total += 1
                except Exception as error:  # one job that cannot go must not stop the clean-up
                    log.warning("retention: job %s kept: %s", job_id, error)
            if deleted_now == 0:
                return total
    finally:
        if total:  # also when a later batch failed: the jobs deleted before are gone
            detail = f"{total} finished jobs (with their children) older than {older_than_days} days deleted"
            audit.record(state, audit.RETENTION, user, detail=detail)
