"""An importable host app for worker subprocesses of the reliability tests.

    JM_REL_DATABASE_URL=... JM_REL_REDIS_URL=... JM_REL_STORAGE_PATH=... \\
    JM_REL_QUEUES='{"high": ..., "default": ..., "low": ...}' JM_REL_CONFIG='{"JOBMONITOR_...": ...}' \\
    python -m flask --app tests.worker_app:create_app jobmonitor worker --name w1

The test process builds its own app with ``tests.support.apps.build_app`` and the same values
(``name=APP_NAME``), and hands them to the subprocesses with :func:`environment`, so both sides
agree on database, Redis, queue names and every ``JOBMONITOR_*`` setting. The tasks are those of ``tests/tasks.py`` and
``tests/reliability_tasks.py``, registered on the shared test ``jobmonitor``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from .support.apps import build_app

_PREFIX = "JM_REL_"
#: The name of the reliability tests' app, in the test process and in the workers.
APP_NAME = "jobmonitor_reliability"


def environment(
    database_url: str, redis_url: str, storage_path: str, queue_names: Mapping[str, str], config: Mapping[str, Any]
) -> dict[str, str]:
    """Environment variables that make :func:`create_app` build the same app in a subprocess."""
    return {
        f"{_PREFIX}DATABASE_URL": database_url,
        f"{_PREFIX}REDIS_URL": redis_url,
        f"{_PREFIX}STORAGE_PATH": storage_path,
        f"{_PREFIX}QUEUES": json.dumps(dict(queue_names)),
        f"{_PREFIX}CONFIG": json.dumps(dict(config)),
    }


def create_app() -> Flask:
    """The app factory ``flask --app tests.worker_app:create_app`` calls (reads the environment)."""
    env = os.environ
    return build_app(
        env[f"{_PREFIX}DATABASE_URL"],
        env[f"{_PREFIX}REDIS_URL"],
        env[f"{_PREFIX}STORAGE_PATH"],
        name=APP_NAME,
        queue_names=json.loads(env[f"{_PREFIX}QUEUES"]),
        **json.loads(env.get(f"{_PREFIX}CONFIG", "{}")),
    )
