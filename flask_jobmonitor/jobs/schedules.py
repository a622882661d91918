"""Recurring tracked jobs (cron schedules) and the daily retention job.

Recurring jobs use **rq-scheduler**: its schedule lives in Redis and only one scheduler process
holds its lock at a time, so running a scheduler next to every web process (for availability)
never launches a run twice. RQ 3's own ``CronScheduler`` keeps its schedule in each process's
memory and has no such lock, so two of them would both launch every run. One-off *delayed*
jobs use RQ's built-in scheduler instead (``enqueue(..., delay=...)``), which every
``flask jobmonitor worker`` runs and which needs no extra process.

At each due time rq-scheduler queues a tiny launcher (:func:`launch_scheduled`); a worker runs it
inside the app, and it creates an ordinary tracked job (``is_system`` for the extension's own
jobs), so each run shows up, is logged and can be stopped like any other.

A schedule can be switched off and on again (the schedules page, :func:`set_enabled`): the
switch is kept in SQL (``jobmonitor_schedule``), so it survives restarts and deploys and is the
same for every process. rq-scheduler keeps firing a switched-off schedule; its launcher reads
the switch and launches nothing (it notes the skipped time). Kept in the same row: the job its
last due time launched. The next run is rq-scheduler's own next time for the schedule
(:func:`overview`), so the page says what will happen, or that no scheduler holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from croniter import croniter
from flask import Flask
from redis.exceptions import RedisError
from rq_scheduler import Scheduler
from sqlalchemy.orm import Session

from ..errors import EnqueueError, UnknownSchedule
from ..records.models import Job, schedule_table
from ..state import JobMonitorState, get_state
from ..stats.figures import prepare_days
from ..tasks import SCHEDULE_ID_PREFIX, Schedule
from ..timeutil import utcnow
from ..users import describe_user
from . import audit
from . import rq as rq_internals
from .maintenance import delete_old_jobs

__all__ = [
    "LAUNCHER_PATH",
    "RETENTION_SCHEDULE",
    "Overview",
    "Schedule",
    "ScheduleView",
    "create_scheduler",
    "is_enabled",
    "launch_scheduled",
    "overview",
    "set_enabled",
    "sync_schedules",
]

log = logging.getLogger("flask_jobmonitor.internal.schedules")
#: What rq-scheduler queues at a schedule's due time, by the name it stores: a stable entry point,
#: flask_jobmonitor/schedules.py, which forwards to this module's launch_scheduled (see
#: jobs/submit.py RUNNER_PATH for why). sync_schedules replaces an entry that names anything else.
LAUNCHER_PATH = "flask_jobmonitor.schedules.launch_scheduled"
RETENTION_SCHEDULE = "jobmonitor.retention"


def launch_scheduled(name: str) -> str:
    """RQ job that rq-scheduler queues at each due time: start one tracked run of schedule
    ``name``, unless it is switched off (then note the skipped time, and launch nothing)."""
    state = get_state()
    schedule = state.extension.schedules.get(name)
    if schedule is None:
        log.warning("schedule %r is no longer registered; nothing launched", name)
        return "unknown schedule"
    if not is_enabled(state, name):
        _write(state, name, {"last_skipped_at": utcnow()})
        log.info("schedule %r is switched off; nothing launched", name)
        return "switched off"
    try:
        job = state.extension.enqueue(
            schedule.task,
            *schedule.args,
            name=job_name_of(schedule),
            is_system=schedule.is_system,
            task_kwargs=dict(schedule.kwargs),
        )
    except EnqueueError as error:  # recorded failed: still its last run, for the page to link
        _write(state, name, {"last_job_id": error.job_id, "last_run_at": utcnow()})
        raise
    _write(state, name, {"last_job_id": job.id, "last_run_at": job.created_at})
    return job.id


def job_name_of(schedule: Schedule) -> str:
    """The name of the jobs ``schedule`` launches."""
    return schedule.job_name or f"{schedule.name} (scheduled)"


def is_enabled(state: JobMonitorState, name: str) -> bool:
    """Whether schedule ``name`` is switched on (no row: it is)."""
    with state.engine.connect() as connection:
        enabled = connection.execute(sa.select(schedule_table.c.enabled).where(schedule_table.c.name == name)).scalar()
    return enabled is None or bool(enabled)


def set_enabled(state: JobMonitorState, name: str, enabled: bool, user: Any = None) -> bool:
    """Switch schedule ``name`` on or off for every process, from its next due time; written to
    the audit trail. Returns False when it already was (nothing written: of two people switching
    it off at once, one switched it). Raises :class:`UnknownSchedule` for a name no schedule of
    this app has."""
    if name not in state.extension.schedules:
        raise UnknownSchedule(name)
    user_id, user_name = describe_user(user)
    values = {"enabled": enabled, "changed_at": utcnow(), "changed_by_id": user_id, "changed_by_name": user_name}
    t = schedule_table
    changed = False
    for _ in range(2):
        try:
            with state.engine.begin() as connection:
                # one conditional UPDATE: it changed the switch or it did not
                switched = connection.execute(
                    sa.update(t).where(t.c.name == name, t.c.enabled != enabled).values(**values)
                ).rowcount
                if switched:
                    changed = True
                elif not enabled and not connection.execute(sa.select(t.c.name).where(t.c.name == name)).first():
                    connection.execute(sa.insert(t).values(name=name, **values))  # no row yet: it was on
                    changed = True
            break
        except sa.exc.IntegrityError:  # a launcher or a person made the row meanwhile: update it
            continue
    if changed:
        action = audit.ENABLE_SCHEDULE if enabled else audit.DISABLE_SCHEDULE
        audit.record(state, action, user, detail=name)
        log.info("schedule %r switched %s by %s", name, "on" if enabled else "off", user_name or "code")
    return changed


def _write(state: JobMonitorState, name: str, values: Mapping[str, Any]) -> None:
    """Update the row of schedule ``name``, made first if it has none (a concurrent first write
    of the same row wins the insert: this one then updates it)."""
    t = schedule_table
    for _ in range(2):
        try:
            with state.engine.begin() as connection:
                if connection.execute(sa.update(t).where(t.c.name == name).values(**values)).rowcount:
                    return
                connection.execute(sa.insert(t).values({"name": name, "enabled": True, **values}))
                return
        except sa.exc.IntegrityError:
            continue
    raise RuntimeError(f"schedule {name!r}: its row could be neither updated nor made")


@dataclass(frozen=True)
class ScheduleView:
    """One schedule as the schedules page shows it (naive UTC times)."""

    schedule: Schedule
    job_name: str
    enabled: bool
    #: rq-scheduler's next time for it, or the cron's next time when no scheduler holds it
    next_run: datetime
    #: whether rq-scheduler holds it (None: Redis could not be read)
    in_scheduler: bool | None
    last_job_id: str | None
    last_run_at: datetime | None
    last_skipped_at: datetime | None
    changed_at: datetime | None
    changed_by_name: str | None


@dataclass(frozen=True)
class Overview:
    """Every registered schedule, by name, and whether an rq-scheduler process runs now (None:
    Redis could not be read)."""

    schedules: list[ScheduleView]
    scheduler_running: bool | None


def overview(state: JobMonitorState) -> Overview:
    """Every registered schedule with its switch, next and last run: one query, one Redis round trip."""
    schedules = sorted(state.extension.schedules.values(), key=lambda schedule: schedule.name)
    with state.engine.connect() as connection:
        rows = {row.name: row for row in connection.execute(sa.select(schedule_table))}
    next_times: list[datetime | None] = [None] * len(schedules)
    held: list[bool | None] = [None] * len(schedules)
    running: bool | None = None
    try:
        next_times = rq_internals.schedule_times(state.redis, [schedule.rq_id for schedule in schedules])
        held = [when is not None for when in next_times]
        running = rq_internals.scheduler_running(state.redis)
    except RedisError as error:
        log.warning("cannot read rq-scheduler's schedule: %s", error)
    now = utcnow()
    views = []
    for schedule, when, in_scheduler in zip(schedules, next_times, held, strict=True):
        row = rows.get(schedule.name)
        next_run = when if when is not None else croniter(schedule.cron, now).get_next(datetime)
        views.append(
            ScheduleView(
                schedule=schedule,
                job_name=job_name_of(schedule),
                enabled=row is None or bool(row.enabled),
                next_run=next_run,
                in_scheduler=in_scheduler,
                last_job_id=row.last_job_id if row is not None else None,
                last_run_at=row.last_run_at if row is not None else None,
                last_skipped_at=row.last_skipped_at if row is not None else None,
                changed_at=row.changed_at if row is not None else None,
                changed_by_name=row.changed_by_name if row is not None else None,
            )
        )
    return Overview(views, running)


def sync_schedules(state: JobMonitorState, scheduler: Scheduler) -> list[str]:
    """Make rq-scheduler hold exactly the registered schedules (a changed cron replaces the old)."""
    wanted = {schedule.rq_id: schedule for schedule in state.extension.schedules.values()}
    for entry in scheduler.get_jobs():
        if not entry.id.startswith(SCHEDULE_ID_PREFIX):
            continue
        schedule = wanted.get(entry.id)
        if schedule is None or entry.meta.get("cron_string") != schedule.cron or entry.func_name != LAUNCHER_PATH:
            scheduler.cancel(entry)
        else:
            wanted.pop(entry.id)
    for schedule in wanted.values():
        scheduler.cron(
            schedule.cron,
            func=LAUNCHER_PATH,
            args=[schedule.name],
            id=schedule.rq_id,
            queue_name=state.settings.queue_names["high"],
            description=f"launch {schedule.name}",
            result_ttl=state.settings.rq_result_ttl,
        )
    return sorted(schedule.name for schedule in state.extension.schedules.values())


def create_scheduler(app: Flask, interval: int = 10) -> Scheduler:
    """An rq-scheduler for ``app`` that checks every ``interval`` seconds, with schedules synced."""
    state = get_state(app)
    scheduler = Scheduler(
        queue_name=state.settings.queue_names["high"], connection=state.redis_for_workers(), interval=interval
    )
    sync_schedules(state, scheduler)
    return scheduler


def retention_task(ctx: Any, days: int | None = None) -> None:
    """The daily system job: delete finished jobs older than ``JOBMONITOR_RETENTION_DAYS``; then,
    with the statistics cache on, compute the last year's days that are not kept yet, so that
    the first person to open a long range on the statistics page does not wait for them."""
    state = get_state()
    keep = state.settings.retention_days if days is None else days
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ValueError(f"days must be a whole number of at least 1, got {keep!r}")  # days=0 would delete today's jobs
    with ctx.step("Delete old jobs") as step:
        deleted = delete_old_jobs(state, keep)
        step.count("deleted", deleted)
    ctx.log.info("deleted %d finished jobs older than %d days", deleted, keep)
    if state.settings.audit_retention_days is not None:
        with ctx.step("Delete old audit entries") as step:
            pruned = audit.prune(state)
            step.count("deleted", pruned)
        ctx.log.info("deleted %d audit entries older than %d days", pruned, state.settings.audit_retention_days)
    if state.settings.stats_cache:
        with ctx.step("Prepare statistics") as step, state.engine.connect() as connection:
            kept = prepare_days(connection, zone=state.settings.timezone)
            step.count("days kept", kept)
        ctx.log.info("statistics of %d closed days of the last year are kept", kept)


def scheduled_runs(state: JobMonitorState, name: str, limit: int = 10) -> list[Job]:
    """The latest tracked runs launched by schedule ``name`` (newest first)."""
    schedule = state.extension.schedules[name]
    with Session(state.engine) as session:
        jobs = list(
            session.execute(
                sa.select(Job)
                .where(Job.task == schedule.task, Job.name == job_name_of(schedule))
                .order_by(Job.created_at.desc())
                .limit(limit)
            ).scalars()
        )
        session.expunge_all()
    return jobs
