"""The example catalogue (``example_app``) built for a test, and its users' log-in.

The demo users log in with their user name as password (``clerk``, ``admin``, ...), at the
example's own ``/login``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from example_app import create_app


def build_catalogue(
    database_url: str,
    redis_url: str,
    storage_path: str | Path,
    *,
    init_db: bool = True,
    seed: bool = True,
    instance_path: str | Path | None = None,
    **config: Any,
) -> Flask:
    """The example app on ``database_url``, ``redis_url`` and ``storage_path``, for tests (CSRF off
    unless ``config`` turns it on), set up by :func:`set_up` (``init_db``, ``seed``). Close it
    with ``databases.dispose_engines``."""
    settings: dict[str, Any] = {
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "JOBMONITOR_REDIS_URL": redis_url,
        "JOBMONITOR_STORAGE_PATH": str(storage_path),
        **config,
    }
    app = create_app(settings, instance_path=None if instance_path is None else str(instance_path))
    return set_up(app, init_db=init_db, seed=seed)


def set_up(app: Flask, *, init_db: bool = True, seed: bool = True) -> Flask:
    """Run ``flask jobmonitor init-db`` (the package's tables) and ``flask seed`` (demo users and
    products) through the catalogue's own CLI; return ``app``."""
    commands = ([["jobmonitor", "init-db"]] if init_db else []) + ([["seed"]] if seed else [])
    runner = app.test_cli_runner()
    for args in commands:
        result = runner.invoke(args=args)
        assert result.exit_code == 0, f"flask {' '.join(args)} failed: {result.output}\n{result.exception!r}"
    return app


def log_in(app: Flask, username: str | None) -> FlaskClient:
    """A test client of the catalogue logged in as the demo user ``username`` (None: anonymous)."""
    client = app.test_client()
    if username is not None:
        response = client.post("/login", data={"username": username, "password": username})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client
