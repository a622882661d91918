"""Statistics page and queue health page at scale, against naive Python aggregation of the same rows.

    .venv/bin/python bench/bench_stats.py [--quick] [--rounds 25] [--rows 1000000]

1. Data: reuses the PostgreSQL database ``jobmonitor_bench_list`` that ``bench/bench_list.py``
   seeds (1,000,000 jobs with ``created_at`` spread evenly over the year before the seeding;
   ``--quick``: 50,000 jobs in a database of its own, ``jobmonitor_bench_stats_quick``, so that a
   quick run does not replace the million rows). If ``jobmonitor_job`` holds the expected row
   count it is reused: columns models.py gained since are added (with their scalar default), and
   if the job table's indexes differ from those declared in ``flask_jobmonitor.records.models`` they are
   all dropped and rebuilt (as bench_list's seeding does), then ``VACUUM ANALYZE``. Otherwise
   bench_list's ``seed()`` seeds it. How many jobs each measured range holds is printed and
   stored, with a warning when the data ends long before now (then recent ranges are thin).
2. Builds ``example_app`` on it with bench_list's ``build_app`` and logs in as user 1 (role
   ``admin``, which holds ``jobmonitor.view_statistics``) with bench_list's ``login``.
3. Times, through Flask's test client (in-process: the server's time, routing to rendering),
   ``/admin/job-statistics/`` with its default range (the last 14 days, per day), per hour over
   2 days, per day over 90 days and over a year, ``?type=export``, ``?format=csv``; and
   ``/admin/queues/``. In the same rounds it times two baselines per range: the naive way
   (``SELECT created_at, started_at, ended_at, status, type FROM jobmonitor_job WHERE created_at
   >= :start``, every row fetched and grouped in Python into the same figures) and a bare
   ``SELECT count(*)`` over the range. Rounds go over all cases in turn (every other round in
   reverse order) so that the load of the shared machine hits every case alike. A third baseline
   is the count with the page's own WHERE (range end, ``is_system IS false``), which can use an index.
   The statistics cache (stats/cache.py) starts empty and the warm-up rounds fill it, as a site's
   first views would; afterwards the default range, 90 days and a year are measured again in rounds
   of their own, each request with the cache emptied first ("cache empty": the first view).
4. Prints median, p95, SQL time and the ratios page/naive and page/count; every statement of every
   page request gets ``EXPLAIN (ANALYZE, BUFFERS)`` (statements captured with a
   ``before_cursor_execute`` listener); the slowest of each case that misses the 200 ms target
   (or comes within 20 % of it) is printed. Everything goes to ``bench/results/stats.json``
   (``--quick``: ``stats-quick.json``).

See docs/performance.md, section "Statistics at 1,000,000 jobs".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench_list, the package and example_app from this checkout

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from bench_list import (  # noqa: E402
    ADMIN_ID,
    DEFAULT_DATABASE_URL,
    QUICK_ROWS,
    build_app,
    ensure_database,
    login,
    machine_info,
    percentile,
    revision,
    seed,
    seed_users,
    stage,
)
from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402

from example_app.extensions import db  # noqa: E402
from flask_jobmonitor.records.models import Base, job_table, stats_bucket_table, stats_watermark_table  # noqa: E402
from flask_jobmonitor.stats.figures import StatsRange, compute, parse_range  # noqa: E402
from flask_jobmonitor.timeutil import utcnow  # noqa: E402

QUICK_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_bench_stats_quick"
TARGET_MS = 200.0
#: Ranges also measured with the statistics cache emptied before every request.
COLD_KEYS = ("default", "day_90d", "day_1y")
EXPLAIN_FROM = 0.8
RESULTS = HERE / "results" / "stats.json"
QUICK_RESULTS = HERE / "results" / "stats-quick.json"  # so that a quick run keeps the 1,000,000-row figures
STATS = "/admin/job-statistics/"
QUEUES = "/admin/queues/"
NAIVE_SQL = "SELECT created_at, started_at, ended_at, status, type FROM jobmonitor_job WHERE created_at >= :start"
COUNT_SQL = "SELECT count(*) FROM jobmonitor_job WHERE created_at >= :start"
# the same count with the page's own WHERE (range end, no system jobs): what an index range scan costs
COUNT_WHERE_SQL = (
    "SELECT count(*) FROM jobmonitor_job WHERE created_at >= :start AND created_at < :end AND is_system IS false"
)
WATCHED_FILES = (
    "stats/figures.py",
    "stats/cache.py",
    "stats/charts.py",
    "web/admin/statistics.py",
    "records/models.py",
    "web/templates/jobmonitor/statistics.html",
)


# -- data --------------------------------------------------------------------------------------


def job_count(engine: sa.Engine) -> int | None:
    with engine.connect() as connection:
        if connection.execute(sa.text("SELECT to_regclass('jobmonitor_job')")).scalar() is None:
            return None
        return int(connection.execute(sa.text("SELECT count(*) FROM jobmonitor_job")).scalar() or 0)


def add_missing_columns(connection: sa.Connection) -> list[str]:
    """Columns models.py declares on the job table that the seeded table lacks, added with their
    scalar default (``ADD COLUMN ... DEFAULT`` is a catalogue change on PostgreSQL >= 11, no rewrite).
    Raises LookupError when a missing column cannot be added that way."""
    present = {c["name"] for c in sa.inspect(connection).get_columns("jobmonitor_job")}
    added = []
    for column in job_table.columns:
        if column.name in present:
            continue
        type_sql = column.type.compile(dialect=connection.dialect)
        default = ""
        if column.default is not None and column.default.is_scalar:
            literal = sa.literal(column.default.arg, column.type).compile(
                dialect=connection.dialect, compile_kwargs={"literal_binds": True}
            )
            default = f" DEFAULT {literal}"
        elif not column.nullable:
            raise LookupError(f"jobmonitor_job.{column.name} is NOT NULL without a scalar default")
        not_null = "" if column.nullable else " NOT NULL"
        connection.execute(
            sa.text(f'ALTER TABLE jobmonitor_job ADD COLUMN "{column.name}" {type_sql}{default}{not_null}')
        )
        added.append(column.name)
    return added


def job_indexes_in_database(connection: sa.Connection) -> dict[str, list[str]]:
    """Plain-column indexes of the job table as they are in the database: name -> columns."""
    rows = connection.execute(
        sa.text(
            "SELECT i.relname, array_agg(a.attname ORDER BY k.ord) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
            "WHERE x.indrelid = 'jobmonitor_job'::regclass AND NOT x.indisprimary "
            "GROUP BY i.relname"
        )
    ).all()
    return {name: list(columns) for name, columns in rows}


def align_indexes(connection: sa.Connection) -> dict[str, Any]:
    """Make the job table's secondary indexes those of models.py: if any is missing, different or
    extra, drop them all and build each once (as bench_list's seeding does)."""
    declared = {index.name: [c.name for c in index.columns] for index in job_table.indexes}
    found = job_indexes_in_database(connection)
    different = {name: found.get(name) for name, cols in declared.items() if found.get(name) != cols}
    extra = sorted(set(found) - set(declared))
    report: dict[str, Any] = {"different_or_missing": different, "extra": extra, "rebuilt": False}
    if not different and not extra:
        return report
    for name, columns in different.items():
        print(f"  index {name}: database has {columns}, models.py declares {declared[name]}", flush=True)
    for name in extra:
        print(f"  index {name} ({found[name]}) is not declared in models.py", flush=True)
    started = perf_counter()
    connection.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
    for name in [*declared, *extra]:
        connection.execute(sa.text(f'DROP INDEX IF EXISTS "{name}"'))
    for index in job_table.indexes:
        index.create(connection)
    report["rebuilt"] = True
    report["seconds"] = round(perf_counter() - started, 1)
    print(f"  dropped and rebuilt the job table's {len(declared)} secondary indexes in {report['seconds']} s")
    return report


def prepare_data(engine: sa.Engine, rows: int) -> dict[str, Any]:
    """Reuse the seeded table if it holds ``rows`` jobs (+ bench_list's big job), else seed it."""
    count = job_count(engine)
    if count not in (rows, rows + 1):
        print(f"  jobmonitor_job holds {count} rows, not {rows:,} + 1: seeding with bench_list.seed()", flush=True)
        timings = seed(engine, rows)
        return {"reused": False, "seed_seconds": {k: round(v, 2) for k, v in timings.items()}}
    info: dict[str, Any] = {"reused": True, "rows_found": count}
    with engine.begin() as connection:
        Base.metadata.create_all(connection)  # any table of the extension the seeded schema lacks
        info["columns_added"] = add_missing_columns(connection)
        if info["columns_added"]:
            print(f"  added columns models.py gained since the seeding: {info['columns_added']}")
        info["indexes"] = align_indexes(connection)
    if info["indexes"]["rebuilt"] or info["columns_added"]:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE jobmonitor_job"))
    return info


def data_spread(engine: sa.Engine, ranges: dict[str, StatsRange], rows: int, now: datetime) -> dict[str, Any]:
    """Where the seeded ``created_at`` values are, and how many jobs each measured range holds."""
    c = job_table.c
    with engine.connect() as connection:
        low, high = connection.execute(sa.select(sa.func.min(c.created_at), sa.func.max(c.created_at))).one()
        counts = {}
        for key, r in ranges.items():
            conditions = [c.created_at >= r.start, c.created_at < r.end, c.is_system.is_(False)]
            if r.type:
                conditions.append(c.type == r.type)
            counts[key] = int(connection.execute(sa.select(sa.func.count()).where(*conditions)).scalar() or 0)
    span_days = (high - low).total_seconds() / 86400
    per_day = rows / span_days if span_days else 0.0
    lag_hours = (now - high).total_seconds() / 3600
    out = {
        "min_created_at": low,
        "max_created_at": high,
        "span_days": round(span_days, 1),
        "jobs_per_day": round(per_day),
        "data_ends_hours_before_now": round(lag_hours, 1),
        "jobs_in_range": counts,
    }
    print(
        f"  created_at from {low:%Y-%m-%d %H:%M} to {high:%Y-%m-%d %H:%M} ({span_days:.0f} days, "
        f"~{per_day:,.0f} jobs/day); data ends {lag_hours:.1f} h before now"
    )
    if lag_hours > 24:
        print(
            f"  WARNING: the newest job is {lag_hours / 24:.1f} days old: the recent ranges hold fewer jobs "
            "than a steady year would (reseed with bench_list to move the year up to now)"
        )
    return out


# -- naive baseline ----------------------------------------------------------------------------


def naive_statistics(rows: list[Any], stats_range: StatsRange) -> dict[str, Any]:
    """The page's figures from fetched rows, the straightforward way: group in dicts, then reduce."""
    hour = stats_range.granularity == "hour"
    groups: dict[datetime, dict[str, Any]] = {}
    types: dict[str, dict[str, Any]] = {}
    for created, started, ended, status, job_type in rows:
        if stats_range.type and job_type != stats_range.type:
            continue
        key = created.replace(minute=0, second=0, microsecond=0)
        if not hour:
            key = key.replace(hour=0)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"created": 0, "started": 0, "failed": 0, "stopped": 0, "waits": [], "durations": []}
        per_type = types.get(job_type)
        if per_type is None:
            per_type = types[job_type] = {"created": 0, "failed": 0, "durations": []}
        group["created"] += 1
        per_type["created"] += 1
        if status == "failed":
            group["failed"] += 1
            per_type["failed"] += 1
        elif status == "stopped":
            group["stopped"] += 1
        if started is not None:
            group["started"] += 1
            group["waits"].append((started - created).total_seconds())
            if ended is not None:
                seconds = (ended - started).total_seconds()
                group["durations"].append(seconds)
                per_type["durations"].append(seconds)
    buckets = []
    for start in stats_range.buckets():
        group = groups.get(start)
        if group is None:
            buckets.append({"start": start, "created": 0})
            continue
        waits, durations = group["waits"], sorted(group["durations"])
        buckets.append(
            {
                "start": start,
                "created": group["created"],
                "started": group["started"],
                "failed": group["failed"],
                "stopped": group["stopped"],
                "wait_avg": sum(waits) / len(waits) if waits else None,
                "wait_min": min(waits) if waits else None,
                "wait_max": max(waits) if waits else None,
                "duration_avg": sum(durations) / len(durations) if durations else None,
                "duration_p95": percentile_cont(durations, 0.95),
            }
        )
    by_type = sorted(
        (
            {
                "type": t,
                "created": v["created"],
                "failed": v["failed"],
                "duration_avg": sum(v["durations"]) / len(v["durations"]) if v["durations"] else None,
            }
            for t, v in types.items()
        ),
        key=lambda row: -row["created"],
    )
    return {"buckets": buckets, "by_type": by_type}


