"""Job list and job detail pages at scale, against a plain Flask-Admin ``ModelView`` of the same table.

    .venv/bin/python bench/bench_list.py [--rows 1000000] [--quick] [--rounds 30] [--explain-all]

1. Seeds PostgreSQL database ``jobmonitor_bench_list`` (created if missing) with ``--rows`` jobs
   (``--quick``: 50,000) in one ``INSERT ... SELECT generate_series`` per table: 50 users with a
   skewed share of the jobs, six job types, a year of ``created_at``, 3 % system jobs, names made
   of words, JSON parameters, parents with children and restarts. One more job (the "big" job,
   run by the normal user) has 3 steps, 100,000 subtasks and 100,000 log lines. The schema comes
   from ``Base.metadata.create_all`` (GIN full-text index and composite indexes included); the
   job table's indexes are dropped during the bulk insert and rebuilt after it, then
   ``VACUUM ANALYZE``. A rerun with the same row count and the same columns reuses the data
   (the table comment records what was seeded); indexes models.py gained since are created.
2. Builds ``example_app`` on that database and adds a second Flask-Admin (``/naive``) with a plain
   ``ModelView(Job, db)``: the baseline.
3. Times requests through Flask's test client (in-process, so the time is the server's:
   routing, login, SQL, rendering) as the admin (role ``admin``: view_all) and as a normal user
   (role ``clerk``: own jobs only). Every case is warmed up, then measured ``--rounds`` times
   (>= 20); rounds go over all cases in turn so that drift of the machine hits every case alike.
   SQL time and statement count per request come from cursor events on the engine.
4. Prints a table (median, p95, SQL share, ratio ours/naive) and writes
   ``bench/results/list-<database>-<rows>.json``. The slowest case of ours, and every case
   whose median misses the 100 ms target or comes within 20 % of it, gets ``EXPLAIN (ANALYZE,
   BUFFERS)`` (SQLite: ``EXPLAIN QUERY PLAN``) of each statement the request issued
   (``--explain-all``: every case); their slowest statements are printed, all are stored in
   the JSON.

See docs/performance.md, section "Job list and detail at 1,000,000 and 10,000,000 jobs".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from time import perf_counter
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]  # the package and example_app from this checkout

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from flask_admin import Admin  # noqa: E402
from flask_admin.contrib.sqla import ModelView  # noqa: E402
from flask_admin.contrib.sqla.filters import FilterEqual  # noqa: E402
from flask_admin.theme import Bootstrap4Theme  # noqa: E402
from measured import revision  # noqa: E402
from runinfo import cpu_model  # noqa: E402
from werkzeug.security import generate_password_hash  # noqa: E402

from example_app import create_app  # noqa: E402
from example_app.extensions import db  # noqa: E402
from flask_jobmonitor.records.models import (  # noqa: E402
    TOP_LEVEL_STATISTICS_DDL,
    Base,
    Job,
    job_table,
    log_table,
    step_table,
    subtask_table,
)
from flask_jobmonitor.web.listing import SORTABLE, Cursor  # noqa: E402
from tests.support.databases import ensure_postgres_database as ensure_database  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_bench_list"
REDIS_URL = "redis://127.0.0.1:6379/14"  # nothing on these pages should touch Redis; db 14 if it does
SEED_VERSION = 1
TARGET_MS = 100.0
EXPLAIN_FROM = 0.8  # cases of ours at or above this share of the target get EXPLAIN (ANALYZE, BUFFERS)
QUICK_ROWS = 50_000
BIG_ID = "big"  # placeholder replaced by the big job's id (md5('jm-big') as a UUID)
BIG_SUBTASKS = 100_000
BIG_LOGS = 100_000
USERS = 50
ADMIN_ID = "1"  # role admin: every permission, sees every job
NORMAL_ID = "23"  # role clerk: own jobs only; runs the big job
BENCH_PASSWORD = "bench"  # every bench user's (seed_users)
NOUNS = [
    *("products", "customers", "orders", "invoices", "prices", "suppliers", "stock", "categories"),
    *("warehouses", "shipments", "returns", "discounts", "reviews", "images", "translations"),
    *("vouchers", "payments", "contracts", "leads", "tickets"),
]
SYLLABLES = ("nor", "vel", "tra", "mon", "kip", "sal", "dor", "wen", "lux", "pim")
SEARCH_FREQUENT = "import"  # the import jobs' names: ~30 % of jobs
SEARCH_COMMON = "invoices"  # a noun: ~5 % of jobs
SEARCH_RARE = "norvelkip"  # one supplier of 1000 in import names: ~0.03 % of jobs
RESULTS = HERE / "results" / "list.json"
SORT_KEYS = [key for key in SORTABLE if key != "created"]


# -- database ----------------------------------------------------------------------------------


def seed_marker(rows: int) -> str:
    return (
        f"bench_list seed v{SEED_VERSION} rows={rows} subtasks={BIG_SUBTASKS} logs={BIG_LOGS} "
        f"schema={schema_fingerprint()}"
    )


def current_marker(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT obj_description(to_regclass('jobmonitor_job'), 'pg_class')")).scalar()


JOB_INSERT = """
INSERT INTO jobmonitor_job (
    id, name, type, category, description, task, params, status, is_system, low_priority, queue_name,
    parent_id, root_id, restarted_from_id, run_by_id, run_by_name, run_at_url, created_at, enqueued_at,
    started_at, ended_at, status_changed_at, progress_done, progress_total, current_step, step_count,
    error_count, warning_count, error_message, checkpoint, stop_requested_at, worker_name, attempt{extra_cols})
