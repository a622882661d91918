"""The query plans of the job pages: every query they run uses the index it was built for.

These tests read plans, not clocks. For each request of the list (every filter, tab, search,
sort and kind of page), the detail page, the JSON refresh, the "all matching" bulk scope and
the statistics page, the statements the code sends are captured and explained:

* PostgreSQL: ``EXPLAIN (FORMAT JSON)`` with sequential scans (and, where no search is asked,
  bitmap scans) priced out, as they are in effect for a ``LIMIT`` query over millions of rows.
  A sequential scan of a job table that is left in the plan means no index can answer it.
* SQLite: ``EXPLAIN QUERY PLAN``; its planner needs no statistics to make these choices.
* MariaDB: ``EXPLAIN FORMAT=JSON``, read into the same nodes as PostgreSQL's (a table read
  with access type ``ALL`` is a ``Seq Scan``, a ``filesort`` a ``Sort``). MariaDB cannot be
  told to price table scans out (and InnoDB prices a scan by the table's real pages, whatever
  its statistics say); it takes the indexes at this size once every job has its steps, as real
  jobs do (``_seed``). An index is "dropped" by marking it ``IGNORED``, since MariaDB cannot
  roll DDL back. Its JSON does not place a sort under or above a
  ``LIMIT``, so there a window's sort is allowed wherever it is.

Rules (:func:`violations`): no job table is read whole (``Seq Scan`` / bare ``SCAN``); a list
page in creation order is one ordered index walk (no ``Sort`` node, no ``TEMP B-TREE``) on
the index named by the case; a page sorted by another column sorts only its window (the sort
sits above a ``LIMIT``). Each case also proves its rule can fail: with the case's index
dropped (inside a transaction that is rolled back) or the order given ``NULLS LAST`` again,
the same check reports a violation.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_jobmonitor.records.models import job_table, log_table, step_table, subtask_table
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.web.listing import (
    SORTABLE,
    Cursor,
    fetch_page,
    matching_ids,
    newer_ids,
    parse_filters,
    users_with_jobs,
)

from ..support.extensions import db

JOBS = 1500
OWNER = "3"  # clara, own jobs only
#: Tables that grow with the jobs: none may be read whole.
BIG_TABLES = ("jobmonitor_job", "jobmonitor_step", "jobmonitor_subtask", "jobmonitor_log", "jobmonitor_file")


@dataclass(frozen=True)
class Case:
    """One list request: its query parameters, who asks, and the index its page walks."""

    name: str
    args: dict[str, str]
    index: str | None  # the index the page's id query must walk; None: search (GIN / FTS5)
    also: str | None = None  # another index that serves the same order as well (the planner's pick)
    owner: bool = False  # asked by a user who sees only their own jobs

    @property
    def window(self) -> bool:
        """A sort allowed above a LIMIT only: sorts by other columns, and on PostgreSQL the
        merge of the first rows of the ordinary and the system jobs."""
        return self.args.get("sort", "created") != "created" or "system" in self.args


SYSTEM = "ix_jobmonitor_job_system_created"
RUN_BY = "ix_jobmonitor_job_run_by_created"
STATUS = "ix_jobmonitor_job_status_created"
TYPE = "ix_jobmonitor_job_type_created"
CATEGORY = "ix_jobmonitor_job_category_created"
PARENT = "ix_jobmonitor_job_parent_created"

CASES = [
    # child jobs are hidden by default: the top level (parent_id IS NULL, ordered by parent_id,
    # created_at, id) is the parent index's walk
    Case("plain", {}, PARENT),
    Case("oldest first", {"sort": "created", "dir": "asc"}, PARENT),
    Case("child jobs shown", {"children": "1"}, SYSTEM),
    Case("status", {"status": "failed"}, STATUS),
    Case("type", {"type": "export"}, TYPE),
    Case("category tab", {"category": "import"}, CATEGORY),
    Case("user", {"user": OWNER}, RUN_BY),
    Case("dates", {"from": "2026-01-10", "to": "2026-01-20"}, PARENT, also=SYSTEM),
    Case("system jobs shown", {"system": "1"}, PARENT),
    Case("system jobs shown, status", {"system": "1", "status": "failed"}, STATUS),
    Case("type and dates", {"type": "export", "from": "2026-01-10", "to": "2026-01-20"}, TYPE, also=SYSTEM),
    Case("parent", {"parent": "PARENT"}, PARENT),
    Case("page 20", {"page": "20", "per_page": "20"}, PARENT),
    Case("last page", {"last": "1"}, PARENT),
    Case("older than a cursor", {"after": "CURSOR"}, PARENT),
    Case("newer than a cursor", {"before": "CURSOR"}, PARENT),
    Case("own jobs", {}, RUN_BY, owner=True),
    Case("own jobs, last page", {"last": "1"}, RUN_BY, owner=True),
    Case("own jobs, older than a cursor", {"after": "CURSOR"}, RUN_BY, owner=True),
    Case("search, a word", {"q": "invoices"}, None),
    Case("search, an id prefix", {"q": "ID_PREFIX"}, None),
    Case("search and type", {"q": "invoices", "type": "export"}, None),
    *[
        Case(f"sort by {key} {direction}", {"sort": key, "dir": direction}, PARENT)
        for key in SORTABLE
        if key != "created"
        for direction in ("desc", "asc")
    ],
    Case("own jobs sorted by name", {"sort": "name", "dir": "asc"}, RUN_BY, owner=True),
]


# -- data ----------------------------------------------------------------------------------------


def _seed(engine: sa.Engine) -> dict[str, str]:
    """JOBS jobs over a month: three users, four types, every status, system jobs, parents."""
    base = utcnow().replace(year=2026, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    statuses = ["completed"] * 6 + ["failed", "stopped", "cancelled", "queued", "running"]
    rows = []
    for n in range(JOBS):
        created = base + timedelta(minutes=29 * n)
        status = statuses[n % len(statuses)]
        started = None if status in ("queued", "cancelled") else created + timedelta(seconds=n % 50)
        ended = started + timedelta(seconds=n % 300) if started and status != "running" else None
        kind = ("import", "export", "mass_edit", "report")[n % 4]
        rows.append(
            {
                "id": str(uuid.UUID(int=n + 1)),
                "name": f"{kind.title()} {('invoices', 'products', 'prices')[n % 3]} {n}",
                "type": kind,
                "category": kind if kind in ("import", "export") else "general",
                "task": f"tasks.{kind}",
                "params": {"file": f"file_{n}.csv"},
                "status": status,
                "is_system": n % 25 == 0,
                "queue_name": "jobmonitor",
                "parent_id": str(uuid.UUID(int=n - n % 10 + 1)) if n % 10 else None,
                "run_by_id": OWNER if n % 10 == 0 else str(1 + n % 2),  # the owner has one job in ten
                "run_by_name": "Clara" if n % 10 == 0 else f"User {1 + n % 2}",
                "created_at": created,
                "started_at": started,
                "ended_at": ended,
                "status_changed_at": ended or started or created,
                "error_count": n % 7,
                "progress_done": n % 100,
            }
        )
    with engine.begin() as connection:
        connection.execute(job_table.insert(), rows)
        big = rows[-1]["id"]
        connection.execute(
            step_table.insert(),
            [{"job_id": big, "position": p, "name": f"step {p}", "status": "pending"} for p in (1, 2)],
        )
        running = rows[-5]["id"]  # a running job part way through: the JSON's time left reads history
        assert rows[-5]["status"] == "running"
        connection.execute(
            step_table.insert(),
            [
                {"job_id": running, "position": 1, "name": "step 1", "status": "running", "done": 5, "total": 10},
                {"job_id": running, "position": 2, "name": "step 2", "status": "pending", "done": 0, "total": None},
            ],
        )
        connection.execute(
            subtask_table.insert(),
            [{"job_id": big, "name": f"line {n}", "status": "done", "created_at": base} for n in range(200)],
        )
        connection.execute(
            log_table.insert(),
            [
                {"job_id": big, "created_at": base, "level": 20, "logger": "t", "message": f"row {n}"}
                for n in range(200)
            ],
        )
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE")
    if engine.dialect.name in ("mysql", "mariadb"):
        # InnoDB prices a table scan by the table's pages, whatever its statistics say: a step
        # table of four rows is read whole. Here the jobs have their steps, as real jobs do.
        with engine.begin() as connection:
            connection.execute(
                step_table.insert(),
                [
                    {"job_id": row["id"], "position": 10 + p, "name": f"stage {p}", "status": "completed"}
                    for row in rows[: JOBS - 10]
                    for p in (1, 2, 3)
                ],
            )
            connection.exec_driver_sql("ANALYZE TABLE jobmonitor_job, jobmonitor_step")
    middle = rows[JOBS // 2]
    cursor = f"{middle['created_at']:%Y%m%dT%H%M%S.%f}_{middle['id']}"
    return {
        "PARENT": rows[10]["id"],
        "CURSOR": cursor,
        "ID_PREFIX": middle["id"][:8],
        "BIG": big,
        "RUNNING": running,
    }


@pytest.fixture(scope="module")
def seeded(shared_app: Flask) -> dict[str, str]:
    with shared_app.app_context():
        engine = db.engine
        with engine.begin() as connection:
            for table in (log_table, subtask_table, step_table, job_table):
                connection.execute(table.delete())
        return _seed(engine)


@pytest.fixture
def plan_app(shared_app: Flask, seeded: dict[str, str]) -> Iterator[Flask]:
    """The shared app holding the seeded jobs (seeded again if another module emptied them)."""
    with shared_app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            count = connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar()
        if count != JOBS:
            with engine.begin() as connection:
                for table in (log_table, subtask_table, step_table, job_table):
                    connection.execute(table.delete())
            seeded.update(_seed(engine))
    yield shared_app


# -- capturing and explaining ------------------------------------------------------------------


@contextmanager
def captured(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT ``engine`` sends while the block runs, with its parameters."""
    statements: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


