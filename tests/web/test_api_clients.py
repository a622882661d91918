"""The JSON API as a machine client uses it: the job list with the page's filters and cursor
pages, launching a registered task (JSON and files), acting on the launched job, with an API
token (no CSRF) or a session cookie (CSRF), and every bad input answered with a JSON 4xx that
leaves nothing half-written."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from flask_jobmonitor.records.models import audit_table, file_table, job_table
from flask_jobmonitor.timeutil import utcnow

from .. import tasks
from ..support.apps import token_user
from ..support.rows import add_job
from ..support.users import ROLE_PERMISSIONS, USERS, csrf_token
from ..support.workers import run_worker

API = "/jobmonitor/api"


def token(who: str) -> dict[str, str]:
    """The headers of a machine client holding ``who``'s API token (tests/support/apps.token_user)."""
    return {"Authorization": f"Bearer token-{who}"}


def jobs_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar_one()


# -- the list ------------------------------------------------------------------------------------------


@pytest.fixture
def many(engine) -> dict[str, list[str]]:
    """Clerk A's 5 imports and 3 exports, clerk B's 2 exports, a system job; created a minute apart."""
    base = utcnow() - timedelta(hours=1)
    made: dict[str, list[str]] = {"a": [], "b": [], "system": []}
    for minute in range(8):
        kind = "import" if minute < 5 else "export"
        made["a"].append(
            add_job(
                engine,
                owner="clerk_a",
                name=f"A {kind} {minute}",
                type=kind,
                created_at=base + timedelta(minutes=minute),
            )
        )
    for minute in range(2):
        made["b"].append(
            add_job(
                engine,
                owner="clerk_b",
                name=f"B export {minute}",
                type="export",
                created_at=base + timedelta(minutes=20 + minute),
            )
        )
    made["system"].append(add_job(engine, owner=None, name="Delete old jobs", is_system=True, created_at=base))
    return made


def test_an_own_jobs_client_pages_through_its_jobs_newest_first_by_cursor(app, many):
    client = app.test_client()
    seen: list[str] = []
    url: str | None = f"{API}/jobs?per_page=3"
    pages = 0
    while url:
        response = client.get(url, headers=token("clerk_a"))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        seen += [job["id"] for job in body["jobs"]]
        assert all(job["run_by_name"] == "Clara Clerk" for job in body["jobs"])
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == list(reversed(many["a"]))  # newest first, none twice, none of clerk B's
    assert "after=" in client.get(f"{API}/jobs?per_page=3", headers=token("clerk_a")).get_json()["next"]


def test_the_list_takes_the_page_s_filters_and_sorts(app, many):
    client = app.test_client()

    def ids(query: str, who: str = "admin") -> list[str]:
        response = client.get(f"{API}/jobs?{query}", headers=token(who))
        assert response.status_code == 200, response.get_data(as_text=True)
        return [job["id"] for job in response.get_json()["jobs"]]

    assert set(ids("type=import")) == set(many["a"][:5])
    assert set(ids("type=export")) == set(many["a"][5:] + many["b"])
    assert ids("type=export", who="clerk_b") == list(reversed(many["b"]))
    assert many["system"][0] in ids("system=1")
    assert many["system"][0] not in ids("system=1", who="auditor")  # not theirs to see
    assert ids("sort=name&dir=asc&type=export")[0] == many["a"][5]  # "A export 5"
    assert ids("q=export 6") == [many["a"][6]]
    first = client.get(f"{API}/jobs?per_page=2&sort=name", headers=token("admin")).get_json()
    assert "page=2" in first["next"]


def test_a_job_in_the_list_says_what_the_client_may_do(app, many):
    body = app.test_client().get(f"{API}/jobs?per_page=1", headers=token("clerk_a")).get_json()
    job = body["jobs"][0]
    assert job["actions"] == ["cancel", "set_low_priority"]  # queued, their own: not delete
    assert job["html"] == {}  # no HTML unless asked for
    assert set(job) >= {"name", "type", "task", "status", "status_label", "created_at", "remaining_seconds"}