WITH base AS (
    SELECT g, random() AS r_kind, random() AS r_status, random() AS r_user, random() AS r_noun,
           random() AS r_sup, random() AS r_wait, random() AS r_run, random() AS r_misc,
           now()::timestamp - interval '365 days'
               + (g * (31536000.0 / CAST(:n AS integer))) * interval '1 second' AS created
    FROM generate_series(1, CAST(:n AS integer)) AS g
), shaped AS (
    SELECT b.*,
        r_kind < 0.03 AS sys,
        CASE WHEN r_kind < 0.03 THEN 'maintenance' WHEN r_kind < 0.33 THEN 'import'
             WHEN r_kind < 0.60 THEN 'export' WHEN r_kind < 0.78 THEN 'mass_edit'
             WHEN r_kind < 0.93 THEN 'report' ELSE 'sync' END AS kind,
        CASE WHEN g > CAST(:n AS integer) - 30 THEN 'running' WHEN g > CAST(:n AS integer) - 80 THEN 'queued'
             WHEN r_status < 0.85 THEN 'completed' WHEN r_status < 0.92 THEN 'failed'
             WHEN r_status < 0.96 THEN 'cancelled' ELSE 'stopped' END AS st,
        (CAST(:nouns AS text[]))[1 + floor(r_noun * 20)::int] AS noun,
        initcap((CAST(:syl AS text[]))[1 + floor(r_sup * 10)::int]
                || (CAST(:syl AS text[]))[1 + (floor(r_sup * 100)::int % 10)]
                || (CAST(:syl AS text[]))[1 + (floor(r_sup * 1000)::int % 10)]) AS supplier,
        (1 + floor(50 * r_user * r_user))::int AS uid,
        -ln(1 - r_wait) * 8 AS wait_s,
        -ln(1 - r_run) AS run_f
    FROM base b
), timed AS (
    SELECT s.*,
        CASE WHEN st IN ('queued', 'cancelled') THEN NULL
             ELSE created + wait_s * interval '1 second' END AS started,
        CASE kind WHEN 'import' THEN 90 WHEN 'export' THEN 40 WHEN 'mass_edit' THEN 20
                  WHEN 'report' THEN 120 WHEN 'sync' THEN 300 ELSE 30 END * run_f AS run_s,
        100 + floor(r_misc * 20000)::int AS total
    FROM shaped s
), ended AS (
    SELECT t.*,
        CASE WHEN st IN ('completed', 'failed', 'stopped') THEN started + run_s * interval '1 second'
             WHEN st = 'cancelled' THEN created + wait_s * interval '1 second' END AS finished
    FROM timed t
)
SELECT
    md5('jm' || g)::uuid::text,
    CASE kind
        WHEN 'import' THEN 'Import ' || noun || ' from ' || supplier
        WHEN 'export' THEN 'Export ' || noun || ' to ' || (ARRAY['CSV', 'Excel', 'JSON'])[1 + g % 3]
        WHEN 'mass_edit' THEN 'Change ' || noun || ' ' || (ARRAY['prices', 'stock', 'status', 'tags'])[1 + g % 4]
        WHEN 'report' THEN (ARRAY['Daily', 'Weekly', 'Monthly'])[1 + g % 3] || ' ' || noun || ' report'
        WHEN 'sync' THEN 'Sync ' || noun || ' with ' || (ARRAY['ERP', 'CRM', 'shop'])[1 + g % 3]
        ELSE (ARRAY['Clean up old jobs', 'Recover abandoned jobs', 'Send notification digest'])[1 + g % 3]
    END,
    kind,
    CASE kind WHEN 'import' THEN 'import' WHEN 'export' THEN 'export' ELSE 'general' END,
    CASE WHEN r_misc < 0.5 THEN NULL
         ELSE 'Profile ' || (1 + floor(r_misc * 300)::int) || ', ' || total || ' rows' END,
    CASE kind WHEN 'import' THEN 'example_app.tasks.import_products'
              WHEN 'export' THEN 'example_app.tasks.export_products'
              WHEN 'mass_edit' THEN 'example_app.tasks.change_prices'
              ELSE 'reports.' || kind END,
    CASE WHEN kind IN ('import', 'export')
         THEN jsonb_build_object('profile_id', 1 + floor(r_misc * 300)::int,
                                 'file', noun || '_' || g || '.csv', 'dry_run', r_misc < 0.1)
         WHEN kind = 'mass_edit' THEN jsonb_build_object('percent', round((r_misc * 20 - 10)::numeric, 1))
         ELSE '{}'::jsonb END,
    st,
    sys,
    r_misc > 0.97,
    'jobmonitor',
    CASE WHEN g > 100 AND g % 100 BETWEEN 1 AND 5 THEN md5('jm' || (g - g % 100))::uuid::text END,
    CASE WHEN g > 100 AND g % 100 BETWEEN 1 AND 5 THEN md5('jm' || (g - g % 100))::uuid::text END,
    CASE WHEN g % 200 = 7 THEN md5('jm' || (g - 1))::uuid::text END,
    CASE WHEN sys THEN NULL ELSE uid::text END,
    CASE WHEN sys THEN NULL ELSE 'User ' || uid END,
    CASE WHEN sys THEN NULL ELSE '/admin/product/' END,
    created,
    created,
    started,
    finished,
    coalesce(finished, started, created),
    CASE WHEN st = 'completed' THEN total WHEN st = 'queued' THEN 0 ELSE floor(total * r_run / (1 + r_run))::int END,
    total,
    CASE WHEN st = 'queued' THEN 0 WHEN st = 'completed' THEN 3 ELSE 2 END,
    3,
    CASE WHEN st = 'failed' THEN 1 + floor(r_noun * 20)::int WHEN r_sup < 0.1 THEN floor(r_wait * 5)::int ELSE 0 END,
    CASE WHEN r_sup > 0.85 THEN floor(r_run * 10)::int ELSE 0 END,
    CASE WHEN st = 'failed' THEN 'ValueError: row ' || floor(r_run * total)::int || ' has no SKU' END,
    NULL,
    CASE WHEN st = 'stopped' THEN finished - interval '1 second' END,
    CASE WHEN st = 'queued' THEN NULL ELSE 'worker-' || (g % 4) END,
    1{extra_vals}
