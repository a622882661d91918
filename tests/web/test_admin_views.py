"""The Flask-Admin pages (process tracker list, job detail, "My jobs") and the helpers a host puts on
its own pages, rendered by a real host app for users with different permissions."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from flask_jobmonitor.records.models import file_table, job_table

from .. import tasks
from ..support.rows import add_job
from ..support.users import USERS, csrf_token
from ..support.web import at, enqueue, listed_ids
from ..support.workers import run_worker


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def jobs(engine) -> dict[str, str]:
    return {
        "a_old": add_job(engine, owner="clerk_a", name="Import spring catalogue", created_at=at(0)),
        "a_new": add_job(engine, owner="clerk_a", name="Export prices", status="completed", created_at=at(2)),
        "b": add_job(engine, owner="clerk_b", name="Mass edit of shoes", status="failed", created_at=at(1)),
        "system": add_job(engine, owner=None, name="Delete old jobs", is_system=True, created_at=at(3)),
    }


# -- the list --------------------------------------------------------------------------------------


def test_list_shows_a_clerk_only_own_jobs(client_for, jobs):
    response = client_for("clerk_a").get("/admin/jobs/")
    assert response.status_code == 200
    assert listed_ids(response.get_data(as_text=True)) == [jobs["a_new"], jobs["a_old"]]
    assert "Mass edit of shoes" not in page_text(response)


def test_list_shows_the_other_clerk_only_its_job(client_for, jobs):
    response = client_for("clerk_b").get("/admin/jobs/")
    assert listed_ids(response.get_data(as_text=True)) == [jobs["b"]]


@pytest.mark.parametrize("who", ["auditor", "manager", "admin"])
def test_list_shows_view_all_users_every_users_jobs_but_no_system_jobs(client_for, jobs, who):
    response = client_for(who).get("/admin/jobs/")
    assert listed_ids(response.get_data(as_text=True)) == [jobs["a_new"], jobs["b"], jobs["a_old"]]
    assert "Clara Clerk" in page_text(response) and "Carl Clerk" in page_text(response)  # the "Run by" column


def test_list_shows_system_jobs_to_those_allowed_when_asked(client_for, jobs):
    assert jobs["system"] in listed_ids(client_for("admin").get("/admin/jobs/?system=1").get_data(as_text=True))
    assert jobs["system"] not in listed_ids(client_for("auditor").get("/admin/jobs/?system=1").get_data(as_text=True))


def test_list_filters_apply(client_for, jobs):
    response = client_for("auditor").get("/admin/jobs/?status=failed")
    assert listed_ids(response.get_data(as_text=True)) == [jobs["b"]]
    response = client_for("clerk_a").get("/admin/jobs/?q=spring")
    assert listed_ids(response.get_data(as_text=True)) == [jobs["a_old"]]


def test_list_of_a_user_without_jobs_says_so(client_for, jobs):
    response = client_for("manager").get("/admin/jobs/?user=no-such-user")
    assert response.status_code == 400
    assert "No user with id “no-such-user” has run a job: choose a user from the list." in page_text(response)


def test_job_names_are_escaped(client_for, engine):
    add_job(engine, owner="clerk_a", name="<script>alert(1)</script>")
    body = client_for("clerk_a").get("/admin/jobs/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=abc", "page must be a whole number, got 'abc'"),
        ("page=0", "page must be between 1 and 100000, got 0"),
        ("per_page=1000", "per_page must be between 1 and 200, got 1000"),
        ("status=done", "status must be one of"),
        ("group=all", "group must be one of processed, unprocessed; got 'all'"),
        ("sort=password", "sort must be one of"),
        ("dir=sideways", "dir must be one of asc, desc; got 'sideways'"),
        ("from=2026-13-01", "from must be a date like 2026-01-31, got '2026-13-01'"),
        ("from=2026-03-05&to=2026-03-01", "from must be on or before to"),
        ("q=" + "x" * 201, "q is longer than 200 characters"),
        ("q=a%00b", "q contains a NUL character"),
        ("user=%00", "user contains a NUL character"),
        ("to=9999-12-31", "to"),
        ("after=20260302T120000.000000_x%27--", "after is not a position in the job list"),
        ("before=tomorrow", "before is not a position in the job list"),
        ("after=20260302T120000.000000_abc&page=3", "page cannot be combined with after, before or last"),
        ("last=1&sort=duration", "after, before and last page through the list by creation time, not by duration"),
    ],
)
def test_malformed_list_filters_answer_400_with_the_message(client_for, jobs, query, message):
    response = client_for("clerk_a").get(f"/admin/jobs/?{query}")
    assert response.status_code == 400
    assert message in page_text(response)
    assert 'role="alert"' in response.get_data(as_text=True)


# -- access ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/admin/jobs/", "/admin/jobs/{job}/", "/admin/my-jobs/", "/admin/jobs/?status=failed"]
)
def test_anonymous_is_sent_to_the_login_view(client_for, jobs, path):
    path = path.format(job=jobs["a_old"])
    response = client_for(None).get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"][0].rstrip("?") == path


def test_anonymous_gets_403_without_a_login_view(app, client_for, jobs, monkeypatch):
    monkeypatch.setattr(app.login_manager, "login_view", None)
    assert client_for(None).get("/admin/jobs/").status_code == 403
    assert client_for(None).get(f"/admin/jobs/{jobs['a_old']}/").status_code == 403
    assert client_for(None).get("/admin/my-jobs/").status_code == 403


def test_anonymous_cannot_act_on_a_job_even_with_a_valid_csrf_token(client_for, engine, jobs):
    client = client_for(None)
    response = client.post(
        f"/admin/jobs/{jobs['a_old']}/action", data={"action": "cancel", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    with engine.connect() as connection:
        status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == jobs["a_old"])).scalar()
    assert status == "queued"


# -- the detail page -------------------------------------------------------------------------------


def test_detail_of_own_job_renders(client_for, jobs):
    response = client_for("clerk_a").get(f"/admin/jobs/{jobs['a_old']}/")
    assert response.status_code == 200
    assert "Import spring catalogue" in page_text(response)


def test_detail_of_another_users_job_answers_404(client_for, jobs):
    assert client_for("clerk_b").get(f"/admin/jobs/{jobs['a_old']}/").status_code == 404
    assert client_for("clerk_a").get(f"/admin/jobs/{jobs['b']}/").status_code == 404
    assert client_for("auditor").get(f"/admin/jobs/{jobs['b']}/").status_code == 200


def test_detail_of_a_system_job_needs_view_system(client_for, jobs):
    assert client_for("auditor").get(f"/admin/jobs/{jobs['system']}/").status_code == 404
    assert client_for("admin").get(f"/admin/jobs/{jobs['system']}/").status_code == 200


@pytest.mark.parametrize(
    "job_id",
    [
        "00000000-0000-0000-0000-000000000000",  # well formed, unknown
        "not-a-job",
        "1234",
        "00000000-0000-0000-0000-00000000000G",
        "../../etc/passwd",
        "%00",
        "x" * 300,
    ],
)
def test_detail_of_an_unknown_or_malformed_id_answers_404(client_for, jobs, job_id):
    assert client_for("admin").get(f"/admin/jobs/{job_id}/").status_code == 404


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("subtask_page=x", "subtask_page must be a whole number, got 'x'"),
        ("log_page=0", "log_page must be between 1 and 1000000, got 0"),
        ("children_page=-2", "children_page must be between 1 and 1000000, got -2"),
        ("log_level=loud", "log_level must be one of debug, info, warning, error; got 'loud'"),
        ("log_q=" + "y" * 201, "log_q is longer than 200 characters"),
        ("subtask_status=" + "s" * 33, "subtask_status is longer than 32 characters"),
        ("log_q=disk%00", "NUL"),
        ("subtask_status=error%00", "NUL"),
    ],
)
def test_malformed_detail_filters_answer_400_with_the_message(client_for, jobs, query, message):
    response = client_for("clerk_a").get(f"/admin/jobs/{jobs['a_old']}/?{query}")
    assert response.status_code == 400
    assert message in page_text(response)


@pytest.fixture
def finished_import(app, engine) -> dict[str, str]:
    """An import run by a real worker for clerk A (rows 3 and 6 rejected), a child of it and a restart."""
    job_id = enqueue(
        app,
        tasks.import_rows,
        "clerk_a",
        name="Import rows.csv",
        files={"rows.csv": b"a,1\nb,2\nc,3\nd,4\ne,5\nf,6\n"},
        bad_every=3,
    )
    run_worker(app)
    child = add_job(
        engine, owner="clerk_a", name="Post-process rows", parent_id=job_id, root_id=job_id, status="completed"
    )
    restart = add_job(engine, owner="clerk_a", name="Import rows.csv (again)", restarted_from_id=job_id)
    return {"job": job_id, "child": child, "restart": restart}


def test_detail_shows_steps_subtasks_logs_and_files(client_for, engine, finished_import):
    job_id = finished_import["job"]
    response = client_for("clerk_a").get(f"/admin/jobs/{job_id}/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    text = html.unescape(body)
    assert "Completed" in text
    # steps with their counters
    steps = re.findall(r'<tr data-step-position="(\d)">\s*<td>\d</td><td>([^<]+)</td>', body)
    assert steps == [("1", "Read file"), ("2", "Validate"), ("3", "Save")]
    assert "rejected: <strong>2</strong>" in body and "accepted: <strong>4</strong>" in body
    # subtasks, with counts per status
    assert "done: 4" in text and "error: 2" in text
    assert "<td>row 3</td><td>error</td><td>bad value 'c,3'</td>" in text
    # the log
    assert "saved 4 rows" in text
    # files, each with its download link
    with engine.connect() as connection:
        files = connection.execute(
            sa.select(file_table.c.id, file_table.c.filename, file_table.c.kind).where(file_table.c.job_id == job_id)
        ).all()
    assert {(f.filename, f.kind) for f in files} == {
        ("rows.csv", "input"),
        ("errors.csv", "error_report"),
        ("summary.txt", "output"),
    }
    for f in files:
        assert f'<a href="/jobmonitor/files/{f.id}" data-jm-file-kind="{f.kind}">{f.filename}</a>' in body
    assert body.index("rows.csv</a>") < body.index("summary.txt</a>") < body.index("errors.csv</a>")


def test_detail_lists_children_and_restarts_with_links(client_for, finished_import):
    job_id, child, restart = finished_import["job"], finished_import["child"], finished_import["restart"]
    body = client_for("clerk_a").get(f"/admin/jobs/{job_id}/").get_data(as_text=True)
    assert "Child jobs" in body
    assert f'<tr data-job-id="{child}">' in body
    assert f'<a href="/admin/jobs/{child}/">Post-process rows</a>' in body
    assert f'<a href="/admin/jobs/{restart}/">{restart[:8]}</a>' in body  # "Restarted as"


def test_detail_of_a_child_links_to_its_parent(client_for, finished_import):
    job_id, child = finished_import["job"], finished_import["child"]
    text = page_text(client_for("clerk_a").get(f"/admin/jobs/{child}/"))
    assert f'<a href="/admin/jobs/{job_id}/">Import rows.csv</a>' in text
    assert "<th>Parent</th>" in text


def test_detail_of_a_restart_links_to_the_original(client_for, finished_import):
    job_id, restart = finished_import["job"], finished_import["restart"]
    text = page_text(client_for("clerk_a").get(f"/admin/jobs/{restart}/"))
    assert "<th>Restart of</th>" in text
    assert f'<a href="/admin/jobs/{job_id}/">Import rows.csv</a>' in text


def test_detail_names_no_relative_the_user_may_not_open(client_for, engine):
    foreign_parent = add_job(engine, owner="clerk_b", name="Secret parent")
    child = add_job(engine, owner="clerk_a", name="My child", parent_id=foreign_parent)
    text = page_text(client_for("clerk_a").get(f"/admin/jobs/{child}/"))
    assert "<th>Parent</th>" in text and "a job you may not open" in text
    assert foreign_parent not in text and "Secret parent" not in text
    assert f'href="/admin/jobs/{foreign_parent}/"' not in text


def test_detail_grids_paginate_and_filter(client_for, finished_import):
    job_id = finished_import["job"]
    client = client_for("clerk_a")
    text = page_text(client.get(f"/admin/jobs/{job_id}/?subtask_status=error"))
    assert "<td>row 3</td>" in text and "<td>row 6</td>" in text and "<td>row 1</td>" not in text
    text = page_text(client.get(f"/admin/jobs/{job_id}/?log_q=nothing-like-this"))
    assert "No log lines." in text
    text = page_text(client.get(f"/admin/jobs/{job_id}/?subtask_page=2"))
    assert "<td>row 1</td>" not in text


# -- "My jobs" and the host's helpers --------------------------------------------------------------


def test_my_jobs_shows_the_users_own_jobs(client_for, jobs):
    response = client_for("clerk_a").get("/admin/my-jobs/")
    assert response.status_code == 200
    text = page_text(response)
    assert "Import spring catalogue" in text and "Export prices" in text
    assert "Mass edit of shoes" not in text


def test_my_jobs_of_an_auditor_holds_only_its_own_jobs(client_for, jobs):
    text = page_text(client_for("auditor").get("/admin/my-jobs/"))
    assert "You have not run any job yet." in text
    assert "Import spring catalogue" not in text


def test_widget_and_notifications_render_in_a_host_template(client_for, jobs):
    response = client_for("clerk_a").get("/_test/page")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    # the "My jobs" box, with links to the detail pages
    assert "My jobs" in body
    assert f'href="/admin/jobs/{jobs["a_old"]}/"' in body and f'href="/admin/jobs/{jobs["a_new"]}/"' in body
    assert jobs["b"] not in body
    # the running job offers the actions its owner may take there
    assert 'data-jm-action-button="cancel"' in body
    # the bell, wired to the JSON endpoints
    assert 'data-jm-notifications-url="/jobmonitor/api/notifications"' in body
    assert 'data-jm-read-url="/jobmonitor/api/notifications/read"' in body
    assert re.search(r'data-jm-csrf="[^"]+"', body)


def test_helpers_render_nothing_personal_for_anonymous(client_for, jobs):
    body = client_for(None).get("/_test/page").get_data(as_text=True)
    assert "jm-notifications" not in body
    assert "You have not run any job yet." in body
    assert all(job_id not in body for job_id in jobs.values())


def test_admin_pages_carry_the_notification_bell(client_for, jobs):
    body = client_for("clerk_a").get("/admin/jobs/").get_data(as_text=True)
    assert 'data-jm-notifications-url="/jobmonitor/api/notifications"' in body


# -- flash on enqueue ------------------------------------------------------------------------------


def test_enqueue_in_a_request_flashes_job_started_with_a_link_to_its_page(client_for, engine):
    client = client_for("clerk_a")
    response = client.get("/_test/start")
    assert response.status_code == 302
    with engine.connect() as connection:
        job_id, run_by = connection.execute(sa.select(job_table.c.id, job_table.c.run_by_id)).one()
    assert run_by == USERS["clerk_a"].id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f'Job “Export &lt;prices&gt;” started. <a href="/admin/jobs/{job_id}/">Follow it</a>.' in page
    # flashed once: the next page no longer shows it
    assert "Follow it" not in client.get("/admin/jobs/").get_data(as_text=True)


def test_enqueue_outside_a_request_flashes_nothing(app, client_for):
    enqueue(app, tasks.noop, "clerk_a")
    client = client_for("clerk_a")
    assert "started." not in client.get("/admin/jobs/").get_data(as_text=True)


# -- paging at scale: links, windows, dead ends ------------------------------------------------


def test_the_list_pages_by_links_a_person_can_bookmark(client_for, engine):
    names = [f"export {n:02d}" for n in range(7)]
    for minute, name in enumerate(names):
        add_job(engine, owner="clerk_a", name=name, created_at=at(minute))
    client = client_for("clerk_a")
    first = client.get("/admin/jobs/?per_page=3").get_data(as_text=True)
    assert "export 06" in first and "export 04" in first and "export 03" not in first
    older = re.search(r'href="([^"]*after=[^"]*)"[^>]*>Older<', first).group(1).replace("&amp;", "&")
    second = client.get(older).get_data(as_text=True)
    assert "export 03" in second and "export 01" in second and "export 04" not in second
    oldest = re.search(r'href="([^"]*last=1[^"]*)"[^>]*>Oldest<', second).group(1).replace("&amp;", "&")
    last = client.get(oldest).get_data(as_text=True)
    assert "export 00" in last and "export 02" in last and "export 03" not in last
    assert "export 03" in page_text(client.get(older))  # the same link shows the same jobs later


def test_a_page_past_the_end_is_empty_with_a_way_back(client_for, engine):
    add_job(engine, owner="clerk_a", name="only job", created_at=at(0))
    response = client_for("clerk_a").get("/admin/jobs/?page=40")
    assert response.status_code == 200
    text = page_text(response)
    assert "No jobs" in text and "Back to the first page" in text


def test_a_sort_says_when_it_ordered_only_the_newest_jobs(client_for, engine, monkeypatch):
    from flask_jobmonitor.web import listing

    monkeypatch.setattr(listing, "SORT_WINDOW", 2)
    for minute in range(4):
        add_job(engine, owner="clerk_a", name=f"job {minute}", created_at=at(minute))
    text = page_text(client_for("clerk_a").get("/admin/jobs/?sort=name&dir=asc"))
    assert "Sorted among the 2 newest matching jobs" in text
    assert "job 0" not in text and "job 3" in text
    assert "Sorted among" not in page_text(client_for("clerk_a").get("/admin/jobs/"))


def test_a_capped_sqlite_search_says_so_and_older_goes_on(client_for, engine, monkeypatch):
    from flask_jobmonitor.web import search

    monkeypatch.setattr(search, "SEARCH_WINDOW", 2)
    for minute in range(5):
        add_job(engine, owner="clerk_a", name=f"Import stock {minute}", created_at=at(minute))
    add_job(engine, owner="clerk_a", name="Import stock old", status="failed", created_at=at(-60))
    client = client_for("clerk_a")
    body = client.get("/admin/jobs/?q=stock&status=failed").get_data(as_text=True)
    if engine.dialect.name != "sqlite":
        assert "Import stock old" in body and "looked through" not in body
        return
    assert "This page looked through 2 jobs containing these words" in body
    while "Import stock old" not in body:
        older = re.search(r'href="([^"]*after=[^"]*)"[^>]*>Older<', body)
        assert older, body
        body = client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
