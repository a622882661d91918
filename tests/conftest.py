"""Fixtures: a real Redis, and every database test run on SQLite, PostgreSQL and MariaDB.

PostgreSQL is taken from ``JOBMONITOR_TEST_DATABASE_URL``, MariaDB (or MySQL) from
``JOBMONITOR_TEST_MARIADB_URL`` (a database of that name plus the process id is created for the
run and dropped after it). Without a reachable server its runs are skipped with the reason,
unless ``JOBMONITOR_REQUIRE_POSTGRES=1`` or ``JOBMONITOR_REQUIRE_MARIADB=1`` (set by the test
command and CI) turns that into a failure. Redis comes from ``JOBMONITOR_TEST_REDIS_URL`` (default database
15 on 127.0.0.1:6379); each test starts with this process's queues empty.

Fixtures only: the helpers they are built from live in ``tests/support``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import SimpleWorker, Worker

from .support.apps import build_app, emptied
from .support.databases import create_tables, drop_database, ensure_database, pushed, server_database_url
from .support.extensions import db
from .support.services import REDIS_URL, REQUIRE_MARIADB, REQUIRE_POSTGRES


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:  # pragma: no cover - environment problem, reported clearly
        pytest.exit(f"the tests need a real Redis at {REDIS_URL}: {error}", returncode=3)
    return REDIS_URL


_SERVERS = {"postgresql": ("PostgreSQL", REQUIRE_POSTGRES), "mariadb": ("MariaDB", REQUIRE_MARIADB)}


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'jobs.db'}"
    else:
        url = server_database_url(request.param)
        try:
            ensure_database(url)
        except Exception as error:
            name, required = _SERVERS[request.param]
            message = f"{name} not reachable at {url}: {error}"
            if required:
                pytest.fail(message)
            pytest.skip(message)
    create_tables(url)
    yield url
    if request.param != "sqlite":
        drop_database(url)


@pytest.fixture
def app(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The plain test host (``build_app``) with empty tables and queues, its app context pushed."""
    application = emptied(build_app(database_url, redis_url, str(tmp_path / "files")), redis_url)
    with pushed(application):
        yield application


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    return db.engine


@pytest.fixture(params=[SimpleWorker, Worker], ids=["simple", "forking"])
def worker_class(request: pytest.FixtureRequest) -> type[Any]:
    return request.param
