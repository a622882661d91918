"""the audit trail

``jobmonitor_audit``: one row per thing a person (or the system) did to a job or to all jobs,
append-only, with no foreign key to the job so that it outlives the job (jobs/audit.py).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_jobmonitor.records.sqltypes import BigIntId, LongText, Timestamp

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ``flask jobmonitor init-db`` after the update may have created it already
    if sa.inspect(op.get_bind()).has_table("jobmonitor_audit"):
        return
    op.create_table(
        "jobmonitor_audit",
        sa.Column("id", BigIntId, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_name", sa.String(255), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("job_name", sa.String(255), nullable=True),
        sa.Column("job_task", sa.String(255), nullable=True),
        sa.Column("job_owner", sa.String(255), nullable=True),
        sa.Column("batch", sa.String(36), nullable=True),
        sa.Column("origin", sa.String(255), nullable=True),
        sa.Column("detail", LongText, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobmonitor_audit")),
    )
    op.create_index("ix_jobmonitor_audit_created", "jobmonitor_audit", ["created_at", "id"])
    op.create_index("ix_jobmonitor_audit_actor", "jobmonitor_audit", ["actor_name", "created_at", "id"])
    op.create_index("ix_jobmonitor_audit_action", "jobmonitor_audit", ["action", "created_at", "id"])
    op.create_index("ix_jobmonitor_audit_job", "jobmonitor_audit", ["job_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("jobmonitor_audit")
