"""schedule state

``jobmonitor_schedule``: per registered schedule, whether it is switched on (kept in SQL so that
it survives restarts and deploys), who switched it, and its last run (jobs/schedules.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_jobmonitor.records.sqltypes import Timestamp

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ``flask jobmonitor init-db`` after the update may have created it already
    if sa.inspect(op.get_bind()).has_table("jobmonitor_schedule"):
        return
    op.create_table(
        "jobmonitor_schedule",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_at", Timestamp, nullable=True),
        sa.Column("changed_by_id", sa.String(64), nullable=True),
        sa.Column("changed_by_name", sa.String(255), nullable=True),
        sa.Column("last_job_id", sa.String(36), nullable=True),
        sa.Column("last_run_at", Timestamp, nullable=True),
        sa.Column("last_skipped_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_jobmonitor_schedule")),
    )


def downgrade() -> None:
    op.drop_table("jobmonitor_schedule")
