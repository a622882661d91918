"""Statements over many rows: a batch of buffered rows (subtasks, log lines) written in one go,
and long id lists cut into slices one statement can take.

A job that records one subtask per imported row buffers thousands of them between flushes. On
PostgreSQL through psycopg 3 the batch goes in with ``COPY ... FROM STDIN``: measured here at
2.5-3x the rows per second of the driver's ``executemany`` (one ``INSERT`` per row, even when
pipelined; see docs/performance.md). ``COPY`` runs on the SQLAlchemy connection's own driver
connection, so it is part of the same transaction as the rest of the flush, and a failure rolls
the whole flush back like any other statement. Every other database and driver gets SQLAlchemy
Core's ``executemany``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
#: Items per statement where a list becomes an IN list or a multi-row INSERT: far below the
#: bound-parameter limits of SQLite (32,766) and PostgreSQL (65,535), small enough for a plan.
CHUNK_SIZE = 500


def in_chunks(items: Sequence[T], size: int = CHUNK_SIZE) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_rows(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, none of them the primary key) into ``table``."""
    if not rows:
        return
    if _can_copy(connection):
        _copy(connection, table, rows)
    else:
        connection.execute(sa.insert(table), list(rows))


def _can_copy(connection: sa.Connection) -> bool:
    return connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg"


def _copy(connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    # psycopg is an optional dependency (the postgres extra): imported only where it is the driver
    import psycopg  # optional dependency
    from psycopg import sql  # optional dependency

    columns = list(rows[0])
    target = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(map(sql.Identifier, columns)))
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None  # a connection inside a transaction is checked out
    try:
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[column] for column in columns])
    except psycopg.Error as error:
        # raise what SQLAlchemy would have raised (OperationalError for a lost server, which
        # the flush retries), and drop a connection that broke instead of pooling it again
        if driver_connection.broken or driver_connection.closed:
            connection.invalidate()
        raise sa.exc.DBAPIError.instance(
            f"COPY {table.name}", None, error, psycopg.Error, dialect=connection.dialect
        ) from error
