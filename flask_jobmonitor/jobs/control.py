"""What people do to jobs: stop, force stop, resume, cancel, restart, delete, set priority.

Each action is a status-machine move (one conditional UPDATE, so races resolve cleanly), is
written into the job's own log with who did it, and is checked against the permissions object
by :func:`perform` before anything happens. Views and JSON endpoints call :func:`perform` or
:func:`perform_bulk`; code that acts on its own behalf (CLI, maintenance) calls the functions.

Every action people take is defined once, as one entry of :data:`REGISTRY` (who may take it,
from which statuses, what it runs, how messages name it and how its button looks: actions.py);
:func:`allowed_actions`, :func:`refusal`, :func:`may` and :func:`perform` read it, and
:data:`ACTIONS` and :data:`PAST_TENSE` are views of it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from redis.exceptions import RedisError
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob
from sqlalchemy.orm import Session

from .. import events
from ..errors import ActionNotAllowed, EnqueueError, JobNotFound, PermissionDenied, TransitionRefused, UnknownTask
from ..i18n import N_, N_plural, format_number, gettext, ngettext
from ..records.bulkwrite import in_chunks
from ..records.dialects import deletes_return, lost_transaction, updates_return
from ..records.journal import close_running_step, write_log
from ..records.models import (
    Job,
    attempt_table,
    file_table,
    job_table,
    log_table,
    notification_table,
    step_table,
    subtask_table,
)
from ..records.notifications import notify_end
from ..records.status import (
    ALREADY_WORDS,
    DELETABLE_STATUSES,
    FINISHED_STATUSES,
    RESTARTABLE_STATUSES,
    TRANSITIONS,
    JobStatus,
)
from ..records.transitions import apply_transition, apply_transition_where
from ..state import JobMonitorState
from ..stats import cache as stats_cache
from ..storage import job_of
from ..timeutil import utcnow
from ..users import describe_user
from . import audit
from . import rq as rq_internals
from .actions import Action, ActionLook, ActionResult, always
from .children import release as release_children
from .enqueue import JobRequest, enqueue_job, requeue
from .families import active_child, child_ended
from .signals import clear_signal, send_signal

log = logging.getLogger("flask_jobmonitor.internal.control")
#: The logger named in the lines that actions write into a job's own log (who did what).
_LOG_AS = "flask_jobmonitor.control"
#: Most jobs one bulk request acts on; "all matching the filters" takes the newest this many
#: (the page says so), which keeps one request's work bounded.
BULK_LIMIT = 1000
PRIORITY_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.STOPPED, JobStatus.PAUSED})


def _actor_name(user: Any) -> str:
    return describe_user(user)[1] or "the system"


def _load(state: JobMonitorState, job_id: str) -> Job:
    with Session(state.engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFound(job_id)
        session.expunge(job)
    return job


# -- the actions ------------------------------------------------------------------------------


def stop(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    """Ask a running job to stop at its next checkpoint or progress tick (cooperative). A parent
    that waits for its children (its own work is done) has them stopped, and ends ``stopped``
    once they have (families.py)."""
    with state.engine.begin() as connection:
        now = utcnow()
        try:
            apply_transition(connection, job_id, "request_stop", now=now, values={"stop_requested_at": now})
            waiting = False
        except TransitionRefused as refused:
            if refused.status != JobStatus.WAITING:
                raise
            apply_transition(connection, job_id, "stop_family", now=now, values={"stop_requested_at": now})
            waiting = True
        write_log(connection, _LOG_AS, [job_id], f"Stop requested by {_actor_name(user)}; work already done is kept.")
    # the children before the signal: the parent, once stopped, stops the children it spawned
    # meanwhile, and those are then recorded as stopped by this request's user, not "the system"
    stop_children(state, job_id, user)
    if waiting:
        child_ended(state, job_id)  # its children may all have been cancelled just now
        events.send(state, events.job_stopped, job_id, action="stop", user=user)
        return ActionResult(
            job_id, "stop", gettext("Its child jobs will stop at their next checkpoint, and the job with them.")
        )
    send_signal(state, job_id, "stop")
    # the task may have read "stopping" from SQL and ended before the signal was set: the
    # signal would then wait for no run (until it expires). Read after setting it, so that a
    # run that cleared the signal before it was set is seen ended here (runner._record_stop
    # ends the job, then clears)
    with state.engine.connect() as connection:
        ended = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == job_id)).scalar()
    if ended is None or JobStatus(ended) in FINISHED_STATUSES:
        clear_signal(state, job_id)
    # last: a slow receiver must not hold back the signal (the job may have ended meanwhile)
    events.send(state, events.job_stopped, job_id, action="stop", user=user)
    return ActionResult(job_id, "stop", gettext("The job will stop at its next checkpoint. Work already done is kept."))


def force_stop(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    """Kill a running or stopping job's work through RQ's stop command and record it ``stopped``."""
    job = _load(state, job_id)
    with state.engine.begin() as connection:
        now = utcnow()
        apply_transition(
            connection,
            job_id,
            "force_stop",
            now=now,
            values={"ended_at": now, "stop_forced": True, "stop_requested_at": job.stop_requested_at or now},
        )
        close_running_step(connection, job_id, "stopped", now)
        write_log(connection, _LOG_AS, [job_id], f"Force-stopped by {_actor_name(user)}.", logging.WARNING)
        notify_end(state, connection, job.run_by_id, job_id, "stopped", root_id=job.root_id)
    # the cooperative signal too: a SimpleWorker cannot be killed, its task stops at its next tick
    send_signal(state, job_id, "stop")
    try:
        send_stop_job_command(state.redis, job_id)
    except (InvalidJobOperation, NoSuchJobError):
        pass  # RQ is not executing it (any more): the SQL record is what counts
    except RedisError as error:
        log.warning("job %s: RQ stop command not sent: %s", job_id, error)
    # after the kill (a slow receiver must not delay it), before the children and the family
    events.send(state, events.job_stopped, job_id, action="force_stop", user=user)
    events.send(state, events.job_ended, job_id, outcome=JobStatus.STOPPED)
    stop_children(state, job_id, user, force=True)
    child_ended(state, job.parent_id)
    return ActionResult(job_id, "force_stop", gettext("The job was force-stopped."))


def resume(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    """Queue a stopped job of a resumable task again; it continues from its checkpoint.

    A family continues as one: the stopped children of resumable tasks, down the tree, are
    queued again first (the parent, run again, waits for them; resumed before them it could
    find no active child and end ``stopped`` at once). Cancelled children stay cancelled and
    children of tasks that cannot resume stay stopped: the family's outcome counts them, and
    the answer says how many."""
    job = _load(state, job_id)
    if not state.tasks.get(job.task).resumable:
        raise ActionNotAllowed(gettext("This job cannot continue where it stopped; restart it instead."))
    if job.status != JobStatus.STOPPED.value:
        raise TransitionRefused(job_id, JobStatus(job.status), "resume")
    resumed, left = _resume_stopped_children(state, job_id, user)
    requeue(state, job_id, "resume")  # the move itself refuses a job that is no longer stopped
    with state.engine.begin() as connection:
        write_log(connection, _LOG_AS, [job_id], f"Resumed by {_actor_name(user)}.")
    sentences = [gettext("The job is queued again and will continue from its checkpoint.")]
    if resumed:
        sentences.append(
            ngettext("%(num)s stopped child job continues too.", "%(num)s stopped child jobs continue too.", resumed)
        )
    if left:
        sentences.append(
            ngettext(
                "%(num)s stopped child job cannot continue (submit it again).",
                "%(num)s stopped child jobs cannot continue (submit them again).",
                left,
            )
        )
    return ActionResult(job_id, "resume", " ".join(sentences))


def _resume_stopped_children(state: JobMonitorState, job_id: str, user: Any) -> tuple[int, int]:
    """Queue again the stopped descendants of ``job_id`` whose tasks can resume, the deepest
    first (a child queued before its own stopped children could run, find none active and end
    stopped at once); return how many were resumed and how many stopped ones cannot continue."""
    c = job_table.c
    levels: list[Sequence[Any]] = []
    parents = [job_id]
    with state.engine.connect() as connection:
        while parents:
            children = connection.execute(
                sa.select(c.id, c.task)
                .where(c.parent_id.in_(parents), c.status == JobStatus.STOPPED.value)
                .order_by(c.created_at, c.id)
            ).all()
            if children:
                levels.append(children)
            parents = [child.id for child in children]
    resumed = left = 0
    for level in reversed(levels):
        for child in level:
            if child.task not in state.tasks or not state.tasks.get(child.task).resumable:
                left += 1
                continue
            try:
                requeue(state, child.id, "resume")
            except TransitionRefused:
                continue  # someone else resumed or cancelled it meanwhile
            with state.engine.begin() as connection:
                write_log(connection, _LOG_AS, [child.id], f"Resumed with its parent by {_actor_name(user)}.")
            resumed += 1
    return resumed, left


def cancel(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    """A queued job will never run (it leaves the RQ queue); a stopped one is discarded for good;
    a paused one does not continue; a running one of a task declared ``cancel_running=True`` is
    asked to stop and ends ``cancelled`` at its next checkpoint (a ``cancel`` signal instead of
    ``stop``: see signals.py); other running jobs refuse a cancel (stop them)."""
    with state.engine.begin() as connection:
        try:
            apply_transition(connection, job_id, "cancel", values={"ended_at": utcnow()})
        except TransitionRefused as refused:
            if refused.status != JobStatus.RUNNING or not _cancels_while_running(state, _load(state, job_id)):
                raise
            now = utcnow()
            apply_transition(connection, job_id, "request_cancel", now=now, values={"stop_requested_at": now})
            write_log(
                connection, _LOG_AS, [job_id], f"Cancel requested by {_actor_name(user)}; work already done is kept."
            )
            running = True
        else:
            write_log(connection, _LOG_AS, [job_id], f"Cancelled by {_actor_name(user)}.")
            running = False
    if running:
        stop_children(state, job_id, user)
        send_signal(state, job_id, "cancel")
        events.send(state, events.job_stopped, job_id, action="cancel", user=user)
        return ActionResult(job_id, "cancel", gettext("The job will stop at its next checkpoint and end cancelled."))
    _remove_from_rq(state, job_id)
    events.send(state, events.job_stopped, job_id, action="cancel", user=user)
    events.send(state, events.job_ended, job_id, outcome=JobStatus.CANCELLED)
    stop_children(state, job_id, user)
    job = _load(state, job_id)
    if job.root_id:
        release_children(state, job.root_id)  # its slot among the root's children is free
    child_ended(state, job.parent_id)  # it may have been the last active child of a waiting parent
    return ActionResult(job_id, "cancel", gettext("The job was cancelled."))


def restart(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    """Submit a finished job again: a new job with the same task, parameters and input files."""
    original = _load(state, job_id)
    if JobStatus(original.status) not in RESTARTABLE_STATUSES:
        raise TransitionRefused(job_id, JobStatus(original.status), "restart")
    task = state.tasks.get(original.task)
    with state.engine.connect() as connection:
        inputs = connection.execute(
            sa.select(file_table).where(file_table.c.job_id == job_id, file_table.c.kind == "input")
        ).all()
    # the stored inputs are shared, not copied: a "Submit again" costs no storage (delete() keeps
    # a file while another job refers to it)
    new_job = enqueue_job(
        state,
        JobRequest(
            task=task,
            params=dict(original.params or {}),
            user=user if user is not None else (original.run_by_id, original.run_by_name),
            name=original.name,
            description=original.description,
            shared_files=inputs,
            low_priority=original.low_priority,
            run_at_url=original.run_at_url,
            is_system=original.is_system,
            restarted_from=original,
        ),
    )
    with state.engine.begin() as connection:
        # no id: everyone who may see this job reads its log, and the new job may be one they may
        # not open (the detail page's "Restarted as" links it for those who may)
        write_log(connection, _LOG_AS, [job_id], f"Restarted by {_actor_name(user)}.")
    return ActionResult(job_id, "restart", gettext("A new job was started with the same parameters."), new_job.id)


def delete(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    """Delete a finished job with its children, steps, subtasks, logs, notifications and files."""
    job = _load(state, job_id)
    if JobStatus(job.status) not in DELETABLE_STATUSES:
        raise TransitionRefused(job_id, JobStatus(job.status), "delete")
    family = [job_id, *_descendants(state, job_id)]
    deletable = [s.value for s in DELETABLE_STATUSES]
    records = events.records_before(state, events.job_deleted, family)
    with state.engine.begin() as connection:
        active = connection.execute(
            sa.select(job_table.c.id).where(job_table.c.id.in_(family), job_table.c.status.not_in(deletable)).limit(1)
        ).first()
        if active is not None:
            raise ActionNotAllowed(
                gettext("This job has a child job that is still active; it can be deleted once all have ended.")
            )
        keys = set(
            connection.execute(sa.select(file_table.c.storage_key).where(file_table.c.job_id.in_(family))).scalars()
        )
        for table in (subtask_table, log_table, step_table, file_table, notification_table, attempt_table):
            connection.execute(sa.delete(table).where(table.c.job_id.in_(family)))
        # files another job still refers to (restarts share their original's inputs) stay
        shared = set(
            connection.execute(
                sa.select(file_table.c.storage_key).where(file_table.c.storage_key.in_(keys)).distinct()
            ).scalars()
        )
        # conditional on the status, like every move: a concurrent resume wins over the delete
        doomed = sa.and_(job_table.c.id.in_(family), job_table.c.status.in_(deletable))
        if deletes_return(connection.dialect):
            deleted = list(
                connection.execute(sa.delete(job_table).where(doomed).returning(job_table.c.created_at)).scalars()
            )
        else:  # MySQL: lock the rows, then delete them
            deleted = list(
                connection.execute(sa.select(job_table.c.created_at).where(doomed).with_for_update()).scalars()
            )
            connection.execute(sa.delete(job_table).where(doomed))
        if len(deleted) != len(family):
            raise ActionNotAllowed(gettext("This job changed while it was being deleted; nothing was deleted."))
        _forget_statistics(connection, deleted)
    _delete_files(state, family, keys, shared)
    for member in family:
        with contextlib.suppress(NoSuchJobError, RedisError):
            RQJob.fetch(member, connection=state.redis).delete()
    log.info("job %s and %d children deleted by %s", job_id, len(family) - 1, _actor_name(user))
    for member in family:
        events.send(state, events.job_deleted, member, job=records.get(member), user=user)
    return ActionResult(job_id, "delete", gettext("The job and everything recorded about it were deleted."))


def _delete_files(state: JobMonitorState, family: list[str], keys: set[str], shared: set[str]) -> None:
    """Delete the deleted jobs' stored files but the ``shared`` ones another job still refers
    to. File by file (a restart's input is stored under its original's id); then each job's
    whole store too (files of no row, a half-written one), unless it holds a shared file: known
    from the key where the storage tells whose store a key is in (storage.job_of), else any
    shared file keeps every store of the family."""
    for key in keys - shared:
        state.storage.delete(key)
    homes = {job_of(state.storage, key) for key in shared}
    for member in family:
        if member not in homes and None not in homes:
            state.storage.delete_job(member)


def _forget_statistics(connection: sa.Connection, created_at: list[datetime]) -> None:
    """The statistics of the deleted jobs' hours and days are computed again from the jobs that
    are left. In a savepoint: a database not yet migrated to the cache's tables still deletes. A
    deadlock on MySQL/MariaDB undoes the whole transaction, so it is raised (records/dialects.py)."""
    try:
        with connection.begin_nested():
            stats_cache.forget(connection, created_at)
    except sa.exc.DBAPIError as error:
        if lost_transaction(error, connection.dialect):
            raise  # a deadlock undid the delete too: nothing may go on as if it were done
        log.warning("statistics cache not updated for deleted jobs (%s); run flask jobmonitor migrate", error)


def set_priority(state: JobMonitorState, job_id: str, low: bool, user: Any = None) -> ActionResult:
    """Mark a job low (or normal) priority; a queued one moves to the other RQ queue at once."""
    priority = "low" if low else "default"
    queue_name = state.settings.queue_names[priority]
    allowed = [s.value for s in PRIORITY_STATUSES]
    with state.engine.begin() as connection:
        changeable = sa.and_(job_table.c.id == job_id, job_table.c.status.in_(allowed))
        change = sa.update(job_table).where(changeable).values(low_priority=low, queue_name=queue_name)
        if updates_return(connection.dialect):
            row = connection.execute(change.returning(job_table.c.status)).first()
        else:  # MySQL/MariaDB: lock the row, then change it
            row = connection.execute(sa.select(job_table.c.status).where(changeable).with_for_update()).first()
            if row is not None:
                connection.execute(change)
        if row is None:
            job = _load(state, job_id)
            raise TransitionRefused(job_id, JobStatus(job.status), "change priority")
        write_log(
            connection, _LOG_AS, [job_id], f"Set to {'low' if low else 'normal'} priority by {_actor_name(user)}."
        )
    if row.status == JobStatus.QUEUED.value:
        _move_between_queues(state, job_id, priority)
    message = gettext("Priority set to low.") if low else gettext("Priority set to normal.")
    return ActionResult(job_id, "set_low_priority" if low else "set_normal_priority", message)


def _move_between_queues(state: JobMonitorState, job_id: str, priority: str) -> None:
    """Take the job off whichever queue holds it and push it on the one for ``priority``.

    If a worker took it meanwhile, it is not pushed again, so it can never run twice.
    """
    rq_internals.move_queued_job(state.redis, job_id, state.settings.queue_names.values(), state.queue(priority))


def _active_children(state: JobMonitorState, parent_ids: list[str], created_since: datetime | None = None) -> list[str]:
    """The children of ``parent_ids`` still to stop or cancel, the queued ones first: a running
    child that ends frees a slot, and a queued child that a worker picks up meanwhile would start."""
    c = job_table.c
    active = [s.value for s in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED, JobStatus.WAITING)]
    queued_first = sa.case((c.status == JobStatus.QUEUED.value, 0), else_=1)
    found: list[str] = []
    with state.engine.connect() as connection:
        for chunk in in_chunks(parent_ids):
            query = sa.select(c.id).where(c.parent_id.in_(chunk), c.status.in_(active))
            if created_since is not None:
                query = query.where(c.created_at >= created_since)
            found.extend(connection.execute(query.order_by(queued_first, c.created_at, c.id)).scalars())
    return found


def stop_children(
    state: JobMonitorState, job_id: str, user: Any, force: bool = False, created_since: datetime | None = None
) -> None:
    """Cancel the queued and paused children of ``job_id`` and stop (or force stop) its running
    ones, and the same for their children, down the tree (with ``created_since``, only the
    children created at or after it; their own children all).

    A mass edit may hold thousands of children in SQL, waiting for a slot: they are cancelled in
    one statement per level of the tree (one at a time, a thousand took 5 s on SQLite and 18 s
    on PostgreSQL, in a web request). Only the few children that hold a worker (at most
    ``JOBMONITOR_CHILDREN_IN_FLIGHT`` per root) and any that changed status meanwhile are
    handled one by one, each by the action a person would take on it.
    """
    parents, since = [job_id], created_since
    roots: set[str] = set()
    while parents:
        cancelled = _cancel_waiting_children(state, parents, user, since, roots)
        for child_id in _active_children(state, parents, since):
            _stop_or_cancel_child(state, child_id, user, force=force)
        parents, since = cancelled, None
    for root_id in sorted(roots):
        release_children(state, root_id)  # slots freed for the root's other branches


def _cancel_waiting_children(
    state: JobMonitorState, parent_ids: list[str], user: Any, created_since: datetime | None, roots: set[str]
) -> list[str]:
    """Cancel the queued and paused children of ``parent_ids`` in one statement per chunk, log who
    did it in each one's log, and take the released ones out of their RQ queue. Returns their
    ids; adds to ``roots`` the roots of those that held a slot."""
    c = job_table.c
    now = utcnow()
    message = f"Cancelled by {_actor_name(user)}."
    cancelled: list[str] = []
    for chunk in in_chunks(parent_ids):
        condition = sa.and_(c.parent_id.in_(chunk), c.status.in_([JobStatus.QUEUED.value, JobStatus.PAUSED.value]))
        if created_since is not None:
            condition = sa.and_(condition, c.created_at >= created_since)
        with state.engine.begin() as connection:
            rows = apply_transition_where(
                connection, "cancel", condition, values={"ended_at": now}, now=now, returning=(c.enqueued_at, c.root_id)
            )
            if rows:
                write_log(connection, _LOG_AS, [row.id for row in rows], message)
        for row in rows:
            cancelled.append(row.id)
            if row.enqueued_at is not None:  # released into RQ (held children never were)
                _remove_from_rq(state, row.id)
                if row.root_id:
                    roots.add(row.root_id)
        events.send_each(state, events.job_stopped, [row.id for row in rows], action="cancel", user=user)
        events.send_each(state, events.job_ended, [row.id for row in rows], outcome=JobStatus.CANCELLED)
    return cancelled


def _remove_from_rq(state: JobMonitorState, job_id: str) -> None:
    """Take a cancelled job out of its RQ queue (best effort: the SQL record is what counts)."""
    try:
        RQJob.fetch(job_id, connection=state.redis).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass
    except RedisError as error:
        # a worker that still dequeues it finds it cancelled in SQL and does not run it
        log.warning("job %s: could not remove it from its RQ queue: %s", job_id, error)


def _stop_or_cancel_child(state: JobMonitorState, child_id: str, user: Any, force: bool = False) -> None:
    """Stopping or cancelling a parent does the same to its children that are still active.

    A child may change status under our feet (a worker starts it just as we cancel it): a
    refused move is retried on its new status, so it is stopped instead of left running.
    """
    for _ in range(_CHILD_RETRIES):
        try:
            child = _load(state, child_id)
            stoppable = _task_allows(state, child, "stoppable")
            if child.status in (JobStatus.QUEUED.value, JobStatus.PAUSED.value):
                cancel(state, child_id, user)  # a paused child would otherwise continue on its own
            elif not stoppable:
                pass  # a task that must not be interrupted half-way runs to its end
            elif child.status in (JobStatus.RUNNING.value, JobStatus.STOPPING.value, JobStatus.WAITING.value) and force:
                force_stop(state, child_id, user)
            elif child.status == JobStatus.RUNNING.value or (
                child.status == JobStatus.WAITING.value and child.stop_requested_at is None
            ):
                stop(state, child_id, user)
            return
        except TransitionRefused:
            continue  # its status changed meanwhile: act on the new one
        except JobNotFound:
            return


_CHILD_RETRIES = 5


def _descendants(state: JobMonitorState, job_id: str) -> list[str]:
    found: list[str] = []
    frontier = [job_id]
    with state.engine.connect() as connection:
        while frontier:
            children = list(
                connection.execute(sa.select(job_table.c.id).where(job_table.c.parent_id.in_(frontier))).scalars()
            )
            found.extend(children)
            frontier = children
    return found


# -- permission-checked entry points for views and JSON ---------------------------------------


def allowed_actions(state: JobMonitorState, job: Job, user: Any, active_children: int | None = None) -> list[str]:
    """The actions to offer ``user`` for ``job``: permitted, fitting its status, and not refused
    by its task (``stoppable=False``, ``restartable=False``) or by the system-job rule.

    A finished job is not offered Delete while a child of it is still active (:func:`delete`
    refuses it then). ``active_children``: how many of its children are active, when the caller
    knows (the list counts every row's children in one query); None looks it up, for a finished
    job only."""
    offered = [
        action.name
        for action in REGISTRY.values()
        if action.fits(state, job) and refusal(state, action.name, job) is None and may(state, action.name, job, user)
    ]
    if "delete" in offered and _has_active_child(state, job, active_children):
        offered.remove("delete")
    return offered


def refusal(state: JobMonitorState, action: str, job: Job) -> str | None:
    """Why ``action`` may never be done to ``job`` whatever its status, in plain words; None if
    nothing forbids it. Actions that interrupt a job's work are refused for tasks declared
    ``stoppable=False`` and, unless ``JOBMONITOR_SYSTEM_JOBS_STOPPABLE``, for system jobs."""
    entry = REGISTRY.get(action)
    if entry is None:
        return None
    interrupts = entry.interrupts(state, job)
    if interrupts and not _task_allows(state, job, "stoppable"):
        return gettext("Jobs of this kind cannot be stopped.")
    if interrupts and job.is_system and not state.settings.system_jobs_stoppable:
        return gettext("System jobs cannot be stopped.")
    if entry.forbidden_by is not None and not _task_allows(state, job, entry.forbidden_by[0]):
        return gettext(entry.forbidden_by[1])
    return None


def _has_active_child(state: JobMonitorState, job: Job, active_children: int | None) -> bool:
    if active_children is not None:
        return active_children > 0
    with state.engine.connect() as connection:
        return bool(connection.execute(sa.select(active_child(job.id, job.root_id or job.id))).scalar())


def _cancels_while_running(state: JobMonitorState, job: Job) -> bool:
    """Whether the job's task declared ``cancel_running=True`` (a running job may be cancelled)."""
    return job.task in state.tasks and state.tasks.get(job.task).cancel_running


def _task_allows(state: JobMonitorState, job: Job, option: str) -> bool:
    """The task's ``stoppable`` or ``restartable`` option (a task no longer registered: True)."""
    return job.task not in state.tasks or bool(getattr(state.tasks.get(job.task), option))


def _is_resumable(state: JobMonitorState, job: Job) -> bool:
    return job.task in state.tasks and state.tasks.get(job.task).resumable


# -- the registry: every action people take, each defined once -------------------------------


def _set_low_priority(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    return set_priority(state, job_id, True, user)


def _set_normal_priority(state: JobMonitorState, job_id: str, user: Any = None) -> ActionResult:
    return set_priority(state, job_id, False, user)


def _not_asked_to_stop(state: JobMonitorState, job: Job) -> bool:
    """A waiting parent is offered Stop once (it stops its children, then waits for them)."""
    return job.status != JobStatus.WAITING.value or job.stop_requested_at is None


def _cancel_fits(state: JobMonitorState, job: Job) -> bool:
    """A running job may be cancelled only if its task declared ``cancel_running=True``."""
    return job.status != JobStatus.RUNNING.value or _cancels_while_running(state, job)


def _cancel_interrupts(state: JobMonitorState, job: Job) -> bool:
    """A cancel of a running job interrupts it, so it counts as a stop."""
    return job.status == JobStatus.RUNNING.value and _cancels_while_running(state, job)


def _task_known(state: JobMonitorState, job: Job) -> bool:
    return job.task in state.tasks


def _is_normal_priority(state: JobMonitorState, job: Job) -> bool:
    return not job.low_priority


def _is_low_priority(state: JobMonitorState, job: Job) -> bool:
    return bool(job.low_priority)


#: Every action people take on jobs, in the order the pages offer them (actions.py says what
#: each field means). The statuses come from the status machine's moves where an action makes one.
REGISTRY: Mapping[str, Action] = {
    action.name: action
    for action in (
        Action(
            "stop",
            permission="can_stop",
            statuses=TRANSITIONS["request_stop"].sources | TRANSITIONS["stop_family"].sources,
            condition=_not_asked_to_stop,
            run=stop,
            past_tense=N_plural("%(num)s asked to stop", "%(num)s asked to stop"),
            denied=N_("You may not stop this job."),
            interrupts=always,
            look=ActionLook(
                N_("Stop"),
                "warning",
                N_("Stop this job at its next checkpoint? Work already done is kept, not reverted."),
            ),
        ),
        Action(
            "force_stop",
            permission="can_stop",
            statuses=TRANSITIONS["force_stop"].sources,
            run=force_stop,
            past_tense=N_plural("%(num)s force-stopped", "%(num)s force-stopped"),
            denied=N_("You may not force-stop this job."),
            interrupts=always,
            look=ActionLook(
                N_("Force stop"), "danger", N_("Kill this job's work now? Work already done is kept, not reverted.")
            ),
        ),
        Action(
            "resume",
            permission="can_manage",
            statuses=frozenset({JobStatus.STOPPED}),  # a paused job is resumed automatically
            condition=_is_resumable,
            run=resume,
            past_tense=N_plural("%(num)s resumed", "%(num)s resumed"),
            denied=N_("You may not resume this job."),
            look=ActionLook(N_("Resume"), "primary", ""),
        ),
        Action(
            "cancel",
            permission="can_manage",
            statuses=TRANSITIONS["cancel"].sources | TRANSITIONS["request_cancel"].sources,
            condition=_cancel_fits,
            run=cancel,
            past_tense=N_plural("%(num)s cancelled", "%(num)s cancelled"),
            denied=N_("You may not cancel this job."),
            interrupts=_cancel_interrupts,
            look=ActionLook(N_("Cancel"), "secondary", N_("Cancel this job for good?")),
        ),
        Action(
            "restart",
            permission="can_manage",
            statuses=RESTARTABLE_STATUSES,
            condition=_task_known,
            run=restart,
            past_tense=N_plural("%(num)s restarted", "%(num)s restarted"),
            denied=N_("You may not restart this job."),
            forbidden_by=("restartable", N_("Jobs of this kind cannot be submitted again.")),
            look=ActionLook(N_("Submit again"), "primary", ""),
        ),
        Action(
            "delete",
            permission="can_delete",
            statuses=DELETABLE_STATUSES,
            run=delete,
            past_tense=N_plural("%(num)s deleted", "%(num)s deleted"),
            denied=N_("You may not delete this job."),
            look=ActionLook(
                N_("Delete"), "danger", N_("Delete this job with its logs and files? This cannot be undone.")
            ),
        ),
        Action(
            "set_low_priority",
            permission="can_manage",
            statuses=PRIORITY_STATUSES,
            condition=_is_normal_priority,
            run=_set_low_priority,
            past_tense=N_plural("%(num)s set to low priority", "%(num)s set to low priority"),
            denied=N_("You may not change the priority of this job."),
            look=ActionLook(N_("Low priority"), "light", ""),
        ),
        Action(
            "set_normal_priority",
            permission="can_manage",
            statuses=PRIORITY_STATUSES,
            condition=_is_low_priority,
            run=_set_normal_priority,
            past_tense=N_plural("%(num)s set to normal priority", "%(num)s set to normal priority"),
            denied=N_("You may not change the priority of this job."),
            look=ActionLook(N_("Normal priority"), "light", ""),
        ),
    )
}
#: The action names, in the registry's order.
ACTIONS = tuple(REGISTRY)
#: What each action is called in messages ("3 stopped, 1 skipped"): singular and plural forms.
PAST_TENSE: Mapping[str, tuple[str, str]] = {name: action.past_tense for name, action in REGISTRY.items()}


def _known(action: str) -> Action:
    """The registry's entry for ``action``; ValueError naming the known ones if there is none."""
    entry = REGISTRY.get(action) if isinstance(action, str) else None
    if entry is None:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return entry


def may(state: JobMonitorState, action: str, job: Job, user: Any) -> bool:
    """Does the permissions object allow ``user`` to do ``action`` to ``job``?"""
    check: Callable[[Any, Job], bool] = getattr(state.permissions, _known(action).permission)
    return check(user, job)


def perform(state: JobMonitorState, action: str, job: Job, user: Any) -> ActionResult:
    """Do ``action`` to ``job`` for ``user`` after checking permission.

    Raises PermissionDenied, TransitionRefused or ActionNotAllowed (status does not fit; nothing
    changed), JobNotFound, or ValueError for an unknown action. What was done is written to the
    audit trail (audit.py).
    """
    return _perform(state, action, job, user, batch=None)


def _perform(state: JobMonitorState, action: str, job: Job, user: Any, batch: str | None) -> ActionResult:
    entry = _known(action)
    if not may(state, action, job, user):
        raise PermissionDenied(gettext(entry.denied))
    reason = refusal(state, action, job)
    if reason is not None:
        raise ActionNotAllowed(reason)
    try:
        result = entry.run(state, job.id, user)
    except EnqueueError as refused:
        # done, then refused by Redis: a restart's new job, a resumed job, is recorded failed
        refusal_detail = f"Redis refused the job {refused.job_id}: it is recorded failed"
        audit.record(state, action, user, [audit.JobNamed.of(job)], batch=batch, detail=refusal_detail)
        raise
    new_job = f"new job {result.new_job_id}" if result.new_job_id else None
    audit.record(state, action, user, [audit.JobNamed.of(job)], batch=batch, detail=new_job)
    return result


@dataclass
class BulkSummary:
    """What a bulk action did: "3 stopped, 1 skipped: already completed"."""

    action: str
    done: list[ActionResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (job id, reason)

    @property
    def message(self) -> str:
        """The summary in the request's language (the reasons were translated when recorded)."""
        singular, plural = PAST_TENSE.get(self.action, (self.action, self.action))
        text = ngettext(singular, plural, len(self.done))
        if self.skipped:
            reasons: dict[str, int] = {}
            for _job_id, reason in self.skipped:
                reasons[reason] = reasons.get(reason, 0) + 1
            detail = gettext("; ").join(
                gettext("%(count)s %(reason)s", count=format_number(count), reason=reason) if count > 1 else reason
                for reason, count in reasons.items()
            )
            text = ngettext(
                "%(done)s, %(num)s skipped: %(detail)s",
                "%(done)s, %(num)s skipped: %(detail)s",
                len(self.skipped),
                done=text,
                detail=detail,
            )
        return text


def perform_bulk(
    state: JobMonitorState,
    action: str,
    jobs: Iterable[Job],
    user: Any,
    status_word: Callable[[JobStatus], str] | None = None,
) -> BulkSummary:
    """Apply ``action`` to each job it fits and is permitted for; report the rest as skipped.

    A job whose status does not fit is skipped as "already completed" (``ALREADY_WORDS``), or
    "already <label>" with the status named as the pages' badges name it when the app renamed it
    (``JOBMONITOR_STATUS_LABELS``) or by ``status_word`` when given; translated for the request."""
    labels = state.settings.status_labels

    def already(status: JobStatus) -> str:
        label = status_word(status) if status_word else labels.get(status.value)
        if label is None and status.value in ALREADY_WORDS:
            return gettext(ALREADY_WORDS[status.value])
        return gettext("already %(status)s", status=gettext(label or status.value).lower())

    _known(action)
    summary = BulkSummary(action)
    batch = audit.new_batch()
    for job in jobs:
        try:
            summary.done.append(_perform(state, action, job, user, batch))
        except PermissionDenied:
            summary.skipped.append((job.id, gettext("not permitted")))
        except TransitionRefused as refused:
            summary.skipped.append((job.id, already(refused.status)))
        except (ActionNotAllowed, JobNotFound, UnknownTask) as error:
            summary.skipped.append((job.id, str(error).split(": ", 1)[-1]))
        except EnqueueError:
            summary.skipped.append((job.id, gettext("Redis unreachable")))
    return summary


__all__ = [
    "ACTIONS",
    "PAST_TENSE",
    "REGISTRY",
    "ActionResult",
    "BulkSummary",
    "allowed_actions",
    "cancel",
    "delete",
    "force_stop",
    "may",
    "perform",
    "perform_bulk",
    "refusal",
    "restart",
    "resume",
    "set_priority",
    "stop",
]
