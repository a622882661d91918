"""job files: the name an uploaded file came with

``jobmonitor_file.original_name`` (nullable): the name a person uploaded the file under, shown on
the job's page and used for its download, next to ``filename``, the name the task opens it by.
Files stored before have none and keep showing ``filename``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ``flask jobmonitor init-db`` after the update may have created it already
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("jobmonitor_file")}
    if "original_name" not in columns:
        op.add_column("jobmonitor_file", sa.Column("original_name", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobmonitor_file") as batch:
        batch.drop_column("original_name")
