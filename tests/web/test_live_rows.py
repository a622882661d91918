"""The job list's live refresh: ``/admin/jobs/rows`` renders rows with the page's own macro,
for the ids asked that the user may see, plus the jobs newer than the page's newest row and a
parent's children; ``/jobmonitor/api/jobs`` carries the actions each job allows now."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa

from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.web.listing import Cursor

from ..support.rows import add_job
from ..support.web import at

ROW = re.compile(r'<tr data-job-id="([0-9a-f-]{36})"')
BUTTON = re.compile(r'data-jm-action-button="([a-z_]+)"')


def rows_of(html: str) -> list[str]:
    return ROW.findall(html)


def row_html(html: str, job_id: str) -> str:
    match = re.search(rf'<tr data-job-id="{job_id}".*?</tr>', html, re.DOTALL)
    assert match, job_id
    return match.group(0)


def set_status(engine: sa.Engine, job_id: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(job_table).where(job_table.c.id == job_id).values(**values))


@pytest.fixture
def jobs(engine) -> dict[str, str]:
    return {
        "a": add_job(engine, owner="clerk_a", name="Clerk A's import", status="queued", created_at=at(0)),
        "b": add_job(engine, owner="clerk_b", name="Clerk B's export", status="running", created_at=at(1)),
    }


def test_rows_are_the_rows_the_page_renders(client_for, jobs):
    client = client_for("clerk_a")
    page = client.get("/admin/jobs/").get_data(as_text=True)
    answer = client.get(f"/admin/jobs/rows?ids={jobs['a']}&next=/admin/jobs/?").get_json()
    assert rows_of(answer["html"]) == [jobs["a"]]
    assert answer["jobs"] == [{"id": jobs["a"], "status": "queued", "active": True}]
    # the same macro: the same cells (the relative times may have moved on by a second, and so
    # may the CSRF token, which is signed with the second it was made in)
    strip = re.compile(
        r"<time[^>]*>.*?</time>|<span data-jm=\"(waiting|duration)\"[^>]*>.*?</span>"
        r"|name=\"csrf_token\" value=\"[^\"]*\""
    )
    assert strip.sub("", row_html(answer["html"], jobs["a"])) == strip.sub("", row_html(page, jobs["a"]))


def test_another_users_job_ids_are_not_rendered(client_for, jobs):
    answer = client_for("clerk_a").get(f"/admin/jobs/rows?ids={jobs['a']},{jobs['b']}").get_json()
    assert rows_of(answer["html"]) == [jobs["a"]]
    assert "Clerk B" not in answer["html"]
    # not shown and not told apart from a deleted job
    assert answer["gone"] == [jobs["b"]]


def test_an_admin_sees_both(client_for, jobs):
    answer = client_for("admin").get(f"/admin/jobs/rows?ids={jobs['a']},{jobs['b']}").get_json()
    assert sorted(rows_of(answer["html"])) == sorted([jobs["a"], jobs["b"]])
    assert answer["gone"] == []


@pytest.mark.parametrize(
    "query",
    [
        "ids=not-an-id",
        "ids=" + ",".join(str(uuid.uuid4()) for _ in range(201)),
        "since=yesterday",
        "status=bogus",
        "family=1",
    ],
    ids=["malformed id", "too many ids", "malformed cursor", "unknown status", "family without parent"],
)
def test_bad_requests_answer_400_json(client_for, jobs, query):
    response = client_for("clerk_a").get(f"/admin/jobs/rows?{query}")
    assert response.status_code == 400
    assert response.is_json and response.get_json()["error"]


def test_a_row_offers_the_buttons_of_the_jobs_status_now(engine, client_for, jobs):
    client = client_for("clerk_a")
    url = f"/admin/jobs/rows?ids={jobs['a']}"
    assert BUTTON.findall(client.get(url).get_json()["html"]) == ["cancel", "set_low_priority"]
    set_status(engine, jobs["a"], status="running", started_at=at(2))
    assert "stop" in BUTTON.findall(client.get(url).get_json()["html"])
    set_status(engine, jobs["a"], status="completed", ended_at=at(3))
    buttons = BUTTON.findall(client.get(url).get_json()["html"])
    assert "stop" not in buttons and "force_stop" not in buttons and "restart" in buttons


def test_buttons_come_back_to_the_list_page_they_were_pressed_on(client_for, jobs):
    html = client_for("clerk_a").get(f"/admin/jobs/rows?ids={jobs['a']}&next=/admin/jobs/?q=x").get_json()["html"]
    assert 'name="next" value="/admin/jobs/?q=x"' in html
    html = client_for("clerk_a").get(f"/admin/jobs/rows?ids={jobs['a']}&next=//evil.example/").get_json()["html"]
    assert "evil.example" not in html


def test_jobs_newer_than_the_page_that_match_its_filters(engine, client_for, jobs):
    client = client_for("clerk_a")
    since = Cursor(at(0), jobs["a"]).token
    assert client.get(f"/admin/jobs/rows?since={since}").get_json()["new_ids"] == []
    newer = add_job(engine, owner="clerk_a", name="Newer import", type="import", created_at=at(5))
    newest = add_job(engine, owner="clerk_a", name="Newest report", type="report", created_at=at(6))
    add_job(engine, owner="clerk_b", name="Someone else's", created_at=at(7))
    add_job(engine, owner="clerk_a", name="A child", parent_id=newer, created_at=at(8))
    answer = client.get(f"/admin/jobs/rows?since={since}").get_json()
    assert answer["new_ids"] == [newest, newer]  # newest first; not the other user's, no child
    assert rows_of(answer["new_html"]) == [newest, newer]
    assert answer["newest"] == Cursor(at(6), newest).token
    assert client.get(f"/admin/jobs/rows?since={since}&type=import").get_json()["new_ids"] == [newer]
    assert len(client.get(f"/admin/jobs/rows?since={since}&children=1").get_json()["new_ids"]) == 3


def test_an_empty_list_asks_from_the_first_instant_and_gets_the_new_jobs(engine, client_for, jobs):
    """An empty list has no newest job: the page script asks since year 1 (jobmonitor.js). That
    answered 500 every second (late_ids went 30 s before the year 1)."""
    client = client_for("clerk_a")
    answer = client.get("/admin/jobs/rows?since=00010101T000000.000000_0&q=nothing+matches")
    assert answer.status_code == 200 and answer.get_json()["new_ids"] == []
    match = add_job(engine, owner="clerk_a", name="nothing matches but this", created_at=at(5))
    assert client.get("/admin/jobs/rows?since=00010101T000000.000000_0&q=nothing+matches").get_json()["new_ids"] == [
        match
    ]


def test_a_parents_children_come_as_rows_under_it(engine, client_for, jobs):
    children = [
        add_job(engine, owner="clerk_a", name=f"part {n}", parent_id=jobs["a"], status=status, created_at=at(2 + n))
        for n, status in enumerate(["completed", "failed", "running"])
    ]
    client = client_for("clerk_a")
    page = client.get("/admin/jobs/").get_data(as_text=True)
    assert rows_of(page) == [jobs["a"]]  # children are not at the top level
    parent = row_html(page, jobs["a"])
    assert "2/3 children done" in parent and "1 failed" in parent
    answer = client.get(f"/admin/jobs/rows?parent={jobs['a']}&family=1").get_json()
    assert rows_of(answer["children_html"]) == children[::-1]
    assert 'class="jm-row-failed jm-child-row"' in answer["children_html"]
    # another user's family is not opened
    response = client_for("clerk_b").get(f"/admin/jobs/rows?parent={jobs['a']}&family=1")
    assert response.status_code == 404 and response.is_json
    # "Show child jobs" lists them at the top level too
    assert len(rows_of(client.get("/admin/jobs/?children=1").get_data(as_text=True))) == 4


def test_the_family_counts_in_the_parents_progress(engine, client_for, jobs):
    add_job(engine, owner="clerk_a", parent_id=jobs["a"], status="completed", created_at=at(2))
    add_job(engine, owner="clerk_a", parent_id=jobs["a"], status="queued", created_at=at(3))
    # the parent (queued, nothing done) and two children, one of them done: a third
    html = client_for("clerk_a").get(f"/admin/jobs/rows?ids={jobs['a']}").get_json()["html"]
    assert "jm-w-33 " in html and 'aria-valuenow="33.3"' in html


def test_a_rows_result_link_is_its_output_file(engine, client_for, jobs):
    from flask_jobmonitor.records.models import file_table

    with engine.begin() as connection:
        for kind, name in (("input", "in.csv"), ("error_report", "rejected.csv"), ("output", "out.csv")):
            connection.execute(
                file_table.insert().values(
                    job_id=jobs["a"],
                    kind=kind,
                    filename=name,
                    content_type="text/csv",
                    size=1,
                    storage_key=name,
                    created_at=at(1),
                )
            )
    row = row_html(client_for("clerk_a").get("/admin/jobs/").get_data(as_text=True), jobs["a"])
    assert 'data-jm-result="output"' in row and "out.csv" in row and "rejected.csv" not in row


def test_the_user_picker_offers_names_of_users_who_ran_jobs(client_for, jobs):
    html = client_for("admin").get("/admin/jobs/").get_data(as_text=True)
    assert '<option value="Clara Clerk" data-id="3">' in html
    assert '<option value="Carl Clerk" data-id="4">' in html
    assert 'name="user"' in html and 'placeholder="User id"' not in html
    assert 'id="jm-users"' not in client_for("clerk_a").get("/admin/jobs/").get_data(as_text=True)


def test_api_jobs_carries_the_actions_allowed_now(engine, client_for, jobs):
    client = client_for("clerk_a")

    def actions() -> list[str]:
        return client.get(f"/jobmonitor/api/jobs?ids={jobs['a']}").get_json()["jobs"][0]["actions"]

    assert "cancel" in actions() and "stop" not in actions()
    set_status(engine, jobs["a"], status="running", started_at=at(2))
    assert "stop" in actions()
    set_status(engine, jobs["a"], status="completed", ended_at=at(3))
    assert "stop" not in actions() and "force_stop" not in actions()
    assert "restart" in actions()


@pytest.mark.parametrize(
    ("event", "words", "colour"),
    [("completed", "Completed", "success"), ("failed", "Failed", "danger"), ("stopped", "Stopped", "warning")],
)
def test_notifications_say_the_event_in_the_pages_words(engine, client_for, jobs, event, words, colour):
    from flask_jobmonitor.records.models import notification_table

    with engine.begin() as connection:
        connection.execute(
            notification_table.insert().values(user_id="3", job_id=jobs["a"], event=event, created_at=at(9))
        )
    item = client_for("clerk_a").get("/jobmonitor/api/notifications").get_json()["items"][0]
    assert (item["status_label"], item["status_colour"]) == (words, colour)


def test_only_the_first_newest_first_page_asks_for_new_jobs(client_for, jobs):
    client = client_for("clerk_a")
    newest = re.compile(r'data-jm-newest="([^"]*)"')
    assert newest.findall(client.get("/admin/jobs/").get_data(as_text=True)) == [Cursor(at(0), jobs["a"]).token]
    assert newest.findall(client.get("/admin/jobs/?status=failed").get_data(as_text=True)) == [""]  # empty: any
    for other in ("sort=name&dir=asc", "sort=created&dir=asc", "page=2"):
        assert newest.findall(client.get(f"/admin/jobs/?{other}").get_data(as_text=True)) == [], other


def test_a_job_that_committed_after_a_newer_one_was_announced_still_comes(engine, client_for, jobs):
    """A job's creation time is taken before its row commits: one that became visible after the
    page saw a newer one comes back with the jobs just before the newest the page shows."""
    client = client_for("clerk_a")
    shown = add_job(engine, owner="clerk_a", name="Shown", created_at=at(10))
    since = Cursor(at(10), shown).token
    late = add_job(engine, owner="clerk_a", name="Committed late", created_at=at(9.75))  # 15 s before
    answer = client.get(f"/admin/jobs/rows?since={since}").get_json()
    assert answer["new_ids"] == []
    assert late in answer["late_ids"] and late in rows_of(answer["new_html"])
    assert answer["newest"] is None  # the position stays at the newest job shown


def test_a_finished_parent_is_offered_delete_only_once_no_child_is_active(engine, client_for, jobs):
    """A parent whose own task failed while a child still runs cannot be deleted yet (delete
    refuses it): the list row, its live refresh, the JSON and the job's page do not offer it."""
    set_status(engine, jobs["a"], status="failed", started_at=at(1), ended_at=at(2))
    child = add_job(engine, owner="clerk_a", parent_id=jobs["a"], root_id=jobs["a"], status="running", created_at=at(2))
    client = client_for("admin")

    def offered() -> dict[str, bool]:
        detail = client.get(f"/admin/jobs/{jobs['a']}/").get_data(as_text=True)
        return {
            "list": "delete" in BUTTON.findall(row_html(client.get("/admin/jobs/").get_data(as_text=True), jobs["a"])),
            "rows": "delete" in BUTTON.findall(client.get(f"/admin/jobs/rows?ids={jobs['a']}").get_json()["html"]),
            "json": "delete" in client.get(f"/jobmonitor/api/jobs?ids={jobs['a']}").get_json()["jobs"][0]["actions"],
            "detail json": "delete" in client.get(f"/jobmonitor/api/jobs/{jobs['a']}").get_json()["actions"],
            "detail": "delete" in BUTTON.findall(detail.split('data-jm="actions"', 1)[1].split("</div>", 1)[0]),
        }

    assert offered() == dict.fromkeys(["list", "rows", "json", "detail json", "detail"], False)
    set_status(engine, child, status="completed", ended_at=at(3))
    assert offered() == dict.fromkeys(["list", "rows", "json", "detail json", "detail"], True)


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("/admin/jobs/?status=failed", True),
        ("//evil.example", False),
        ("/\\evil.example", False),
        ("/\t/evil.example", False),
        ("https://evil.example/", False),
    ],
)
def test_next_paths_are_this_sites_only(value, kept):
    """Browsers read ``/\\host`` and a path with a tab in it as ``//host``."""
    from flask_jobmonitor import same_site_path

    assert same_site_path(value, "/default") == (value if kept else "/default")
