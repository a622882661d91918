"""job list: statistics of the "not a child job" condition (PostgreSQL)

The list hides child jobs with ``coalesce(parent_id, '') = ''`` when a filter has its own index;
without statistics of that expression PostgreSQL guesses that 0.5 % of the jobs pass it and
sorts a whole status instead of walking its index (see models.TOP_LEVEL_STATISTICS_DDL). The
statistics are gathered at once (``ANALYZE`` reads a sample of the table, whatever its size).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 19:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# a frozen copy of models.TOP_LEVEL_STATISTICS_DDL: a migration must not change with the models
_CREATE = "CREATE STATISTICS IF NOT EXISTS jobmonitor_job_top_level ON (coalesce(parent_id, '')) FROM jobmonitor_job"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)
        op.execute("ANALYZE jobmonitor_job")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS jobmonitor_job_top_level")
