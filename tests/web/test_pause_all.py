"""Pause all / resume all from the queue health page (pause_all.py): POST + CSRF, the
``jobmonitor.pause_all`` permission checked on the server, on-site redirects only, and the
"paused for maintenance" banner on the job pages for everyone who may see them."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from redis import Redis
from rq.suspension import WORKERS_SUSPENDED

from flask_jobmonitor.keys import PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY
from flask_jobmonitor.permissions import ACCESS, VIEW_ALL, VIEW_STATISTICS

from .. import tasks
from ..support.users import csrf_token
from ..support.web import enqueue

BANNER = "Jobs have been paused for maintenance since"


@pytest.fixture(autouse=True)
def not_paused(redis_url: str) -> Iterator[Redis]:
    """Every test starts and ends with the workers of the test Redis not suspended."""
    redis = Redis.from_url(redis_url)
    redis.delete(WORKERS_SUSPENDED, PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY)
    yield redis
    redis.delete(WORKERS_SUSPENDED, PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY)


def body(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_an_admin_pauses_and_resumes_all_jobs_from_queue_health(app, client_for, not_paused):
    admin = client_for("admin")
    page = body(admin.get("/admin/queues/"))
    assert 'data-jm-action="pause-all"' in page and 'data-jm-action="resume-all"' not in page
    assert BANNER not in page

    response = admin.post("/admin/queues/pause", data={"csrf_token": csrf_token(admin), "next": "/admin/queues/"})

    assert response.status_code == 302 and response.headers["Location"] == "/admin/queues/"
    assert not_paused.exists(WORKERS_SUSPENDED)  # RQ's own suspension: every worker on this Redis
    page = body(admin.get("/admin/queues/"))
    assert "Jobs are paused: workers take no new job; nothing runs." in page
    assert BANNER in page and 'data-jm-action="resume-all"' in page
    assert 'data-jm="pause-progress"' not in page  # nothing runs: no list of running jobs
    assert not_paused.hget(PAUSE_ALL_KEY, "by") == b"Ada Admin"

    response = admin.post("/admin/queues/resume", data={"csrf_token": csrf_token(admin)})

    assert response.status_code == 302 and response.headers["Location"] == "/admin/queues/"
    assert not not_paused.exists(WORKERS_SUSPENDED, PAUSE_ALL_KEY)
    page = body(admin.get("/admin/queues/"))
    assert "Jobs resumed: workers take jobs again." in page
    assert BANNER not in page


def test_pausing_twice_keeps_the_first_time_and_resuming_twice_is_harmless(app, client_for, not_paused):
    admin = client_for("admin")
    token = csrf_token(admin)
    admin.post("/admin/queues/pause", data={"csrf_token": token})
    since = not_paused.hget(PAUSE_ALL_KEY, "since")
    admin.post("/admin/queues/pause", data={"csrf_token": token})
    assert not_paused.hget(PAUSE_ALL_KEY, "since") == since

    admin.post("/admin/queues/resume", data={"csrf_token": token})
    admin.post("/admin/queues/resume", data={"csrf_token": token})

    assert "Jobs were not paused; nothing to resume." in body(admin.get("/admin/queues/"))
    assert not not_paused.exists(WORKERS_SUSPENDED, PAUSE_ALL_KEY)


def test_a_clerk_sees_the_banner_and_a_job_launched_meanwhile_waits(app, client_for, not_paused):
    admin = client_for("admin")
    admin.post("/admin/queues/pause", data={"csrf_token": csrf_token(admin)})
    clerk = client_for("clerk_a")

    job_id = enqueue(app, tasks.noop, who="clerk_a")  # accepted: it is queued and waits

    listing = body(clerk.get("/admin/jobs/"))
    assert BANNER in listing and job_id in listing
    detail = body(clerk.get(f"/admin/jobs/{job_id}/"))
    assert BANNER in detail
    assert "Waits for the maintenance to end." in detail
    assert 'data-jm="status-label">Queued<' in detail
    assert BANNER in body(clerk.get("/admin/my-jobs/"))

    admin.post("/admin/queues/resume", data={"csrf_token": csrf_token(admin)})
    detail = body(clerk.get(f"/admin/jobs/{job_id}/"))
    assert BANNER not in detail and "Waits for the maintenance to end." not in detail


def test_pausing_needs_the_pause_all_permission_on_the_server(make_app, not_paused):
    """An auditor who may open queue health, but not pause: no buttons, and a forged POST is 403."""
    allowed = {ACCESS, VIEW_ALL, VIEW_STATISTICS}
    application = make_app(JOBMONITOR_PERMISSION_CHECKER=lambda _user, name: name in allowed)
    auditor = application.test_client()
    auditor.get("/_test/login/auditor")
    page = body(auditor.get("/admin/queues/"))
    assert "Queues" in page and "pause-all" not in page

    response = auditor.post("/admin/queues/pause", data={"csrf_token": csrf_token(auditor)})

    assert response.status_code == 403
    assert "You may not pause or resume all jobs." in body(response)
    assert not not_paused.exists(WORKERS_SUSPENDED, PAUSE_ALL_KEY)
    not_paused.set(WORKERS_SUSPENDED, 1)
    assert auditor.post("/admin/queues/resume", data={"csrf_token": csrf_token(auditor)}).status_code == 403
    assert not_paused.exists(WORKERS_SUSPENDED)


def test_a_clerk_may_not_pause_all_jobs(app, client_for, not_paused):
    clerk = client_for("clerk_a")
    assert clerk.post("/admin/queues/pause", data={"csrf_token": csrf_token(clerk)}).status_code == 403
    assert not not_paused.exists(WORKERS_SUSPENDED, PAUSE_ALL_KEY)


def test_pause_and_resume_need_a_csrf_token_and_a_post(app, client_for, not_paused):
    admin = client_for("admin")
    assert admin.post("/admin/queues/pause").status_code == 400
    assert admin.post("/admin/queues/pause", data={"csrf_token": "forged"}).status_code == 400
    assert admin.get("/admin/queues/pause").status_code == 405
    assert not not_paused.exists(WORKERS_SUSPENDED, PAUSE_ALL_KEY)
    not_paused.set(WORKERS_SUSPENDED, 1)
    assert admin.post("/admin/queues/resume").status_code == 400
    assert not_paused.exists(WORKERS_SUSPENDED)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_pause_redirects_only_within_the_site(app, client_for, target):
    admin = client_for("admin")
    response = admin.post("/admin/queues/pause", data={"csrf_token": csrf_token(admin), "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/queues/"


def test_workers_suspended_by_rq_suspend_are_shown_and_resumed(app, client_for, not_paused):
    not_paused.set(WORKERS_SUSPENDED, 1)  # `rq suspend`, without a pause of the package's
    admin = client_for("admin")
    assert "Workers are suspended (<code>rq suspend</code>)" in body(admin.get("/admin/queues/"))

    admin.post("/admin/queues/resume", data={"csrf_token": csrf_token(admin)})

    assert not not_paused.exists(WORKERS_SUSPENDED)
