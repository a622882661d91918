"""The function RQ executes for every tracked job, and the recording of its outcome.

RQ only knows ``run_job(job_id)``. The runner claims the job row (``queued`` -> ``running``,
one conditional UPDATE that also bumps the attempt number), resolves the task by name, runs it
with a :class:`JobContext`, flushes everything the task buffered, and records ``completed`` or
``failed``. A job cancelled while it sat in the queue is not run at all: its claim is refused.

A failure is recorded as two texts (failures.py): a message every viewer of the job may read,
and the exception's text and traceback for people allowed to see them and for the worker's log.

The runner re-raises the task's exception after recording it, so RQ's own registries agree
with the SQL record (an RQ dashboard shows the same failure).

A task with a retry policy (tasks.RetryPolicy) whose run raises an error the policy retries,
with retries left, is not failed: the attempt is recorded (``jobmonitor_attempt``), the job goes
back to ``queued`` with its next try time as ``enqueued_at`` in the same transaction, and the
runner returns an ``rq.Retry`` for exactly that interval, so that RQ holds the same RQ job in
its scheduled registry until then. Should Redis lose it meanwhile, recovery queues it again
(it is ``queued`` in SQL). A run that was asked to stop or be cancelled is not retried.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from rq import Retry, get_current_job

from .. import events
from ..errors import JobNotFound, PauseRequested, RunSuperseded, StopRequested, TransitionRefused, UnknownTask
from ..jobs import families
from ..jobs.children import release as release_children
from ..jobs.control import stop_children
from ..jobs.enqueue import requeue_paused
from ..jobs.maintenance import abandon_run
from ..jobs.signals import await_signal, clear_signal
from ..records.failures import Failure
from ..records.failures import describe as describe_failure
from ..records.journal import write_log
from ..records.models import attempt_table, file_table, job_table, step_table, subtask_table
from ..records.notifications import add_notification, notifies, notify_end
from ..records.status import JobStatus
from ..records.transitions import FIRST_START, NEXT_ATTEMPT, ValueExpressions, apply_transition
from ..state import JobMonitorState, get_state
from ..tasks import RetryPolicy, TrackedTask
from ..timeutil import utcnow
from . import shutdown
from .context import JobContext, RunInfo, follow_task_sessions, open_log_levels
from .ends import ends
from .ends import write as write_end
from .ends import write_alone as write_end_alone
from .handover import HORSE_COMPLETED, HORSE_NOT_STARTED, HORSE_STARTED, hand_over
from .heartbeat import Heartbeat
from .retry import retry_db

log = logging.getLogger("flask_jobmonitor.internal.runner")
_CLAIM_COLUMNS = (
    job_table.c.attempt,
    job_table.c.name,
    job_table.c.task,
    job_table.c.params,
    job_table.c.checkpoint,
    job_table.c.root_id,
    job_table.c.run_by_id,
    job_table.c.run_by_name,
    job_table.c.is_system,
    job_table.c.run_at_url,
    job_table.c.parent_id,
    job_table.c.retries,
)
_ABANDON_COLUMNS = (
    job_table.c.id,
    job_table.c.attempt,
    job_table.c.task,
    job_table.c.status,
    job_table.c.worker_name,
    job_table.c.run_by_id,
    job_table.c.recoveries,
    job_table.c.parent_id,
    job_table.c.root_id,
)
_RUNNING = ("running", "stopping")
#: How long before a stop request a child may have been spawned yet missed by the request's own
#: pass over the children (the spawn read its parent's status just before the request).
_SPAWN_RACE = timedelta(seconds=2)
#: How long a run that stops waits for the request's signal, which follows its SQL write.
_SIGNAL_GRACE = 2.0


def run_job(job_id: str) -> str | Retry:
    """Run tracked job ``job_id``; RQ calls this inside the app context the worker provides."""
    state = get_state()
    parent_settles = job_id in hand_over.preclaimed
    # In a SimpleWorker the job runs in the worker itself: a cold shutdown's signal during the
    # claim waits (shutdown.py) until the task has begun, where it fails the run it interrupts,
    # instead of leaving the job claimed with nobody to run it. _execute ends the section.
    shutdown.enter()
    executing = False
    try:
        run = hand_over.preclaimed.pop(job_id) if parent_settles else claim(state, job_id, _worker_name())
        if run is None:
            return "not run: the job was no longer queued"
        try:
            task = state.tasks.get(run.task)
        except UnknownTask as error:
            log.error("job %s not run: %s", job_id, error)
            _record_failure(state, run, None, describe_failure(error))
            raise
        ctx = JobContext(state, run, task)
        heartbeat = Heartbeat(state.engine, job_id, run.attempt, state.settings.abandoned_after / 4).start()
        ctx.heartbeat = heartbeat
        executing = True
        try:
            return _execute(state, run, task, ctx, parent_settles)
        finally:
            heartbeat.stop()
            if run.root_id and not parent_settles:
                release_children(state, run.root_id)
    finally:
        if not executing:
            shutdown.leave()


def _execute(
    state: JobMonitorState, run: RunInfo, task: TrackedTask, ctx: JobContext, parent_settles: bool
) -> str | Retry:
    """Run the task and record its outcome: completed, failed (or tried again), stopped or paused."""
    job_id = run.job_id
    if parent_settles:
        hand_over.report(HORSE_STARTED)
    try:
        shutdown.leave()  # signals held back since the claim act now (see run_job)
    except BaseException:
        # a cold shutdown held back since the claim (SimpleWorker): the task never began, so
        # the run is given back (queued again), not failed
        ctx.end_run()
        _durably(
            state,
            "giving the run back",
            lambda: _abandon(state, run, "worker {worker} shut down before the task began", False),
        )
        raise
    try:
        try:
            with ctx.running():
                task.func(ctx, *run.params.get("args", ()), **run.params.get("kwargs", {}))
        finally:
            # end the task's own session first: an uncommitted transaction of the task must not
            # hold (SQLite's) write lock while the outcome is recorded; what it did not commit
            # is rolled back, as it would be when the worker tears the app context down
            state.db.session.remove()
    except RunSuperseded:
        log.warning("job %s attempt %s was superseded; its outcome is not recorded", job_id, run.attempt)
        raise
    except StopRequested:
        ctx.end_run()
        _durably(state, "recording the stop", lambda: _record_stop(state, run, ctx))
        return "stopped"
    except PauseRequested:
        ctx.end_run()
        _durably(state, "recording the pause", lambda: _record_pause(state, run, ctx))
        return "paused"
    except BaseException as error:
        ctx.end_run()
        failure = describe_failure(error)  # the lambda below outlives the except clause's name
        log.error("job %s (task %s, attempt %s) failed", job_id, run.task, run.attempt, exc_info=True)
        ctx.mark_current_step("failed")
        # the job's log is read by every viewer of the job: the public message only (failures.py)
        ctx._add_log(logging.ERROR, "flask_jobmonitor.runner", failure.message)
        policy = task.retry
        retries_this_run = policy is not None and policy.applies_to(error) and not ctx.cancel_requested
        if retries_this_run and _has_children(state, job_id):
            # its children go on, and a run from the start would spawn them again: no retry
            retries_this_run = False
            ctx._add_log(logging.WARNING, "flask_jobmonitor.runner", "Not retried: this job has started child jobs.")
        if policy is not None and retries_this_run and run.retries < policy.max:
            granted: list[int] = []
            _durably(
                state, "recording the retry", lambda: granted.extend(_record_retry(state, run, ctx, failure, policy))
            )
            if granted:
                return _rq_retry(granted[0])
        elif policy is not None and retries_this_run:
            ctx._add_log(
                logging.ERROR,
                "flask_jobmonitor.runner",
                f"Attempt {run.retries + 1} failed; no retry left ({policy.max} of {policy.max} used).",
            )
        _durably(
            state,
            "recording the failure",
            lambda: _record_failure(state, run, ctx, failure, attempt_row=policy is not None),
        )
        raise
    ctx.end_run()
    if parent_settles and os.getppid() == hand_over.settling_parent_pid and not ctx.has_unawaited_children:
        _durably(state, "writing the last progress", lambda: ctx.flush(honour_stop=False))
        hand_over.report(HORSE_COMPLETED)
    else:
        # no worker will settle it (SimpleWorker, or the worker that forked this horse died), or
        # it has children to wait for (the worker would not know): record the result here
        _durably(state, "recording the result", lambda: _record_success(state, run, ctx))
    return "completed"


def settle_after_horse(state: JobMonitorState, run: RunInfo, outcome: int, horse_detail: str) -> None:
    """In a forking worker, after the horse of a pre-claimed run exited: record ``completed`` if
    the horse said so (:attr:`HandOver.horse_outcome`); if the horse died without recording anything
    (killed, out of memory, or RQ's own bookkeeping failed because Redis went away before the
    task began), end the run now instead of waiting for its heartbeat to expire. A run whose
    task never began is queued again whatever the task: nothing of it was done."""

    if outcome == HORSE_COMPLETED:
        # TransitionRefused: the horse recorded another outcome (stopped, paused), or a person
        # force-stopped the job meanwhile (the end of a child also ends a waiting parent's family)
        with contextlib.suppress(TransitionRefused):
            _durably(state, "recording the result", lambda: _finish(state, run, may_wait=True))
    else:
        _abandon(
            state,
            run,
            "the work horse of worker {worker} ended unexpectedly (" + horse_detail + ")",
            outcome != HORSE_NOT_STARTED,
        )
    if run.root_id:
        release_children(state, run.root_id)


def _abandon(state: JobMonitorState, run: RunInfo, reason: str, work_started: bool) -> None:
    """End ``run`` if it is still the job's current run: queued again if its task never began
    (or can resume), else failed (maintenance.abandon_run). ``{worker}`` in ``reason`` names
    the run's worker."""
    with state.engine.connect() as connection:
        row = connection.execute(
            sa.select(*_ABANDON_COLUMNS).where(
                job_table.c.id == run.job_id, job_table.c.attempt == run.attempt, job_table.c.status.in_(_RUNNING)
            )
        ).first()
    if row is not None:
        abandon_run(state, row, reason.replace("{worker}", str(row.worker_name)), work_started=work_started)


