"""Property tests: no query parameter value and no job id in a URL makes the job pages answer 500.

The example catalogue runs on a temporary SQLite file with a handful of jobs (steps, subtasks,
log lines, a child, a system job, another user's job); the admin, who may see everything, asks
the process tracker list and a job's detail page with arbitrary values for every parameter they
read - any text (unicode, NUL, markup), huge and negative numbers, dates of every shape, the
same parameter several times - and the answer must be 200, or 400 with the error shown on the
page. Arbitrary job ids in the path of the detail page and of the JSON endpoint answer 404.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_jobmonitor.records.models import job_table, log_table, step_table, subtask_table
from flask_jobmonitor.records.status import JobStatus
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.web.listing import SORTABLE, STATUS_GROUPS

from ..support.databases import dispose_engines
from ..support.examples import build_catalogue, log_in

LIST_PARAMS = (
    "q",
    "type",
    "user",
    "status",
    "group",
    "category",
    "from",
    "to",
    "system",
    "parent",
    "sort",
    "dir",
    "page",
    "per_page",
)
DETAIL_PARAMS = ("subtask_status", "subtask_page", "log_level", "log_q", "log_page", "children_page")
MARKUP = "<script>alert(1)</script>"
ERROR_ALERT = re.compile(r'<div class="alert alert-danger" role="alert"[^>]*>\s*([^<\s][^<]*)</div>')
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- values --------------------------------------------------------------------------------------------

# any text a URL can carry (surrogates cannot be encoded), NUL and control characters included
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
long_text = st.integers(min_value=30, max_value=400).map(lambda n: "é" * n)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 1, 2, 50, 200, 201, 100_000, 100_001, 1_000_000, 1_000_001, 2**31, 2**63, -(2**63)]),
).map(str)
huge_numbers = st.integers(min_value=1, max_value=6000).map(lambda digits: "9" * digits)  # past int()'s 4300 digits
floats = st.floats(allow_nan=True, allow_infinity=True).map(str)
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    st.dates().map(lambda d: d.strftime("%Y%m%d")),
    st.dates().map(lambda d: d.strftime("%d.%m.%Y")),
    st.dates().map(lambda d: d.strftime("%B %d, %Y")),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S+05:30")),
    st.sampled_from(
        [
            "0001-01-01",
            "9999-12-31",
            "9999-12-30",
            "2026-02-29",
            "2024-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-1",
            "2026-01-32",
            "-2026-01-01",
            "+2026-01-01",
            " 2026-01-01 ",
            "2026-01-01\x00",
            "\uff12\uff10\uff12\uff16-\uff10\uff11-\uff10\uff11",  # full-width digits
            "yesterday",
            "1e9",
        ]
    ),
)
raw_bytes = st.binary(max_size=20)  # percent-encoded as they are: invalid UTF-8 included


def known_values() -> list[str]:
    values = [s.value for s in JobStatus] + list(STATUS_GROUPS) + list(SORTABLE) + ["asc", "desc"]
    values += ["import", "export", "general", "mass_edit", "1", "true", "on", "0", "off", MARKUP, "%", "_", "\\"]
    values += ["0123", "abcd-ef", "deadbeef-", "ffffffff-ffff-ffff-ffff-ffffffffffff"]
    values += ["debug", "info", "warning", "error", "done", "skipped", "DEBUG", " info "]
    return values


values = st.one_of(
    any_text,
    long_text,
    numbers,
    huge_numbers,
    floats,
    dates,
    raw_bytes,
    st.sampled_from(known_values()),
    st.sampled_from(known_values()).map(lambda v: f" {v} "),
    st.uuids().map(str),
)


def query_strings(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    """A query string setting any of ``names`` to one or several arbitrary values."""
    pairs = st.dictionaries(st.sampled_from(names), st.lists(values, min_size=1, max_size=3), max_size=len(names))
    return pairs.map(lambda chosen: urlencode([(name, value) for name, several in chosen.items() for value in several]))


job_id_segments = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/"), min_size=1, max_size=80),
    st.uuids().map(str),
    st.uuids().map(lambda u: str(u).upper()),
    st.uuids().map(lambda u: u.hex),
    st.uuids().map(lambda u: str(u) + "0"),
    st.uuids().map(lambda u: str(u)[:-1]),
    st.sampled_from(
        ["bulk", "action", ".", "..", "-", "0", "-1", "99999999999999999999", "null", "<img src=x onerror=alert(1)>"]
    ),
    st.integers(min_value=36, max_value=5000).map(lambda n: "a" * n),
)


# -- the app -------------------------------------------------------------------------------------------


def _insert_jobs(engine: sa.Engine) -> dict[str, str]:
    """A few jobs the pages can show; returns their ids by role."""
    now = utcnow()
    ids = {name: str(uuid.uuid4()) for name in ("import", "running", "failed", "child", "system", "clerk")}

    def job(key: str, **values: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": ids[key],
            "name": f"{key} job",
            "type": "import",
            "category": "import",
            "task": "example_app.tasks.import_products",
            "params": {"args": [], "kwargs": {"note": "ünïcode"}},
            "status": JobStatus.COMPLETED.value,
            "queue_name": "jobmonitor",
            "run_by_id": "1",
            "run_by_name": "Alice Admin",
            "created_at": now - timedelta(hours=2),
            "enqueued_at": now - timedelta(hours=2),
            "started_at": now - timedelta(hours=2) + timedelta(seconds=3),
            "ended_at": now - timedelta(hours=1),
            "status_changed_at": now - timedelta(hours=1),
            "progress_done": 10,
            "progress_total": 10,
            "current_step": 2,
            "step_count": 2,
            "attempt": 1,
            "error_count": 0,
            "warning_count": 0,
            "error_message": None,
            "parent_id": None,
            "root_id": None,
            "is_system": False,
        }
        row.update(values)
        return row

    rows = [
        job("import", error_count=2, warning_count=1),
        job("running", status="running", ended_at=None, progress_done=4, current_step=1),
        job("failed", status="failed", type="export", category="export", error_message="ValueError: boom"),
        job("child", parent_id=ids["import"], root_id=ids["import"], type="mass_edit", category="general"),
        job("system", is_system=True, run_by_id=None, run_by_name=None, type="maintenance", category="system"),
        job("clerk", run_by_id="3", run_by_name="Chris Clerk", status="queued", started_at=None, ended_at=None),
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(job_table), rows)
        for key in ids:
            connection.execute(
                sa.insert(step_table),
                [
                    {
                        "job_id": ids[key],
                        "position": position,
                        "name": name,
                        "status": "completed",
                        "done": 5,
                        "total": 5,
                        "counters": {"read": 5},
                        "started_at": now - timedelta(hours=2),
                        "ended_at": now - timedelta(hours=1),
                    }
                    for position, name in ((1, "Read file"), (2, "Save products"))
                ],
            )
        connection.execute(
            sa.insert(subtask_table),
            [
                {
                    "job_id": ids["import"],
                    "name": f"line {n}",
                    "status": ("error", "done", "skipped")[n % 3],
                    "message": f"message {n} ✓",
                    "created_at": now,
                }
                for n in range(120)
            ],
        )
        connection.execute(
            sa.insert(log_table),
            [
                {"job_id": ids["import"], "created_at": now, "level": level, "message": f"log line {n} 100%_done"}
                for n, level in enumerate([10, 20, 30, 40, 50] * 25)
            ],
        )
    return ids


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[Flask, dict[str, str]]]:
    from example_app.extensions import db

    root: Path = tmp_path_factory.mktemp("web_property")
    app = build_catalogue(f"sqlite:///{root / 'catalogue.db'}", redis_url, root / "files")
    with app.app_context():
        ids = _insert_jobs(db.engine)
    yield app, ids
    dispose_engines(app)


@pytest.fixture
def admin(catalogue: tuple[Flask, dict[str, str]]) -> FlaskClient:
    app, _ids = catalogue
    return log_in(app, "admin")


@pytest.fixture
def job_ids(catalogue: tuple[Flask, dict[str, str]]) -> dict[str, str]:
    return catalogue[1]


def _check_page(response: Any, url: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code in (200, 400), f"{url} answered {response.status_code}:\n{body[:2000]}"
    if response.status_code == 400:
        match = ERROR_ALERT.search(body)
        assert match, f"{url} answered 400 without an error message on the page:\n{body[:3000]}"
    assert MARKUP not in body, f"{url} put a parameter into the page unescaped"


# -- properties ----------------------------------------------------------------------------------------


def test_the_unfiltered_pages_answer_200(admin: FlaskClient, job_ids: dict[str, str]) -> None:
    assert admin.get("/admin/jobs/").status_code == 200
    for job_id in job_ids.values():
        assert admin.get(f"/admin/jobs/{job_id}/").status_code == 200
        assert admin.get(f"/jobmonitor/api/jobs/{job_id}").status_code == 200


@PROPERTY_SETTINGS
@given(query=query_strings(LIST_PARAMS))
@example(query="to=9999-12-31")  # "to" is inclusive: the day after the last one a datetime holds
@example(query="from=9999-12-31&to=9999-12-31")
@example(query="from=0001-01-01&to=0001-01-01")
@example(query="page=" + "9" * 5000)  # longer than int() converts
@example(query="page=100000&per_page=200")
@example(query="per_page=0&page=-1")
@example(query="q=%00&user=%00&parent=%00")
@example(query="q=%FF%FE&type=%C3")
@example(query="status=running&status=bogus&sort=name&sort=&dir=up")
def test_list_parameters_never_cause_a_server_error(admin: FlaskClient, query: str) -> None:
    url = f"/admin/jobs/?{query}"
    _check_page(admin.get(url), url)


@PROPERTY_SETTINGS
@given(query=query_strings(DETAIL_PARAMS), which=st.sampled_from(["import", "running", "failed", "child", "system"]))
@example(query="subtask_page=" + "9" * 5000 + "&log_page=-1&children_page=0", which="import")
@example(query="subtask_status=%00&log_q=%00", which="import")
@example(query="log_level=notice&log_q=%25_%5C", which="import")
@example(query="subtask_page=1000000&log_page=1000001", which="import")
def test_detail_parameters_never_cause_a_server_error(
    admin: FlaskClient, job_ids: dict[str, str], query: str, which: str
) -> None:
    url = f"/admin/jobs/{job_ids[which]}/?{query}"
    _check_page(admin.get(url), url)


@PROPERTY_SETTINGS
@given(segment=job_id_segments)
@example(segment="bulk")
@example(segment="\x00")
@example(segment="..")
@example(segment="00000000-0000-0000-0000-000000000000")
def test_unknown_job_ids_in_the_path_answer_404(admin: FlaskClient, job_ids: dict[str, str], segment: str) -> None:
    if segment in job_ids.values():
        return
    quoted = quote(segment, safe="")
    page = admin.get(f"/admin/jobs/{quoted}/")
    assert page.status_code == 404, f"/admin/jobs/{quoted}/ answered {page.status_code}"
    api = admin.get(f"/jobmonitor/api/jobs/{quoted}")
    expected = 405 if segment == "bulk" else 404  # /api/jobs/bulk is the bulk endpoint, POST only
    assert api.status_code == expected, f"/jobmonitor/api/jobs/{quoted} answered {api.status_code}"
    assert api.is_json and "error" in api.get_json(), api.get_data(as_text=True)[:500]
