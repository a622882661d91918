"""statistics bucket cache

Closed hours and days of the statistics page are kept in jobmonitor_stats_bucket, so that a
90-day or one-year range is not aggregated from the raw jobs on every view; the index on
jobmonitor_job.status_changed_at finds the jobs whose change made a cached bucket stale.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 00:12:43.721868
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_jobmonitor.records.sqltypes import BigIntId, JSONType, Timestamp

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ``flask jobmonitor init-db`` run after the package was updated may have created the new
    # tables already (create_all), but not the index on the existing job table: create what is missing
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "jobmonitor_stats_bucket" not in tables:
        _create_bucket_table()
    if "jobmonitor_stats_watermark" not in tables:
        op.create_table(
            "jobmonitor_stats_watermark",
            sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("checked_at", Timestamp, nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_jobmonitor_stats_watermark")),
        )
    if "jobmonitor_stats_stale" not in tables:
        op.create_table(
            "jobmonitor_stats_stale",
            sa.Column("id", BigIntId, autoincrement=True, nullable=False),
            sa.Column("hour", Timestamp, nullable=False),
            sa.Column("noted_at", Timestamp, nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_jobmonitor_stats_stale")),
        )
        op.create_index("ix_jobmonitor_stats_stale_noted_at", "jobmonitor_stats_stale", ["noted_at"], unique=False)
    if "ix_jobmonitor_job_status_changed" not in {index["name"] for index in inspector.get_indexes("jobmonitor_job")}:
        op.create_index("ix_jobmonitor_job_status_changed", "jobmonitor_job", ["status_changed_at"], unique=False)


def _create_bucket_table() -> None:
    op.create_table(
        "jobmonitor_stats_bucket",
        sa.Column("granularity", sa.String(length=4), nullable=False),
        sa.Column("include_system", sa.Boolean(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("bucket_start", Timestamp, nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("started", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("stopped", sa.Integer(), nullable=False),
        sa.Column("wait_avg", sa.Float(), nullable=True),
        sa.Column("wait_min", sa.Float(), nullable=True),
        sa.Column("wait_max", sa.Float(), nullable=True),
        sa.Column("duration_avg", sa.Float(), nullable=True),
        sa.Column("duration_p95", sa.Float(), nullable=True),
        sa.Column("by_type", JSONType, nullable=False),
        sa.Column("computed_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint(
            "granularity", "include_system", "type", "bucket_start", name=op.f("pk_jobmonitor_stats_bucket")
        ),
    )
    op.create_index("ix_jobmonitor_stats_bucket_start", "jobmonitor_stats_bucket", ["bucket_start"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobmonitor_job_status_changed", table_name="jobmonitor_job")
    op.drop_index("ix_jobmonitor_stats_stale_noted_at", table_name="jobmonitor_stats_stale")
    op.drop_table("jobmonitor_stats_stale")
    op.drop_table("jobmonitor_stats_watermark")
    op.drop_index("ix_jobmonitor_stats_bucket_start", table_name="jobmonitor_stats_bucket")
    op.drop_table("jobmonitor_stats_bucket")
