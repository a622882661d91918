"""The audit trail (jobs/audit.py) as people leave it and read it: actions through the job pages
and the JSON API write one entry each (a bulk action one per job, sharing a batch), with who and
from where; the entries outlive the jobs; the page is for ``jobmonitor.view_audit`` only, filters
by person, action, job and day, and pages by entry id."""

from __future__ import annotations

import re
from html import unescape

import sqlalchemy as sa

from flask_jobmonitor.records.models import audit_table

from ..support.rows import add_job
from ..support.users import csrf_token


def entries(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(audit_table).order_by(audit_table.c.id)).all())


def test_an_action_through_the_api_writes_who_what_which_job_and_from_where(app, engine, client_for):
    job_id = add_job(engine, owner="clerk_a", status="queued", name="Import products.csv", task="tests.tasks.noop")
    admin = client_for("admin")

    response = admin.post(
        f"/jobmonitor/api/jobs/{job_id}/cancel",
        headers={"X-CSRFToken": csrf_token(admin)},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    [entry] = entries(engine)
    assert (entry.actor_id, entry.actor_name, entry.action) == ("1", "Ada Admin", "cancel")
    assert (entry.job_id, entry.job_name, entry.job_task, entry.job_owner) == (
        job_id,
        "Import products.csv",
        "tests.tasks.noop",
        "Clara Clerk",
    )
    assert (entry.origin, entry.batch) == ("203.0.113.7", None)


def test_a_refused_or_forbidden_action_writes_nothing(app, engine, client_for):
    done = add_job(engine, owner="clerk_a", status="completed")
    other = add_job(engine, owner="clerk_b", status="queued")
    clerk = client_for("clerk_a")
    token = csrf_token(clerk)

    assert clerk.post(f"/jobmonitor/api/jobs/{done}/cancel", headers={"X-CSRFToken": token}).status_code == 409
    assert clerk.post(f"/jobmonitor/api/jobs/{other}/cancel", headers={"X-CSRFToken": token}).status_code == 404

    assert entries(engine) == []


def test_a_bulk_action_writes_an_entry_per_job_done_sharing_one_batch(app, engine, client_for):
    queued = [add_job(engine, owner="clerk_a", status="queued") for _ in range(3)]
    done = add_job(engine, owner="clerk_a", status="completed")
    admin = client_for("admin")

    response = admin.post(
        "/jobmonitor/api/jobs/bulk",
        json={"action": "cancel", "ids": [*queued, done]},
        headers={"X-CSRFToken": csrf_token(admin)},
    )

    assert response.status_code == 200
    written = entries(engine)
    assert sorted(entry.job_id for entry in written) == sorted(queued)  # the skipped one: none
    assert len({entry.batch for entry in written}) == 1 and written[0].batch is not None


def test_the_entries_outlive_the_deleted_job_and_the_page_says_it_was_deleted(app, engine, client_for):
    job_id = add_job(engine, owner="clerk_a", status="completed", name="Export prices")
    admin = client_for("admin")
    token = csrf_token(admin)
    assert admin.post(f"/jobmonitor/api/jobs/{job_id}/restart", headers={"X-CSRFToken": token}).status_code == 200
    assert admin.post(f"/jobmonitor/api/jobs/{job_id}/delete", headers={"X-CSRFToken": token}).status_code == 200

    written = entries(engine)
    assert [entry.action for entry in written] == ["restart", "delete"]
    assert written[0].detail.startswith("new job ")

    page = admin.get("/admin/job-audit/")
    assert page.status_code == 200
    text = unescape(page.get_data(as_text=True))
    rows = re.findall(r'<tr data-jm-audit="\d+">(.*?)</tr>', text, re.S)
    assert len(rows) == 2
    assert "Delete" in rows[0] and "Export prices" in rows[0] and "(deleted)" in rows[0]
    assert f'href="/admin/jobs/{job_id}/"' not in text  # no link to a job that is gone
    assert "Submit again" in rows[1] and "Ada Admin" in rows[1]


def test_only_people_holding_view_audit_open_the_page(app, client_for):
    assert client_for("admin").get("/admin/job-audit/").status_code == 200
    for who in ("manager", "auditor", "clerk_a"):
        assert client_for(who).get("/admin/job-audit/").status_code == 403, who
    anonymous = client_for(None).get("/admin/job-audit/")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert "Audit trail" in client_for("admin").get("/admin/jobs/").get_data(as_text=True)
    assert "Audit trail" not in client_for("manager").get("/admin/jobs/").get_data(as_text=True)


def _write(engine: sa.Engine, count: int, **values: object) -> None:
    from flask_jobmonitor.timeutil import utcnow

    rows = [
        {"created_at": utcnow(), "action": "stop", "actor_name": "Ada Admin", "origin": "code", **values}
        for _ in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(audit_table), rows)


def test_the_page_filters_by_person_action_and_job_and_pages_by_entry(app, engine, client_for):
    job_id = "0c21ce6e-56c8-4629-bc93-21c7d77653c5"
    _write(engine, 60, actor_name="Max Manager")
    _write(engine, 2, action="delete", job_id=job_id, job_name="Old import")
    admin = client_for("admin")

    def shown(url: str) -> list[str]:
        response = admin.get(url)
        assert response.status_code == 200, url
        return re.findall(r'<tr data-jm-audit="(\d+)"', response.get_data(as_text=True))

    first = shown("/admin/job-audit/")
    assert len(first) == 50 and first == sorted(first, key=int, reverse=True)
    page = admin.get("/admin/job-audit/").get_data(as_text=True)
    older = unescape(re.search(r'href="([^"]+)" data-jm="audit-older"', page).group(1))
    second = shown(older)
    assert len(second) == 12 and int(second[0]) < int(first[-1])
    assert len(shown("/admin/job-audit/?who=Max+Manager")) == 50
    assert len(shown("/admin/job-audit/?action=delete")) == 2
    assert len(shown(f"/admin/job-audit/?job={job_id}")) == 2
    assert len(shown(f"/admin/job-audit/?job={job_id.upper()}")) == 2  # an id pasted in capitals
    shown("/admin/job-audit/?from=2026-11-30&to=2026-11-30")  # one day, from = to: allowed (a 200)
    assert shown("/admin/job-audit/?who=Nobody") == []
    assert shown("/admin/job-audit/?from=2000-01-01&to=2000-01-02") == []


def test_garbage_filters_get_a_400_that_says_which(app, client_for):
    admin = client_for("admin")
    for query, says in (
        ("action=drop_table", "action must be one of"),
        ("job=../../etc", "job must be a job id"),
        ("before=-1", "before is not a position in the audit trail"),
        ("before=²", "before is not a position in the audit trail"),
        ("before=20260101T000000000000_99999999999999999999", "before is not a position in the audit trail"),
        ("from=yesterday", "from must be a date"),
        ("from=2026-12-01&to=2026-11-01", "from must be on or before to"),
        ("job=b3d07705", "job must be a job id"),
    ):
        response = admin.get(f"/admin/job-audit/?{query}")
        assert response.status_code == 400, query
        assert says in unescape(response.get_data(as_text=True)), query


# -- the plans of its queries ---------------------------------------------------------------------

CREATED = "ix_jobmonitor_audit_created"
#: (name, query, the indexes its page may walk in order).
PLAN_CASES = [
    ("every entry", "", {CREATED}),
    ("older page", "before=20991231T000000000000_1500", {CREATED}),
    ("by person", "who=Max+Manager", {"ix_jobmonitor_audit_actor"}),
    ("by action", "action=delete", {"ix_jobmonitor_audit_action"}),
    ("by job", "job=0c21ce6e-56c8-4629-bc93-21c7d77653c5", {"ix_jobmonitor_audit_job"}),
    ("by person and day", "who=Max+Manager&from=2026-01-01&to=2099-12-31", {"ix_jobmonitor_audit_actor"}),
    ("a day", "from=2026-01-01&to=2099-12-31", {CREATED}),
]


def _audit_plan_problems(
    engine: sa.Engine, statement: str, parameters: object, indexes: set[str], connection: sa.Connection | None = None
) -> list[str]:
    """What is wrong with the plan of one of the page's reads of the audit table: it must walk one
    of ``indexes`` in order, sort nothing and read
    nothing whole. The people of the "who" filter (a DISTINCT over the newest entries) are only
    checked for reading nothing whole."""
    from .test_list_plans import explain

    if connection is not None:
        plan = explain(connection, statement, parameters)
    else:
        with engine.connect() as fresh, fresh.begin():
            plan = explain(fresh, statement, parameters)
    distinct = "DISTINCT" in statement
    problems = []
    if plan.nodes:  # PostgreSQL
        for node in plan.nodes:
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "jobmonitor_audit":
                problems.append("reads jobmonitor_audit whole")
            if node["Node Type"] in ("Sort", "Incremental Sort") and not distinct:
                problems.append(f"sorts ({', '.join(node.get('Sort Key', []))})")
        used = {node.get("Index Name") for node in plan.nodes}
        if not distinct and not used & indexes:
            problems.append(f"does not walk {sorted(indexes)} (uses {sorted(i for i in used if i)})")
        return problems
    text = plan.text
    if not distinct:
        if "USE TEMP B-TREE FOR ORDER BY" in text:
            problems.append(f"sorts: {text}")
        if not any(f"INDEX {name} " in text + " " for name in indexes):
            problems.append(f"does not walk {sorted(indexes)}: {text}")
    return problems


def _seed_people(engine: sa.Engine) -> None:
    """4,000 entries of 40 people taking turns, and 10 of Max Manager (a rare deletes of one job
    among them): a filter by a person, an action or a job that picks few entries must walk its
    own index, where a walk of the primary key would read the whole trail. With the statistics."""
    from flask_jobmonitor.timeutil import utcnow

    job_id = "0c21ce6e-56c8-4629-bc93-21c7d77653c5"
    rows = [
        {"created_at": utcnow(), "action": "stop", "actor_name": f"Person {n % 40}", "origin": "code"}
        for n in range(4000)
    ]
    rows[100:4000:400] = [
        {"created_at": utcnow(), "action": "delete", "actor_name": "Max Manager", "origin": "code", "job_id": job_id}
    ] * 10
    with engine.begin() as connection:
        connection.execute(sa.insert(audit_table), [{"job_id": None, **row} for row in rows])
    # VACUUM too: the rows earlier tests deleted would still count in the indexes' costs
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name in ("sqlite", "postgresql"):
            connection.exec_driver_sql(
                "ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE jobmonitor_audit"
            )
    if engine.dialect.name in ("mysql", "mariadb"):
        # InnoDB prices a scan by the table's real size, whatever its statistics say: 4,000 rows
        # are read and sorted. 100,000 older entries of the same people (MariaDB's sequence
        # engine writes them in a second) make it the long trail the plans are for.
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO jobmonitor_audit (created_at, action, actor_name, origin) "
                "SELECT UTC_TIMESTAMP(6) - INTERVAL 1 DAY - INTERVAL seq SECOND, 'stop', "
                "CONCAT('Person ', seq MOD 40), 'code' FROM seq_1_to_100000"
            )
            connection.exec_driver_sql("ANALYZE TABLE jobmonitor_audit")