def percentile_cont(sorted_values: list[float], fraction: float) -> float | None:
    """PostgreSQL's ``percentile_cont``: linear interpolation between the two nearest ranks."""
    if not sorted_values:
        return None
    position = fraction * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def naive_fetch(engine: sa.Engine, stats_range: StatsRange) -> tuple[int, dict[str, Any]]:
    params: dict[str, Any] = {"start": stats_range.start}
    sql = NAIVE_SQL
    if stats_range.type:
        sql += " AND type = :type"
        params["type"] = stats_range.type
    with engine.connect() as connection:
        rows = connection.execute(sa.text(sql), params).all()
    return len(rows), naive_statistics(rows, stats_range)


def bare_count(engine: sa.Engine, stats_range: StatsRange, page_where: bool = False) -> int:
    params: dict[str, Any] = {"start": stats_range.start}
    sql = COUNT_SQL
    if page_where:
        sql = COUNT_WHERE_SQL
        params["end"] = stats_range.end
    if stats_range.type:
        sql += " AND type = :type"
        params["type"] = stats_range.type
    with engine.connect() as connection:
        return int(connection.execute(sa.text(sql), params).scalar() or 0)


def validate(engine: sa.Engine, stats_range: StatsRange) -> dict[str, Any]:
    """The page's ``compute()`` against the naive figures of the same rows (system jobs left out, as
    the page does): counts must be equal, averages and p95 equal to 1e-6 relative."""
    c = job_table.c
    query = sa.select(c.created_at, c.started_at, c.ended_at, c.status, c.type).where(
        c.created_at >= stats_range.start, c.created_at < stats_range.end, c.is_system.is_(False)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
        ours = compute(connection, stats_range)
    naive = naive_statistics(rows, stats_range)
    problems = []
    for mine, theirs in zip(ours.buckets, naive["buckets"], strict=True):
        for name, expected in theirs.items():
            got = getattr(mine, name)
            if isinstance(expected, float) and got is not None:
                ok = math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-6)
            else:
                ok = got == expected
            if not ok:
                problems.append(f"{mine.start} {name}: page {got!r}, naive {expected!r}")
    page_types = [(t["type"], t["created"], t["failed"]) for t in ours.by_type]
    naive_types = [(t["type"], t["created"], t["failed"]) for t in naive["by_type"]]
    if sorted(page_types) != sorted(naive_types):
        problems.append(f"by type: page {page_types}, naive {naive_types}")
    return {"range": f"{stats_range.start} .. {stats_range.end}", "rows": len(rows), "problems": problems[:20]}


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class SqlRecorder:
    """Statement count and time per request; with ``capture`` set, the statements themselves
    (recorded in ``before_cursor_execute``, timed in ``after_cursor_execute``)."""

    statements: int = 0
    seconds: float = 0.0
    capture: list[dict[str, Any]] | None = None
    _stack: list[tuple[float, dict[str, Any] | None]] = field(default_factory=list)

    def install(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        entry = None
        if self.capture is not None:
            entry = {"statement": statement, "parameters": parameters, "seconds": None}
            self.capture.append(entry)
        self._stack.append((perf_counter(), entry))

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        started, entry = self._stack.pop()
        elapsed = perf_counter() - started
        self.statements += 1
        self.seconds += elapsed
        if entry is not None:
            entry["seconds"] = elapsed

    def reset(self) -> None:
        self.statements, self.seconds = 0, 0.0


@dataclass
class Case:
    key: str
    kind: str  # page | naive | count | count_where
    label: str
    url: str = ""
    stats_range: StatsRange | None = None
    cold: bool = False  # a page request with the statistics cache emptied first
    times_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    statements: int = 0
    response_bytes: int = 0
    rows_fetched: int | None = None

    def summary(self) -> dict[str, Any]:
        times = sorted(self.times_ms)
        out: dict[str, Any] = {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "n": len(times),
            "median_ms": round(statistics.median(times), 2),
            "p95_ms": round(percentile(times, 95), 2),
            "min_ms": round(times[0], 2),
            "max_ms": round(times[-1], 2),
        }
        if self.kind == "page":
            out.update(
                url=self.url,
                sql_median_ms=round(statistics.median(self.sql_ms), 2),
                statements=self.statements,
                response_bytes=self.response_bytes,
                target_ms=TARGET_MS,
                met=out["median_ms"] < TARGET_MS,
            )
        else:
            out["rows_fetched" if self.kind == "naive" else "count"] = self.rows_fetched
        return out


def build_cases(now: datetime) -> tuple[list[Case], dict[str, StatsRange]]:
    today = now.date()

    def since(days: int) -> str:
        return (today - timedelta(days=days - 1)).isoformat()

    specs = [
        ("default", "statistics, default (14 days per day)", ""),
        ("hour_2d", "statistics, per hour, 2 days", f"?granularity=hour&from={since(2)}"),
        ("day_90d", "statistics, per day, 90 days", f"?from={since(90)}"),
        ("day_1y", "statistics, per day, 1 year (365 days)", f"?from={since(365)}"),
        ("type_export", "statistics, type=export (14 days)", "?type=export"),
        ("csv", "statistics, format=csv (14 days)", "?format=csv"),
    ]
    cases: list[Case] = []
    ranges: dict[str, StatsRange] = {}
    for key, label, query in specs:
        args = MultiDict((k, v) for k, _, v in (part.partition("=") for part in query.lstrip("?").split("&") if part))
        stats_range = parse_range(args, now)
        ranges[key] = stats_range
        cases.append(Case(key, "page", label, STATS + query, stats_range))
        if key != "csv":  # the CSV has the default range's figures: same baselines as "default"
            cases.append(Case(key, "naive", f"naive fetch + group, {key}", stats_range=stats_range))
            cases.append(Case(key, "count", f"bare count(*), {key}", stats_range=stats_range))
            cases.append(Case(key, "count_where", f"count(*), page's WHERE, {key}", stats_range=stats_range))
    cases.append(Case("queues", "page", "queue health", QUEUES))
    return cases, ranges


def build_cold_cases(cases: list[Case]) -> list[Case]:
    """The long ranges once more, each request with an empty statistics cache: what the first
    view after a deploy (or after ``flask jobmonitor clear-stats-cache``) costs."""
    return [
        Case(f"{case.key}_cold", "page", f"{case.label[:27]}, cache empty", case.url, case.stats_range, cold=True)
        for case in cases
        if case.kind == "page" and case.key in COLD_KEYS
    ]


def empty_stats_cache(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(stats_bucket_table))
        connection.execute(sa.delete(stats_watermark_table))


def run_cold(app: Flask, engine: sa.Engine, recorder: SqlRecorder, cases: list[Case], rounds: int) -> None:
    """Apart from the interleaved rounds: emptying the cache there would make the next warm
    request of another range cold too."""
    client = app.test_client()
    login(client, ADMIN_ID)
    for round_number in range(rounds):
        for case in cases:
            empty_stats_cache(engine)
            run_once(case, client, engine, recorder)
        print(f"\r  round {round_number + 1}/{rounds}", end="", flush=True)
    print()
    empty_stats_cache(engine)


def one_request(client: FlaskClient, url: str) -> tuple[float, bytes]:
    start = perf_counter()
    response = client.get(url)
    elapsed = perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.get_data(as_text=True)[:500]}")
    return elapsed, response.get_data()


