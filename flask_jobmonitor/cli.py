"""``flask jobmonitor ...``: a thin shell over the library functions."""

from __future__ import annotations

import warnings

import click
from flask import current_app
from flask.cli import with_appcontext
from rq.utils import import_attribute
from rq.worker import BaseWorker

from .extension import get_state
from .models import Base
from .worker import create_worker


@click.group("jobmonitor", help="Tracked jobs: database tables and workers.")
def jobmonitor_cli() -> None:
    """The ``flask jobmonitor`` command group."""


@jobmonitor_cli.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create the jobmonitor_* tables that do not exist yet (existing ones are left alone).

    A database whose tables this creates is stamped with the current migration, so a later
    ``flask jobmonitor migrate`` upgrades it from there."""
    from .migrate import current_revision, stamp

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
    from .migrate import current_revision, upgrade

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
    from .schedules import create_scheduler

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
    from .maintenance import recover

    click.echo(f"recovery: {recover(get_state())}")


@jobmonitor_cli.command("clear-stats-cache")
@with_appcontext
def clear_stats_cache() -> None:
    """Drop the statistics kept for closed hours and days; the page computes them again from the
    jobs. Needed only after changing jobs' rows by hand (the package drops stale ones itself)."""
    from .stats_cache import clear

    with get_state().engine.begin() as connection:
        dropped = clear(connection)
    click.echo(f"statistics cache cleared: {dropped} buckets dropped")


@jobmonitor_cli.command("cleanup")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Default: JOBMONITOR_RETENTION_DAYS.")
@with_appcontext
def cleanup(days: int | None) -> None:
    """Delete finished jobs older than the retention period, with their records and files."""
    from .maintenance import delete_old_jobs

    state = get_state()
    keep = days or state.settings.retention_days
    click.echo(f"deleted {delete_old_jobs(state, keep)} jobs older than {keep} days")
