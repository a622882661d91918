"""Running the extension's Alembic migrations against the app's database.

Rules of the revisions (``migrations/versions``): each keeps its own DDL text and its own checks
of the dialect, frozen as it was released; the column types come from ``records/sqltypes.py``,
which only ever gains variants for new databases (a type whose DDL changed on a database that
already has tables would need a revision of its own, never an edit there).
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

#: The extension keeps its own Alembic version table, apart from the host's ``alembic_version``.
VERSION_TABLE = "jobmonitor_alembic_version"
SCRIPT_LOCATION = os.path.join(os.path.dirname(__file__), "migrations")


#: Created by DDL (see models.SEARCH_INDEX_DDL), so autogenerate must not see it as extra.
DDL_ONLY_INDEXES = frozenset({"ix_jobmonitor_job_search"})
#: The search text of MySQL/MariaDB (models.MYSQL_SEARCH_DDL), a generated column made by DDL.
DDL_ONLY_COLUMNS = frozenset({"search_text"})
#: Tables of the search on SQLite (models.SQLITE_SEARCH_DDL: FTS5 and its shadow tables), made by DDL too.
DDL_ONLY_TABLE_PREFIX = "jobmonitor_job_search"


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Only the extension's tables (and their indexes) concern its migrations."""
    if type_ == "index" and name in DDL_ONLY_INDEXES:
        return False
    if type_ == "column" and name in DDL_ONLY_COLUMNS:
        return False
    table = obj if type_ == "table" else getattr(obj, "table", None)
    table_name = getattr(table, "name", name) or ""
    if table_name.startswith(DDL_ONLY_TABLE_PREFIX):
        return False
    return table_name.startswith("jobmonitor_") and table_name != VERSION_TABLE


def alembic_config(connection: sa.Connection) -> Config:
    """An Alembic config for the extension's migrations on ``connection``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the extension's tables in ``engine``'s database to ``revision``."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def stamp(engine: sa.Engine, revision: str = "head") -> None:
    """Record that the tables are at ``revision`` without running migrations (after create_all)."""
    with engine.begin() as connection:
        command.stamp(alembic_config(connection), revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (None before the first upgrade)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
