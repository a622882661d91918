"""openapi.py: the OpenAPI 3.1 document is valid and true of the live app.

schemathesis reads the document the app serves and sends every operation requests made from it
(valid ones, and in its negative phase ones the schemas forbid) against the real app, on SQLite
and PostgreSQL, with a real Redis, as an admin and as an own-jobs user (API tokens, no CSRF)
and as a browser's cookie session (with the page's CSRF token).
Each answer must not be a server error, must have a status, a media type, headers and a body the
document declares. A few jobs exist, one of them under the id the document gives as its example,
so the explicit phase reaches a real job; the generated ids mostly answer 404, as declared.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as schemathesis_checks
from schemathesis.specs.openapi import checks as openapi_checks

from flask_jobmonitor.web.openapi import build_document

from ..support.rows import add_job
from ..support.users import csrf_token, log_in

EXAMPLE_JOB = "0b9f7c1e-2f0a-4d39-9c53-0d0c5ef4c0a1"  # openapi._JOB_ID's example
CHECKS = [
    schemathesis_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]


def operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/jobmonitor/api/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda mode: mode.value)
def test_every_operation_keeps_the_document_for_an_admin_an_own_jobs_user_and_a_browser(
    app: Any, engine: Any, mode: Any
) -> None:
    add_job(engine, owner="clerk_a", id=EXAMPLE_JOB, name="The example's import", status="running")
    add_job(engine, owner="clerk_b", name="Clerk B's export", status="completed")
    add_job(engine, owner=None, name="Delete old jobs", is_system=True, status="completed")
    found = operations(app)
    assert len(found) == 12
    browser = log_in(app.test_client(), "clerk_a")
    identities = [
        {"headers": {"Authorization": "Bearer token-admin"}},
        {"headers": {"Authorization": "Bearer token-clerk_a"}},
        # a browser's session: its cookie and the page's CSRF token
        {
            "headers": {"X-CSRFToken": csrf_token(browser)},
            "cookies": {"session": browser.get_cookie("session").value},  # type: ignore[union-attr]
        },
    ]

    for operation in found:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same requests on every run: a failure is reproducible, CI time steady
            database=None,
        )
        def run(case: Any) -> None:
            for identity in identities:
                case.call_and_validate(checks=CHECKS, **identity)

        run()


def test_the_document_is_openapi_3_1_and_covers_every_url_of_the_blueprint(app: Any) -> None:
    document = app.test_client().get("/jobmonitor/api/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/jobmonitor"}]
    schemathesis.openapi.from_dict(document).validate()
    rules = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/jobmonitor"))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("jobmonitor.")
        and rule.endpoint not in ("jobmonitor.static", "jobmonitor.document", "jobmonitor.no_such_endpoint")
        and not rule.endpoint.endswith(("_refused", "_options"))
    }
    assert rules == set(document["paths"])
    assert build_document("/jobmonitor")["paths"] == document["paths"]
