"""job list: children in creation order, full-text search on SQLite

* ``ix_jobmonitor_job_parent`` (parent_id) becomes ``ix_jobmonitor_job_parent_created``
  (parent_id, is_system, created_at, id), like every other filter of the list: SQLite chose to
  walk the whole newest-first index for ``?parent=`` rather than sort a parent's children.
* SQLite gets the FTS5 search table, its document numbers and the triggers that keep them in
  step with the jobs (models.SQLITE_SEARCH_DDL), filled with the jobs already there. A SQLite
  built without FTS5 gets none of it and searches with LIKE (see search.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PARENT_COLUMNS = ["parent_id", "is_system", "created_at", "id"]
# models.SQLITE_SEARCH_DDL and SQLITE_SEARCH_BACKFILL as of this revision, written out: a
# migration keeps its own copy, so that later changes to the models do not change an old revision
_KEY = "jobmonitor_job_search_key"
_FTS = "jobmonitor_job_search"
_SEARCH_DDL = (
    (
        "CREATE TABLE IF NOT EXISTS jobmonitor_job_search_key (docid INTEGER PRIMARY KEY, job_id "
        "VARCHAR(36) NOT NULL UNIQUE)"
    ),
    (
        "CREATE VIRTUAL TABLE IF NOT EXISTS jobmonitor_job_search USING fts5(document, facets, "
        "content='', tokenize='unicode61')"
    ),
    (
        "CREATE TRIGGER IF NOT EXISTS jobmonitor_job_search_insert AFTER INSERT ON jobmonitor_job BEGIN "
        "INSERT INTO jobmonitor_job_search_key (docid, job_id) VALUES ((SELECT coalesce(max(docid) + 1, "
        "((CAST(strftime('%s', substr(new.created_at, 1, 19)) AS INTEGER) * 1000 + "
        "coalesce(CAST(substr(new.created_at, 21, 3) AS INTEGER), 0)) * 1048576)) FROM "
        "jobmonitor_job_search_key WHERE docid >= ((CAST(strftime('%s', substr(new.created_at, 1, 19)) AS "
        "INTEGER) * 1000 + coalesce(CAST(substr(new.created_at, 21, 3) AS INTEGER), 0)) * 1048576) AND "
        "docid < ((CAST(strftime('%s', substr(new.created_at, 1, 19)) AS INTEGER) * 1000 + "
        "coalesce(CAST(substr(new.created_at, 21, 3) AS INTEGER), 0)) * 1048576) + 1048576), new.id); "
        "INSERT INTO jobmonitor_job_search (rowid, document, facets) VALUES ((SELECT docid FROM "
        "jobmonitor_job_search_key WHERE job_id = new.id), new.name || ' ' || coalesce(new.description, "
        "'') || ' ' || coalesce(new.params, ''), 's' || new.is_system || ' t' || hex(new.type) || ' c' || "
        "hex(new.category) || ' u' || hex(coalesce(new.run_by_id, ''))); END"
    ),
    (
        "CREATE TRIGGER IF NOT EXISTS jobmonitor_job_search_delete AFTER DELETE ON jobmonitor_job BEGIN "
        "INSERT INTO jobmonitor_job_search (jobmonitor_job_search, rowid, document, facets) VALUES "
        "('delete', (SELECT docid FROM jobmonitor_job_search_key WHERE job_id = old.id), old.name || ' ' "
        "|| coalesce(old.description, '') || ' ' || coalesce(old.params, ''), 's' || old.is_system || ' "
        "t' || hex(old.type) || ' c' || hex(old.category) || ' u' || hex(coalesce(old.run_by_id, ''))); "
        "DELETE FROM jobmonitor_job_search_key WHERE job_id = old.id; END"
    ),
    (
        "CREATE TRIGGER IF NOT EXISTS jobmonitor_job_search_update AFTER UPDATE OF id, name, description, "
        "params, is_system, type, category, run_by_id, created_at ON jobmonitor_job BEGIN INSERT INTO "
        "jobmonitor_job_search (jobmonitor_job_search, rowid, document, facets) VALUES ('delete', (SELECT "
        "docid FROM jobmonitor_job_search_key WHERE job_id = old.id), old.name || ' ' || "
        "coalesce(old.description, '') || ' ' || coalesce(old.params, ''), 's' || old.is_system || ' t' "
        "|| hex(old.type) || ' c' || hex(old.category) || ' u' || hex(coalesce(old.run_by_id, ''))); "
        "DELETE FROM jobmonitor_job_search_key WHERE job_id = old.id; INSERT INTO "
        "jobmonitor_job_search_key (docid, job_id) VALUES ((SELECT coalesce(max(docid) + 1, "
        "((CAST(strftime('%s', substr(new.created_at, 1, 19)) AS INTEGER) * 1000 + "
        "coalesce(CAST(substr(new.created_at, 21, 3) AS INTEGER), 0)) * 1048576)) FROM "
        "jobmonitor_job_search_key WHERE docid >= ((CAST(strftime('%s', substr(new.created_at, 1, 19)) AS "
        "INTEGER) * 1000 + coalesce(CAST(substr(new.created_at, 21, 3) AS INTEGER), 0)) * 1048576) AND "
        "docid < ((CAST(strftime('%s', substr(new.created_at, 1, 19)) AS INTEGER) * 1000 + "
        "coalesce(CAST(substr(new.created_at, 21, 3) AS INTEGER), 0)) * 1048576) + 1048576), new.id); "
        "INSERT INTO jobmonitor_job_search (rowid, document, facets) VALUES ((SELECT docid FROM "
        "jobmonitor_job_search_key WHERE job_id = new.id), new.name || ' ' || coalesce(new.description, "
        "'') || ' ' || coalesce(new.params, ''), 's' || new.is_system || ' t' || hex(new.type) || ' c' || "
        "hex(new.category) || ' u' || hex(coalesce(new.run_by_id, ''))); END"
    ),
    (
        "INSERT INTO jobmonitor_job_search_key (docid, job_id) SELECT ((CAST(strftime('%s', "
        "substr(j.created_at, 1, 19)) AS INTEGER) * 1000 + coalesce(CAST(substr(j.created_at, 21, 3) AS "
        "INTEGER), 0)) * 1048576) + row_number() OVER (PARTITION BY (CAST(strftime('%s', "
        "substr(j.created_at, 1, 19)) AS INTEGER) * 1000 + coalesce(CAST(substr(j.created_at, 21, 3) AS "
        "INTEGER), 0)) ORDER BY j.created_at, j.id) - 1, j.id FROM jobmonitor_job j"
    ),
    (
        "INSERT INTO jobmonitor_job_search (rowid, document, facets) SELECT k.docid, j.name || ' ' || "
        "coalesce(j.description, '') || ' ' || coalesce(j.params, ''), 's' || j.is_system || ' t' || "
        "hex(j.type) || ' c' || hex(j.category) || ' u' || hex(coalesce(j.run_by_id, '')) FROM "
        "jobmonitor_job_search_key k JOIN jobmonitor_job j ON j.id = k.job_id"
    ),
)


def upgrade() -> None:
    bind = op.get_bind()
    # ``flask jobmonitor init-db`` after the update may have created some of it already
    indexes = {index["name"] for index in sa.inspect(bind).get_indexes("jobmonitor_job")}
    if "ix_jobmonitor_job_parent_created" not in indexes:
        op.create_index("ix_jobmonitor_job_parent_created", "jobmonitor_job", _PARENT_COLUMNS, unique=False)
    if "ix_jobmonitor_job_parent" in indexes:
        op.drop_index("ix_jobmonitor_job_parent", table_name="jobmonitor_job")
    if bind.dialect.name != "sqlite" or sa.inspect(bind).has_table(_KEY):
        return
    if bind.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar():
        for statement in _SEARCH_DDL:
            bind.exec_driver_sql(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {_FTS}_{event}")
        op.execute(f"DROP TABLE IF EXISTS {_FTS}")
        op.execute(f"DROP TABLE IF EXISTS {_KEY}")
    op.create_index("ix_jobmonitor_job_parent", "jobmonitor_job", ["parent_id"], unique=False)
    op.drop_index("ix_jobmonitor_job_parent_created", table_name="jobmonitor_job")