@dataclass
class Plan:
    """A plan flattened to what the rules read."""

    text: str  # SQLite: the EXPLAIN QUERY PLAN lines; PostgreSQL and MariaDB: the JSON
    nodes: list[dict[str, Any]]  # PostgreSQL (MariaDB) nodes, each with "_above": the node types above it


_explains: list[str] = []


def explain(connection: sa.Connection, statement: str, parameters: Any, *, bitmaps: bool = False) -> Plan:
    if connection.dialect.name == "sqlite":
        # a fresh statement text each time: pysqlite's statement cache could hand back a plan
        # compiled before an index was dropped
        _explains.append(statement)
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN /* {len(_explains)} */ " + statement, parameters).all()
        return Plan("\n".join(row[3] for row in rows), [])
    if connection.dialect.name in ("mysql", "mariadb"):
        return _mariadb_plan(connection, statement, parameters)
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    connection.exec_driver_sql(f"SET LOCAL enable_bitmapscan = {'on' if bitmaps else 'off'}")
    raw = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    document = raw if isinstance(raw, list) else json.loads(raw)
    nodes: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], above: tuple[str, ...]) -> None:
        nodes.append({**node, "_above": above})
        for child in node.get("Plans", []):
            walk(child, (*above, node["Node Type"]))

    walk(document[0]["Plan"], ())
    return Plan(json.dumps(document, indent=1), nodes)


