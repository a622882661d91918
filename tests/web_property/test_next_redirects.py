"""Property test: no ``next`` value makes a redirect leave the site.

The example catalogue answers the three places that follow a ``next``: its login (``?next=``),
a job's action button and the list's bulk form (a ``next`` field, ``admin/views.py::_back``).
Values are built from the pieces of known tricks - tabs and line breaks (which browsers drop),
backslashes (which they read as ``/``), percent-encoded slashes, schemes, hosts, fullwidth and
other look-alike slashes, invisible and bidi characters - mixed with any text. Each answer's
``Location`` is read as a browser reads it (WHATWG URL: leading and trailing controls and
spaces stripped, tabs and line breaks removed, ``\\`` taken as ``/``, then resolved against
the request URL) and must stay on ``http://localhost``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash

from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.timeutil import utcnow

from ..support.databases import dispose_engines
from ..support.examples import build_catalogue, log_in

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

TRICKS = [
    "/",
    "//",
    "\\",
    "/\\",
    "\t",
    "\r",
    "\n",
    " ",
    "%2F",
    "%2f",
    "%5C",
    "%09",
    "%0A",
    "%00",
    "%252F",
    "%E3%80%82",
    ":",
    "@",
    "?",
    "#",
    ".",
    "..",
    "evil.example",
    "localhost",
    "http:",
    "https:",
    "HTTPS://",
    "javascript:",
    "data:",
    "\uff0f",  # fullwidth solidus
    "\uff3c",  # fullwidth reverse solidus
    "\u2215",  # division slash
    "\u2044",  # fraction slash
    "\u3002",  # ideographic full stop (a dot in host names)
    "\u200b",  # zero-width space
    "\u202e",  # right-to-left override
    "\ufeff",  # byte order mark
    "\u00a0",  # no-break space
    "\u3000",  # ideographic space
    "\x00",
    "\x7f",
    "\u0085",  # next line
    "\u2028",  # line separator
    "\u00e9",
]
pieces = st.one_of(st.sampled_from(TRICKS), st.text(st.characters(exclude_categories=("Cs",)), max_size=4))
next_values = st.lists(pieces, max_size=8).map("".join)
next_values = st.one_of(next_values, next_values.map(lambda value: "/" + value))

#: What browsers strip from both ends of a URL (C0 controls and space) and remove inside it.
_ENDS = "".join(chr(code) for code in range(0x21))
_INSIDE = re.compile("[\t\r\n]")


def browser_destination(location: str, request_url: str) -> tuple[str, str]:
    """(scheme, host[:port]) a browser goes to for this ``Location`` of an answer to ``request_url``."""
    cleaned = _INSIDE.sub("", location.strip(_ENDS)).replace("\\", "/")
    parts = urlsplit(urljoin(request_url, cleaned))
    return parts.scheme.lower(), parts.netloc.lower()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[Flask, str]]:
    """The example app on a SQLite file of its own, seeded, with one completed job of the admin."""
    from example_app.auth import User
    from example_app.extensions import db

    root: Path = tmp_path_factory.mktemp("next_redirects")
    app = build_catalogue(
        f"sqlite:///{root / 'catalogue.db'}",
        redis_url,
        root / "files",
        instance_path=root / "instance",
        SECRET_KEY="next-redirects-test-key",  # CSRF stays off: here every POST must reach the redirect
    )
    with app.app_context():
        # a cheap hash for the clerk, who logs in once per example (the demo's scrypt takes ~0.5 s)
        clerk = db.session.execute(db.select(User).filter_by(username="clerk")).scalar_one()
        clerk.password_hash = generate_password_hash("clerk", method="pbkdf2:sha256:1")
        db.session.commit()
        admin = db.session.execute(db.select(User).filter_by(username="admin")).scalar_one()
        job_id = _insert_completed_job(db.engine, str(admin.id), admin.name)
    yield app, job_id
    dispose_engines(app)


def _insert_completed_job(engine: sa.Engine, user_id: str, user_name: str) -> str:
    now = utcnow()
    job_id = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(
            sa.insert(job_table).values(
                id=job_id,
                name="Stock report",
                type="export",
                category="export",
                task="example_app.tasks.stock_report",
                params={"args": [], "kwargs": {}},
                status="completed",
                is_system=False,
                low_priority=False,
                queue_name="jobmonitor",
                run_by_id=user_id,
                run_by_name=user_name,
                created_at=now,
                started_at=now,
                ended_at=now,
                status_changed_at=now,
                progress_done=0,
                current_step=0,
                step_count=0,
                error_count=0,
                warning_count=0,
                attempt=1,
                stop_forced=False,
            )
        )
    return job_id


@pytest.fixture
def admin(catalogue: tuple[Flask, str]) -> FlaskClient:
    return log_in(catalogue[0], "admin")


def _assert_stays_on_site(response: Any, request_url: str, value: str) -> None:
    assert response.status_code == 302, f"{request_url} with next={value!r} answered {response.status_code}"
    location = response.headers["Location"]
    destination = browser_destination(location, request_url)
    assert destination == ("http", "localhost"), f"next={value!r} sent the browser to {location!r}"


@PROPERTY_SETTINGS
@given(value=next_values)
@example(value="/\t/evil.example/")
@example(value="/%09/evil.example/")
@example(value="/\\evil.example")
@example(value="/%2F%2Fevil.example")
@example(value="/\uff0f\uff0fevil.example")
@example(value="https:evil.example")
def test_no_next_of_the_login_leaves_the_site(catalogue: tuple[Flask, str], value: str) -> None:
    client = catalogue[0].test_client()
    response = client.post("/login", query_string={"next": value}, data={"username": "clerk", "password": "clerk"})
    _assert_stays_on_site(response, "http://localhost/login", value)


@PROPERTY_SETTINGS
@given(value=next_values)
@example(value="/\t/evil.example/")
@example(value="/\r\n/evil.example/")
@example(value="//evil.example/")
@example(value="javascript:alert(1)")
def test_no_next_of_a_job_action_leaves_the_site(catalogue: tuple[Flask, str], admin: FlaskClient, value: str) -> None:
    url = f"/admin/jobs/{catalogue[1]}/action"  # stop a completed job: refused, sent back
    response = admin.post(url, data={"action": "stop", "next": value})
    _assert_stays_on_site(response, f"http://localhost{url}", value)


@PROPERTY_SETTINGS
@given(value=next_values)
@example(value="/\t/evil.example/")
@example(value="/\n/evil.example/")
def test_no_next_of_a_bulk_action_leaves_the_site(catalogue: tuple[Flask, str], admin: FlaskClient, value: str) -> None:
    response = admin.post("/admin/jobs/bulk", data={"action": "stop", "ids": catalogue[1], "next": value})
    _assert_stays_on_site(response, "http://localhost/admin/jobs/bulk", value)
