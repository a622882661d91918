"""Databases of a test run: PostgreSQL and MariaDB databases made and dropped, tables emptied between tests,
the SQL a block sends, and engines closed when an app is done.

Each run on PostgreSQL or MariaDB has a database of its own (the configured name plus the
process id), so two runs on one machine never truncate each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_jobmonitor.records.models import Base

from .services import MARIADB_URL, POSTGRES_URL


def postgres_url(suffix: str = "") -> str:
    """The URL of this run's own PostgreSQL database (``suffix`` names another one of the run)."""
    base = sa.make_url(POSTGRES_URL)
    name = f"{base.database}{suffix}_{os.getpid()}"
    return base.set(database=name).render_as_string(hide_password=False)


def mariadb_url(suffix: str = "") -> str:
    """The URL of this run's own MariaDB database (``suffix`` names another one of the run)."""
    base = sa.make_url(MARIADB_URL)
    name = f"{base.database}{suffix}_{os.getpid()}"
    return base.set(database=name).render_as_string(hide_password=False)


def server_database_url(kind: str, suffix: str = "") -> str:
    """This run's own database on the server of ``kind`` ("postgresql" or "mariadb")."""
    return postgres_url(suffix) if kind == "postgresql" else mariadb_url(suffix)


def _on_mariadb_server(url: str, statement: str) -> None:
    """Run ``statement`` (``{name}``: the database of ``url``) on the MariaDB server of ``url``."""
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="mysql"))
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(statement.format(name=target.database))
    finally:
        admin.dispose()


def ensure_database(url: str) -> None:
    """Create the database of ``url`` (PostgreSQL or MariaDB) unless it exists (raises if the
    server is unreachable)."""
    if sa.make_url(url).get_backend_name() == "postgresql":
        ensure_postgres_database(url)
    else:
        _on_mariadb_server(url, "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (PostgreSQL: its open connections too)."""
    if sa.make_url(url).get_backend_name() == "postgresql":
        drop_postgres_database(url)
    else:
        _on_mariadb_server(url, "DROP DATABASE IF EXISTS `{name}`")


def ensure_postgres_database(url: str) -> None:
    """Create the database of ``url`` on its server unless it exists (raises if unreachable)."""
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if not exists:
                connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def drop_postgres_database(url: str) -> None:
    """Drop the database of ``url`` (its open connections too)."""
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def create_tables(url: str) -> None:
    """Drop and create the package's tables in the database of ``url``."""
    engine = sa.create_engine(url)
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()


def empty_tables(engine: sa.Engine, *, restart_ids: bool = True) -> None:
    """Delete every row of the package's tables.

    On PostgreSQL, ``restart_ids`` truncates them (ids start at 1 again); without it the rows are
    deleted, which on the few rows a test leaves is several times faster. SQLite deletes.
    """
    with engine.begin() as connection:
        if restart_ids and engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())


def dispose_engines(app: Flask) -> None:
    """Close ``app``'s database session and connections (of whichever Flask-SQLAlchemy object it uses)."""
    db = app.extensions["sqlalchemy"]
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


@contextmanager
def pushed(app: Flask) -> Iterator[Flask]:
    """Push ``app``'s app context; close its database connections when done."""
    try:
        with app.app_context():
            yield app
    finally:
        dispose_engines(app)


@contextmanager
def recorded_statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect the SQL text of every statement ``engine`` sends while the block runs."""
    statements: list[str] = []

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before_cursor_execute)


def fetch_all(engine: sa.Engine, statement: sa.Select[Any]) -> list[Any]:
    """Every row ``statement`` selects, read on a connection of its own."""
    with engine.connect() as connection:
        return list(connection.execute(statement).all())


def count_rows(engine: sa.Engine, table: sa.Table) -> int:
    """How many rows ``table`` holds now."""
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