def _mariadb_plan(connection: sa.Connection, statement: str, parameters: Any) -> Plan:
    """MariaDB's JSON plan as PostgreSQL-like nodes: each table read, each filesort."""
    raw = connection.exec_driver_sql("EXPLAIN FORMAT=JSON " + statement, parameters).scalar()
    document = json.loads(raw)
    nodes: list[dict[str, Any]] = []

    def walk(value: Any, above: tuple[str, ...]) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item, above)
            return
        if not isinstance(value, dict):
            return
        if "table_name" in value and "access_type" in value:
            kind = "Seq Scan" if value["access_type"] == "ALL" else "Index Scan"
            nodes.append(
                {
                    "Node Type": kind,
                    "Relation Name": value["table_name"],
                    "Index Name": value.get("key"),
                    "_access": value["access_type"],
                    "_key_parts": value.get("used_key_parts", []),
                    "_above": above,
                }
            )
        for key, child in value.items():
            if key == "filesort" or (key == "using_filesort" and child is True):
                nodes.append({"Node Type": "Sort", "Sort Key": [str(value.get("sort_key", "?"))], "_mariadb": True})
            walk(child, (*above, key))

    walk(document, ())
    return Plan(json.dumps(document, indent=1), nodes)


def violations(plan: Plan, *, index: str | tuple[str, ...] | None, ordered: bool, window: bool) -> list[str]:
    """What is wrong with ``plan`` (empty: nothing). ``index``: the index the query must use;
    ``ordered``: a page in creation order (no sort at all); ``window``: a sort is allowed only
    above a LIMIT (the window of newest jobs)."""
    found: list[str] = []
    indexes = (index,) if isinstance(index, str) else index
    if plan.nodes:  # PostgreSQL
        for node in plan.nodes:
            relation = node.get("Relation Name")
            if node["Node Type"] == "Seq Scan" and relation in BIG_TABLES:
                found.append(f"reads {relation} whole (Seq Scan)")
            if node["Node Type"] in ("Sort", "Incremental Sort"):
                if ordered:
                    found.append(f"sorts ({', '.join(node.get('Sort Key', []))}) instead of walking an index in order")
                elif window and not node.get("_mariadb") and not any(_under_limit(c) for c in node.get("Plans", [])):
                    found.append(f"sorts ({', '.join(node.get('Sort Key', []))}) over more than the window")
        used = {node.get("Index Name") for node in plan.nodes}
        if indexes is not None and not used & set(indexes):
            found.append(f"does not use {' or '.join(indexes)} (uses {sorted(i for i in used if i)})")
        return found
    lines = plan.text.splitlines()
    for line in lines:
        table = re.match(r"SCAN (\w+)$", line.strip())
        if table and table.group(1) in BIG_TABLES:
            found.append(f"reads {table.group(1)} whole ({line.strip()})")
        if ordered and "USE TEMP B-TREE FOR" in line and "ORDER BY" in line:
            found.append(f"sorts instead of walking an index in order ({line.strip()})")
    sorts = any("TEMP B-TREE FOR ORDER BY" in line for line in lines)
    windowed = any(line.strip().startswith(("CO-ROUTINE window", "MATERIALIZE window")) for line in lines)
    if window and sorts and not windowed:
        found.append("sorts the matching jobs without a window")
    if indexes is not None and not any(f"INDEX {name} " in line + " " for line in lines for name in indexes):
        found.append(f"does not use {' or '.join(indexes)}")
    return found