def _finish(state: JobMonitorState, run: RunInfo, may_wait: bool = False) -> None:
    """Record ``completed``. ``may_wait``: a forking worker settles its horse's run (RQ holds it as
    finished already), so its end may wait for the worker's next claim (ends.py)."""
    values = {"ended_at": utcnow()}
    alone = run.parent_id is None and run.root_id is None and not events.listened(state, events.job_ended)
    if may_wait and alone and ends.hold(run, values["ended_at"]):
        return  # written with the worker's next claim, or before it waits (ends.py)
    if not notifies(state, run.run_by_id, run.root_id):
        # one statement: no transaction needed (see autocommit_engine)
        with state.autocommit_engine.connect() as connection:
            apply_transition(connection, run.job_id, "finish", attempt=run.attempt, values=values)
    else:
        with state.engine.begin() as connection:
            apply_transition(connection, run.job_id, "finish", attempt=run.attempt, values=values)
            add_notification(connection, run.run_by_id, run.job_id, "completed")
    events.send(state, events.job_ended, run.job_id, outcome=JobStatus.COMPLETED)
    if run.parent_id:
        families.child_ended(state, run.parent_id)


def _durably(state: JobMonitorState, what: str, action: Callable[[], None]) -> None:
    """Record a job's end: retried through a database outage, and never cut in two by a
    shutdown signal (held back until it is written or given up, see shutdown.py)."""
    with shutdown.critical_section():
        retry_db(action, state.settings.db_retry_seconds, what)


