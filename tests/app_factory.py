"""A host app for the tests: its own Flask-SQLAlchemy object and a JobMonitor with test tasks.

Tasks live in ``tests/tasks.py`` and are registered on ``jobmonitor`` at import, the way a
host app registers its tasks; forked work horses inherit them, SimpleWorker shares them.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_jobmonitor import JobMonitor

db = SQLAlchemy()
jobmonitor = JobMonitor(db=db)
# Queue names of this test process: two test runs on one machine (or one Redis) never take
# each other's jobs.
QUEUE_NAMES = {level: f"jm-test-{os.getpid()}-{level}" for level in ("high", "default", "low")}


def create_app(database_url: str, redis_url: str, storage_path: str, **config: Any) -> Flask:
    """Build an app bound to ``database_url`` and ``redis_url``."""
    app = Flask("jobmonitor_tests")
    app.config.update(
        TESTING=True,
        SECRET_KEY="test",
        SQLALCHEMY_DATABASE_URI=database_url,
        JOBMONITOR_REDIS_URL=redis_url,
        JOBMONITOR_STORAGE_PATH=storage_path,
        JOBMONITOR_FLUSH_INTERVAL=0.2,
        JOBMONITOR_QUEUE_NAMES=QUEUE_NAMES,
        **config,
    )
    db.init_app(app)
    jobmonitor.init_app(app)
    from . import tasks  # noqa: F401  (registers the test tasks)

    return app