@pytest.mark.parametrize(
    "query, words",
    [
        ("status=exploded", "status must be one of"),
        ("per_page=0", "per_page must be between"),
        ("after=yesterday", "after is not a position"),
        ("from=2026-13-01", "from"),
        ("sort=name&after=20260101T000000.000000_x", "after, before and last page"),
    ],
)
def test_a_filter_that_makes_no_sense_is_a_json_400(app, many, query, words):
    response = app.test_client().get(f"{API}/jobs?{query}", headers=token("clerk_a"))
    assert response.status_code == 400
    assert words in response.get_json()["error"]


# -- tokens and CSRF -------------------------------------------------------------------------------------


def test_no_token_or_a_wrong_one_is_a_401_that_says_how_to_log_in(app, many):
    for headers in ({}, {"Authorization": "Bearer token-nobody"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = app.test_client().get(f"{API}/jobs", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in response.get_json()["error"]


def test_a_token_client_acts_without_csrf_but_a_cookie_session_still_needs_it(app, client_for, many):
    job_id = many["a"][0]
    by_token = app.test_client().post(f"{API}/jobs/{job_id}/cancel", headers=token("clerk_a"))
    assert by_token.status_code == 200, by_token.get_data(as_text=True)
    assert by_token.get_json()["status"] == "cancelled"

    browser = client_for("clerk_a")
    refused = browser.post(f"{API}/jobs/{many['a'][1]}/cancel")
    assert refused.status_code == 400
    assert "CSRF" in refused.get_json()["error"]
    # a cookie session that also sends a token is still a cookie session: Flask-Login reads the session first
    also_token = browser.post(f"{API}/jobs/{many['a'][1]}/cancel", headers=token("clerk_a"))
    assert also_token.status_code == 400
    allowed = browser.post(f"{API}/jobs/{many['a'][1]}/cancel", headers={"X-CSRFToken": csrf_token(browser)})
    assert allowed.status_code == 200


def test_a_token_holds_its_user_s_permissions_and_no_more(app, many):
    client = app.test_client()
    response = client.post(f"{API}/jobs/{many['b'][0]}/cancel", headers=token("clerk_a"))
    assert response.status_code == 404  # clerk B's job: as if it did not exist
    bulk = client.post(f"{API}/jobs/bulk", json={"action": "delete", "ids": many["a"][:2]}, headers=token("clerk_a"))
    assert bulk.status_code == 200
    assert bulk.get_json()["done"] == []  # owners may not delete: both skipped
    assert jobs_count(app_engine(app)) == 11


def app_engine(app):
    with app.app_context():
        return tasks.jobmonitor.state().engine


# -- launching -------------------------------------------------------------------------------------------


def test_a_client_lists_what_it_may_launch_with_the_parameters(app):
    client = app.test_client()
    names = {task["name"] for task in client.get(f"{API}/tasks", headers=token("clerk_a")).get_json()["tasks"]}
    assert "tests.tasks.greets" in names
    assert "tests.tasks.payroll" not in names  # needs payroll.run
    assert not any(name.startswith("jobmonitor.") for name in names)  # the retention job is launchable=False
    assert client.get(f"{API}/tasks", headers=token("clerk_b")).get_json()["tasks"] == []
    greets = next(
        task
        for task in client.get(f"{API}/tasks", headers=token("clerk_a")).get_json()["tasks"]
        if task["name"] == "tests.tasks.greets"
    )
    assert greets["parameters"] == [{"name": "name", "required": True, "keyword_only": False, "annotation": "str"}]
    assert greets["description"].startswith("Has a parameter called ``name``")
    assert greets["launch_url"] == f"{API}/tasks/tests.tasks.greets/jobs"


def test_a_clerk_launches_a_task_watches_it_run_and_finds_it_in_the_list(app, engine):
    client = app.test_client()
    response = client.post(
        f"{API}/tasks/tests.tasks.greets/jobs",
        json={"kwargs": {"name": "Zoë"}, "name": "Greet Zoë", "low_priority": True},
        headers=token("clerk_a"),
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    launched = response.get_json()
    assert launched["status"] == "queued"
    assert response.headers["Location"].endswith(f"/api/jobs/{launched['id']}")
    assert launched["page_url"] == f"/admin/jobs/{launched['id']}/"
    run_worker(app)
    job = client.get(launched["url"], headers=token("clerk_a")).get_json()
    assert (job["status"], job["name"], job["run_by_name"]) == ("completed", "Greet Zoë", "Clara Clerk")
    assert job["params"] == {"args": [], "kwargs": {"name": "Zoë"}}
    listed = client.get(f"{API}/jobs", headers=token("clerk_a")).get_json()["jobs"]
    assert [entry["id"] for entry in listed] == [launched["id"]]
    assert listed[0]["low_priority"] is True
    with engine.connect() as connection:
        stored = connection.execute(sa.select(job_table.c.run_at_url, job_table.c.params)).one()
    assert stored.run_at_url is None  # the API's address is no page a person launched it from
    assert stored.params == {"args": [], "kwargs": {"name": "Zoë"}}


def test_a_launch_with_files_stores_them_under_the_field_names(app, engine):
    client = app.test_client()
    response = client.post(
        f"{API}/tasks/tests.tasks.reads_input/jobs",
        data={
            "params": json.dumps({"kwargs": {"filename": "prices.csv"}}),
            "prices.csv": (io.BytesIO(b"sku;price\nA;1\n"), "Preise März.csv"),
        },
        headers=token("clerk_a"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    run_worker(app)
    job = client.get(response.get_json()["url"], headers=token("clerk_a")).get_json()
    assert job["status"] == "completed"
    with engine.connect() as connection:
        row = connection.execute(sa.select(file_table.c.filename, file_table.c.original_name)).one()
    assert (row.filename, row.original_name) == ("prices.csv", "Preise März.csv")


def test_a_task_with_its_own_permission_is_launched_only_by_who_holds_it(make_app):
    roles = {**ROLE_PERMISSIONS, "manager": ("jobmonitor.view_all", "payroll.run")}
    client = make_app(JOBMONITOR_ROLE_PERMISSIONS=roles).test_client()
    body = {"args": ["2026-11"]}
    for who in ("clerk_a", "admin"):  # jobmonitor.launch (admin: every permission of the package) is not payroll.run
        refused = client.post(f"{API}/tasks/tests.tasks.payroll/jobs", json=body, headers=token(who))
        assert refused.status_code == 404  # as if there were no such task: not theirs to know
        assert "no task you may launch" in refused.get_json()["error"]
    assert client.post(f"{API}/tasks/tests.tasks.payroll/jobs", json=body, headers=token("manager")).status_code == 201
    # and the manager, without jobmonitor.launch, sees only that task
    names = [task["name"] for task in client.get(f"{API}/tasks", headers=token("manager")).get_json()["tasks"]]
    assert names == ["tests.tasks.payroll"]


@pytest.mark.parametrize(
    "task, body, status, words",
    [
        ("tests.tasks.nothing_here", {}, 404, "no task you may launch is registered"),
        ("tests.tasks.greets", {"kwargs": {"nom": "x"}}, 400, "arguments do not fit"),
        ("tests.tasks.greets", {}, 400, "arguments do not fit"),
        ("tests.tasks.greets", {"args": "Zoë"}, 400, "args must be a JSON array"),
        ("tests.tasks.greets", {"kwargs": {"name": "x"}, "low_priority": 1}, 400, "low_priority must be true or false"),
        ("tests.tasks.greets", {"kwargs": {"name": "x", "ctx": 1}}, 400, "the job context is given by the worker"),
        ("tests.tasks.greets", {"kwargs": {"name": "x"}, "priority": "high"}, 400, "unknown keys 'priority'"),
        ("tests.tasks.greets", {"kwargs": {"name": "x"}, "name": "x" * 256}, 400, "name is longer"),
        ("tests.tasks.greets", ["Zoë"], 400, "send a JSON object"),
        ("tests.tasks.greets", {"kwargs": {"name": "x"}, "run_at_url": "javascript:alert(1)"}, 400, ""),
        ("jobmonitor.retention", {}, 404, "no task you may launch"),  # launchable=False, even for the admin
    ],
)
def test_a_launch_that_cannot_be_done_is_a_json_4xx_and_writes_nothing(app, engine, task, body, status, words):
    response = app.test_client().post(f"{API}/tasks/{task}/jobs", json=body, headers=token("admin"))
    assert response.status_code == status, response.get_data(as_text=True)
    assert words in response.get_json()["error"]
    assert jobs_count(engine) == 0
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(audit_table)).scalar_one() == 0


def test_malformed_json_other_media_and_too_big_files_are_refused_with_nothing_stored(make_app, engine, tmp_path):
    client = make_app(JOBMONITOR_MAX_UPLOAD_BYTES=1000).test_client()
    url = f"{API}/tasks/tests.tasks.reads_input/jobs"
    broken = client.post(url, data="{kwargs:", content_type="application/json", headers=token("clerk_a"))
    assert (broken.status_code, broken.get_json()["error"]) == (400, "the body is not valid JSON")
    nan = client.post(
        url, data='{"kwargs": {"filename": NaN}}', content_type="application/json", headers=token("clerk_a")
    )
    assert nan.status_code == 400
    other = client.post(url, data="filename=a", content_type="text/plain", headers=token("clerk_a"))
    assert other.status_code == 415
    big = client.post(
        url,
        data={"params": json.dumps({"kwargs": {"filename": "a.csv"}}), "a.csv": (io.BytesIO(b"x" * 5000), "a.csv")},
        content_type="multipart/form-data",
        headers=token("clerk_a"),
    )
    assert big.status_code == 413
    assert "error" in big.get_json()
    assert jobs_count(engine) == 0
    files_root = tmp_path / "files"
    assert not files_root.exists() or not any(path.is_file() for path in files_root.rglob("*"))


def test_a_cookie_session_launch_needs_the_csrf_token(client_for):
    browser = client_for("clerk_a")
    url = f"{API}/tasks/tests.tasks.noop/jobs"
    assert browser.post(url, json={}).status_code == 400
    assert browser.post(url, json={}, headers={"X-CSRFToken": csrf_token(browser)}).status_code == 201


# -- the review's findings -----------------------------------------------------------------------------------


def test_a_basic_auth_loader_or_a_cookie_beside_a_token_still_needs_csrf(make_app):
    """Browsers resend Basic credentials and cookies on their own: those requests are checked."""
    app = make_app()

    def basic_or_token(request: Any) -> Any:
        if request.authorization and request.authorization.type == "basic":
            return USERS.get(request.authorization.username or "")
        return token_user(request)

    app.login_manager.request_loader(basic_or_token)  # type: ignore[attr-defined]
    with app.app_context():
        job_id = add_job(tasks.jobmonitor.state().engine, owner="clerk_a")
    basic = {"Authorization": "Basic " + base64.b64encode(b"clerk_a:x").decode()}
    client = app.test_client()
    assert client.get(f"{API}/jobs", headers=basic).status_code == 200  # Basic logs in
    refused = client.post(f"{API}/jobs/{job_id}/cancel", headers=basic)
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]
    client.set_cookie("tracking", "1")
    assert client.post(f"{API}/jobs/{job_id}/cancel", headers=token("clerk_a")).status_code == 400
    assert app.test_client().post(f"{API}/jobs/{job_id}/cancel", headers=token("clerk_a")).status_code == 200


@pytest.mark.parametrize("path", ["/tasks/tests.tasks.noop/jobs", "/jobs/bulk", "/notifications/read"])
def test_json_nested_past_the_parser_s_limit_is_a_400(app, path):
    response = app.test_client().post(
        API + path, data="[" * 100_000, content_type="application/json", headers=token("clerk_a")
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.get_json()["error"]


def test_marking_notifications_read_refuses_what_it_cannot_read_and_marks_none_for_an_empty_list(app, engine, many):
    from flask_jobmonitor.records.models import notification_table

    with engine.begin() as connection:
        connection.execute(
            sa.insert(notification_table),
            [{"user_id": "3", "job_id": job_id, "event": "completed", "created_at": utcnow()} for job_id in many["a"]],
        )
    client = app.test_client()
    url = f"{API}/notifications/read"
    for body in ("{bad", '{"ids": [1,', '{"idz": [5]}', '{"ids": [true]}', '{"ids": "1,x"}'):
        response = client.post(url, data=body, content_type="application/json", headers=token("clerk_a"))
        assert response.status_code == 400, body
    assert client.post(url, json={"ids": []}, headers=token("clerk_a")).get_json() == {"marked_read": 0}
    assert client.get(f"{API}/notifications", headers=token("clerk_a")).get_json()["unread"] == 8
    assert client.post(url, json={}, headers=token("clerk_a")).get_json() == {"marked_read": 8}


def test_every_api_path_answers_in_json_even_for_a_wrong_method_or_an_unknown_address(app, many):
    client = app.test_client()
    for method, path, allowed in (
        ("get", f"/jobs/{many['a'][0]}/stop", "POST"),
        ("get", "/tasks/tests.tasks.noop/jobs", "POST"),
        ("delete", f"/jobs/{many['a'][0]}", "GET"),
        ("put", "/jobs", "GET"),
        ("get", "/jobs/bulk", "POST"),
    ):
        response = getattr(client, method)(API + path, headers=token("clerk_a"))
        assert (response.status_code, response.headers["Allow"], response.is_json) == (405, allowed, True), path
    unknown = client.get(f"{API}/nothing/here", headers=token("clerk_a"))
    assert unknown.status_code == 404 and "openapi.json" in unknown.get_json()["error"]


def test_a_file_of_a_job_the_user_may_not_see_answers_like_no_file_and_names_no_job(app, engine, many):
    from flask_jobmonitor.records.models import file_table

    with engine.begin() as connection:
        file_id = connection.execute(
            sa.insert(file_table)
            .values(
                job_id=many["b"][0],
                kind="output",
                filename="b.csv",
                content_type="text/csv",
                size=1,
                storage_key="x",
                created_at=utcnow(),
            )
            .returning(file_table.c.id)
        ).scalar_one()
    client = app.test_client()
    theirs = client.get(f"/jobmonitor/files/{file_id}", headers=token("clerk_a"))
    missing = client.get("/jobmonitor/files/99999", headers=token("clerk_a"))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.is_json and many["b"][0] not in theirs.get_data(as_text=True)


def test_a_cookie_session_s_form_post_launches_nothing(client_for, engine):
    browser = client_for("clerk_a")
    response = browser.post(f"{API}/tasks/tests.tasks.noop/jobs", data={"csrf_token": csrf_token(browser), "name": "x"})
    assert response.status_code == 415
    assert jobs_count(engine) == 0


def test_a_form_launch_with_params_sent_as_a_file_or_stray_fields_is_refused(app, engine):
    client = app.test_client()
    for data in (
        {"params": (io.BytesIO(b'{"kwargs": {}}'), "params.json")},
        {"params": "{}", "name": "stray"},
        {"params": '{"kwargs": '},
    ):
        response = client.post(
            f"{API}/tasks/tests.tasks.noop/jobs",
            data=data,
            content_type="multipart/form-data",
            headers=token("clerk_a"),
        )
        assert response.status_code == 400, data
    assert jobs_count(engine) == 0


def test_a_bulk_restart_says_which_new_job_restarts_which(app, engine):
    done = [add_job(engine, owner="clerk_a", status="completed", task="tests.tasks.noop") for _ in range(2)]
    response = app.test_client().post(
        f"{API}/jobs/bulk", json={"action": "restart", "ids": [*done, "not-an-id"]}, headers=token("clerk_a")
    )
    body = response.get_json()
    assert set(body["new_jobs"]) == set(done)
    assert all(new not in done for new in body["new_jobs"].values())
    assert body["skipped"] == [{"id": "not-an-id", "reason": "not found"}]


@pytest.mark.parametrize(
    "task, body, words",
    [
        ("tests.tasks.greets", {"kwargs": {"name": 5}}, "name must be str, got 5"),
        ("tests.tasks.greets", {"args": [["Zoë"]]}, "name must be str"),
        ("tests.tasks.checkpoints", {"kwargs": {"count": "ten"}}, 'count must be int, got "ten"'),
        ("tests.tasks.checkpoints", {"kwargs": {"count": True}}, "count must be int"),
        ("tests.tasks.advances_for", {"kwargs": {"seconds": "1"}}, "seconds must be float"),
        ("tests.tasks.noop", {"delay_seconds": -1}, "delay_seconds must be between"),
    ],
)
def test_values_that_do_not_fit_the_declared_types_are_refused_before_anything_is_written(
    app, engine, task, body, words
):
    response = app.test_client().post(f"{API}/tasks/{task}/jobs", json=body, headers=token("clerk_a"))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert words in response.get_json()["error"]
    assert jobs_count(engine) == 0


def test_values_that_fit_pass_and_a_delayed_launch_waits_for_its_time(app, engine):
    client = app.test_client()
    fits = client.post(
        f"{API}/tasks/tests.tasks.advances_for/jobs", json={"kwargs": {"seconds": 0}}, headers=token("clerk_a")
    )
    assert fits.status_code == 201  # an int where a float is declared
    later = client.post(f"{API}/tasks/tests.tasks.noop/jobs", json={"delay_seconds": 3600}, headers=token("clerk_a"))
    assert later.status_code == 201
    with engine.connect() as connection:
        enqueued_at = connection.execute(
            sa.select(job_table.c.enqueued_at).where(job_table.c.id == later.get_json()["id"])
        ).scalar_one()
    assert enqueued_at > utcnow() + timedelta(minutes=59)


def test_a_client_reads_a_job_s_subtasks_and_log_page_by_page(app, client_for):
    from ..support.web import enqueue

    rows = "\n".join(f"sku-{n};{n}" for n in range(1, 121)).encode()
    job_id = enqueue(app, tasks.import_rows, "clerk_a", bad_every=7, files={"rows.csv": rows})
    run_worker(app)
    client = app.test_client()
    first = client.get(f"{API}/jobs/{job_id}/subtasks", headers=token("clerk_a")).get_json()
    assert len(first["subtasks"]) == 50 and first["page"] == 1 and "page=2" in first["next"]
    seen = [row["id"] for row in first["subtasks"]]
    url = first["next"]
    while url:
        page = client.get(url, headers=token("clerk_a")).get_json()
        seen += [row["id"] for row in page["subtasks"]]
        url = page["next"]
    assert (
        len(seen)
        == len(set(seen))
        == sum(client.get(f"{API}/jobs/{job_id}", headers=token("clerk_a")).get_json()["subtask_counts"].values())
    )
    errors = client.get(f"{API}/jobs/{job_id}/subtasks?status=error", headers=token("clerk_a")).get_json()
    assert errors["subtasks"] and {row["status"] for row in errors["subtasks"]} == {"error"}
    logs = client.get(f"{API}/jobs/{job_id}/logs?level=info", headers=token("clerk_a")).get_json()
    assert logs["logs"] and all(row["level"] >= 20 for row in logs["logs"])
    assert client.get(f"{API}/jobs/{job_id}/logs?level=loud", headers=token("clerk_a")).status_code == 400
    assert client.get(f"{API}/jobs/{job_id}/subtasks", headers=token("clerk_b")).status_code == 404


def test_options_names_the_methods_a_path_takes(app):
    response = app.test_client().options(f"{API}/jobs/bulk", headers=token("clerk_a"))
    assert (response.status_code, response.headers["Allow"]) == (204, "POST, OPTIONS")


def test_a_scheme_browsers_send_on_their_own_cannot_be_a_token_scheme(make_app):
    from flask_jobmonitor.errors import ConfigError

    for schemes in (["Bearer", "Basic"], "Bearer", ["Negotiate"]):
        with pytest.raises(ConfigError, match="JOBMONITOR_TOKEN_SCHEMES"):
            make_app(JOBMONITOR_TOKEN_SCHEMES=schemes)


def test_a_token_of_a_scheme_not_named_as_a_token_scheme_still_needs_csrf(make_app):
    app = make_app()
    app.login_manager.request_loader(  # type: ignore[attr-defined]
        lambda request: USERS.get(request.headers.get("Authorization", "").partition(" ")[2])
    )
    with app.app_context():
        job_id = add_job(tasks.jobmonitor.state().engine, owner="clerk_a")
    client = app.test_client()
    assert client.post(f"{API}/jobs/{job_id}/cancel", headers={"Authorization": "Custom clerk_a"}).status_code == 400
    assert client.post(f"{API}/jobs/{job_id}/cancel", headers={"Authorization": "Bearer clerk_a"}).status_code == 200