def _claim_values(worker_name: str, now: Any) -> dict[str, Any]:
    return {
        "attempt": ValueExpressions.get(NEXT_ATTEMPT),
        "started_at": ValueExpressions.get(FIRST_START),
        "worker_name": worker_name[:255],
        "ended_at": None,
        "heartbeat_at": now,
    }


#: The moves whose statements a worker compiles at start-up.
WARM_UP_ACTIONS = ("start", "finish", "fail", "stopped")


def warm_up(state: JobMonitorState) -> None:
    """Compile the statements every job runs (claim, finish, fail) in the worker process itself,
    and set up what every run's context needs once per process (session listeners, log levels).

    A forked work horse inherits SQLAlchemy's compiled-statement cache from its parent; a cache
    the parent never filled is filled by every horse again, which cost a forked no-op job more
    than its own work. The statements run against an id no job has, so nothing changes.
    """
    nobody = "00000000-0000-0000-0000-000000000000"
    now = utcnow()
    options_of: dict[str, dict[str, Any]] = {
        "start": {"values": _claim_values("warm-up", now), "returning": _CLAIM_COLUMNS},
        "finish": {"attempt": 0, "values": {"ended_at": now}},
        "fail": {"attempt": 0, "values": {"error_message": "", "error_detail": "", "ended_at": now}},
        "stopped": {"attempt": 0, "values": {"ended_at": now}},
    }
    with state.engine.connect() as connection:
        for action in WARM_UP_ACTIONS:
            options = options_of[action]
            with contextlib.suppress(JobNotFound, TransitionRefused):
                apply_transition(connection, nobody, action, now=now, **options)
        connection.rollback()
    follow_task_sessions(state)  # the horses inherit the session listeners too
    open_log_levels(state.settings.log_level)  # and the log levels the capture needs