FROM ended
"""

BIG_JOB_INSERT = """
INSERT INTO jobmonitor_job (
    id, name, type, category, description, task, params, status, is_system, low_priority, queue_name,
    run_by_id, run_by_name, run_at_url, created_at, enqueued_at, started_at, status_changed_at,
    progress_done, progress_total, current_step, step_count, error_count, warning_count, worker_name,
    attempt{extra_cols})
VALUES (:id, 'Import products from Norvelkip (full catalogue)', 'import', 'import', 'The big one',
    'example_app.tasks.import_products', '{"file": "catalogue.csv", "profile_id": 1}', 'running', false, false,
    'jobmonitor', :user, :user_name, '/admin/product/', now()::timestamp - interval '1 hour',
    now()::timestamp - interval '1 hour', now()::timestamp - interval '59 minutes',
    now()::timestamp - interval '59 minutes',
    160000, 300000, 2, 3, 7000, 3000, 'worker-0', 1{extra_vals})
"""

BIG_STEPS_INSERT = """
INSERT INTO jobmonitor_step (job_id, position, name, status, started_at, ended_at, done, total, counters{extra_cols})
VALUES
 (:id, 1, 'Read file', 'completed', now()::timestamp - interval '59 minutes',
  now()::timestamp - interval '50 minutes', 100000, 100000, '{"read": 100000}'{extra_vals}),
 (:id, 2, 'Validate rows', 'running', now()::timestamp - interval '50 minutes', NULL, 60000, 100000,
  '{"valid": 53000, "rejected": 7000}'{extra_vals}),
 (:id, 3, 'Save products', 'pending', NULL, NULL, 0, NULL, '{}'{extra_vals})
"""

BIG_SUBTASKS_INSERT = """
INSERT INTO jobmonitor_subtask (job_id, step_id, name, status, message, created_at{extra_cols})
SELECT CAST(:id AS text), (SELECT id FROM jobmonitor_step WHERE job_id = CAST(:id AS text) AND position = 2),
       'line ' || (g + 1),
       CASE WHEN r < 0.90 THEN 'done' WHEN r < 0.97 THEN 'error' ELSE 'skipped' END,
       CASE WHEN r < 0.90 THEN 'saved' WHEN r < 0.97 THEN 'missing SKU' ELSE 'unchanged' END,
       now()::timestamp - interval '50 minutes' + g * interval '20 milliseconds'{extra_vals}
FROM (SELECT g, random() AS r FROM generate_series(1, CAST(:n AS integer)) AS g) s
"""

BIG_LOGS_INSERT = """
INSERT INTO jobmonitor_log (job_id, step_id, created_at, level, logger, message{extra_cols})
SELECT CAST(:id AS text), (SELECT id FROM jobmonitor_step WHERE job_id = CAST(:id AS text) AND position = 2),
       now()::timestamp - interval '50 minutes' + g * interval '20 milliseconds',
       CASE WHEN r < 0.05 THEN 10 WHEN r < 0.90 THEN 20 WHEN r < 0.98 THEN 30 ELSE 40 END,
       'example_app.tasks',
       CASE WHEN r < 0.05 THEN 'parsed line ' || g WHEN r < 0.90 THEN 'row ' || g || ' validated'
            WHEN r < 0.98 THEN 'row ' || g || ': price looks high' ELSE 'row ' || g || ': missing SKU' END{extra_vals}
FROM (SELECT g, random() AS r FROM generate_series(1, CAST(:n AS integer)) AS g) s
"""


def with_defaults(sql: str, table: sa.Table, dialect: sa.Dialect) -> str:
    """Fill ``{extra_cols}``/``{extra_vals}`` with the NOT NULL columns the SQL does not set
    (columns models.py gained later), each with its Python-side scalar default."""
    head = sql.split("(", 1)[1].split(")", 1)[0]
    given = {name.strip() for name in head.replace("{extra_cols}", "").split(",")}
    names, values = [], []
    for column in table.columns:
        skip = column.nullable or column.server_default is not None or column is table.autoincrement_column
        if column.name in given or skip:
            continue
        if column.default is None or not column.default.is_scalar:
            raise RuntimeError(
                f"{table.name}.{column.name} is NOT NULL without a scalar default: bench_list.py must set it"
            )
        literal = sa.literal(column.default.arg, column.type).compile(
            dialect=dialect, compile_kwargs={"literal_binds": True}
        )
        names.append(column.name)
        values.append(str(literal))
    return sql.replace("{extra_cols}", "".join(f", {n}" for n in names)).replace(
        "{extra_vals}", "".join(f", {v}" for v in values)
    )


def schema_fingerprint() -> str:
    """Columns of the extension's tables: seeded data is reused only while they stay the same."""
    import hashlib

    text = ";".join(f"{t.name}:{','.join(c.name for c in t.columns)}" for t in Base.metadata.sorted_tables)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def big_job_id(engine: sa.Engine) -> str:
    """md5('jm-big') as a UUID, as the seed's SQL writes it."""
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(b"jm-big").hexdigest()))