def run_once(case: Case, client: FlaskClient, engine: sa.Engine, recorder: SqlRecorder) -> None:
    recorder.reset()
    assert case.stats_range is not None or case.kind == "page"
    if case.kind == "page":
        elapsed, body = one_request(client, case.url)
        case.response_bytes = len(body)
        case.statements = recorder.statements
        case.sql_ms.append(recorder.seconds * 1000)
    elif case.kind == "naive":
        assert case.stats_range is not None
        start = perf_counter()
        case.rows_fetched, _figures = naive_fetch(engine, case.stats_range)
        elapsed = perf_counter() - start
    else:
        assert case.stats_range is not None
        start = perf_counter()
        case.rows_fetched = bare_count(engine, case.stats_range, page_where=case.kind == "count_where")
        elapsed = perf_counter() - start
    case.times_ms.append(elapsed * 1000)


def run_cases(
    app: Flask, engine: sa.Engine, recorder: SqlRecorder, cases: list[Case], rounds: int, warmup: int
) -> None:
    client = app.test_client()
    login(client, ADMIN_ID)
    for _ in range(warmup):
        for case in cases:
            run_once(case, client, engine, recorder)
    for case in cases:
        case.times_ms.clear()
        case.sql_ms.clear()
    for round_number in range(rounds):
        order = cases if round_number % 2 == 0 else list(reversed(cases))
        for case in order:
            run_once(case, client, engine, recorder)
        print(f"\r  round {round_number + 1}/{rounds}", end="", flush=True)
    print()