def claim(state: JobMonitorState, job_id: str, worker_name: str) -> RunInfo | None:
    """Move the job from ``queued`` to ``running`` for this worker; None if it is not queued.
    The end of the job this worker ran last, when it waits (ends.py), is written in the same
    transaction, whatever the claim's answer; alone, should that transaction fail."""
    now = utcnow()
    waiting = None
    refused: TransitionRefused | JobNotFound | None = None
    row: sa.Row[Any] | None = None
    try:
        waiting = ends.take()
        # a transaction, not autocommit (unlike the finish): a worker that dies while its claim
        # waits for a row lock must leave the job queued. In autocommit the server would still
        # commit the claim once the lock is free, and the job would look started by a dead worker.
        with state.engine.begin() as connection:
            if waiting is not None:
                write_end(state, connection, waiting)
            try:
                values = _claim_values(worker_name, now)
                row = apply_transition(connection, job_id, "start", now=now, values=values, returning=_CLAIM_COLUMNS)
            except (TransitionRefused, JobNotFound) as error:
                refused = error  # the end above is committed all the same
    except BaseException:
        if waiting is not None:
            write_end_alone(state, waiting)
        raise
    if isinstance(refused, TransitionRefused):
        log.info("job %s not run: %s", job_id, refused)
        return None
    if refused is not None:
        # deleted while it waited in the queue (or an RQ job left over from another database)
        log.warning("job %s not run: it has no job record", job_id)
        return None
    assert row is not None
    events.send(state, events.job_started, job_id, attempt=row.attempt)
    return RunInfo(
        job_id=job_id,
        attempt=row.attempt,
        name=row.name,
        task=row.task,
        params=row.params or {},
        checkpoint=row.checkpoint,
        root_id=row.root_id,
        run_by_id=row.run_by_id,
        run_by_name=row.run_by_name,
        is_system=row.is_system,
        run_at_url=row.run_at_url,
        parent_id=row.parent_id,
        retries=row.retries,
        claimed_at=now,
        worker_name=worker_name[:255],
    )


def _record_success(state: JobMonitorState, run: RunInfo, ctx: JobContext) -> None:
    # a stop requested after the last tick comes too late: the work is done, so it completes
    ctx.flush(honour_stop=False)
    if ctx.has_unawaited_children and families.start_waiting(state, run):
        return  # it waits for its children; the last one to end ends it
    _finish(state, run)


def _record_failure(
    state: JobMonitorState, run: RunInfo, ctx: JobContext | None, failure: Failure, attempt_row: bool = False
) -> None:
    """The run failed for good. ``attempt_row``: its task has a retry policy, so the attempt is
    listed with the earlier ones (with no retry time)."""
    now = utcnow()
    values: dict[str, Any] = {"error_message": failure.message, "error_detail": failure.detail, "ended_at": now}
    if ctx is not None:
        ctx.flush(honour_stop=False)
    else:
        values["error_count"] = job_table.c.error_count + 1
    with state.engine.begin() as connection:
        try:
            apply_transition(connection, run.job_id, "fail", attempt=run.attempt, values=values)
        except TransitionRefused as refused:
            log.warning("failure of job %s not recorded: %s", run.job_id, refused)
            return
        if attempt_row:
            connection.execute(sa.insert(attempt_table).values(_attempt_values(run, failure, now, None)))
        notify_end(state, connection, run.run_by_id, run.job_id, "failed", root_id=run.root_id)
    events.send(state, events.job_ended, run.job_id, outcome=JobStatus.FAILED)
    families.child_ended(state, run.parent_id)


