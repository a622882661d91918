"""search on MySQL/MariaDB

The job list's search box on MySQL/MariaDB: a stored, invisible generated column
``search_text`` (name, description and parameters) with InnoDB's FULLTEXT index
``ix_jobmonitor_job_search`` (models.MYSQL_SEARCH_DDL, web/search.py). Nothing on other databases.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SEARCH_DDL = (
    "ALTER TABLE jobmonitor_job ADD COLUMN search_text LONGTEXT GENERATED ALWAYS AS "
    "(concat_ws(' ', name, description, params)) STORED INVISIBLE, "
    "ADD FULLTEXT INDEX ix_jobmonitor_job_search (search_text)"
)


def _has_search(bind: sa.Connection) -> bool:
    return any(column["name"] == "search_text" for column in sa.inspect(bind).get_columns("jobmonitor_job"))


def upgrade() -> None:
    bind = op.get_bind()
    # ``flask jobmonitor init-db`` after the update may have created it already
    if bind.dialect.name in ("mysql", "mariadb") and not _has_search(bind):
        op.execute(_SEARCH_DDL)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb") and _has_search(bind):
        op.execute("ALTER TABLE jobmonitor_job DROP INDEX ix_jobmonitor_job_search, DROP COLUMN search_text")