def explain_statements(engine: sa.Engine, captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) each captured SELECT, slowest first."""
    plans = []
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert isinstance(dbapi, psycopg.Connection)
        for item in sorted(captured, key=lambda entry: -(entry["seconds"] or 0)):
            statement, parameters = item["statement"], item["parameters"]
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            literal = psycopg.ClientCursor(dbapi).mogrify(statement, parameters)
            with dbapi.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            plans.append({"request_ms": round((item["seconds"] or 0) * 1000, 2), "sql": literal, "plan": plan})
        dbapi.rollback()
    finally:
        raw.close()
    return plans


def explain_page(app: Flask, engine: sa.Engine, recorder: SqlRecorder, url: str) -> list[dict[str, Any]]:
    """The statements one request of ``url`` issues, each with its plan. Call outside an app context."""
    client = app.test_client()
    login(client, ADMIN_ID)
    recorder.capture = []
    try:
        one_request(client, url)
        captured = recorder.capture
    finally:
        recorder.capture = None
    return explain_statements(engine, captured)


def explain_baselines(engine: sa.Engine, stats_range: StatsRange) -> dict[str, str]:
    out = {}
    params = {"start": stats_range.start, "end": stats_range.end}
    with engine.connect() as connection:
        for name, sql in (("naive", NAIVE_SQL), ("count", COUNT_SQL), ("count_where", COUNT_WHERE_SQL)):
            rows = connection.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params)
            out[name] = "\n".join(row[0] for row in rows)
    return out


# -- report ------------------------------------------------------------------------------------


def print_table(cases: list[Case], spread: dict[str, Any]) -> list[dict[str, Any]]:
    by_key = {(case.key, case.kind): case for case in cases}
    header = (
        f"{'request':40} {'jobs':>8} {'median':>8} {'p95':>8} {'SQL':>7} {'stmts':>5} "
        f"{'naive':>8} {'p/naive':>7} {'count':>7} {'p/count':>7} {'cnt-w':>7} {'p/cnt-w':>7}  target"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for case in cases:
        if case.kind != "page":
            continue
        summary = case.summary()
        summary["jobs_in_range"] = spread["jobs_in_range"].get(case.key.removesuffix("_cold"))
        base_key = "default" if case.key == "csv" else case.key.removesuffix("_cold")
        naive, count = by_key.get((base_key, "naive")), by_key.get((base_key, "count"))
        count_where = by_key.get((base_key, "count_where"))
        text = dict.fromkeys(("ratio_naive", "count", "ratio_count", "count_where", "ratio_count_where"), f"{'':7}")
        text["naive"] = f"{'':8}"
        if naive is not None and count is not None and count_where is not None:
            where_median = statistics.median(count_where.times_ms)
            summary["count_where_median_ms"] = round(where_median, 2)
            summary["count_where_p95_ms"] = round(percentile(sorted(count_where.times_ms), 95), 2)
            summary["ratio_page_to_count_where"] = round(summary["median_ms"] / where_median, 3)
            naive_median = statistics.median(naive.times_ms)
            count_median = statistics.median(count.times_ms)
            summary["naive_median_ms"] = round(naive_median, 2)
            summary["naive_p95_ms"] = round(percentile(sorted(naive.times_ms), 95), 2)
            summary["naive_rows_fetched"] = naive.rows_fetched
            summary["count_median_ms"] = round(count_median, 2)
            summary["count_p95_ms"] = round(percentile(sorted(count.times_ms), 95), 2)
            summary["ratio_page_to_naive"] = round(summary["median_ms"] / naive_median, 3)
            summary["ratio_page_to_count"] = round(summary["median_ms"] / count_median, 3)
            text = {
                "naive": f"{naive_median:8.1f}",
                "ratio_naive": f"{summary['ratio_page_to_naive']:7.2f}",
                "count": f"{count_median:7.1f}",
                "ratio_count": f"{summary['ratio_page_to_count']:7.2f}",
                "count_where": f"{where_median:7.1f}",
                "ratio_count_where": f"{summary['ratio_page_to_count_where']:7.2f}",
            }
        jobs = summary["jobs_in_range"]
        print(
            f"{case.label[:40]:40} {jobs if jobs is not None else '':>8} {summary['median_ms']:8.1f} "
            f"{summary['p95_ms']:8.1f} {summary['sql_median_ms']:7.1f} {summary['statements']:5d} "
            f"{text['naive']} {text['ratio_naive']} {text['count']} {text['ratio_count']} "
            f"{text['count_where']} {text['ratio_count_where']}  "
            f"{'met' if summary['met'] else 'MISSED'}"
        )
        rows.append(summary)
    print("\nbaselines (median / p95 ms):")
    for case in cases:
        if case.kind == "page":
            continue
        summary = case.summary()
        what = f"{case.rows_fetched:,} rows" if case.kind == "naive" else f"count {case.rows_fetched:,}"
        print(f"  {case.label[:40]:40} {summary['median_ms']:8.1f} {summary['p95_ms']:8.1f}  ({what})")
        rows.append(summary)
    return rows


def file_hashes() -> dict[str, str]:
    package = HERE.parent / "flask_jobmonitor"
    return {name: hashlib.sha1((package / name).read_bytes()).hexdigest()[:12] for name in WATCHED_FILES}


def main() -> None:
    measured = revision()  # taken first: a commit made while it runs is not what it measured
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="jobs expected / seeded (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} jobs in a database of its own")
    parser.add_argument("--rounds", type=int, default=None, help="measured rounds (>= 20; default 25, quick 20)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured rounds first (default 2, quick 1)")
    parser.add_argument("--database-url", default=None, help="default: bench_list's database (quick: its own)")
    parser.add_argument(
        "--output", type=Path, default=None, help="default bench/results/stats.json (quick: stats-quick.json)"
    )
    args = parser.parse_args()
    rows = QUICK_ROWS if args.quick else args.rows
    rounds = args.rounds or (20 if args.quick else 25)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if rounds < 20:
        parser.error("--rounds must be at least 20")
    url = args.database_url or (
        QUICK_DATABASE_URL if args.quick else os.environ.get("BENCH_LIST_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    output: Path = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    began = perf_counter()

    ensure_database(url)
    app, _naive_view = build_app(url)
    with app.app_context():
        engine: sa.Engine = db.engine
        with stage(f"data: {rows:,} jobs in {sa.make_url(url).database}"):
            data = prepare_data(engine, rows)
            seed_users(engine)
        now = utcnow()
        cases, ranges = build_cases(now)
        spread = data_spread(engine, ranges, rows, now)
        with stage("validating the page's figures against naive Python over the same rows"):
            validation = validate(engine, ranges["default"])
        if validation["problems"]:
            print("  MISMATCH:\n  " + "\n  ".join(validation["problems"]))
        else:
            print(f"  default range: {validation['rows']:,} rows, page and naive figures agree")
        empty_stats_cache(engine)  # the warm-up rounds fill it, as a site's first views would
        recorder = SqlRecorder()
        recorder.install(engine)
        info = machine_info(engine)
    print(f"load average before measuring: {info['load_average']}")
    with stage(f"measuring {len(cases)} cases x ({warmup} warm-up + {rounds}) rounds"):
        run_cases(app, engine, recorder, cases, rounds, warmup)
    cold_cases = build_cold_cases(cases)
    with stage(f"measuring {len(cold_cases)} cases with an empty statistics cache x {rounds} rounds"):
        run_cold(app, engine, recorder, cold_cases, rounds)
    cases = cases[: len(cases) - 1] + cold_cases + cases[-1:]  # queue health stays last
    info["load_average_after"] = os.getloadavg()
    print()
    summaries = print_table(cases, spread)

    # outside any app context: a request inside one would reuse its ``g`` (see bench_list)
    with stage("EXPLAIN (ANALYZE, BUFFERS) of every statement of every page"):
        explains = {case.key: explain_page(app, engine, recorder, case.url) for case in cases if case.kind == "page"}
        baseline_plans = explain_baselines(engine, ranges["default"])
    for summary in summaries:
        if summary["kind"] != "page" or summary["median_ms"] < EXPLAIN_FROM * TARGET_MS:
            continue
        plans = explains.get(summary["key"]) or []
        if plans:
            print(f"\n== {summary['key']} ({summary['median_ms']} ms median): slowest statement")
            print(f"{plans[0]['sql']}\n{plans[0]['plan']}")

    pages = [s for s in summaries if s["kind"] == "page"]
    default = next(s for s in pages if s["key"] == "default")
    print(
        f"\ntarget (default range under {TARGET_MS:.0f} ms median at {rows:,} jobs): "
        f"{'MET' if default['met'] else 'MISSED'} ({default['median_ms']} ms); "
        f"{sum(s['met'] for s in pages)}/{len(pages)} pages under {TARGET_MS:.0f} ms"
    )
    result = {
        "benchmark": "stats",
        "date": datetime.now().isoformat(timespec="seconds"),
        "database": sa.make_url(url).database,
        "rows": rows,
        "rounds": rounds,
        "warmup": warmup,
        "quick": args.quick,
        "target_ms": TARGET_MS,
        "target_met": default["met"],
        "now": now,
        "ranges": {
            k: {"start": r.start, "end": r.end, "granularity": r.granularity, "type": r.type} for k, r in ranges.items()
        },
        "data": data,
        "spread": spread,
        "validation": validation,
        "machine": info,
        "revision": measured,
        "files": file_hashes(),
        "cases": summaries,
        "explain": explains,
        "baseline_explain_default_range": baseline_plans,
        "wall_seconds": round(perf_counter() - began, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    print(f"wrote {output} ({perf_counter() - began:.0f} s in all)")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


if __name__ == "__main__":
    main()
