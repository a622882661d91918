"""The Alembic migrations shipped in the package build exactly the tables the models declare."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from flask_jobmonitor.records.migrate import current_revision, include_object, upgrade
from flask_jobmonitor.records.models import Base, file_table, job_table
from flask_jobmonitor.web.listing import fetch_page, parse_filters

from .support.databases import drop_database, ensure_database
from .support.services import MARIADB_URL, POSTGRES_URL, REQUIRE_MARIADB, REQUIRE_POSTGRES


def _differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object, "compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def _empty_database(server_url: str, required: bool, name: str) -> str:
    """A new, empty database of this test on the server of ``server_url`` (skipped, or failed
    when ``required``, if the server does not answer)."""
    url = sa.make_url(server_url)
    url_text = url.set(database=f"{url.database}_migrate_{os.getpid()}").render_as_string(hide_password=False)
    try:
        drop_database(url_text)
        ensure_database(url_text)
    except sa.exc.OperationalError as error:
        if required:
            raise
        pytest.skip(f"{name} not reachable: {error}")
    return url_text


def test_migrations_upgrade_an_empty_postgresql_database_to_the_models() -> None:
    url = _empty_database(POSTGRES_URL, REQUIRE_POSTGRES, "PostgreSQL")
    engine = sa.create_engine(url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == "0010"
        assert _differences(engine) == []
        with engine.connect() as connection:
            search_index = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_jobmonitor_job_search'"
            ).scalar()
        assert search_index == 1
        upgrade(engine)  # a second upgrade is a no-op
        assert current_revision(engine) == "0010"
    finally:
        engine.dispose()
        drop_database(url)


def test_migrations_upgrade_an_empty_mariadb_database_to_the_models() -> None:
    url = _empty_database(MARIADB_URL, REQUIRE_MARIADB, "MariaDB")
    engine = sa.create_engine(url)
    try:
        upgrade(engine)
        assert current_revision(engine) == "0010"
        assert _differences(engine) == []  # DATETIME(6), MEDIUMTEXT, every index as the models say
        with engine.begin() as connection:
            connection.execute(
                job_table.insert().values(
                    id="job-1",
                    name="Import products",
                    task="t",
                    params={"file": "prices.csv"},
                    status="completed",
                    queue_name="q",
                    created_at=datetime(2026, 11, 1, 8, 0, 0, 123456),
                    status_changed_at=datetime(2026, 11, 1),
                )
            )
        with engine.connect() as connection:
            created = connection.execute(sa.select(job_table.c.created_at)).scalar_one()
            page = fetch_page(connection, parse_filters({"q": "prod csv"}), visible_to=None, allow_system=False)
            index = connection.exec_driver_sql(
                "SELECT index_type FROM information_schema.statistics WHERE table_schema = DATABASE() "
                "AND index_name = 'ix_jobmonitor_job_search'"
            ).scalar()
        assert created.microsecond == 123456  # the keyset order needs what the other databases keep
        assert [job.name for job in page.jobs] == ["Import products"]
        assert index == "FULLTEXT"
        upgrade(engine)  # a second upgrade is a no-op
        assert current_revision(engine) == "0010"
    finally:
        engine.dispose()
        drop_database(url)


def test_migrations_upgrade_an_empty_sqlite_database_to_the_models(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade(engine)
    assert _differences(engine) == []
    assert sa.inspect(engine).has_table("jobmonitor_alembic_version")
    assert sa.inspect(engine).has_table("jobmonitor_job_search")
    engine.dispose()


def test_the_sqlite_search_migration_indexes_the_jobs_already_there(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'filled.db'}")
    try:
        upgrade(engine, "0002")
        now = datetime(2026, 11, 1)
        with engine.begin() as connection:
            connection.execute(
                job_table.insert(),
                [
                    {
                        "id": f"job-{n}",
                        "name": name,
                        "task": "t",
                        "params": {"file": f"{name}.csv"},
                        "status": "completed",
                        "queue_name": "q",
                        "created_at": now,
                        "status_changed_at": now,
                    }
                    for n, name in enumerate(["Import products", "Export prices"])
                ],
            )
        upgrade(engine)
        assert current_revision(engine) == "0010"
        with engine.connect() as connection:
            page = fetch_page(connection, parse_filters({"q": "prod"}), visible_to=None, allow_system=False)
            by_parameter = fetch_page(
                connection, parse_filters({"q": "prices.csv"}), visible_to=None, allow_system=False
            )
        assert [job.name for job in page.jobs] == ["Import products"]
        assert [job.name for job in by_parameter.jobs] == ["Export prices"]
    finally:
        engine.dispose()


def test_the_file_name_migration_keeps_the_files_already_there(tmp_path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'files.db'}")
    try:
        upgrade(engine, "0003")
        now = datetime(2026, 11, 1)
        with engine.begin() as connection:
            connection.execute(
                job_table.insert().values(
                    id="job-1",
                    name="Import",
                    task="t",
                    params={},
                    status="completed",
                    queue_name="q",
                    created_at=now,
                    status_changed_at=now,
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO jobmonitor_file (job_id, kind, filename, content_type, size, storage_key, "
                    "created_at) VALUES ('job-1', 'input', 'products.csv', 'text/csv', 3, 'k', :now)"
                ),
                {"now": now},
            )
        upgrade(engine)
        assert current_revision(engine) == "0010"
        assert _differences(engine) == []
        with engine.connect() as connection:
            row = connection.execute(sa.select(file_table.c.filename, file_table.c.original_name)).one()
        assert (row.filename, row.original_name) == ("products.csv", None)  # shown as products.csv
    finally:
        engine.dispose()
