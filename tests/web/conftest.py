"""Fixtures of the web tests: a host app as a real project builds it (``apps.WEB_HOST``:
Flask-SQLAlchemy, Flask-Login, Flask-WTF's CSRFProtect, Flask-Admin with Bootstrap 4 and
``jobmonitor.init_app(app, admin=admin)``) and its users (``users.USERS``).

The ``app`` fixture overrides the root one: the root host registers no admin views. Unlike the
root fixture it does not keep an app context pushed while the test runs: a request reuses an
already pushed context of the same app, and with it ``g``, where Flask-Login caches the user, so
two clients logged in as different users would see each other's identity. One app per database
serves the whole session (building an app recompiles every template); each test starts with
empty job tables and queues (deleted, not truncated: faster on the few rows a test leaves).
``make_app(**config)`` builds a separate app for other settings.

Fixtures only: the helpers live in ``tests/support`` (``users``, ``rows``, ``web``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ..support.apps import WEB_HOST, build_app, emptied
from ..support.databases import dispose_engines
from ..support.extensions import db
from ..support.users import log_in


@pytest.fixture(scope="session")
def shared_app(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One host app per database for the whole session: a new app compiles every template anew,
    which would cost more than most tests."""
    application = build_app(database_url, redis_url, str(tmp_path_factory.mktemp("web-files")), **WEB_HOST)
    yield application
    dispose_engines(application)


@pytest.fixture
def app(shared_app: Flask, redis_url: str) -> Flask:
    """The host app with empty job tables and queues (no app context pushed: see the module docstring)."""
    return emptied(shared_app, redis_url, restart_ids=False)


@pytest.fixture
def make_app(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build a host app with extra config (empty tables, empty queues); cleaned up afterwards."""
    built: list[Flask] = []

    def build(**config: Any) -> Flask:
        application = build_app(database_url, redis_url, str(tmp_path / "files"), **{**WEB_HOST, **config})
        built.append(application)
        return emptied(application, redis_url, restart_ids=False)

    yield build
    for application in built:
        dispose_engines(application)


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    with app.app_context():
        return db.engine


@pytest.fixture
def client_for(app: Flask) -> Callable[[str | None], FlaskClient]:
    """``client_for("clerk_a")``: a test client logged in as that user; ``None``: anonymous."""

    def make(who: str | None) -> FlaskClient:
        return log_in(app.test_client(), who)

    return make