def test_every_query_of_the_page_walks_an_index_in_order(app, engine, client_for):
    import pytest

    from .test_list_plans import captured

    _seed_people(engine)
    admin = client_for("admin")
    problems: dict[str, list[str]] = {}
    for name, query, indexes in PLAN_CASES:
        with captured(engine) as statements:
            assert admin.get(f"/admin/job-audit/?{query}").status_code == 200, name
        audit_reads = [(sql, params) for sql, params in statements if "jobmonitor_audit" in sql]
        assert audit_reads, name
        for sql, params in audit_reads:
            found = _audit_plan_problems(engine, sql, params, indexes)
            if found:
                problems[f"{name}: {sql[:120]}"] = found
    if problems:
        pytest.fail("\n".join(f"{name}: {found}" for name, found in problems.items()))


def test_the_plan_check_fails_without_the_persons_index(app, engine, client_for):
    from .test_list_plans import captured, dropped

    _seed_people(engine)
    with captured(engine) as statements:
        assert client_for("admin").get("/admin/job-audit/?who=Max+Manager").status_code == 200
    [(page_sql, params)] = [(sql, p) for sql, p in statements if "jobmonitor_audit.actor_name =" in sql]
    assert _audit_plan_problems(engine, page_sql, params, {"ix_jobmonitor_audit_actor"}) == []
    with dropped(engine, "ix_jobmonitor_audit_actor", table="jobmonitor_audit") as connection:
        problems = _audit_plan_problems(engine, page_sql, params, {"ix_jobmonitor_audit_actor"}, connection)
    assert problems and "does not walk" in problems[-1]