@contextmanager
def dropped(engine: sa.Engine, index: str, table: str = "jobmonitor_job") -> Iterator[sa.Connection]:
    """A connection on which ``index`` (of ``table``) is dropped, in a transaction rolled back
    afterwards.

    pysqlite opens a transaction only before DML, so on SQLite the BEGIN is explicit: without
    it the DROP would be committed at once."""
    if engine.dialect.name in ("mysql", "mariadb"):
        with engine.connect() as connection:
            connection.exec_driver_sql(f"ALTER TABLE {table} ALTER INDEX {index} IGNORED")
            connection.commit()
            try:
                with connection.begin():
                    yield connection
            finally:
                connection.exec_driver_sql(f"ALTER TABLE {table} ALTER INDEX {index} NOT IGNORED")
                connection.commit()
        return
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        else:
            connection.begin()
        try:
            connection.exec_driver_sql(f'DROP INDEX "{index}"')
            yield connection
        finally:
            connection.exec_driver_sql("ROLLBACK")
            if engine.dialect.name != "sqlite":
                connection.rollback()
    with engine.connect() as connection:  # it really came back
        assert index in {i["name"] for i in sa.inspect(connection).get_indexes(table)}


def _under_limit(node: dict[str, Any]) -> bool:
    if node["Node Type"] == "Limit":
        return True
    return any(_under_limit(child) for child in node.get("Plans", []))


