"""The extension objects of the test hosts: one Flask-SQLAlchemy ``db`` and one ``jobmonitor``
that every test app is initialised with, the way a host keeps them in its ``extensions.py``.

The test tasks (``tests/tasks.py``, ``tests/control_tasks.py``, ``tests/reliability_tasks.py``)
register on ``jobmonitor`` when imported; forked work horses inherit them, a SimpleWorker shares
them. This module imports no task module, so task modules can import it.
"""

from __future__ import annotations

import os

from flask_sqlalchemy import SQLAlchemy

from flask_jobmonitor import JobMonitor

db = SQLAlchemy()
jobmonitor = JobMonitor(db=db)
#: Queue names of this test process: two test runs on one machine (or one Redis) never take
#: each other's jobs.
QUEUE_NAMES = {level: f"jm-test-{os.getpid()}-{level}" for level in ("high", "default", "low")}
