"""Alembic migrations of the jobmonitor_* tables.

They run in their own Alembic environment with their own version table
(``jobmonitor_alembic_version``), so they never mix with the host application's migrations:
``flask jobmonitor migrate`` upgrades the extension's tables, the host's ``flask db upgrade``
upgrades its own. See docs/developers.md ("Migrations").
"""
