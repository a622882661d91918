"""``flask jobmonitor ...``: a thin shell over the library functions."""

from __future__ import annotations

import getpass
import warnings
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import with_appcontext
from rq.utils import import_attribute
from rq.worker import BaseWorker

from .errors import UnknownSchedule
from .jobs import audit
from .jobs import pause_all as pausing
from .jobs.maintenance import delete_old_jobs, recover
from .jobs.schedules import create_scheduler, overview, set_enabled
from .records.migrate import current_revision, stamp, upgrade
from .records.models import Base
from .state import get_state
from .stats.cache import clear
from .worker.process import create_worker


@click.group("jobmonitor", help="Tracked jobs: database tables and workers.")
def jobmonitor_cli() -> None:
    """The ``flask jobmonitor`` command group."""


@jobmonitor_cli.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create the jobmonitor_* tables that do not exist yet (existing ones are left alone).

    A database whose tables this creates is stamped with the current migration, so a later
    ``flask jobmonitor migrate`` upgrades it from there."""
    engine = get_state().engine
    Base.metadata.create_all(engine)
    if current_revision(engine) is None:
        stamp(engine)
    click.echo(f"jobmonitor tables ready in {engine.url.render_as_string(hide_password=True)}")


@jobmonitor_cli.command("migrate")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@with_appcontext
def migrate_command(revision: str) -> None:
    """Upgrade the jobmonitor_* tables with the extension's Alembic migrations (own version table)."""
    engine = get_state().engine
    upgrade(engine, revision)
    click.echo(f"jobmonitor tables at revision {current_revision(engine)}")


@jobmonitor_cli.command("worker")
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Run the jobs that are queued now, then exit.")
@click.option(
    "--worker-class",
    default="rq.Worker",
    show_default=True,
    help="Dotted path of the RQ worker class, e.g. rq.SimpleWorker.",
)
@click.option("--name", default=None, help="Worker name (default: RQ's host.pid based name).")
@click.option(
    "--with-scheduler/--without-scheduler",
    default=True,
    show_default=True,
    help="Also run RQ's scheduler, which queues delayed jobs when they are due (one per queue is active).",
)
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool, worker_class: str, name: str | None, with_scheduler: bool) -> None:
    """Run an RQ worker for tracked jobs (default queues: high, default, low in that order)."""
    try:
        base = import_attribute(worker_class)
    except (ImportError, AttributeError, ValueError) as error:
        raise click.BadParameter(f"cannot import {worker_class!r}: {error}", param_hint="--worker-class") from None
    if not (isinstance(base, type) and issubclass(base, BaseWorker)):
        raise click.BadParameter(f"{worker_class!r} is not an RQ worker class", param_hint="--worker-class")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    rq_worker = create_worker(app, queues or None, worker_class=base, name=name)
    rq_worker.work(burst=burst, with_scheduler=with_scheduler)


@jobmonitor_cli.command("scheduler")
@click.option("--interval", default=10, show_default=True, help="Seconds between two looks at the schedule.")
@click.option("--burst", is_flag=True, help="Queue what is due now, then exit.")
@with_appcontext
def scheduler(interval: int, burst: bool) -> None:
    """Run rq-scheduler with the app's schedules (several may run: one holds the lock)."""
    # rq-scheduler's crontab dependency announces a future change on every computation; the
    # schedules here are explicit UTC cron strings either way
    warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    rq_scheduler = create_scheduler(app, interval=interval)
    click.echo("schedules: " + (", ".join(sorted(get_state().extension.schedules)) or "none"))
    rq_scheduler.run(burst=burst)


@jobmonitor_cli.command("recover")
@with_appcontext
def recover_command() -> None:
    """Requeue or fail jobs whose worker died; resubmit queued jobs that Redis lost."""
    click.echo(f"recovery: {recover(get_state())}")


@jobmonitor_cli.command("clear-stats-cache")
@with_appcontext
def clear_stats_cache() -> None:
    """Drop the statistics kept for closed hours and days; the page computes them again from the
    jobs. Needed only after changing jobs' rows by hand (the package drops stale ones itself)."""
    with get_state().engine.begin() as connection:
        dropped = clear(connection)
    click.echo(f"statistics cache cleared: {dropped} buckets dropped")


@jobmonitor_cli.command("cleanup")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: JOBMONITOR_RETENTION_DAYS.")
@with_appcontext
def cleanup(days: int | None) -> None:
    """Delete finished jobs older than the retention period, with their records and files."""
    state = get_state()
    keep = days or state.settings.retention_days
    with audit.acting_from(audit.COMMAND_LINE):
        deleted = delete_old_jobs(state, keep, user=_cli_user())
    click.echo(f"deleted {deleted} jobs older than {keep} days")
    if state.settings.audit_retention_days is not None:
        pruned = audit.prune(state)
        click.echo(f"deleted {pruned} audit entries older than {state.settings.audit_retention_days} days")


