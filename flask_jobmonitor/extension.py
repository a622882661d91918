"""The :class:`JobMonitor` extension object and the per-app state it keeps in ``app.extensions``.

As in Flask-SQLAlchemy, the extension object holds no per-app state: tasks (code) are
registered on it once, and everything that depends on an app (settings, Redis connection,
storage) lives in ``app.extensions["jobmonitor"]``, so one ``JobMonitor`` serves several apps
and an app factory can call ``init_app`` as often as it builds apps.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import IO, TYPE_CHECKING, Any, TypeVar, overload

import sqlalchemy as sa
from flask import Flask
from rq import Retry

from . import i18n
from .cli import jobmonitor_cli
from .config import Settings, apply_defaults, read_settings
from .errors import ConfigError
from .jobs.enqueue import JobRequest, enqueue_job
from .jobs.schedules import RETENTION_SCHEDULE, retention_task
from .permissions import JobPermissions
from .state import EXTENSION_KEY, JobMonitorState, get_state
from .stats import metrics as stats_metrics
from .storage import LocalStorage, Storage
from .tasks import RetryPolicy, Schedule, TaskRegistry, TrackedTask, default_task_name
from .web import requests
from .web.admin.menu import add_admin_views
from .web.blueprint import bp
from .web.templating import register_template_helpers

if TYPE_CHECKING:
    from flask_admin import Admin
    from flask_sqlalchemy import SQLAlchemy

    from .records.models import Job

F = TypeVar("F", bound=Callable[..., Any])
_prepared_engines: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


class JobMonitor:
    """Tracked background jobs for a Flask app.

    ``JobMonitor(app, db=db)`` or, with an app factory, ``jobmonitor = JobMonitor(db=db)`` and
    later ``jobmonitor.init_app(app)``. ``db`` is the host's Flask-SQLAlchemy object, already
    initialised on the app; the job tables live in its default database.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        admin: Admin | None = None,
        storage: Callable[[Flask, Settings], Storage] | None = None,
    ) -> None:
        self.db = db
        self.tasks = TaskRegistry()
        self.schedules: dict[str, Schedule] = {}
        self._storage_factory = storage
        self.timezone_selector_func: Callable[[], Any] | None = None
        if app is not None:
            self.init_app(app, admin=admin)

    def init_app(self, app: Flask, *, db: SQLAlchemy | None = None, admin: Admin | None = None) -> None:
        """Read the ``JOBMONITOR_*`` settings, prepare the database engine, register the blueprint
        (JSON endpoints, downloads, templates, static files), the CLI and, given a Flask-Admin
        ``admin``, the job pages in its menu."""
        db = db or self.db
        if db is None:
            raise ConfigError("JobMonitor needs the app's Flask-SQLAlchemy object: JobMonitor(app, db=db)")
        if "sqlalchemy" not in app.extensions:
            raise ConfigError("call db.init_app(app) before JobMonitor.init_app(app)")
        apply_defaults(app.config)
        settings = read_settings(app.config, app.instance_path, app.root_path)
        storage = self._storage_factory(app, settings) if self._storage_factory else LocalStorage(settings.storage_path)
        permissions = JobPermissions(settings.permission_checker, settings.role_permissions)
        state = JobMonitorState(
            extension=self, app=app, db=db, settings=settings, storage=storage, permissions=permissions
        )
        app.extensions[EXTENSION_KEY] = state
        with app.app_context():
            for engine in db.engines.values():
                _prepare_sqlite(engine, settings.sqlite_busy_timeout_ms)

        if settings.metrics:
            if not stats_metrics.available():
                raise ConfigError("JOBMONITOR_METRICS needs prometheus_client: pip install 'flask-jobmonitor[metrics]'")
            stats_metrics.connect(app)
        self._register_retention(settings)
        app.register_blueprint(bp, url_prefix=settings.url_prefix)
        requests.install(app, bp)  # CSRF for cookie sessions only
        i18n.install(app, settings.translation_directories)
        register_template_helpers(app)
        app.cli.add_command(jobmonitor_cli)
        if admin is not None:
            add_admin_views(admin, settings)

    # -- tasks ---------------------------------------------------------------------------------

    @overload
    def task(self, func: F) -> TrackedTask: ...

    @overload
    def task(
        self,
        func: None = None,
        *,
        name: str | None = None,
        type: str = "general",
        category: str | None = None,
        steps: Iterable[str] = (),
        resumable: bool = False,
        timeout: int | None = None,
        description: str | None = None,
        stoppable: bool = True,
        restartable: bool = True,
        cancel_running: bool = False,
        launch_permission: str | None = None,
        launchable: bool = True,
        retry: Retry | int | None = None,
        retry_on: type[Exception] | Sequence[type[Exception]] = Exception,
    ) -> Callable[[F], TrackedTask]: ...

    def task(
        self,
        func: F | None = None,
        *,
        name: str | None = None,
        type: str = "general",
        category: str | None = None,
        steps: Iterable[str] = (),
        resumable: bool = False,
        timeout: int | None = None,
        description: str | None = None,
        stoppable: bool = True,
        restartable: bool = True,
        cancel_running: bool = False,
        launch_permission: str | None = None,
        launchable: bool = True,
        retry: Retry | int | None = None,
        retry_on: type[Exception] | Sequence[type[Exception]] = Exception,
    ) -> TrackedTask | Callable[[F], TrackedTask]:
        """Register a function as a tracked task. Its first parameter receives the JobContext.

        ``steps`` are declared up front so a person sees "step 2 of 3" from the start.
        ``resumable`` says the task continues from ``ctx.checkpoint`` when run again.
        ``stoppable=False``: its running jobs cannot be stopped, force-stopped or cancelled
        (work that must not be interrupted half-way); ``restartable=False``: a finished job of
        it cannot be submitted again (work that must happen once, such as an approval).
        ``cancel_running=True``: Cancel is offered for its running jobs too; such a job stops at
        its next checkpoint and ends cancelled, not stopped (it cannot be resumed).
        ``launch_permission``: what launching it through the JSON API needs (default
        ``jobmonitor.launch``; a name of the host's, decided like the package's own);
        ``launchable=False``: never launched through the API (child jobs, maintenance).
        ``retry``: a run that raises one of ``retry_on`` (default any ``Exception``) is tried
        again, ``rq.Retry(max=3, interval=[10, 60, 300])`` or a plain number of retries; each
        failed attempt is recorded and the page says "Retry 2 of 3 at 14:05" (tasks.RetryPolicy).
        ``name`` defaults to ``module.qualname``; keep it stable once jobs exist.
        """

        def register(function: F) -> TrackedTask:
            step_names = tuple(steps)
            if len(set(step_names)) != len(step_names):
                raise ValueError(f"task {function.__qualname__}: step names must be unique, got {step_names}")
            tracked = TrackedTask(
                func=function,
                name=name or default_task_name(function),
                type=type,
                category=category,
                steps=step_names,
                resumable=resumable,
                timeout=timeout,
                description=description,
                stoppable=stoppable,
                restartable=restartable,
                cancel_running=cancel_running,
                launch_permission=launch_permission,
                launchable=launchable,
                retry=RetryPolicy.build(retry, retry_on) if retry is not None else None,
            )
            return self.tasks.register(tracked)

        if func is not None:
            return register(func)
        return register

    def schedule(
        self,
        task: TrackedTask | Callable[..., Any] | str,
        cron: str,
        *args: Any,
        name: str | None = None,
        job_name: str | None = None,
        is_system: bool = False,
        **kwargs: Any,
    ) -> Schedule:
        """Run ``task`` on a cron schedule (UTC), e.g. ``jobmonitor.schedule(export, "0 2 * * *")``.

        ``flask jobmonitor scheduler`` puts the schedules into rq-scheduler; each run is an
        ordinary tracked job named ``job_name`` (default "<schedule name> (scheduled)").
        """
        tracked = self.tasks.get(task)
        schedule = Schedule(
            name=name or tracked.name,
            task=tracked.name,
            cron=cron,
            args=tuple(args),
            kwargs=dict(kwargs),
            job_name=job_name,
            is_system=is_system,
        )
        tracked.check_arguments(schedule.args, dict(schedule.kwargs))
        self.schedules[schedule.name] = schedule
        return schedule

    def _register_retention(self, settings: Settings) -> None:
        if RETENTION_SCHEDULE not in self.tasks:
            self.task(
                name=RETENTION_SCHEDULE,
                type="maintenance",
                category="system",
                description="Delete old jobs",
                launchable=False,  # it deletes everyone's jobs: the schedule and `flask jobmonitor cleanup` run it
            )(retention_task)
        if settings.retention_cron:
            self.schedule(
                RETENTION_SCHEDULE,
                settings.retention_cron,
                name=RETENTION_SCHEDULE,
                job_name="Delete old jobs",
                is_system=True,
            )

    # -- time zone -----------------------------------------------------------------------------

    def timezone_selector(self, func: F) -> F:
        """Register ``func`` (no arguments, called once per request) as the picker of the viewer's
        time zone, as Flask-Babel's ``timezone_selector``: it returns a zone name such as
        ``"Europe/Paris"``, a ``tzinfo``, or None for ``JOBMONITOR_TIMEZONE``. An unknown name is
        logged and the default used. ``JOBMONITOR_TIMEZONE_SELECTOR``, if set, comes first."""
        self.timezone_selector_func = func
        return func

    # -- jobs ----------------------------------------------------------------------------------

    def enqueue(
        self,
        task: TrackedTask | Callable[..., Any] | str,
        *args: Any,
        user: Any = None,
        name: str | None = None,
        description: str | None = None,
        files: Mapping[str, bytes | IO[bytes] | Any] | None = None,
        low_priority: bool = False,
        run_at_url: str | None = None,
        is_system: bool = False,
        delay: timedelta | float | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        flash: bool = True,
        **kwargs: Any,
    ) -> Job:
        """Record a job for ``task`` and queue it on RQ; return the job row (status ``queued``).

        Keyword arguments other than the options above go to the task; a task parameter whose
        name clashes with an option (``name``, ``user``...) is passed through ``task_kwargs``.
        ``files`` maps file names to bytes, binary file objects or uploaded ``FileStorage``;
        they are stored before the job is queued and read in the task with ``ctx.input_file``.
        ``delay`` (seconds or a timedelta) queues it later through RQ's scheduler, which every
        ``flask jobmonitor worker`` runs. ``flash=False`` launches it without the "Job started"
        flash message of a request (a launch the page announces in its own words, such as an
        approval); ``JOBMONITOR_FLASH_ON_ENQUEUE`` switches that message off for every launch.

        Raises :class:`~flask_jobmonitor.errors.UnknownTask` or
        :class:`~flask_jobmonitor.errors.InvalidJobArguments` without writing anything, and
        :class:`~flask_jobmonitor.errors.EnqueueError` when Redis refuses the job (the row is
        then ``failed`` with the reason, so no phantom ``queued`` job remains).
        """
        state = get_state()
        request = JobRequest(
            task=state.tasks.get(task),
            args=args,
            kwargs={**kwargs, **(task_kwargs or {})},
            user=user,
            name=name,
            description=description,
            files=files or {},
            low_priority=low_priority,
            run_at_url=run_at_url,
            is_system=is_system,
            delay=delay if delay is None or isinstance(delay, timedelta) else timedelta(seconds=delay),
            flash=flash,
        )
        return enqueue_job(state, request)

    def state(self, app: Flask | None = None) -> JobMonitorState:
        """The per-app state of ``app`` (default: the current app)."""
        return get_state(app)


def _prepare_sqlite(engine: sa.Engine, busy_timeout_ms: int) -> None:
    """Put a SQLite database in WAL mode with a busy timeout, so the web process and several
    workers can write at once; other databases are left alone."""
    if engine.dialect.name != "sqlite" or engine in _prepared_engines:
        return

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        # ON DELETE CASCADE of the job tables only works with foreign keys switched on
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL never corrupts the database; it only risks the last commits on
            # power loss, and it saves an fsync per commit for every progress write.
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    sa.event.listen(engine, "connect", on_connect)
    _prepared_engines.add(engine)
    # connections opened before the listener existed would miss the pragmas
    engine.dispose()