def _record_retry(
    state: JobMonitorState, run: RunInfo, ctx: JobContext, failure: Failure, policy: RetryPolicy
) -> list[int]:
    """Record the failed attempt and queue the job again for its next try, in one transaction;
    return ``[seconds]`` until that try, or ``[]`` when the job was no longer this run's to retry
    (a stop or cancel asked for meanwhile: it then fails). A task that is not resumable starts
    over: its steps, progress and per-item results, and the files its failed attempt wrote, are
    cleared; its log keeps the attempt's lines. A resumable one continues from its checkpoint."""
    now = utcnow()
    seconds = policy.interval(run.retries)
    retry_at = now + timedelta(seconds=seconds)
    retry = run.retries + 1
    ctx.flush(honour_stop=False)
    # the WARNING written below counts as the job's warnings do
    values: dict[str, Any] = {
        "retries": job_table.c.retries + 1,
        "enqueued_at": retry_at,
        "warning_count": job_table.c.warning_count + 1,
    }
    if not ctx.task.resumable:
        values.update(progress_done=0, progress_total=None, current_step=0, checkpoint=None)
    stale_files: list[str] = []
    with state.engine.begin() as connection:
        try:
            apply_transition(connection, run.job_id, "retry", attempt=run.attempt, values=values, now=now)
        except TransitionRefused as refused:
            log.info("job %s not retried: %s", run.job_id, refused)
            return []
        connection.execute(sa.insert(attempt_table).values(_attempt_values(run, failure, now, retry_at)))
        if not ctx.task.resumable:
            stale_files = _start_over(connection, run.job_id)
        when = retry_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        write_log(
            connection,
            "flask_jobmonitor.runner",
            [run.job_id],
            f"Attempt {retry} failed; retry {retry} of {policy.max} at {when}.",
            logging.WARNING,
        )
    clear_signal(state, run.job_id)  # a stop or pause asked of the failed run is not the retry's
    for key in stale_files:
        with contextlib.suppress(Exception):  # best effort: the rows are gone, nothing serves them
            state.storage.delete(key)
    events.send(state, events.job_retrying, run.job_id, retry=retry, retry_at=retry_at, error=failure.message)
    return [seconds]


def _has_children(state: JobMonitorState, job_id: str) -> bool:
    """Whether the job started child jobs; True when the database cannot tell (then no retry:
    the failure is recorded as ever, through the outage)."""
    try:
        with state.engine.connect() as connection:
            query = sa.select(job_table.c.id).where(job_table.c.parent_id == job_id).limit(1)
            return connection.execute(query).first() is not None
    except sa.exc.SQLAlchemyError as error:
        log.warning("job %s: cannot tell whether it has children (%s); not retried", job_id, error)
        return True


def _start_over(connection: sa.Connection, job_id: str) -> list[str]:
    """Clear what a failed attempt of a task that is not resumable recorded, so that its retry
    starts from nothing; return the storage keys of the files it wrote (inputs stay)."""
    connection.execute(
        sa.update(step_table)
        .where(step_table.c.job_id == job_id)
        .values(status="pending", done=0, total=None, counters={}, started_at=None, ended_at=None)
    )
    connection.execute(sa.delete(subtask_table).where(subtask_table.c.job_id == job_id))
    written = (file_table.c.job_id == job_id) & (file_table.c.kind != "input")
    keys = list(connection.execute(sa.select(file_table.c.storage_key).where(written)).scalars())
    connection.execute(sa.delete(file_table).where(written))
    return keys


def _attempt_values(run: RunInfo, failure: Failure, now: Any, retry_at: Any) -> dict[str, Any]:
    return {
        "job_id": run.job_id,
        "number": run.retries + 1,
        "started_at": run.claimed_at,
        "ended_at": now,
        "worker_name": run.worker_name,
        "error_message": failure.message,
        "error_detail": failure.detail,
        "retry_at": retry_at,
    }


