"""Batches of subtasks and log lines: COPY on PostgreSQL (psycopg 3), executemany elsewhere."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from flask_jobmonitor.records.bulkwrite import insert_rows
from flask_jobmonitor.records.models import subtask_table

from .support.rows import insert_job

AWKWARD = [
    "plain",
    "tab\there, newline\nthere, backslash \\ and \\N",
    "quotes ' \" and a comma, too",
    "unicode: é ß 漢字 🙂",
    "",
]


def rows_for(job_id: str, count: int) -> list[dict[str, object]]:
    return [
        {
            "job_id": job_id,
            "step_id": None if i % 2 else i,
            "name": f"row {i}",
            "status": "rejected" if i % 3 == 0 else "done",
            "message": None if i % 5 == 4 else AWKWARD[i % len(AWKWARD)],
            "created_at": datetime(2026, 11, 23, 4, 30, i % 60, i),
        }
        for i in range(count)
    ]


def written(engine: sa.Engine, job_id: str) -> list[dict[str, object]]:
    columns = ("job_id", "step_id", "name", "status", "message", "created_at")
    with engine.connect() as connection:
        result = connection.execute(
            sa.select(*(subtask_table.c[c] for c in columns))
            .where(subtask_table.c.job_id == job_id)
            .order_by(subtask_table.c.id)
        )
        return [dict(row._mapping) for row in result]


def test_every_value_comes_back_as_it_was_written_and_in_order(engine):
    job_id = insert_job(engine)
    rows = rows_for(job_id, 500)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    with engine.begin() as connection:
        insert_rows(connection, subtask_table, rows)

    assert written(engine, job_id) == rows
    inserts = [s for s in statements if s.startswith("INSERT INTO jobmonitor_subtask")]
    # PostgreSQL's COPY goes to the driver directly, past SQLAlchemy's statement events
    assert len(inserts) == (0 if engine.dialect.name == "postgresql" else 1)


def test_the_batch_belongs_to_the_surrounding_transaction(engine):
    job_id = insert_job(engine)

    with pytest.raises(RuntimeError), engine.begin() as connection:
        insert_rows(connection, subtask_table, rows_for(job_id, 10))
        raise RuntimeError("the rest of the flush failed")

    assert written(engine, job_id) == []


def test_a_refused_batch_raises_sqlalchemys_error_and_the_connection_stays_usable(engine):
    rows = rows_for("no-such-job", 3)  # the foreign key to jobmonitor_job refuses them

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        insert_rows(connection, subtask_table, rows)

    job_id = insert_job(engine)
    with engine.begin() as connection:
        insert_rows(connection, subtask_table, rows_for(job_id, 2))
    assert len(written(engine, job_id)) == 2


def test_nothing_to_write_sends_nothing(engine):
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with engine.begin() as connection:
        insert_rows(connection, subtask_table, [])
    assert statements == []