#: Exit status of ``flask jobmonitor pause`` when jobs still run at the end of ``--timeout``.
STILL_RUNNING_EXIT = 3


def _local_time(value: datetime) -> str:
    """A UTC time of the job tables as this machine's clock reads it: "14:07 CET"."""
    return value.replace(tzinfo=timezone.utc).astimezone().strftime("%H:%M %Z").strip()


def _local_date_time(value: datetime) -> str:
    """A UTC time of the job tables with its date, as this machine's clock reads it."""
    return value.replace(tzinfo=timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def _cli_user() -> tuple[None, str]:
    """Who acts from the command line, as the jobs' logs and the pause record name them."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container)
        login = "someone"
    return None, f"{login} (command line)"


@jobmonitor_cli.command("pause")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300,
    show_default=True,
    help="Seconds to wait for the running jobs to pause or end.",
)
@click.option("--no-wait", is_flag=True, help="Ask, report what runs, and exit at once (status 0).")
@with_appcontext
def pause_command(timeout: float, no_wait: bool) -> None:
    """Pause all jobs for maintenance: every RQ worker on this Redis stops taking jobs, running
    jobs of resumable tasks pause at their next checkpoint, new jobs are accepted and wait.
    Waits until nothing runs; exits with status 3, listing them, if jobs still run after
    --timeout seconds. Pausing again is harmless. Undo with ``flask jobmonitor resume``."""
    state = get_state()
    try:
        with audit.acting_from(audit.COMMAND_LINE):
            found = pausing.pause_all(state, _cli_user())
    except pausing.PauseAllUnavailable as error:
        raise click.ClickException(str(error)) from None
    paused = pausing.current(state)
    since = f" since {_local_time(paused.since)}" if paused and paused.since else ""
    click.echo(f"jobs paused{since}: workers take no new job; new jobs are accepted and wait")
    last = ""

    def report(progress: pausing.Progress) -> None:
        nonlocal last
        line = progress.summary(_local_time)
        if line != last and not (progress.idle and not no_wait):  # the end says so itself
            click.echo(line)
            last = line

    if no_wait:
        report(found)
        return
    found = pausing.wait_until_idle(state, timeout, report)
    if found.idle:
        click.echo("nothing runs: ready for maintenance; `flask jobmonitor resume` lets jobs continue")
        return
    click.echo(f"still running after {timeout:g} s:", err=True)
    for job in found.running:
        click.echo(f"  {pausing.describe_job(job, _local_time)}", err=True)
    raise SystemExit(STILL_RUNNING_EXIT)


@jobmonitor_cli.command("resume")
@with_appcontext
def resume_command() -> None:
    """Resume all jobs after ``flask jobmonitor pause`` (also lifts an ``rq suspend``): workers
    take jobs again, the jobs the pause paused continue from their checkpoints. Jobs stopped or
    cancelled by people stay as they are. Resuming again is harmless."""
    try:
        with audit.acting_from(audit.COMMAND_LINE):
            report = pausing.resume_all(get_state(), _cli_user())
    except pausing.PauseAllUnavailable as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.message)


@jobmonitor_cli.command("schedules")
@with_appcontext
def schedules_command() -> None:
    """List the schedules: name, cron (UTC), on or off, next run and last run (this machine's
    time), as the schedules page shows them."""
    seen = overview(get_state())
    if seen.scheduler_running is False:
        click.echo("no scheduler is running: no schedule launches anything (flask jobmonitor scheduler)", err=True)
    for view in seen.schedules:
        next_run = _local_date_time(view.next_run) if view.enabled else "-"
        if view.enabled and view.in_scheduler is False:
            next_run += " (not in the scheduler yet)"
        last = f"{_local_date_time(view.last_run_at)} (job {view.last_job_id})" if view.last_run_at else "never"
        state = "on" if view.enabled else "off"
        click.echo(f"{view.schedule.name}\t{view.schedule.cron}\t{state}\tnext {next_run}\tlast {last}")


@jobmonitor_cli.command("schedule")
@click.argument("name")
@click.argument("switch", type=click.Choice(["on", "off"]))
@with_appcontext
def schedule_command(name: str, switch: str) -> None:
    """Switch schedule NAME on or off, for every process and after restarts (kept in SQL,
    written to the audit trail). While off, its due times launch nothing."""
    try:
        with audit.acting_from(audit.COMMAND_LINE):
            changed = set_enabled(get_state(), name, switch == "on", _cli_user())
    except UnknownSchedule as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"schedule {name} is {switch}" if changed else f"schedule {name} already was {switch}")
