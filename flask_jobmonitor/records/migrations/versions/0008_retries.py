"""retries

``jobmonitor_job.retries``: how many retries a job's retry policy granted (tasks.RetryPolicy);
``jobmonitor_attempt``: each failed attempt of a job whose task retries, with its error and its
next try time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_jobmonitor.records.sqltypes import BigIntId, LongText, Timestamp

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # ``flask jobmonitor init-db`` after the update may have created them already
    if "retries" not in {column["name"] for column in inspector.get_columns("jobmonitor_job")}:
        with op.batch_alter_table("jobmonitor_job") as batch:
            batch.add_column(sa.Column("retries", sa.Integer(), nullable=False, server_default="0"))
    if inspector.has_table("jobmonitor_attempt"):
        return
    op.create_table(
        "jobmonitor_attempt",
        sa.Column("id", BigIntId, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("ended_at", Timestamp, nullable=False),
        sa.Column("worker_name", sa.String(255), nullable=True),
        sa.Column("error_message", LongText, nullable=False),
        sa.Column("error_detail", LongText, nullable=True),
        sa.Column("retry_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobmonitor_job.id"],
            name=op.f("fk_jobmonitor_attempt_job_id_jobmonitor_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobmonitor_attempt")),
    )
    op.create_index("ix_jobmonitor_attempt_job", "jobmonitor_attempt", ["job_id", "number"])


def downgrade() -> None:
    op.drop_table("jobmonitor_attempt")
    with op.batch_alter_table("jobmonitor_job") as batch:
        batch.drop_column("retries")