def _resolve(args: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    return {key: values.get(value, value) for key, value in args.items()}


def _page_statements(app: Flask, case: Case, values: dict[str, str]) -> list[tuple[str, Any]]:
    """The job-table queries one page of ``case`` runs (the page's ids, its probes, its window)."""
    engine = db.engine
    filters = parse_filters(_resolve(case.args, values))
    with captured(engine) as statements, engine.connect() as connection:
        fetch_page(connection, filters, visible_to=OWNER if case.owner else None, allow_system=True)
    # the rows of the page are then loaded by id, and their children counted by parent: both
    # are lookups of at most one page of ids, checked by the generic rule below
    return [s for s in statements if " IN (" not in s[0] and "IN (__[POSTCOMPILE" not in s[0]] or statements


def _explain_all(statements: list[tuple[str, Any]], **rules: Any) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    with db.engine.connect() as connection, connection.begin():
        for statement, parameters in statements:
            # GIN (the search) is read through bitmap scans only
            plan = explain(connection, statement, parameters, bitmaps="@@" in statement)
            found = violations(plan, **rules)
            if found:
                problems[statement] = [*found, plan.text]
    return problems


# -- the list ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_list_page_walks_its_index_without_reading_or_sorting_the_table(plan_app: Flask, seeded, case: Case):
    with plan_app.app_context():
        statements = _page_statements(plan_app, case, seeded)
        assert statements
        ordered = not case.window and case.index is not None
        if "system" in case.args and db.engine.dialect.name == "sqlite":
            ordered = True  # SQLite merges the two ordered walks without sorting
        first, *others = statements
        index = None if case.index is None else tuple(i for i in (case.index, case.also) if i)
        problems = _explain_all([first], index=index, ordered=ordered, window=case.window)
        problems.update(_explain_all(others, index=None, ordered=False, window=case.window))
        # SQLite's search walks FTS5's matches in document order, which is creation order: no sort
        matches = [statement for statement in statements if " MATCH " in statement[0]]
        if db.engine.dialect.name != "sqlite":
            matches = []  # MariaDB's MATCH ... AGAINST is the FULLTEXT index, checked as any search above
        if db.engine.dialect.name == "sqlite" and "q" in case.args:
            assert matches
        problems.update(_explain_all(matches, index=None, ordered=True, window=False))
    assert not problems, "\n\n".join(f"{sql}\n" + "\n".join(found) for sql, found in problems.items())


CURSORS = [case for case in CASES if "after" in case.args or "before" in case.args]


@pytest.mark.parametrize("case", CURSORS, ids=[case.name for case in CURSORS])
def test_a_page_from_a_cursor_starts_at_the_cursor_on_mariadb(plan_app: Flask, seeded, case: Case):
    """MariaDB takes no index range for a row comparison ``(created_at, id) < (...)``: it walked
    the whole prefix of the index from the newest job to the cursor. The keyset is written
    ``created_at <= t AND (created_at < t OR id < i)`` there (dialects.keyset_beyond), a range."""
    with plan_app.app_context():
        if db.engine.dialect.name not in ("mysql", "mariadb"):
            pytest.skip("PostgreSQL and SQLite answer the row comparison with a range (the cases above)")
        statement, parameters = _page_statements(plan_app, case, seeded)[0]
        with db.engine.connect() as connection:
            plan = explain(connection, statement, parameters)
    reads = [node for node in plan.nodes if node.get("Relation Name") == "jobmonitor_job"]
    assert reads, plan.text
    assert all(node["_access"] == "range" and "created_at" in node["_key_parts"] for node in reads), plan.text


SORTED = [case for case in CASES if case.args.get("sort", "created") != "created" and "q" not in case.args]


@pytest.mark.parametrize("case", SORTED, ids=[case.name for case in SORTED])
def test_a_sorted_page_on_postgresql_reads_no_rows_in_any_order(plan_app: Flask, seeded, case: Case):
    """Every LIMIT of a sorted page on PostgreSQL comes with an ORDER BY: the window (its newest
    jobs, numbered) is one ordered walk. A LIMIT in any order lets the planner read every
    matching job in its own way, and it did: asked whether more than the window matched, it
    bitmap-read all 146,000 jobs of one user at 10M jobs (own-jobs sorts 163-178 ms in
    bench_list at 48638a7). The plan rules above price bitmap scans out, so they cannot see it."""
    with plan_app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite reads its window's count with a second look, in any order (listing._window_page)")
        filters = parse_filters(_resolve(case.args, seeded))
        with captured(db.engine) as statements, db.engine.connect() as connection:
            fetch_page(connection, filters, visible_to=OWNER if case.owner else None, allow_system=True)
    unordered = [sql for sql, _ in statements if re.search(r"\bLIMIT\b", sql) and not re.search(r"\bORDER BY\b", sql)]
    assert not unordered, "\n\n".join(unordered)


INDEXED = [case for case in CASES if case.index is not None]


@pytest.mark.parametrize("case", INDEXED, ids=[case.name for case in INDEXED])
def test_the_plan_check_fails_when_the_case_index_is_dropped(plan_app: Flask, seeded, case: Case):
    with plan_app.app_context():
        first = _page_statements(plan_app, case, seeded)[0]
        with dropped(db.engine, case.index) as connection:
            plan = explain(connection, *first)
            found = violations(plan, index=case.index, ordered=not case.window, window=case.window)
    assert found, f"dropping {case.index} went unnoticed:\n{plan.text}"


@pytest.mark.parametrize(
    "case", [c for c in INDEXED if not c.window and c.args.get("dir") != "asc"][:6], ids=lambda case: case.name
)
def test_the_plan_check_fails_when_the_order_puts_nulls_last_again(plan_app: Flask, seeded, case: Case):
    # the regression this file was written for: "created_at DESC NULLS LAST" has no index on
    # PostgreSQL (SQLite knows created_at is NOT NULL and still walks the index)
    with plan_app.app_context():
        if db.engine.dialect.name == "sqlite":
            pytest.skip("SQLite serves NULLS LAST on a NOT NULL column from the index")
        if db.engine.dialect.name in ("mysql", "mariadb"):
            pytest.skip("MariaDB has no NULLS LAST")
        statement, parameters = _page_statements(plan_app, case, seeded)[0]
        broken = re.sub(r"created_at (DESC|ASC)", r"created_at \1 NULLS LAST", statement)
        assert broken != statement
        with db.engine.connect() as connection, connection.begin():
            found = violations(explain(connection, broken, parameters), index=case.index, ordered=True, window=False)
    assert found


def test_a_sort_without_the_window_is_reported(plan_app: Flask, seeded):
    # what the window prevents: a sort by name over every matching job
    unbounded = (
        sa.select(job_table.c.id)
        .where(job_table.c.is_system.is_(False))
        .order_by(job_table.c.name.desc(), job_table.c.id.desc())
        .limit(51)
    )
    with plan_app.app_context(), db.engine.connect() as connection, connection.begin():
        compiled = unbounded.compile(connection)
        parameters = compiled.positiontup and tuple(compiled.params[name] for name in compiled.positiontup)
        found = violations(
            explain(connection, str(compiled), parameters or compiled.params), index=None, ordered=False, window=True
        )
    assert found


def test_the_all_matching_bulk_scope_walks_the_index(plan_app: Flask, seeded):
    with plan_app.app_context():
        engine = db.engine
        for args, index in (
            ({}, (PARENT, SYSTEM)),
            ({"status": "failed"}, STATUS),
            ({"system": "1"}, (PARENT, SYSTEM)),
        ):
            with captured(engine) as statements, engine.connect() as connection:
                matching_ids(connection, parse_filters(args), visible_to=None, allow_system=True, limit=1000)
            # MariaDB sorts the merged first rows of the ordinary and the system jobs (a window)
            merged = "system" in args and engine.dialect.name in ("mysql", "mariadb")
            problems = _explain_all(statements, index=index, ordered=not merged, window=merged)
            assert not problems, problems


@pytest.mark.parametrize(
    ("args", "index", "owner"),
    [
        ({}, PARENT, False),
        ({"children": "1"}, SYSTEM, False),
        ({"status": "running"}, STATUS, False),
        # from a cursor the system index is a range of only the newer jobs: as good a walk
        ({"type": "export"}, (TYPE, SYSTEM), False),
        ({"system": "1"}, PARENT, False),
        ({}, RUN_BY, True),
    ],
    ids=["top level", "children shown", "status", "type", "system jobs shown", "own jobs"],
)
def test_the_new_jobs_query_is_a_keyset_walk_of_the_list_index(plan_app: Flask, seeded, args, index, owner):
    # the live list asks every few seconds for the jobs newer than its newest row
    with plan_app.app_context():
        engine = db.engine
        raw = seeded["CURSOR"]
        since = Cursor.parse("since", raw)
        with captured(engine) as statements, engine.connect() as connection:
            newer_ids(connection, parse_filters(args), since, visible_to=OWNER if owner else None, allow_system=True)
        assert statements
        # both ordered walks of a system-jobs-shown merge are ordered; PostgreSQL sorts the
        # merged first rows above their LIMIT (the "window" rule), as MariaDB does
        window = "system" in args and engine.dialect.name != "sqlite"
        problems = _explain_all(statements, index=index, ordered=not window, window=window)
        assert not problems, "\n\n".join(f"{sql}\n" + "\n".join(found) for sql, found in problems.items())
        if isinstance(index, str):  # the rule can fail: without its index the walk is gone
            with dropped(engine, index) as connection:
                assert violations(explain(connection, *statements[0]), index=index, ordered=True, window=False)


def test_the_user_picker_reads_one_index_probe_per_user(plan_app: Flask, seeded):
    with plan_app.app_context():
        engine = db.engine
        with captured(engine) as statements, engine.connect() as connection:
            users = users_with_jobs(connection)
        assert [user_id for user_id, _name in users] == ["1", "2", "3"]
        assert dict(users)["3"] == "Clara"
        problems = _explain_all(statements, index=RUN_BY, ordered=False, window=False)
        assert not problems, problems


def test_postgresql_estimates_the_hidden_top_level_condition_from_its_statistics(plan_app: Flask, seeded):
    """With a filter that has its own index the list hides child jobs as
    ``coalesce(parent_id, '') = ''``, which no index takes. PostgreSQL must estimate it from the
    statistics models.py keeps of that expression: guessing 0.5 % made it sort a whole status at
    1,000,000 jobs (174 ms) instead of walking the status index (22 ms)."""
    with plan_app.app_context():
        engine = db.engine
        if engine.dialect.name != "postgresql":
            pytest.skip("SQLite keeps no statistics of expressions; its plan tests cover it")
        filters = parse_filters({"status": "failed"})
        with captured(engine) as statements, engine.connect() as connection:
            fetch_page(connection, filters, visible_to=None, allow_system=False)
            actual = connection.execute(
                sa.select(sa.func.count()).select_from(job_table).where(job_table.c.parent_id.is_(None))
            ).scalar_one()
        listing = [(sql, params) for sql, params in statements if "coalesce(jobmonitor_job.parent_id, '')" in sql]
        assert listing, "the status page no longer hides children with the coalesce form: update this test"
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM jobmonitor_job WHERE coalesce(parent_id, '') = ''"
            ).scalar_one()
        estimated = plan[0]["Plan"]["Plan Rows"]
        assert actual / 2 <= estimated <= actual * 2, (estimated, actual)


