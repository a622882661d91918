"""Errors of the job pages as people meet them: 400, 403, 404 and 413 inside the admin layout (menu,
a way back to the job list), while the JSON endpoints under /jobmonitor/api answer JSON errors;
refusals in plain words."""

from __future__ import annotations

import html

import pytest

from ..support.rows import add_job
from ..support.users import csrf_token


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _assert_in_layout(response, code: int) -> str:
    assert response.status_code == code
    assert response.mimetype == "text/html"
    page = _page(response)
    assert f'data-jm-error="{code}"' in page
    assert 'class="navbar' in page, "the admin menu bar is on the page"
    assert 'href="/admin/jobs/"' in page, "the menu and the way back lead to the job list"
    assert "Back to the job list" in page
    return page


def test_someone_elses_job_answers_404_in_the_admin_layout_without_its_id(client_for, engine):
    job_id = add_job(engine, owner="clerk_b", name="Mass edit of shoes")
    page = _assert_in_layout(client_for("clerk_a").get(f"/admin/jobs/{job_id}/"), 404)
    assert "Job not found" in page
    assert job_id not in page and "Mass edit of shoes" not in page


@pytest.mark.parametrize("job_id", ["00000000-0000-0000-0000-000000000000", "not-a-job"])
def test_an_unknown_job_id_answers_the_same_404_page(client_for, engine, job_id):
    page = _assert_in_layout(client_for("clerk_a").get(f"/admin/jobs/{job_id}/"), 404)
    assert job_id not in page


def test_a_page_the_user_may_not_open_answers_403_in_the_admin_layout(client_for):
    page = _assert_in_layout(client_for("clerk_a").get("/admin/job-statistics/"), 403)
    assert "You may not open this page" in page


def test_a_refused_action_answers_403_in_the_layout_in_plain_words(client_for, engine):
    job_id = add_job(engine, owner="clerk_b", status="running")
    client = client_for("auditor")  # sees every job, may stop none of other people's
    response = client.post(f"/admin/jobs/{job_id}/action", data={"action": "stop", "csrf_token": csrf_token(client)})
    page = _assert_in_layout(response, 403)
    assert "You may not stop this job." in page and job_id not in page


def test_a_bad_request_of_a_job_page_answers_400_in_the_layout_with_the_reason(client_for, engine):
    job_id = add_job(engine, owner="clerk_a")
    client = client_for("clerk_a")
    page = _assert_in_layout(client.post(f"/admin/jobs/{job_id}/action", data={"action": "stop"}), 400)
    assert "CSRF" in page
    response = client.post(f"/admin/jobs/{job_id}/action", data={"action": "fly", "csrf_token": csrf_token(client)})
    assert "unknown action 'fly'" in _assert_in_layout(response, 400)


def test_a_request_past_the_size_limit_answers_413_in_the_layout_and_as_json(app, client_for, engine, monkeypatch):
    """Issue 15, row 9: a body past the host's MAX_CONTENT_LENGTH is a 413 people can read, on
    the job pages in their layout, on the JSON endpoints as JSON (never a 500)."""
    job_id = add_job(engine, owner="clerk_a", status="running")
    client = client_for("clerk_a")
    token = csrf_token(client)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1000)
    big = {"action": "stop", "csrf_token": token, "padding": "x" * 2000}

    page = _assert_in_layout(client.post(f"/admin/jobs/{job_id}/action", data=big), 413)
    assert "The file is too large" in page

    response = client.post(f"/jobmonitor/api/jobs/{job_id}/stop", data=big, headers={"X-CSRFToken": token})
    assert response.status_code == 413
    assert response.is_json and set(response.get_json()) == {"error"}


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("get", "/jobmonitor/api/jobs/00000000-0000-0000-0000-000000000000", 404),
        ("get", "/jobmonitor/api/jobs/{other}", 404),
        ("post", "/jobmonitor/api/jobs/{other}/stop", 404),
        ("post", "/jobmonitor/api/jobs/{own}/fly", 404),
        ("get", "/jobmonitor/api/jobs?ids=" + ",".join(["x"] * 201), 400),
    ],
)
def test_the_json_endpoints_keep_answering_json_errors(client_for, engine, method, path, code):
    own, other = add_job(engine, owner="clerk_a"), add_job(engine, owner="clerk_b")
    client = client_for("clerk_a")
    headers = {"X-CSRFToken": csrf_token(client)}
    response = getattr(client, method)(path.format(own=own, other=other), headers=headers)
    assert response.status_code == code
    assert response.is_json and set(response.get_json()) == {"error"}


def test_a_refusal_is_flashed_in_plain_words(client_for, engine):
    job_id = add_job(engine, owner="clerk_a", status="completed")
    client = client_for("clerk_a")
    response = client.post(
        f"/admin/jobs/{job_id}/action",
        data={"action": "stop", "csrf_token": csrf_token(client), "next": "/admin/jobs/"},
        follow_redirects=True,
    )
    page = _page(response)
    assert "This job has already completed; it can no longer be stopped." in page
    assert "'completed'" not in page and "status" not in page.split("This job has already")[1][:80]


def test_a_refusal_answers_json_in_plain_words(client_for, engine):
    job_id = add_job(engine, owner="clerk_a", status="completed")
    client = client_for("clerk_a")
    response = client.post(f"/jobmonitor/api/jobs/{job_id}/stop", headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 409
    assert response.get_json() == {"error": "This job has already completed; it can no longer be stopped."}


def test_someone_without_access_is_led_back_to_the_start_page(app, client_for, monkeypatch):
    monkeypatch.setattr(app.login_manager, "login_view", None)
    response = client_for(None).get("/admin/jobs/")
    assert response.status_code == 403
    page = _page(response)
    assert 'data-jm-error="403"' in page and 'class="navbar' in page
    assert '<a class="btn btn-primary" href="/admin/">' in page and "Back to the start page" in page