def seed(engine: sa.Engine, rows: int) -> dict[str, float]:
    """Create the schema and fill it (or keep what an earlier run seeded). Returns timings in seconds."""
    timings: dict[str, float] = {}
    marker = seed_marker(rows)
    if current_marker(engine) == marker:
        with engine.begin() as connection:  # indexes models.py gained since the data was seeded
            Base.metadata.create_all(connection)
            present = set(connection.execute(sa.text("SELECT indexname FROM pg_indexes")).scalars())
            for table in Base.metadata.sorted_tables:
                for index in table.indexes:
                    if index.name not in present:
                        print(f"  creating index {index.name} that the seeded schema lacks", flush=True)
                        index.create(connection)
            # and the statistics objects (models.TOP_LEVEL_STATISTICS_DDL), with their figures
            statistics = set(connection.execute(sa.text("SELECT stxname FROM pg_statistic_ext")).scalars())
            if "jobmonitor_job_top_level" not in statistics:
                print("  creating the statistics jobmonitor_job_top_level and analysing", flush=True)
                connection.execute(sa.text(TOP_LEVEL_STATISTICS_DDL))
                connection.execute(sa.text("ANALYZE jobmonitor_job"))
        timings["reused"] = 1.0
        return timings
    started = perf_counter()
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    timings["schema"] = perf_counter() - started
    big = big_job_id(engine)
    job_indexes = list(job_table.indexes)
    with engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        connection.execute(sa.text("SELECT setseed(0.42)"))
        # bulk load without the secondary indexes, then build each once
        for index in job_indexes:
            connection.execute(sa.text(f'DROP INDEX "{index.name}"'))
        step = perf_counter()
        connection.execute(
            sa.text(with_defaults(JOB_INSERT, job_table, engine.dialect)),
            {"n": rows, "nouns": NOUNS, "syl": list(SYLLABLES)},
        )
        timings["insert_jobs"] = perf_counter() - step
        params = {"id": big, "user": NORMAL_ID, "user_name": f"User {NORMAL_ID}"}
        connection.execute(sa.text(with_defaults(BIG_JOB_INSERT, job_table, engine.dialect)), params)
        connection.execute(sa.text(with_defaults(BIG_STEPS_INSERT, step_table, engine.dialect)), {"id": big})
        step = perf_counter()
        connection.execute(
            sa.text(with_defaults(BIG_SUBTASKS_INSERT, subtask_table, engine.dialect)), {"id": big, "n": BIG_SUBTASKS}
        )
        connection.execute(
            sa.text(with_defaults(BIG_LOGS_INSERT, log_table, engine.dialect)), {"id": big, "n": BIG_LOGS}
        )
        timings["insert_subtasks_logs"] = perf_counter() - step
        step = perf_counter()
        for index in job_indexes:
            index.create(connection)
        timings["indexes"] = perf_counter() - step
        connection.execute(sa.text(f"COMMENT ON TABLE jobmonitor_job IS '{marker}'"))
    step = perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    timings["vacuum_analyze"] = perf_counter() - step
    timings["total"] = perf_counter() - started
    return timings


def copy_to_sqlite(source: sa.Engine, target: sa.Engine) -> dict[str, float]:
    """Fill the SQLite database ``target`` with the rows seeded in PostgreSQL (the same data on
    both databases), unless it already holds them. The job table's indexes and the search
    tables are built after the rows, as ``flask jobmonitor migrate`` would on a filled table."""
    import hashlib

    from flask_jobmonitor.records.models import SQLITE_SEARCH_DDL, SQLITE_SEARCH_DROP, create_sqlite_search

    # the PostgreSQL seed, and the SQLite schema the copy was indexed with
    # sorted: Table.indexes is a set, whose order changes from one process to the next
    schema = ";".join([*SQLITE_SEARCH_DDL, *sorted(index.name or "" for index in job_table.indexes)])
    marker = f"{current_marker(source)} sqlite={hashlib.sha1(schema.encode()).hexdigest()[:12]}"
    with target.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_marker (marker TEXT)")
        if connection.exec_driver_sql("SELECT marker FROM bench_marker").scalar() == marker:
            connection.commit()
            Base.metadata.create_all(connection)
            connection.commit()
            return {"reused": 1.0}
        connection.commit()
    timings: dict[str, float] = {}
    started = perf_counter()
    Base.metadata.drop_all(target)
    Base.metadata.create_all(target)
    job_indexes = list(job_table.indexes)
    with target.begin() as connection:
        for statement in SQLITE_SEARCH_DROP:
            connection.exec_driver_sql(statement)
        for index in job_indexes:
            connection.exec_driver_sql(f'DROP INDEX "{index.name}"')
    for table in (job_table, step_table, subtask_table, log_table):
        step = perf_counter()
        columns = [column.name for column in table.columns]
        with source.connect() as reading, target.begin() as writing:
            result = reading.execution_options(stream_results=True, yield_per=20_000).execute(sa.select(table))
            for batch in result.partitions():
                writing.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in batch])
        timings[f"copy_{table.name}"] = perf_counter() - step
    step = perf_counter()
    with target.begin() as connection:
        for index in job_indexes:
            index.create(connection)
        create_sqlite_search(connection, backfill=True)
        connection.exec_driver_sql("DELETE FROM bench_marker")
        connection.exec_driver_sql("INSERT INTO bench_marker VALUES (?)", (marker,))
    with target.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    timings["indexes_search_analyze"] = perf_counter() - step
    timings["total"] = perf_counter() - started
    return timings


def seed_users(engine: sa.Engine) -> None:
    """The host's users: 1 is an admin, the others clerks (own jobs only). They log in through
    the example's login page (:func:`login`) with the password ``BENCH_PASSWORD``, hashed with
    one PBKDF2 round so that logging in costs the benchmark nothing."""
    hashed = generate_password_hash(BENCH_PASSWORD, method="pbkdf2:sha256:1")
    users = [
        {"id": n, "username": f"user{n}", "name": f"User {n}", "role": "admin" if n == 1 else "clerk", "hash": hashed}
        for n in range(1, USERS + 1)
    ]
    with engine.begin() as connection:
        # a database seeded before the example's users had a session token (rotated at logout)
        if "session_token" not in {column["name"] for column in sa.inspect(connection).get_columns("user_account")}:
            connection.execute(sa.text("ALTER TABLE user_account ADD COLUMN session_token VARCHAR(64)"))
        connection.execute(sa.text("DELETE FROM user_account"))
        connection.execute(
            sa.text(
                "INSERT INTO user_account (id, username, name, role, password_hash) "
                "VALUES (:id, :username, :name, :role, :hash)"
            ),
            users,
        )


# -- the app -----------------------------------------------------------------------------------


