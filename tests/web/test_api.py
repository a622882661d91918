"""api.py: the JSON endpoints (live refresh, notifications) and file downloads, with real users,
real CSRF protection and jobs run by a real worker."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from redis import Redis

from flask_jobmonitor.records.live import LiveProgress, LiveStep, publish
from flask_jobmonitor.records.models import file_table, job_table, notification_table
from flask_jobmonitor.state import get_state
from flask_jobmonitor.timeutil import utcnow

from .. import tasks
from ..support.rows import add_job
from ..support.users import csrf_token
from ..support.web import at, enqueue
from ..support.workers import run_worker
from .test_details import TASK, add_step


@pytest.fixture
def jobs(engine) -> dict[str, str]:
    return {
        "a": add_job(engine, owner="clerk_a", name="Clerk A's import", status="running"),
        "b": add_job(engine, owner="clerk_b", name="Clerk B's export"),
        "system": add_job(engine, owner=None, name="Delete old jobs", is_system=True),
    }


# -- /api/jobs -------------------------------------------------------------------------------------


def summary_ids(response) -> set[str]:
    return {job["id"] for job in response.get_json()["jobs"]}


def test_jobs_summary_returns_only_visible_jobs_dropping_foreign_ids_silently(client_for, jobs):
    unknown = str(uuid.uuid4())
    ids = ",".join([jobs["a"], jobs["b"], jobs["system"], unknown, "not-an-id"])
    response = client_for("clerk_a").get(f"/jobmonitor/api/jobs?ids={ids}")
    assert response.status_code == 200
    assert summary_ids(response) == {jobs["a"]}
    job = response.get_json()["jobs"][0]
    assert (job["status"], job["status_label"], job["active"]) == ("running", "Running", True)
    assert response.get_json()["now"].endswith("Z")


def test_jobs_summary_of_a_view_all_user_holds_everyone_s_jobs_but_system_ones(client_for, jobs):
    ids = ",".join(jobs.values())
    assert summary_ids(client_for("auditor").get(f"/jobmonitor/api/jobs?ids={ids}")) == {jobs["a"], jobs["b"]}
    assert summary_ids(client_for("admin").get(f"/jobmonitor/api/jobs?ids={ids}")) == set(jobs.values())


def test_jobs_without_ids_is_the_job_list(client_for, jobs):
    response = client_for("clerk_a").get("/jobmonitor/api/jobs")
    assert response.status_code == 200
    assert summary_ids(response) == {jobs["a"]}


def test_jobs_summary_accepts_200_ids(client_for, jobs):
    ids = ",".join([jobs["a"]] + [str(uuid.uuid4()) for _ in range(199)])
    response = client_for("clerk_a").get(f"/jobmonitor/api/jobs?ids={ids}")
    assert response.status_code == 200
    assert summary_ids(response) == {jobs["a"]}


def test_jobs_summary_refuses_more_than_200_ids_with_json_400(client_for, jobs):
    ids = ",".join(str(uuid.uuid4()) for _ in range(201))
    response = client_for("clerk_a").get(f"/jobmonitor/api/jobs?ids={ids}")
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json() == {"error": "at most 200 ids per request"}


def test_jobs_summary_answers_anonymous_with_json_401(client_for, jobs):
    response = client_for(None).get(f"/jobmonitor/api/jobs?ids={jobs['a']}")
    assert response.status_code == 401
    assert response.is_json and "error" in response.get_json()


def test_jobs_summary_reports_children_progress(client_for, engine, jobs):
    add_job(engine, owner="clerk_a", parent_id=jobs["a"], status="completed")
    add_job(engine, owner="clerk_a", parent_id=jobs["a"], status="queued")
    job = client_for("clerk_a").get(f"/jobmonitor/api/jobs?ids={jobs['a']}").get_json()["jobs"][0]
    assert (job["children_done"], job["children_total"]) == (1, 2)


# -- /api/jobs/<id> --------------------------------------------------------------------------------


def test_job_detail_of_own_job(client_for, jobs):
    response = client_for("clerk_a").get(f"/jobmonitor/api/jobs/{jobs['a']}")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["name"], body["steps"], body["subtask_counts"]) == (jobs["a"], "Clerk A's import", [], {})
    assert set(body["actions"]) >= {"stop"}


@pytest.mark.parametrize("which", ["foreign", "system", "unknown", "malformed"])
def test_job_detail_of_a_job_the_user_may_not_see_answers_json_404(client_for, jobs, which):
    job_id = {"foreign": jobs["b"], "system": jobs["system"], "unknown": str(uuid.uuid4()), "malformed": "abc"}[which]
    response = client_for("clerk_a").get(f"/jobmonitor/api/jobs/{job_id}")
    assert response.status_code == 404
    assert response.is_json and "no job with id" in response.get_json()["error"]


def test_job_detail_answers_anonymous_with_json_401(client_for, jobs):
    response = client_for(None).get(f"/jobmonitor/api/jobs/{jobs['a']}")
    assert response.status_code == 401 and response.is_json


# -- time left, live progress and step looks in the JSON -------------------------------------------


@pytest.fixture
def halfway_import(engine) -> str:
    """Clerk A's running import: step 1 done, step 2 half done after 100 s, step 3 pending; past
    runs usually took 60 s for step 3."""
    now = utcnow()
    job_id = add_job(
        engine,
        owner="clerk_a",
        task=TASK,
        status="running",
        started_at=now,
        step_count=3,
        current_step=2,
        progress_done=50,
        progress_total=100,
        attempt=1,
    )
    add_step(engine, job_id, 1, "Read file", status="completed", started_at=now, ended_at=now, done=5, total=5)
    add_step(
        engine, job_id, 2, "Validate", status="running", started_at=now - timedelta(seconds=100), done=50, total=100
    )
    add_step(engine, job_id, 3, "Save")
    for _ in range(2):
        past = add_job(engine, owner="clerk_a", task=TASK, status="completed")
        add_step(engine, past, 1, "Save", status="completed", started_at=at(0), ended_at=at(1))
    return job_id


def test_job_detail_says_the_time_left_for_the_whole_job(client_for, halfway_import):
    body = client_for("clerk_a").get(f"/jobmonitor/api/jobs/{halfway_import}").get_json()
    assert body["remaining_seconds"] == pytest.approx(100 + 60, abs=5)  # 50 more items at 2 s, then Save
    assert body["remaining_text"] == "About 3 min left"


def test_jobs_summary_says_the_time_left_of_running_jobs_only(client_for, engine, halfway_import):
    queued = add_job(engine, owner="clerk_a", task=TASK)
    body = client_for("clerk_a").get(f"/jobmonitor/api/jobs?ids={halfway_import},{queued}").get_json()
    left = {job["id"]: (job["remaining_seconds"], job["remaining_text"]) for job in body["jobs"]}
    assert left[queued] == (None, "")
    assert left[halfway_import][0] == pytest.approx(160, abs=5)


def test_step_looks_in_the_json_are_those_of_the_badges(client_for, halfway_import):
    steps = client_for("clerk_a").get(f"/jobmonitor/api/jobs/{halfway_import}").get_json()["steps"]
    assert [(s["status_label"], s["status_colour"]) for s in steps] == [
        ("Completed", "success"),
        ("Running", "primary"),
        ("Pending", "light"),
    ]


def test_the_detail_page_shows_capitalised_step_badges_and_the_time_left(client_for, halfway_import):
    html = client_for("clerk_a").get(f"/admin/jobs/{halfway_import}/").get_data(as_text=True)
    assert '<span class="badge badge-success" data-jm-step-status="completed">' in html
    assert "</i> Completed</span>" in html and "</i> Pending</span>" in html
    assert ">completed</span>" not in html
    assert '<td data-jm="time-left">About 3 min left</td>' in html


def publish_live(app, job_id: str, attempt: int = 1, done: int = 80) -> None:
    step = LiveStep(2, "running", done, 100, {"valid": done}, None, None)
    publish(get_state(app).redis, job_id, LiveProgress(attempt, 2, done, 100, (step,)))


def test_a_blocked_jobs_live_progress_shows_in_both_json_answers(app, client_for, halfway_import):
    publish_live(app, halfway_import, done=80)
    client = client_for("clerk_a")
    detail = client.get(f"/jobmonitor/api/jobs/{halfway_import}").get_json()
    assert (detail["progress_done"], detail["steps"][1]["done"], detail["steps"][1]["counters"]) == (
        80,
        80,
        {"valid": 80},
    )
    assert detail["remaining_seconds"] == pytest.approx(25 + 60, abs=5)  # the rate of the live progress
    summary = client.get(f"/jobmonitor/api/jobs?ids={halfway_import}").get_json()["jobs"][0]
    assert summary["progress_done"] == 80
    html = client.get(f"/admin/jobs/{halfway_import}/").get_data(as_text=True)
    assert '<td data-jm="step-progress">80/100</td>' in html


@pytest.mark.parametrize("why", ["another attempt", "the job ended"])
def test_live_progress_of_another_run_or_an_ended_job_is_ignored(app, client_for, engine, halfway_import, why):
    if why == "the job ended":
        with engine.begin() as connection:
            connection.execute(sa.update(job_table).where(job_table.c.id == halfway_import).values(status="completed"))
        publish_live(app, halfway_import, attempt=1)
    else:
        publish_live(app, halfway_import, attempt=2)
    detail = client_for("clerk_a").get(f"/jobmonitor/api/jobs/{halfway_import}").get_json()
    assert (detail["progress_done"], detail["steps"][1]["done"]) == (50, 50)


def test_with_redis_down_the_json_shows_the_stored_progress(app, client_for, halfway_import, monkeypatch):
    publish_live(app, halfway_import, done=80)
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(get_state(app), "_redis", unreachable)
    client = client_for("clerk_a")
    detail = client.get(f"/jobmonitor/api/jobs/{halfway_import}")
    assert detail.status_code == 200
    assert (detail.get_json()["progress_done"], detail.get_json()["steps"][1]["done"]) == (50, 50)
    summary = client.get(f"/jobmonitor/api/jobs?ids={halfway_import}")
    assert summary.status_code == 200 and summary.get_json()["jobs"][0]["progress_done"] == 50


# -- notifications ---------------------------------------------------------------------------------


@pytest.fixture
def ended_jobs(app) -> dict[str, str]:
    """Jobs run by a real worker: clerk A's completes and fails, clerk B's completes, nobody's completes."""
    ids = {
        "a_completed": enqueue(app, tasks.noop, "clerk_a", name="A completes"),
        "a_failed": enqueue(app, tasks.fails, "clerk_a", name="A fails"),
        "b_completed": enqueue(app, tasks.noop, "clerk_b", name="B completes"),
        "nobody": enqueue(app, tasks.noop, None, name="Nobody's"),
    }
    run_worker(app)
    return ids


