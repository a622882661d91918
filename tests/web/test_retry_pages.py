"""Retries and delayed jobs as people read them (presenters.timing, details.attempts_of): the
badge says "Retry 1 of 3 at 14:05" or "Scheduled for 14:05" on the list, the detail page, the
"My jobs" widget and their live refresh; the detail page lists the failed attempts, their
tracebacks for jobmonitor.view_tracebacks only; the JSON says the same."""

from __future__ import annotations

from collections.abc import Callable
from html import unescape
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from .. import retry_tasks as rt
from .. import tasks
from ..support.rows import job_row
from ..support.web import enqueue
from ..support.workers import run_worker


def _waiting_retry(app: Flask) -> str:
    job_id = enqueue(app, rt.fails_then_waits, who="clerk_a")
    run_worker(app)
    return job_id


def _text(response: Any) -> str:
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


def test_a_retry_that_waits_says_which_retry_and_when_everywhere(
    app: Flask, engine: Any, client_for: Callable[[str | None], FlaskClient]
) -> None:
    job_id = _waiting_retry(app)
    row = job_row(engine, job_id)
    assert (row.status, row.retries) == ("queued", 1)
    clerk = client_for("clerk_a")

    detail = _text(clerk.get(f"/admin/jobs/{job_id}/"))
    assert 'data-jm-timing="retry-wait"' in detail and "Retry 1 of 3 at " in detail
    assert 'data-attempt="1"' in detail and "unexpected error (ConnectionError)" in detail
    assert "Traceback" not in detail and "down (run 1)" not in detail  # the clerk reads no traceback
    for page in ("/admin/jobs/", "/_test/page"):  # the list and the "My jobs" widget
        assert "Retry 1 of 3 at " in _text(clerk.get(page)), page

    answer = clerk.get(f"/jobmonitor/api/jobs/{job_id}").get_json()
    assert (answer["status"], answer["retries"], answer["retry_limit"]) == ("queued", 1, 3)
    assert (answer["timing"], answer["status_label"]) == ("retry-wait", "Queued")
    assert answer["scheduled_for"] == row.enqueued_at.isoformat(timespec="seconds") + "Z"
    (attempt,) = answer["attempts"]
    assert attempt["number"] == 1 and attempt["retry_at"] == answer["scheduled_for"]
    assert "error_detail" not in attempt
    assert "Retry 1 of 3 at " in answer["html"]["status"] and 'data-attempt="1"' in answer["html"]["attempts"]
    live = clerk.get(f"/jobmonitor/api/jobs?ids={job_id}").get_json()
    assert "Retry 1 of 3 at " in live["jobs"][0]["html"]["status"]

    admin = client_for("admin")
    assert "down (run 1)" in _text(admin.get(f"/admin/jobs/{job_id}/"))
    (attempt,) = admin.get(f"/jobmonitor/api/jobs/{job_id}").get_json()["attempts"]
    assert "Traceback" in attempt["error_detail"] and "down (run 1)" in attempt["error_detail"]


def test_a_retry_that_runs_and_a_failure_after_the_last_retry_say_so(
    app: Flask, engine: Any, client_for: Callable[[str | None], FlaskClient]
) -> None:
    job_id = enqueue(app, rt.flaky, who="clerk_a", fail_times=9)
    run_worker(app)
    clerk = client_for("clerk_a")

    detail = _text(clerk.get(f"/admin/jobs/{job_id}/"))
    assert "3 failed attempts" in detail and "not tried again" in detail
    assert "data-jm-timing" not in detail  # a failed job neither waits nor retries any more
    answer = clerk.get(f"/jobmonitor/api/jobs/{job_id}").get_json()
    assert (answer["status"], answer["retries"], answer["retry_limit"]) == ("failed", 2, 2)
    assert [a["retry_at"] is not None for a in answer["attempts"]] == [True, True, False]


def test_a_delayed_job_is_scheduled_for_its_time_not_queued(
    app: Flask, engine: Any, client_for: Callable[[str | None], FlaskClient]
) -> None:
    job_id = enqueue(app, tasks.noop, who="clerk_a", delay=3600)
    clerk = client_for("clerk_a")

    for page in (f"/admin/jobs/{job_id}/", "/admin/jobs/", "/_test/page"):
        text = _text(clerk.get(page))
        assert 'data-jm-timing="scheduled"' in text and "Scheduled for " in text, page
    answer = clerk.get(f"/jobmonitor/api/jobs/{job_id}").get_json()
    assert answer["status"] == "queued" and answer["retries"] == 0 and answer["attempts"] == []
    assert answer["scheduled_for"] == job_row(engine, job_id).enqueued_at.isoformat(timespec="seconds") + "Z"


def test_a_job_that_never_retried_asks_for_no_attempts(
    app: Flask, client_for: Callable[[str | None], FlaskClient]
) -> None:
    job_id = enqueue(app, tasks.noop, who="clerk_a")
    run_worker(app)

    answer = client_for("clerk_a").get(f"/jobmonitor/api/jobs/{job_id}").get_json()
    assert (answer["retries"], answer["retry_limit"], answer["scheduled_for"], answer["attempts"]) == (
        0,
        None,
        None,
        [],
    )
    assert "hidden" in answer["html"]["attempts"]
