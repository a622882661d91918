"""failures.py on the pages: what a failed job tells whom.

A job that failed with an exception whose text holds SQL, parameters and a path, run by a real
worker: its owner (a clerk) and an auditor read only the public message on every page and JSON;
an admin (``jobmonitor.view_tracebacks``) reads the exception and its traceback as well.
"""

from __future__ import annotations

from collections.abc import Callable
from html import unescape

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from .. import tasks
from ..support.databases import recorded_statements
from ..support.rows import add_job
from ..support.web import enqueue
from ..support.workers import run_worker

UNEXPECTED = "The job failed because of an unexpected error (RuntimeError). An administrator can see the details."
#: What none but a permitted user may read: the statement, its parameters, the server's paths.
SECRETS = ("[SQL:", "INSERT INTO", "SECRET-SKU", "/srv/secret-app", "Traceback", tasks.__file__)


def _everything_shown(client: FlaskClient, job_id: str) -> dict[str, str]:
    """Every page and JSON answer that shows the job, as text, by name."""
    answers = {
        "detail page": client.get(f"/admin/jobs/{job_id}/"),
        "detail page, errors only": client.get(f"/admin/jobs/{job_id}/?log_level=error"),
        "list": client.get("/admin/jobs/"),
        "failed list": client.get("/admin/jobs/?status=failed"),
        "job JSON": client.get(f"/jobmonitor/api/jobs/{job_id}"),
        "jobs JSON with parts": client.get(f"/jobmonitor/api/jobs?ids={job_id}"),
        "notifications": client.get("/jobmonitor/api/notifications"),
        "host page": client.get("/_test/page"),
    }
    for name, response in answers.items():
        assert response.status_code == 200, name
    return {name: unescape(response.get_data(as_text=True)) for name, response in answers.items()}


@pytest.fixture
def revealing_failure(app: Flask) -> str:
    job_id = enqueue(app, tasks.fails_revealing, who="clerk_a")
    run_worker(app)
    return job_id


@pytest.mark.parametrize("who", ["clerk_a", "auditor"])
def test_people_without_view_tracebacks_read_no_sql_parameters_or_paths(
    client_for: Callable[[str | None], FlaskClient], revealing_failure: str, who: str
) -> None:
    client = client_for(who)

    shown = _everything_shown(client, revealing_failure)

    for name, text in shown.items():
        for secret in SECRETS:
            assert secret not in text, f"{who} reads {secret!r} on the {name}"
    assert UNEXPECTED in shown["detail page"]
    assert "Error details" not in shown["detail page"]
    detail = client.get(f"/jobmonitor/api/jobs/{revealing_failure}").get_json()
    assert detail["error_message"] == UNEXPECTED
    assert "error_detail" not in detail


def test_an_admin_reads_the_exception_and_its_traceback(
    client_for: Callable[[str | None], FlaskClient], revealing_failure: str
) -> None:
    client = client_for("admin")

    page = unescape(client.get(f"/admin/jobs/{revealing_failure}/").get_data(as_text=True))
    detail = client.get(f"/jobmonitor/api/jobs/{revealing_failure}").get_json()

    assert UNEXPECTED in page
    assert 'data-jm="error-detail"' in page and "Error details" in page
    assert tasks.INTERNAL_ERROR_TEXT in page and "Traceback (most recent call last)" in page
    assert detail["error_message"] == UNEXPECTED
    assert tasks.INTERNAL_ERROR_TEXT in detail["error_detail"]
    # the job's log stays what everyone reads: the detail is in its own block only
    assert page.count("[SQL: INSERT INTO product") == 1


def test_a_job_failed_message_is_shown_to_its_owner_as_is(
    app: Flask, client_for: Callable[[str | None], FlaskClient]
) -> None:
    job_id = enqueue(app, tasks.fails_for_people, who="clerk_a", message="line 17: price <b>x</b> is not a number")
    run_worker(app)
    client = client_for("clerk_a")

    page = client.get(f"/admin/jobs/{job_id}/").get_data(as_text=True)
    detail = client.get(f"/jobmonitor/api/jobs/{job_id}").get_json()

    assert "line 17: price &lt;b&gt;x&lt;/b&gt; is not a number" in page  # as is, and escaped
    assert detail["error_message"] == "line 17: price <b>x</b> is not a number"
    assert "Traceback" not in page and "error_detail" not in detail


def test_the_refresh_of_a_running_job_does_not_look_for_error_details(
    engine: sa.Engine, client_for: Callable[[str | None], FlaskClient]
) -> None:
    job_id = add_job(engine, "clerk_a", status="running", attempt=1)
    admin = client_for("admin")

    with recorded_statements(engine) as statements:
        assert admin.get(f"/jobmonitor/api/jobs/{job_id}").status_code == 200

    assert statements and not [s for s in statements if "error_detail" in s]