def unread(client) -> dict:
    response = client.get("/jobmonitor/api/notifications")
    assert response.status_code == 200
    return response.get_json()


def test_completed_and_failed_jobs_notify_the_user_who_ran_them(client_for, ended_jobs):
    body = unread(client_for("clerk_a"))
    assert body["unread"] == 2
    assert {(item["job_id"], item["event"], item["job_name"]) for item in body["items"]} == {
        (ended_jobs["a_completed"], "completed", "A completes"),
        (ended_jobs["a_failed"], "failed", "A fails"),
    }
    assert all(item["created_at"].endswith("Z") for item in body["items"])
    ids = [item["id"] for item in body["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first


def test_notifications_list_only_the_users_own(client_for, ended_jobs):
    body = unread(client_for("clerk_b"))
    assert [(item["job_id"], item["event"]) for item in body["items"]] == [(ended_jobs["b_completed"], "completed")]
    assert unread(client_for("admin")) == {"unread": 0, "items": []}


def test_notifications_answer_anonymous_with_json_401(client_for, ended_jobs):
    response = client_for(None).get("/jobmonitor/api/notifications")
    assert response.status_code == 401 and response.is_json


def test_marking_read_without_a_csrf_token_is_refused(client_for, ended_jobs):
    client = client_for("clerk_a")
    response = client.post("/jobmonitor/api/notifications/read", json={})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    response = client.post("/jobmonitor/api/notifications/read", json={}, headers={"X-CSRFToken": "forged"})
    assert response.status_code == 400
    assert unread(client)["unread"] == 2


def test_a_csrf_token_of_another_session_is_refused(client_for, ended_jobs):
    token_of_b = csrf_token(client_for("clerk_b"))
    client = client_for("clerk_a")
    response = client.post("/jobmonitor/api/notifications/read", json={}, headers={"X-CSRFToken": token_of_b})
    assert response.status_code == 400
    assert unread(client)["unread"] == 2


def test_marking_all_read_with_the_csrf_header_marks_only_the_callers(client_for, ended_jobs):
    client = client_for("clerk_a")
    response = client.post("/jobmonitor/api/notifications/read", json={}, headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 200
    assert response.get_json() == {"marked_read": 2}
    assert unread(client) == {"unread": 0, "items": []}
    assert unread(client_for("clerk_b"))["unread"] == 1


def test_marking_chosen_ids_read(client_for, ended_jobs):
    client = client_for("clerk_a")
    items = unread(client)["items"]
    response = client.post(
        "/jobmonitor/api/notifications/read",
        json={"ids": [items[0]["id"]]},
        headers={"X-CSRFToken": csrf_token(client)},
    )
    assert response.get_json() == {"marked_read": 1}
    assert [item["id"] for item in unread(client)["items"]] == [items[1]["id"]]


def test_marking_read_as_a_form_with_the_token_field(client_for, ended_jobs):
    client = client_for("clerk_a")
    first = unread(client)["items"][0]["id"]
    response = client.post(
        "/jobmonitor/api/notifications/read", data={"ids": str(first), "csrf_token": csrf_token(client)}
    )
    assert response.get_json() == {"marked_read": 1}


def test_marking_another_users_notifications_read_changes_nothing(client_for, ended_jobs):
    b_ids = [item["id"] for item in unread(client_for("clerk_b"))["items"]]
    client = client_for("clerk_a")
    response = client.post(
        "/jobmonitor/api/notifications/read", json={"ids": b_ids}, headers={"X-CSRFToken": csrf_token(client)}
    )
    assert response.get_json() == {"marked_read": 0}
    assert unread(client_for("clerk_b"))["unread"] == 1
    assert unread(client)["unread"] == 2


@pytest.mark.parametrize(
    "payload",
    [{"ids": ["one"]}, {"ids": "1,x"}, {"ids": [None]}, {"ids": 7}, {"ids": [10**30]}, [1, 2], "ids"],
    ids=["word", "comma-word", "null", "number", "huge", "list-body", "string-body"],
)
def test_marking_read_with_malformed_ids_answers_json_400(client_for, ended_jobs, payload):
    client = client_for("clerk_a")
    response = client.post(
        "/jobmonitor/api/notifications/read", json=payload, headers={"X-CSRFToken": csrf_token(client)}
    )
    assert response.status_code == 400
    assert response.is_json and "error" in response.get_json()
    assert unread(client)["unread"] == 2


def test_get_on_mark_read_is_not_allowed(client_for, ended_jobs):
    assert client_for("clerk_a").get("/jobmonitor/api/notifications/read").status_code == 405


def test_notifications_of_a_deleted_job_disappear(client_for, engine, ended_jobs):
    from flask_jobmonitor.records.models import job_table

    with engine.begin() as connection:
        connection.execute(sa.delete(job_table).where(job_table.c.id == ended_jobs["a_failed"]))
        left = connection.execute(
            sa.select(sa.func.count()).select_from(notification_table).where(notification_table.c.user_id == "3")
        ).scalar()
    assert left == 1
    assert unread(client_for("clerk_a"))["unread"] == 1


# -- downloads -------------------------------------------------------------------------------------


def download(client, file_id: object):
    """GET a file and read it to the end: the body is streamed with the request context, which
    stays pushed until the stream is consumed or closed (as a WSGI server does)."""
    response = client.get(f"/jobmonitor/files/{file_id}")
    response.get_data()
    response.close()
    return response


@pytest.fixture
def import_files(app, engine) -> dict[str, object]:
    """Clerk A's import, run by a real worker: its input, output and error report files."""
    job_id = enqueue(
        app, tasks.import_rows, "clerk_a", files={"rows.csv": b"a,1\nb,2\nc,3\n"}, bad_every=2, name="Import"
    )
    run_worker(app)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(file_table).where(file_table.c.job_id == job_id)).all()
    return {"job": job_id, **{row.filename: row for row in rows}}


def test_owner_downloads_a_file_as_an_attachment(client_for, import_files):
    for filename, content, kind in (
        ("rows.csv", b"a,1\nb,2\nc,3\n", "input"),
        ("errors.csv", b"b,2", "error_report"),
        ("summary.txt", b"done", "output"),
    ):
        row = import_files[filename]
        assert row.kind == kind
        response = download(client_for("clerk_a"), row.id)
        assert response.status_code == 200, filename
        assert response.data == content
        assert response.headers["Content-Disposition"] == f"attachment; filename={filename}"
        assert response.headers["Content-Length"] == str(len(content))
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_view_all_user_may_download_another_users_file(client_for, import_files):
    assert download(client_for("auditor"), import_files["rows.csv"].id).status_code == 200


def test_another_clerk_gets_404_for_a_file_of_a_job_it_cannot_see(client_for, import_files):
    response = download(client_for("clerk_b"), import_files["rows.csv"].id)
    assert response.status_code == 404
    assert b"a,1" not in response.data


def test_anonymous_may_not_download(client_for, import_files):
    response = download(client_for(None), import_files["rows.csv"].id)
    assert response.status_code == 401
    assert b"a,1" not in response.data


@pytest.mark.parametrize("file_id", ["999999", "0", "99999999999999999999"])
def test_unknown_file_id_answers_404(client_for, import_files, file_id):
    assert download(client_for("admin"), file_id).status_code == 404


def test_a_file_whose_stored_copy_is_gone_answers_410(app, client_for, import_files):
    row = import_files["summary.txt"]
    get_state(app).storage.delete(row.storage_key)
    response = download(client_for("clerk_a"), row.id)
    assert response.status_code == 410
    assert "summary.txt" in response.get_data(as_text=True)


def test_a_file_name_outside_latin_1_is_sent_in_a_header_a_server_can_write(client_for, engine, app):
    # WSGI header values must be ISO-8859-1 (PEP 3333); real servers fail to send anything else
    filename = "Preisliste März 2026 €.csv"
    job_id = add_job(engine, owner="clerk_a")
    key, size = get_state(app).storage.save(job_id, b"x")
    with engine.begin() as connection:
        file_id = connection.execute(
            sa.insert(file_table)
            .values(
                job_id=job_id,
                kind="output",
                filename=filename,
                content_type="text/csv",
                size=size,
                storage_key=key,
                created_at=at(0),
            )
            .returning(file_table.c.id)
        ).scalar_one()
    response = download(client_for("clerk_a"), file_id)
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    disposition.encode("latin-1")  # raises UnicodeEncodeError if a server could not send it
    assert "filename*=UTF-8''" + quote(filename) in disposition


def test_a_quote_in_a_file_name_cannot_break_out_of_the_header(client_for, engine, app):
    job_id = add_job(engine, owner="clerk_a")
    key, size = get_state(app).storage.save(job_id, b"x")
    with engine.begin() as connection:
        file_id = connection.execute(
            sa.insert(file_table)
            .values(
                job_id=job_id,
                kind="output",
                filename='a"; filename=evil.exe',
                content_type="text/csv",
                size=size,
                storage_key=key,
                created_at=at(0),
            )
            .returning(file_table.c.id)
        ).scalar_one()
    disposition = download(client_for("clerk_a"), file_id).headers["Content-Disposition"]
    assert disposition == 'attachment; filename="a\\"; filename=evil.exe"'


def test_the_list_and_its_live_rows_show_the_live_progress_and_the_time_left(app, client_for, halfway_import):
    """The job list, like the detail page, lays a blocked job's live progress over the stored
    one and says its time left; the live refresh of its rows does the same."""
    client = client_for("clerk_a")
    before = client.get("/admin/jobs/").get_data(as_text=True)
    assert "About 3 min left" in before  # 50 more items at 2 s, then Save
    publish_live(app, halfway_import, done=80)
    page = client.get("/admin/jobs/").get_data(as_text=True)
    rows = client.get(f"/admin/jobs/rows?ids={halfway_import}").get_json()["html"]
    for html in (page, rows):
        assert "step 2/3 · 80/100" in html
        assert "About 1 min left" in html  # 20 more items at the live rate, then Save