class NaiveJobView(ModelView):
    """The baseline: what a host gets from Flask-Admin alone, pointed at the same table."""

    column_searchable_list = ["name"]
    column_filters = ["status", "type", "run_by_id"]
    column_default_sort = ("created_at", True)  # newest first, like ours, so the pages are equivalent
    can_set_page_size = True
    page_size = 50


def build_app(database_url: str) -> tuple[Flask, NaiveJobView]:
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "JOBMONITOR_REDIS_URL": REDIS_URL,
            "SECRET_KEY": "bench-list-secret-not-for-any-site",
            "WTF_CSRF_ENABLED": False,
        }
    )
    naive = Admin(app, name="naive", url="/naive", endpoint="naive", theme=Bootstrap4Theme())
    view = NaiveJobView(Job, db, name="Jobs", endpoint="naive_job", url="job")
    naive.add_view(view)
    with app.app_context():
        db.create_all()  # the host's tables (users, products)
    return app, view


def naive_filter_arg(view: NaiveJobView, column: str) -> str:
    """The URL argument of the naive view's "equals" filter on ``column`` (``flt0_<arg>``)."""
    for arg, (_index, flt) in view._filter_args.items():
        if isinstance(flt, FilterEqual) and flt.column.name == column:
            return f"flt0_{arg}"
    raise LookupError(f"no equality filter on {column}")


