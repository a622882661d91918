"""Alembic environment of the extension's own tables (run through migrate.py, which passes
the connection in ``config.attributes``)."""

from __future__ import annotations

from alembic import context

from flask_jobmonitor.records.migrate import VERSION_TABLE, include_object
from flask_jobmonitor.records.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
