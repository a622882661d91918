"""jobs: the private detail of a failure

``jobmonitor_job.error_detail`` (nullable): the exception's text and traceback of a failed job,
shown only to people holding ``jobmonitor.view_tracebacks``; ``error_message`` keeps what every
viewer of the job may read (failures.py). Jobs that failed before keep their ``error_message``
as it was written, and have no detail.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_jobmonitor.records.sqltypes import LongText

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ``flask jobmonitor init-db`` after the update may have created it already
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("jobmonitor_job")}
    if "error_detail" not in columns:
        op.add_column("jobmonitor_job", sa.Column("error_detail", LongText, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobmonitor_job") as batch:
        batch.drop_column("error_detail")
