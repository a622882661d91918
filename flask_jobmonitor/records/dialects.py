"""What the package must know of each database it runs on, said once.

The package runs on SQLite, PostgreSQL and MySQL/MariaDB (MariaDB 10.11, MySQL 8). Rules:

* Code asks these helpers, never ``dialect.name`` against a string of its own, when it only
  needs to know a *capability* (``UPDATE ... RETURNING``); a query that is written differently
  per database (a date bucket, a full-text search) branches on :func:`is_mysql` and the others.
* On MySQL/MariaDB the package's own connections read at ``READ COMMITTED``
  (:func:`read_committed`): InnoDB's default ``REPEATABLE READ`` keeps a transaction's first
  snapshot and takes gap locks, where every query here is written for PostgreSQL's default,
  each statement seeing what was committed before it. An engine the host already set to
  ``READ COMMITTED`` is used as it is (no statements per checkout).
* A deadlock on MySQL/MariaDB rolls the whole transaction back, savepoints included
  (:func:`lost_transaction`): code that catches an error inside a savepoint must not go on as
  if only the savepoint were undone.
"""

from __future__ import annotations

from typing import Any

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


def deletes_return(dialect: sa.Dialect) -> bool:
    """True when ``DELETE ... RETURNING`` reads the deleted rows (SQLite, PostgreSQL, MariaDB
    10.5+); MySQL has none: the rows are locked and read first."""
    return bool(dialect.delete_returning)


def lost_transaction(error: sa.exc.DBAPIError, dialect: sa.Dialect) -> bool:
    """True when ``error`` ended the whole transaction on the server, not just the statement
    or the savepoint it ran in: an InnoDB deadlock (1213)."""
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return is_mysql(dialect) and code == 1213


def flag_is(column: sa.ColumnElement[bool], value: bool, dialect: str) -> sa.ColumnElement[bool]:
    """``column IS value`` for a NOT NULL boolean, written so the database's index takes it:
    MySQL/MariaDB use an index for ``= 0`` but not for ``IS FALSE`` (a plan test saw it sort a
    whole status instead of walking the status index); PostgreSQL and SQLite take either."""
    return column == value if dialect in MYSQL_DIALECTS else column.is_(value)


def keyset_beyond(
    order: tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]],
    values: tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]],
    *,
    descending: bool,
    dialect: str,
) -> sa.ColumnElement[bool]:
    """Rows after ``values`` in the order ``(time, id)``: a row comparison, which PostgreSQL and
    SQLite answer with an index range; MySQL/MariaDB take no range for it (they walk the whole
    index prefix), so there it is written ``time <= t AND (time < t OR id < i)``."""
    (time, key), (at, key_value) = order, values
    if dialect not in MYSQL_DIALECTS:
        position, value = sa.tuple_(time, key), sa.tuple_(at, key_value)
        return position < value if descending else position > value
    if descending:
        return sa.and_(time <= at, sa.or_(time < at, key < key_value))
    return sa.and_(time >= at, sa.or_(time > at, key > key_value))


def read_committed(engine: sa.Engine) -> sa.Engine:
    """``engine`` with ``READ COMMITTED`` on MySQL/MariaDB (the same pool: each connection is
    set when checked out and reset when returned, a ``SET SESSION TRANSACTION ISOLATION LEVEL``
    and a ``COMMIT`` each time); ``engine`` itself elsewhere, and where the host's engine or the
    server already reads committed rows (known once the engine has connected)."""
    if not is_mysql(engine.dialect) or getattr(engine.dialect, "default_isolation_level", None) == "READ COMMITTED":
        return engine
    return engine.execution_options(isolation_level="READ COMMITTED")