@dataclass
class SqlMeter:
    """Counts statements and their time on the engine; optionally keeps them (for EXPLAIN)."""

    statements: int = 0
    seconds: float = 0.0
    capture: list[tuple[str, Any, float]] | None = None
    _started: list[float] = field(default_factory=list)

    def install(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        self._started.append(perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        elapsed = perf_counter() - self._started.pop()
        self.statements += 1
        self.seconds += elapsed
        if self.capture is not None:
            self.capture.append((statement, parameters, elapsed))

    def reset(self) -> None:
        self.statements, self.seconds = 0, 0.0


@dataclass
class Case:
    key: str  # what the request does, shared by ours and naive
    role: str  # admin | user | naive
    label: str
    url: str
    times_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    statements: int = 0
    rows_shown: int | None = None
    response_bytes: int = 0

    @property
    def ours(self) -> bool:
        return self.role != "naive"

    def summary(self) -> dict[str, Any]:
        times = sorted(self.times_ms)
        median = statistics.median(times)
        out: dict[str, Any] = {
            "key": self.key,
            "role": self.role,
            "label": self.label,
            "url": self.url,
            "n": len(times),
            "median_ms": round(median, 2),
            "p95_ms": round(percentile(times, 95), 2),
            "min_ms": round(times[0], 2),
            "sql_median_ms": round(statistics.median(self.sql_ms), 2),
            "statements": self.statements,
            "rows_shown": self.rows_shown,
            "response_bytes": self.response_bytes,
        }
        if self.ours:
            out["target_ms"] = TARGET_MS
            out["met"] = median < TARGET_MS
        return out


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def login(client: FlaskClient, user_id: str) -> None:
    """Log in through the example's login page, as a person would (its session carries the
    user's session token and Flask-Login's strong-protection identifier)."""
    response = client.post("/login", data={"username": f"user{user_id}", "password": BENCH_PASSWORD})
    if response.status_code != 302:
        raise RuntimeError(f"logging in as user {user_id} answered {response.status_code}")


def rows_shown(case: Case, body: bytes) -> int | None:
    """Jobs on the page (list pages and the JSON answer), to see that a case shows what it should."""
    if "/api/" in case.url:
        return len(json.loads(body)["jobs"])
    if case.role == "naive":
        return body.count(b'name="rowid"')
    if case.key.startswith("detail"):
        return None
    return body.count(b"data-job-id=")


def one_request(client: FlaskClient, url: str) -> tuple[float, bytes]:
    start = perf_counter()
    response = client.get(url)
    elapsed = perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.get_data(as_text=True)[:500]}")
    return elapsed, response.get_data()


# -- the cases ---------------------------------------------------------------------------------


def page_ids(engine: sa.Engine, user_id: str | None, count: int = 50) -> list[str]:
    c = job_table.c
    query = sa.select(c.id).where(c.is_system.is_(False)).order_by(c.created_at.desc(), c.id.desc()).limit(count)
    if user_id is not None:
        query = query.where(c.run_by_id == user_id)
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def date_range(engine: sa.Engine) -> tuple[str, str]:
    """A month in the middle of the seeded year."""
    with engine.connect() as connection:
        low, high = connection.execute(
            sa.select(sa.func.min(job_table.c.created_at), sa.func.max(job_table.c.created_at))
        ).one()
    middle = low + (high - low) / 2
    start = middle.replace(day=1)
    end = start + timedelta(days=27)  # "to" is inclusive
    return start.date().isoformat(), end.date().isoformat()


def user_job_count(engine: sa.Engine, user_id: str | None) -> int:
    """Ordinary jobs of ``user_id`` (None: of everybody)."""
    c = job_table.c
    query = sa.select(sa.func.count()).where(c.is_system.is_(False))
    if user_id is not None:
        query = query.where(c.run_by_id == user_id)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def sample_values(engine: sa.Engine) -> dict[str, str]:
    """Values the cases search and filter by, read from the seeded data: an id prefix, a
    parameter value (one job's file name) and a parent with children."""
    c = job_table.c
    with engine.connect() as connection:
        middle = connection.execute(
            sa.select(c.id, c.params)
            .where(c.is_system.is_(False), c.type == "import")
            .order_by(c.created_at)
            .offset(user_job_count(engine, None) // 10)
            .limit(1)
        ).one()
        parent = connection.execute(
            sa.select(c.parent_id).where(c.parent_id.is_not(None)).order_by(c.created_at.desc()).limit(1)
        ).scalar_one()
    params = middle.params if isinstance(middle.params, dict) else json.loads(middle.params)
    return {"id_prefix": middle.id[:6], "param": str(params["file"]), "parent": parent}


def build_cases(engine: sa.Engine, view: NaiveJobView, big: str, rows: int, quick: bool) -> list[Case]:
    """The requests to time: every filter alone and with one other, every tab, system jobs
    shown, the searches, every sort in both directions, far pages, the detail page, the JSON
    refresh, the JSON API's list and the statistics page. ``quick`` keeps the main ones only."""
    date_from, date_to = date_range(engine)
    values = sample_values(engine)
    jobs = "/admin/jobs/"
    detail = f"{jobs}{big}/"
    api = "/jobmonitor/api/jobs?ids="
    api_list = "/jobmonitor/api/jobs"
    admin_total = user_job_count(engine, None)
    own_total = user_job_count(engine, NORMAL_ID)
    admin_ids = ",".join(page_ids(engine, None))
    own_ids = ",".join(page_ids(engine, NORMAL_ID))
    deep = cursor_at(engine, None, int(admin_total * 0.9))
    newest, own_newest = cursor_at(engine, None, 0), cursor_at(engine, NORMAL_ID, 0)
    live_rows = f"{jobs}rows?ids="
    own_deep = cursor_at(engine, NORMAL_ID, int(own_total * 0.9))
    # (key, label, query, in --quick); shared by the admin and the own-jobs user
    lists = [
        ("first", "list, first page", "", True),
        ("status", "status=failed", "?status=failed", True),
        ("group", "group=unprocessed", "?group=unprocessed", False),
        ("group_done", "group=processed", "?group=processed", False),
        ("type", "type=export", "?type=export", True),
        ("category", "category tab export", "?category=export", True),
        ("dates", f"from {date_from} to {date_to}", f"?from={date_from}&to={date_to}", True),
        ("system", "system jobs shown", "?system=1", True),
        ("search", f"q={SEARCH_FREQUENT} (~30 %)", f"?q={SEARCH_FREQUENT}", True),
        ("search_5", f"q={SEARCH_COMMON} (~5 %)", f"?q={SEARCH_COMMON}", False),
        ("search_rare", f"q={SEARCH_RARE} (~0.03 %)", f"?q={SEARCH_RARE}", True),
        ("search_id", "q=<id prefix>", f"?q={values['id_prefix']}", True),
        ("search_param", "q=<a parameter value>", f"?q={values['param']}", False),
        ("parent", "parent=<a job with children>", f"?parent={values['parent']}", False),
        ("status_type", "status=failed&type=import", "?status=failed&type=import", True),
        ("type_dates", "type=export, a month", f"?type=export&from={date_from}&to={date_to}", False),
        ("status_system", "status=failed&system=1", "?status=failed&system=1", False),
        ("search_type", f"q={SEARCH_COMMON}&type=export", f"?q={SEARCH_COMMON}&type=export", False),
        ("search_dates", f"q={SEARCH_FREQUENT}, a month", f"?q={SEARCH_FREQUENT}&from={date_from}&to={date_to}", False),
        ("group_category", "group=processed&category=import", "?group=processed&category=import", False),
        ("far_200", "page=200", "?page=200", True),
        ("far_5000", "page=5000", "?page=5000", False),
        ("last", "last page (last=1)", "?last=1", True),
        ("sort_created_asc", "sort=created asc", "?sort=created&dir=asc", False),
        ("children", "child jobs shown (children=1)", "?children=1", True),
    ]
    for key in SORT_KEYS:
        for direction in ("desc", "asc"):
            lists.append(
                (f"sort_{key}_{direction}", f"sort={key} {direction}", f"?sort={key}&dir={direction}", key == "name")
            )
    details = [
        ("detail", "detail of the 100k job", "", True),
        ("detail_subtasks", "detail, subtask_page=500", "?subtask_page=500", False),
        ("detail_log_warning", "detail, log_level=warning", "?log_level=warning", False),
    ]
    admin = [(k, label, jobs + q, keep) for k, label, q, keep in lists] + [
        ("user", f"user={NORMAL_ID}", f"{jobs}?user={NORMAL_ID}", True),
        ("user_status", f"user={NORMAL_ID}&status=failed", f"{jobs}?user={NORMAL_ID}&status=failed", False),
        ("deep", "Older at 90 % depth (after=cursor)", f"{jobs}?after={deep}", True),
        *[(k, label, detail + q, keep) for k, label, q, keep in details],
        ("detail_small", "detail of a finished job", f"{jobs}{values['parent']}/", True),
        ("api", "JSON refresh, 50 ids", api + admin_ids, True),
        ("api_list", "JSON API list, first page", api_list, True),
        ("api_list_filtered", "JSON API list, failed imports", f"{api_list}?status=failed&type=import", False),
        ("api_list_deep", "JSON API list at 90 % depth", f"{api_list}?after={deep}", False),
        ("rows", "live rows: 50 again + new ones", f"{live_rows}{admin_ids}&since={newest}", True),
        ("family", "live rows: a family opened", f"{jobs}rows?parent={values['parent']}&family=1", True),
        ("statistics", "statistics, default range", "/admin/job-statistics/", True),
    ]
    user_keys = {
        "first",
        "status",
        "type",
        "category",
        "dates",
        "search",
        "search_rare",
        "search_id",
        "far_200",
        "last",
    }
    user_keys |= {f"sort_{key}_{d}" for key in SORT_KEYS for d in ("desc", "asc")}
    user = [(k, label, jobs + q, k in {"first", "search", "last"}) for k, label, q, _keep in lists if k in user_keys]
    user += [
        ("deep", "Older at 90 % of own (after=cursor)", f"{jobs}?after={own_deep}", True),
        ("detail", "detail of the 100k job", detail, True),
        ("api", "JSON refresh, 50 ids", api + own_ids, True),
        ("api_list", "JSON API list, first page", api_list, True),
        ("rows", "live rows: 50 again + new ones", f"{live_rows}{own_ids}&since={own_newest}", True),
    ]
    naive = "/naive/job/?page_size=50"
    status_arg, type_arg, user_arg = (naive_filter_arg(view, col) for col in ("status", "type", "run_by_id"))
    far = 199  # 0-based: the rows of our page=200
    naive_cases = [
        ("first", "list, first page", naive, True),
        ("status", "list, status equals failed", f"{naive}&{status_arg}=failed", True),
        ("type", "list, type equals export", f"{naive}&{type_arg}=export", True),
        ("user", f"list, run_by_id equals {NORMAL_ID}", f"{naive}&{user_arg}={NORMAL_ID}", True),
        ("search", f"list, search {SEARCH_FREQUENT}", f"{naive}&search={SEARCH_FREQUENT}", True),
        ("search_rare", f"list, search {SEARCH_RARE}", f"{naive}&search={SEARCH_RARE}", False),
        ("far_200", f"list, page={far} (0-based: the same rows)", f"{naive}&page={far}", True),
        (
            "status_type",
            "list, status=failed & type=import",
            f"{naive}&{status_arg}=failed&flt1_{type_arg[5:]}=import",
            False,
        ),
    ]
    cases = []
    for role, entries in (("admin", admin), ("user", user), ("naive", naive_cases)):
        cases += [Case(key, role, label, url) for key, label, url, keep in entries if keep or not quick]
    return cases


def cursor_at(engine: sa.Engine, user_id: str | None, position: int) -> str:
    """The ``after`` cursor of the job at ``position`` in the newest-first list."""
    c = job_table.c
    query = sa.select(c.created_at, c.id).where(c.is_system.is_(False)).order_by(c.created_at.desc(), c.id.desc())
    if user_id is not None:
        query = query.where(c.run_by_id == user_id)
    with engine.connect() as connection:
        row = connection.execute(query.offset(max(0, position)).limit(1)).one()
    return Cursor(row.created_at, row.id).token


#: Which naive request each of our requests is compared with (ours key -> naive key).
EQUIVALENT = {
    ("admin", "first"): "first",
    ("admin", "status"): "status",
    ("admin", "type"): "type",
    ("admin", "user"): "user",
    ("admin", "search"): "search",
    ("admin", "search_rare"): "search_rare",
    ("admin", "far_200"): "far_200",
    ("admin", "status_type"): "status_type",
    # a normal user's list is the naive list filtered to their id
    ("user", "first"): "user",
}


# -- measuring ---------------------------------------------------------------------------------


def run_cases(app: Flask, meter: SqlMeter, cases: list[Case], rounds: int, warmup: int) -> None:
    clients: dict[str, FlaskClient] = {}
    for role, user_id in (("admin", ADMIN_ID), ("user", NORMAL_ID), ("naive", ADMIN_ID)):
        clients[role] = app.test_client()
        login(clients[role], user_id)
    for _ in range(warmup):
        for case in cases:
            meter.reset()
            _elapsed, body = one_request(clients[case.role], case.url)
            case.statements = meter.statements
            case.response_bytes = len(body)
            case.rows_shown = rows_shown(case, body)
    total = rounds * len(cases)
    done = 0
    for round_number in range(rounds):
        order = cases if round_number % 2 == 0 else list(reversed(cases))
        for case in order:
            meter.reset()
            elapsed, _body = one_request(clients[case.role], case.url)
            case.times_ms.append(elapsed * 1000)
            case.sql_ms.append(meter.seconds * 1000)
            done += 1
        print(f"\r  round {round_number + 1}/{rounds} ({done}/{total} requests)", end="", flush=True)
    print()


def explain_case(app: Flask, meter: SqlMeter, engine: sa.Engine, case: Case) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) each statement one request of ``case`` issues, slowest first.
    Call it outside an app context (see main)."""
    client = app.test_client()
    login(client, ADMIN_ID if case.role in ("admin", "naive") else NORMAL_ID)
    meter.capture = []
    try:
        one_request(client, case.url)
        captured = meter.capture
    finally:
        meter.capture = None
    plans = []
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            for statement, parameters, seconds in sorted(captured, key=lambda item: -item[2]):
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                plan = "\n".join(f"{row[0]:>4} {row[1]:>4} {row[3]}" for row in rows)
                plans.append({"request_ms": round(seconds * 1000, 2), "sql": statement, "plan": plan})
        return plans
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert isinstance(dbapi, psycopg.Connection)
        for statement, parameters, seconds in sorted(captured, key=lambda item: -item[2]):
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            literal = psycopg.ClientCursor(dbapi).mogrify(statement, parameters)
            with dbapi.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            plans.append({"request_ms": round(seconds * 1000, 2), "sql": literal, "plan": plan})
        dbapi.rollback()
    finally:
        raw.close()
    return plans


# -- report ------------------------------------------------------------------------------------


def machine_info(engine: sa.Engine) -> dict[str, Any]:
    model = cpu_model()
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "flask": version("flask"),
        "flask_admin": version("flask-admin"),
        "sqlalchemy": sa.__version__,
        "psycopg": psycopg.__version__,
        "load_average": os.getloadavg(),
    }
    if engine.dialect.name == "sqlite":
        import sqlite3

        info["sqlite"] = sqlite3.sqlite_version
        info["database_bytes"] = os.path.getsize(engine.url.database or "")
        return info
    with engine.connect() as connection:
        info["postgresql"] = connection.exec_driver_sql("SHOW server_version").scalar()
        for setting in ("shared_buffers", "work_mem", "random_page_cost", "jit", "effective_cache_size"):
            info[f"pg_{setting}"] = connection.exec_driver_sql(f"SHOW {setting}").scalar()
        info["job_table_size"] = connection.execute(
            sa.text("SELECT pg_size_pretty(pg_total_relation_size('jobmonitor_job'))")
        ).scalar()
    return info


def print_table(cases: list[Case]) -> list[dict[str, Any]]:
    naive = {case.key: case for case in cases if case.role == "naive"}
    rows = []
    header = (
        f"{'role':6} {'request':42} {'median':>8} {'p95':>8} {'SQL':>7} {'stmts':>5} {'naive':>9} {'ratio':>6}  target"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        if not case.ours:
            continue
        summary = case.summary()
        base = naive.get(EQUIVALENT.get((case.role, case.key), ""))
        if base is not None:
            base_median = statistics.median(base.times_ms)
            summary["naive_key"] = base.key
            summary["naive_median_ms"] = round(base_median, 2)
            summary["ratio"] = round(summary["median_ms"] / base_median, 3)
        naive_text = f"{summary['naive_median_ms']:9.1f}" if base is not None else f"{'':9}"
        ratio_text = f"{summary['ratio']:6.2f}" if base is not None else f"{'':6}"
        print(
            f"{case.role:6} {case.label[:42]:42} {summary['median_ms']:8.1f} {summary['p95_ms']:8.1f} "
            f"{summary['sql_median_ms']:7.1f} {summary['statements']:5d} {naive_text} {ratio_text}  "
            f"{'met' if summary['met'] else 'MISSED'}"
        )
        rows.append(summary)
    print()
    print("naive Flask-Admin ModelView(Job, db), as admin:")
    for case in cases:
        if case.ours:
            continue
        summary = case.summary()
        print(
            f"{'naive':6} {case.label[:42]:42} {summary['median_ms']:8.1f} {summary['p95_ms']:8.1f} "
            f"{summary['sql_median_ms']:7.1f} {summary['statements']:5d}"
        )
        rows.append(summary)
    return rows


@contextmanager
def stage(name: str) -> Iterator[None]:
    print(f"{name} ...", flush=True)
    started = perf_counter()
    yield
    print(f"{name}: {perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    measured = revision()  # taken first: a commit made while it runs is not what it measured
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="jobs to seed (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} jobs and 20 rounds (under a minute)")
    parser.add_argument(
        "--rounds", type=int, default=None, help="measured requests per case (>= 20; default 30, quick 20)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured rounds first (default 2, quick 1)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_LIST_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--explain-all", action="store_true", help="EXPLAIN every case of ours, not only misses")
    parser.add_argument(
        "--sqlite",
        type=Path,
        default=None,
        help="measure on this SQLite file instead, filled with the rows seeded in PostgreSQL",
    )
    parser.add_argument("--output", type=Path, default=None, help="default: bench/results/list-<database>-<rows>.json")
    args = parser.parse_args()
    rows = QUICK_ROWS if args.quick else args.rows
    if rows != 1_000_000 and "BENCH_LIST_DATABASE_URL" not in os.environ:
        # one PostgreSQL database per size, so the 1M and 10M seeds are both kept for reruns
        args.database_url = (
            sa.make_url(args.database_url)
            .set(database=f"jobmonitor_bench_list_{rows}")
            .render_as_string(hide_password=False)
        )
    size = f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else str(rows)
    output = args.output or RESULTS.with_name(f"list-{'sqlite' if args.sqlite else 'postgresql'}-{size}.json")
    rounds = args.rounds or (20 if args.quick else 30)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if rounds < 20:
        parser.error("--rounds must be at least 20")
    began = perf_counter()

    ensure_database(args.database_url)
    source = sa.create_engine(args.database_url)
    with stage(f"seeding {rows:,} jobs + 1 job with {BIG_SUBTASKS:,} subtasks and {BIG_LOGS:,} log lines"):
        seed_timings = seed(source, rows)
    if args.sqlite is not None:
        target = sa.create_engine(f"sqlite:///{args.sqlite.resolve()}")
        with stage(f"copying them to SQLite {args.sqlite}"):
            seed_timings.update(copy_to_sqlite(source, target))
        target.dispose()
    source.dispose()
    database_url = f"sqlite:///{args.sqlite.resolve()}" if args.sqlite is not None else args.database_url
    app, view = build_app(database_url)
    with app.app_context():
        engine: sa.Engine = db.engine
        seed_users(engine)
        print(f"  {', '.join(f'{k} {v:.1f} s' for k, v in seed_timings.items())}")
        big = big_job_id(engine)
        cases = build_cases(engine, view, big, rows, args.quick)
        meter = SqlMeter()
        meter.install(engine)
        info = machine_info(engine)
    print(f"load average before measuring: {info['load_average']}")
    with stage(f"measuring {len(cases)} requests x ({warmup} warm-up + {rounds}) rounds"):
        run_cases(app, meter, cases, rounds, warmup)
    print()
    summaries = print_table(cases)

    explains: dict[str, Any] = {}
    # outside any app context: a request inside one would reuse its ``g`` and so the first
    # request's logged-in user (Flask-Login caches it in g)
    ours = [case for case in cases if case.ours]
    slowest = max(ours, key=lambda case: statistics.median(case.times_ms))
    for case in ours:
        near = statistics.median(case.times_ms) >= EXPLAIN_FROM * TARGET_MS
        if args.explain_all or near or case is slowest:
            explains[f"{case.role}:{case.key}"] = explain_case(app, meter, engine, case)
    for name, plans in explains.items():
        if not plans:
            continue
        slowest = plans[0]
        print(f"\n== {name}: slowest statement ({slowest['request_ms']} ms in the request)\n{slowest['sql']}")
        print(slowest["plan"])

    met = [s for s in summaries if "met" in s]
    print(f"\n{sum(s['met'] for s in met)}/{len(met)} of our requests under {TARGET_MS:.0f} ms median")
    result = {
        "benchmark": "list",
        "date": datetime.now().isoformat(timespec="seconds"),
        "rows": rows,
        "database": engine.dialect.name,
        "big_job": {"id": big, "subtasks": BIG_SUBTASKS, "logs": BIG_LOGS},
        "rounds": rounds,
        "warmup": warmup,
        "quick": args.quick,
        "target_ms": TARGET_MS,
        "seed_seconds": {k: round(v, 2) for k, v in seed_timings.items()},
        "machine": info,
        "revision": measured,
        "cases": summaries,
        "explain": explains,
        "wall_seconds": round(perf_counter() - began, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {output} ({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
