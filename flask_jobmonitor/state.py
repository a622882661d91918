"""The per-app state of the extension, kept in ``app.extensions["jobmonitor"]``, and
:func:`get_state`, the one way code reaches it.

Everything that depends on an app (settings, Redis connection, storage, permissions) lives
here; the :class:`~flask_jobmonitor.extension.JobMonitor` object holds only the task registry
and the schedules, which are code. Modules below the extension import this module, never
``extension.py``: the extension wires the blueprint, the CLI and the admin pages, so it sits
above everything else (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app
from redis import Redis
from rq import Queue

from .config import Settings
from .errors import NotInitialized
from .permissions import JobPermissions
from .records.dialects import is_mysql, read_committed
from .storage import Storage
from .tasks import TaskRegistry

try:  # redis-py 7.1 and later (see _worker_connection_options)
    from redis.driver_info import DriverInfo as _DriverInfo
except ImportError:  # pragma: no cover - older redis-py
    _DriverInfo = None  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .extension import JobMonitor

EXTENSION_KEY = "jobmonitor"


@dataclass
class JobMonitorState:
    """What one app needs to enqueue, run and show tracked jobs."""

    extension: JobMonitor
    app: Flask
    db: SQLAlchemy
    settings: Settings
    storage: Storage
    permissions: JobPermissions
    _redis: Redis | None = field(default=None, repr=False)
    _autocommit: dict[int, tuple[sa.Engine, sa.Engine]] = field(default_factory=dict, repr=False)
    _committed: dict[int, tuple[sa.Engine, sa.Engine, bool]] = field(default_factory=dict, repr=False)

    @property
    def tasks(self) -> TaskRegistry:
        """The registry of tasks, shared by every app of the same extension object."""
        return self.extension.tasks

    @property
    def timezone_selector(self) -> Callable[[], Any] | None:
        """The host's picker of the viewer's zone: JOBMONITOR_TIMEZONE_SELECTOR, else the function
        decorated with ``@jobmonitor.timezone_selector``, else None."""
        return self.settings.timezone_selector or self.extension.timezone_selector_func

    @property
    def engine(self) -> sa.Engine:
        """The engine that holds the job tables (the host's default bind). Needs an app context.
        On MySQL/MariaDB its connections read at READ COMMITTED (records/dialects.py)."""
        engine = self.db.engine
        if not is_mysql(engine.dialect):
            return engine
        cached = self._committed.get(id(engine))
        # chosen again until the engine has connected: only then is the host's level known
        if cached is None or cached[0] is not engine or not cached[2]:
            settled = hasattr(engine.dialect, "default_isolation_level")
            cached = self._committed[id(engine)] = (engine, read_committed(engine), settled)
        return cached[1]

    @property
    def autocommit_engine(self) -> sa.Engine:
        """The same engine (same pool) in autocommit mode, for a write that is one statement, such
        as the finish of a job nobody is to be notified about. On PostgreSQL that saves the
        BEGIN and COMMIT round trips; the statement is atomic by itself."""
        engine = self.db.engine
        cached = self._autocommit.get(id(engine))
        if cached is None or cached[0] is not engine:
            cached = self._autocommit[id(engine)] = (engine, engine.execution_options(isolation_level="AUTOCOMMIT"))
        return cached[1]

    @property
    def redis(self) -> Redis:
        """Redis connection for enqueueing and control. Created on first use, so that an app
        whose Redis is down still starts and can show its job history."""
        if self._redis is None:
            self._redis = Redis.from_url(
                self.settings.redis_url, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30
            )
        return self._redis

    def redis_for_workers(self) -> Redis:
        """A separate connection for long-lived processes (workers, scheduler): no read timeout,
        since RQ blocks on Redis while it waits for work, and no health-check PING, which a
        forked work horse would pay on its first command of every job. A horse opens a connection
        of its own for every job: see :func:`_worker_connection_options`."""
        return Redis.from_url(self.settings.redis_url, **_worker_connection_options())

    def queue(self, priority: str = "default") -> Queue:
        """The RQ queue for ``priority`` ("high", "default" or "low")."""
        return Queue(self.settings.queue_names[priority], connection=self.redis)


@functools.cache
def _worker_connection_options() -> dict[str, Any]:
    """redis-py 7.1 and later read their own version from the installed package's metadata
    (``importlib.metadata``) for every new connection, to name themselves to the server
    (``CLIENT SETINFO``): about 2 ms in a freshly forked work horse, which opens a connection
    for every job (bench_core.py). Read once here, in the worker; every horse inherits it. Older
    versions read it once per process already."""
    return {} if _DriverInfo is None else {"driver_info": _DriverInfo()}


def get_state(app: Flask | None = None) -> JobMonitorState:
    """Return ``app.extensions["jobmonitor"]`` of ``app`` or the current app, or raise NotInitialized."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        state: JobMonitorState = app.extensions[EXTENSION_KEY]
    except KeyError:
        raise NotInitialized(f"JobMonitor.init_app() was not called for app {app.name!r}") from None
    return state
