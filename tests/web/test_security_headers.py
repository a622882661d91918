"""The security headers of the package's answers (headers.py): every kind of page, the JSON, a
download, the static files and the error pages carry the Content-Security-Policy, X-Frame-Options,
Referrer-Policy and nosniff; the host's own pages are left alone; a header the host set is kept;
the settings switch them, and the pages need nothing the policy refuses."""

from __future__ import annotations

import io
import re

import pytest
from flask import after_this_request
from werkzeug.datastructures import FileStorage

from flask_jobmonitor.config import DEFAULTS

from ..support.rows import add_job
from ..support.users import csrf_token
from ..support.web import enqueue
from ..support.workers import run_worker

POLICY = DEFAULTS["JOBMONITOR_CONTENT_SECURITY_POLICY"]
EXPECTED = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def _assert_secured(response, expected=EXPECTED) -> None:
    for name, value in expected.items():
        assert response.headers.get(name) == value, (name, response.status_code, response.request.path)


def test_the_default_policy_is_the_strict_one_the_pages_are_built_for():
    directives = dict(part.strip().split(" ", 1) for part in POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe-inline" not in POLICY and "unsafe-eval" not in POLICY
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'" and directives["form-action"] == "'self'"


def test_every_kind_of_page_and_json_answer_carries_the_headers(app, engine, client_for):
    from .. import tasks

    upload = FileStorage(io.BytesIO(b"sku,name\nA-1,x\n"), filename="products.csv", content_type="text/csv")
    job_id = enqueue(app, tasks.reads_input, "admin", filename="products.csv", files={"products.csv": upload})
    run_worker(app)
    client = client_for("admin")
    detail = client.get(f"/admin/jobs/{job_id}/")
    file_link = re.search(r'href="(/jobmonitor/files/\d+)"', detail.get_data(as_text=True))
    assert file_link, "the job page lists its input file"
    answers = {
        "list": client.get("/admin/jobs/"),
        "detail": detail,
        "rows (list refresh)": client.get(f"/admin/jobs/rows?ids={job_id}"),
        "dashboard": client.get("/admin/my-jobs/"),
        "statistics": client.get("/admin/job-statistics/"),
        "statistics CSV": client.get("/admin/job-statistics/?format=csv"),
        "queues": client.get("/admin/queues/"),
        "audit trail": client.get("/admin/job-audit/"),
        "api jobs": client.get(f"/jobmonitor/api/jobs?ids={job_id}"),
        "api job": client.get(f"/jobmonitor/api/jobs/{job_id}"),
        "api notifications": client.get("/jobmonitor/api/notifications"),
        "download": client.get(file_link.group(1)),
        "static script": client.get("/jobmonitor/static/jobmonitor.js"),
        "static style": client.get("/jobmonitor/static/jobmonitor.css"),
    }
    for kind, response in answers.items():
        assert response.status_code == 200, kind
        _assert_secured(response)
        response.close()


def test_error_answers_carry_the_headers_too(app, engine, client_for):
    someone_elses = add_job(engine, owner="clerk_b")
    clerk = client_for("clerk_a")
    errors = {
        "404 page": (clerk.get(f"/admin/jobs/{someone_elses}/"), 404),
        "403 page": (clerk.get("/admin/job-statistics/"), 403),
        "400 page": (clerk.post(f"/admin/jobs/{someone_elses}/action", data={"action": "stop"}), 400),
        "400 list filter": (clerk.get("/admin/jobs/?status=flying"), 400),
        "404 JSON": (clerk.get(f"/jobmonitor/api/jobs/{someone_elses}"), 404),
        "400 JSON": (clerk.get("/jobmonitor/api/jobs?ids=" + ",".join(["x"] * 300)), 400),
        "401 JSON": (client_for(None).get("/jobmonitor/api/jobs?ids="), 401),
        "anonymous redirect to the login": (client_for(None).get("/admin/jobs/"), 302),
    }
    for kind, (response, code) in errors.items():
        assert response.status_code == code, kind
        _assert_secured(response)


def test_a_post_answer_carries_the_headers(app, engine, client_for):
    job_id = add_job(engine, owner="clerk_a", status="running")
    client = client_for("clerk_a")
    token = csrf_token(client)
    response = client.post(f"/admin/jobs/{job_id}/action", data={"action": "stop", "csrf_token": token})
    assert response.status_code == 302
    _assert_secured(response)
    response = client.post(f"/jobmonitor/api/jobs/{job_id}/stop", headers={"X-CSRFToken": token})
    _assert_secured(response)


def test_the_hosts_own_pages_are_left_to_the_host(client_for):
    response = client_for("clerk_a").get("/_test/page")
    assert response.status_code == 200
    for name in EXPECTED:
        assert name not in response.headers, name


def test_a_header_the_host_set_on_the_answer_is_kept(make_app):
    application = make_app()

    @application.before_request
    def host_headers() -> None:
        @after_this_request
        def set_own(response):
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
            response.headers["Content-Security-Policy"] = "default-src 'self' https://cdn.example"
            return response

    client = application.test_client()
    assert client.get("/_test/login/clerk_a").status_code == 200
    for path in ("/admin/jobs/", "/jobmonitor/api/jobs?ids="):
        response = client.get(path)
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN", path
        assert response.headers["Content-Security-Policy"] == "default-src 'self' https://cdn.example", path
        assert len(response.headers.getlist("Content-Security-Policy")) == 1
        assert response.headers["X-Content-Type-Options"] == "nosniff", "the headers it did not set are added"


def test_the_headers_can_be_switched_off(make_app):
    client = make_app(JOBMONITOR_SECURITY_HEADERS=False).test_client()
    assert client.get("/_test/login/clerk_a").status_code == 200
    response = client.get("/admin/jobs/")
    assert response.status_code == 200
    for name in EXPECTED:
        assert name not in response.headers, name


@pytest.mark.parametrize(
    ("policy", "frame_options"),
    [
        (None, "DENY"),
        ("default-src 'self'", "DENY"),
        ("default-src 'self'; frame-ancestors 'self'", "SAMEORIGIN"),
        ("default-src 'self'; frame-ancestors 'self' https://intranet.example", None),
    ],
)
def test_x_frame_options_says_what_the_policys_frame_ancestors_says(make_app, policy, frame_options):
    client = make_app(JOBMONITOR_CONTENT_SECURITY_POLICY=policy).test_client()
    assert client.get("/_test/login/clerk_a").status_code == 200
    response = client.get("/admin/my-jobs/")
    assert response.headers.get("Content-Security-Policy") == policy
    assert response.headers.get("X-Frame-Options") == frame_options
    assert response.headers["Referrer-Policy"] == "same-origin"


#: An inline script (a JSON data block, type="application/json", is data the browser never runs:
#: the policy allows it), an inline style, an event handler attribute or a javascript: address.
INLINE = re.compile(
    r"<script(?![^>]*\ssrc=)(?![^>]*\stype=\"application/json\")[^>]*>|<style[\s>]|\sstyle=|\son[a-z]+=|javascript:",
    re.IGNORECASE,
)
#: Flask-Admin's menu category: a dropdown toggle whose click Bootstrap's script cancels, so the
#: policy never meets this address (the browser test opens the menu and sees no violation).
FLASK_ADMIN_MENU_TOGGLE = 'data-toggle="dropdown" href="javascript:void(0)"'


def test_the_pages_and_their_live_parts_hold_no_inline_script_or_style(app, engine, client_for):
    """What the policy would refuse, looked for in the markup (the browser test sees it refused)."""
    from .. import tasks

    parent = add_job(engine, owner="admin", status="running", step_count=3, current_step=2)
    add_job(engine, owner="admin", parent_id=parent, status="completed")
    job_id = enqueue(app, tasks.noop, "admin")
    client = client_for("admin")
    pages = {
        "list": client.get("/admin/jobs/").get_data(as_text=True),
        "detail": client.get(f"/admin/jobs/{parent}/").get_data(as_text=True),
        "dashboard": client.get("/admin/my-jobs/").get_data(as_text=True),
        "statistics": client.get("/admin/job-statistics/").get_data(as_text=True),
        "queues": client.get("/admin/queues/").get_data(as_text=True),
        "host page (widget and bell)": client.get("/_test/page").get_data(as_text=True),
    }
    rows = client.get(f"/admin/jobs/rows?ids={parent},{job_id}&parent={parent}&family=1").get_json()
    pages["rows"] = rows["html"] + rows["children_html"]
    pages["api jobs"] = "".join(
        "".join(job["html"].values()) for job in client.get(f"/jobmonitor/api/jobs?ids={parent}").get_json()["jobs"]
    )
    detail = client.get(f"/jobmonitor/api/jobs/{parent}").get_json()
    pages["api job"] = "".join(detail["html"].values()) + "".join(step["html"] for step in detail["steps"])
    for kind, html in pages.items():
        assert 'data-jm="bar"' in html or kind in {"statistics", "queues", "dashboard", "host page (widget and bell)"}
        found = INLINE.findall(html.replace(FLASK_ADMIN_MENU_TOGGLE, ""))
        assert not found, (kind, found)
