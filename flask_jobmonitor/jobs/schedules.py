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
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask
from rq_scheduler import Scheduler
from sqlalchemy.orm import Session

from ..records.models import Job
from ..state import JobMonitorState, get_state
from ..stats.figures import prepare_days
from ..tasks import SCHEDULE_ID_PREFIX, Schedule
from . import audit
from .maintenance import delete_old_jobs

__all__ = ["LAUNCHER_PATH", "RETENTION_SCHEDULE", "Schedule", "create_scheduler", "launch_scheduled", "sync_schedules"]

log = logging.getLogger("flask_jobmonitor.internal.schedules")
#: What rq-scheduler queues at a schedule's due time, by the name it stores: a stable entry point,
#: flask_jobmonitor/schedules.py, which forwards to this module's launch_scheduled (see
#: jobs/submit.py RUNNER_PATH for why). sync_schedules replaces an entry that names anything else.
LAUNCHER_PATH = "flask_jobmonitor.schedules.launch_scheduled"
RETENTION_SCHEDULE = "jobmonitor.retention"


def launch_scheduled(name: str) -> str:
    """RQ job that rq-scheduler queues at each due time: start one tracked run of schedule ``name``."""
    state = get_state()
    schedule = state.extension.schedules.get(name)
    if schedule is None:
        log.warning("schedule %r is no longer registered; nothing launched", name)
        return "unknown schedule"
    job = state.extension.enqueue(
        schedule.task,
        *schedule.args,
        name=schedule.job_name or f"{name} (scheduled)",
        is_system=schedule.is_system,
        task_kwargs=dict(schedule.kwargs),
    )
    return job.id


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
                .where(Job.task == schedule.task, Job.name == (schedule.job_name or f"{name} (scheduled)"))
                .order_by(Job.created_at.desc())
                .limit(limit)
            ).scalars()
        )
        session.expunge_all()
    return jobs
