"""What the package must know of each database it runs on, said once.

The package runs on SQLite, PostgreSQL and MySQL/MariaDB (MariaDB 10.11, MySQL 8). Rules:

* Code asks these helpers, never ``dialect.name`` against a string of its own, when it only
  needs to know a *capability* (``UPDATE ... RETURNING``); a query that is written differently
  per database (a date bucket, a full-text search) branches on :func:`is_mysql` and the others.
* On MySQL/MariaDB the package's own connections read at ``READ COMMITTED``
  (:func:`read_committed`): InnoDB's default ``REPEATABLE READ`` keeps a transaction's first
  snapshot and takes gap locks, where every query here is written for PostgreSQL's default,
  each statement seeing what was committed before it.
"""

from __future__ import annotations

import sqlalchemy as sa

#: The dialect names of MySQL and MariaDB in SQLAlchemy.
MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})


def is_mysql(dialect: sa.Dialect) -> bool:
    """True on MySQL and MariaDB."""
    return dialect.name in MYSQL_DIALECTS


def updates_return(dialect: sa.Dialect) -> bool:
    """True when ``UPDATE ... RETURNING`` reads the changed rows back in the same statement
    (SQLite, PostgreSQL); MariaDB and MySQL have none: the rows are read after the UPDATE, in its
    transaction."""
    return bool(dialect.update_returning)


def flag_is(column: sa.ColumnElement[bool], value: bool, dialect: str) -> sa.ColumnElement[bool]:
    """``column IS value`` for a NOT NULL boolean, written so the database's index takes it:
    MySQL/MariaDB use an index for ``= 0`` but not for ``IS FALSE`` (a plan test saw it sort a
    whole status instead of walking the status index); PostgreSQL and SQLite take either."""
    return column == value if dialect in MYSQL_DIALECTS else column.is_(value)


def read_committed(engine: sa.Engine) -> sa.Engine:
    """``engine`` with ``READ COMMITTED`` on MySQL/MariaDB (the same pool: each connection is
    set when checked out and reset when returned); ``engine`` itself elsewhere."""
    if not is_mysql(engine.dialect):
        return engine
    return engine.execution_options(isolation_level="READ COMMITTED")