# -- the other pages, through HTTP -----------------------------------------------------------


def _request_statements(app: Flask, client: Any, url: str) -> list[tuple[str, Any]]:
    with app.app_context():
        engine = db.engine
    with captured(engine) as statements:
        response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return [s for s in statements if "jobmonitor_" in s[0]]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/jobs/BIG/",
        "/admin/jobs/BIG/?subtask_page=3&log_level=info&log_q=row",
        "/admin/jobs/PARENT/",
        "/jobmonitor/api/jobs?ids=BIG,PARENT",
        "/jobmonitor/api/jobs?ids=RUNNING,BIG",
        "/admin/jobs/rows?ids=BIG,PARENT&since=CURSOR",
        "/admin/jobs/rows?parent=PARENT&family=1",
        "/admin/jobs/",
        "/jobmonitor/api/jobs/BIG",
        "/jobmonitor/api/jobs/RUNNING",
        "/admin/job-statistics/",
        "/admin/job-statistics/?from=2025-12-01&to=2026-02-28",
        "/admin/job-statistics/?granularity=hour&from=2026-01-10&to=2026-01-12",
        "/admin/jobs/?q=invoices",
    ],
)
def test_no_page_reads_a_job_table_whole(plan_app: Flask, seeded, url: str):
    client = plan_app.test_client()
    with plan_app.app_context():
        if "from=2025-12-01" in url and db.engine.dialect.name in ("mysql", "mariadb"):
            pytest.skip(
                "the range holds every seeded job: MariaDB rightly reads them in a scan (no way to price it out)"
            )
    assert client.get("/_test/login/admin").status_code == 200
    for name, value in seeded.items():
        url = url.replace(name, value)
    statements = _request_statements(plan_app, client, url)
    assert statements
    with plan_app.app_context():
        problems = _explain_all(statements, index=None, ordered=False, window=False)
    assert not problems, "\n\n".join(f"{sql}\n" + "\n".join(found) for sql, found in problems.items())