def _rq_retry(seconds: int) -> Retry:
    """What the runner returns to RQ for a retry: exactly one more run of the same RQ job, in
    ``seconds`` (RQ keeps its own count of retries, which a job resumed or queued again by
    recovery restarted; the count that decides is the SQL one, ``retries``)."""
    rq_job = get_current_job()
    done = (rq_job.number_of_retries or 0) if rq_job is not None else 0
    return Retry(max=done + 1, interval=seconds)


def _record_stop(state: JobMonitorState, run: RunInfo, ctx: JobContext) -> None:
    """The task honoured a stop request: keep what it did up to its last checkpoint, end
    ``stopped`` (or ``cancelled``, when a person cancelled it while it ran)."""
    # a stop read from SQL ("stopping") before the request set its signal: the signal, set just
    # after, says whether it was a cancel (the SQL status is the same for both)
    cancelled = ctx.cancel_requested or await_signal(state, run.job_id, _SIGNAL_GRACE) == "cancel"
    ctx.mark_current_step("stopped")
    what = "Cancelled" if cancelled else "Stopped"
    ctx._add_log(logging.WARNING, "flask_jobmonitor.runner", f"{what} at a checkpoint; work already done is kept.")
    ctx.flush(everything=not ctx.task.resumable, honour_stop=False)
    with state.engine.begin() as connection:
        try:
            stopped = apply_transition(
                connection,
                run.job_id,
                "cancelled_at_checkpoint" if cancelled else "stopped",
                attempt=run.attempt,
                values={"ended_at": utcnow()},
                returning=(job_table.c.stop_requested_at,),
            )
        except TransitionRefused as refused:
            # already force-stopped (or cancelled) by a person: their record stands
            log.info("stop of job %s already recorded: %s", run.job_id, refused)
            return
        if not cancelled:  # a person who cancels a job needs no news of it
            notify_end(state, connection, run.run_by_id, run.job_id, "stopped", root_id=run.root_id)
    events.send(state, events.job_ended, run.job_id, outcome=JobStatus.CANCELLED if cancelled else JobStatus.STOPPED)
    clear_signal(state, run.job_id)
    # children spawned while the stop request travelled: stop or cancel them too (the older ones
    # are the business of whoever asked for the stop, whose name their log then shows)
    requested_at = stopped.stop_requested_at if stopped is not None else None
    since = requested_at - _SPAWN_RACE if requested_at is not None else None
    stop_children(state, run.job_id, None, created_since=since)
    families.child_ended(state, run.parent_id)


def _record_pause(state: JobMonitorState, run: RunInfo, ctx: JobContext) -> None:
    """The worker is shutting down: save the checkpoint, go ``paused``, and queue the job again at
    the front of its queue so the next worker resumes it."""
    ctx.mark_current_step("stopped")
    ctx._add_log(
        logging.INFO, "flask_jobmonitor.runner", "Paused for a worker shutdown; it resumes from its checkpoint."
    )
    ctx.flush(everything=False, honour_stop=False)
    with state.engine.begin() as connection:
        apply_transition(connection, run.job_id, "pause", attempt=run.attempt)
    clear_signal(state, run.job_id)
    after_rq_job(lambda: requeue_paused(state, run.job_id))


_after_rq_job: list[Callable[[], Any]] = []


def after_rq_job(callback: Callable[[], Any]) -> None:
    """Run ``callback`` once RQ has finished recording the current execution.

    Re-queueing a job under its own id while RQ still records its current run would let RQ's
    bookkeeping ("finished") overwrite the new "queued" state; the worker runs these callbacks
    right after. Outside a jobmonitor worker there is no such hook, so it runs at once.
    """
    if hand_over.deferred_callbacks_supported:
        _after_rq_job.append(callback)
    else:
        callback()


def run_after_job_callbacks() -> None:
    """Called by the worker after each job; runs and forgets the deferred callbacks."""
    while _after_rq_job:
        callback = _after_rq_job.pop(0)
        try:
            callback()
        except Exception:
            log.exception("a deferred after-job step failed")


def _worker_name() -> str:
    rq_job = get_current_job()
    name = getattr(rq_job, "worker_name", None) if rq_job is not None else None
    return name or os.environ.get("RQ_WORKER_ID") or f"{socket.gethostname()}.{os.getpid()}"
