"""Every page and JSON endpoint of the example catalogue, with garbage in every query parameter:
no answer is a 500, and no answer shows a traceback or SQL.

The routes are enumerated from ``app.url_map`` (the package's blueprints and admin views, the
example's own pages and Flask-Admin's product views), so a new page is walked without being
listed here. Path variables are filled with the ids of real jobs of each kind (an import that ran
on a real RQ worker and kept its input and error report, an export with its output, a mass edit,
and rows for a running, a failed, a child, a system and a clerk's job) and with garbage. Each
route is asked as anonymous, as the clerk and as the admin, with every parameter the views read
plus generic ones set to each garbage value, one parameter at a time for the admin; hypothesis
then mixes parameters and values. Runs on SQLite and PostgreSQL (which refuses NUL in text).
"""

from __future__ import annotations

import io
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from flask import Flask, got_request_exception
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis
from werkzeug.routing import Rule

from flask_jobmonitor.records.models import file_table, job_table

from ..support.databases import dispose_engines
from ..support.examples import build_catalogue, log_in
from ..support.workers import run_worker
from .test_list_params import DETAIL_PARAMS, LIST_PARAMS, _insert_jobs, values

#: Parameters some view reads, and generic ones a prober tries on every page.
PARAMS = tuple(
    dict.fromkeys(
        (
            *LIST_PARAMS,
            *DETAIL_PARAMS,
            "job_id",
            "_method",
            "endpoint",
            "format",
            "granularity",
            "desc",
            "next",
            "html",
            "ids",
            "since",
            "family",
            "search",
            "page_size",
            "id",
            "url",
            "flt0_0",
            "action",
            "file_id",
            "filename",
            "_external",
            "_anchor",
            "_scheme",
        )
    )
)
GARBAGE = (
    "",
    "x",
    "-1",
    "0",
    "99999999999999999999",
    "9" * 5000,
    "nan",
    "inf",
    "-inf",
    "0001-01-01",
    "9999-12-31",
    "9999-12-31T99",
    "\x00",
    "%00",
    "%",
    "\\",
    "ünïcode ✓ 😀",
    "é" * 3000,
    "<script>alert(1)</script>",
    "csv",
    "json",
    "//evil.example/",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
)
#: The values the exhaustive walks try (the hypothesis walk tries all of GARBAGE and more).
SHORT_GARBAGE = ("x", "-1", "99999999999999999999", "nan", "\x00", "0001-01-01", "9999-12-31T99")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\[SQL: |sqlalchemy\.exc|File \"/")
USERS = ("anonymous", "clerk", "admin")
#: Endpoints left out of the walk, with the reason.
SKIPPED = {"static", "admin.static", "jobmonitor.static"}  # files from disk: Flask's own send_from_directory


class Site(NamedTuple):
    app: Flask
    jobs: dict[str, str]  # job ids by kind
    files: list[int]  # ids of stored files (input, error report, output)


@pytest.fixture(scope="module")
def site(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from example_app.extensions import db, jobmonitor
    from example_app.tasks import change_prices, export_products, import_products

    Redis.from_url(redis_url).flushdb()
    root: Path = tmp_path_factory.mktemp("no_server_errors")
    app = build_catalogue(
        database_url,
        redis_url,
        root / "files",
        PROPAGATE_EXCEPTIONS=False,  # a 500 is an answer here, recorded with its exception
    )
    with app.app_context():
        jobs = _insert_jobs(db.engine)
        csv_text = "sku,name,price,stock\nNEW-1,New,1.50,3\n,no sku,1,1\nNEW-2,Bad price,abc,1\n"
        jobs["real_import"] = jobmonitor.enqueue(
            import_products, files={"products.csv": io.BytesIO(csv_text.encode())}, row_delay=0
        ).id
        jobs["real_export"] = jobmonitor.enqueue(export_products, row_delay=0).id
        jobs["real_mass_edit"] = jobmonitor.enqueue(change_prices, 1.0, product_ids=[1, 2], row_delay=0).id
        run_worker(app)
        with db.engine.connect() as connection:
            # the files of these jobs only: the database may hold other modules' jobs
            ours = (jobs["real_import"], jobs["real_export"], jobs["real_mass_edit"])
            files = list(
                connection.execute(
                    sa.select(file_table.c.id).where(file_table.c.job_id.in_(ours)).order_by(file_table.c.id)
                ).scalars()
            )
    assert len(files) == 3, files  # the import's input and rejected rows, the export's output
    got_request_exception.connect(_remember_exception, app)
    yield Site(app, jobs, files)
    got_request_exception.disconnect(_remember_exception, app)
    dispose_engines(app)


@pytest.fixture(scope="module")
def clients(site: Site) -> dict[str, FlaskClient]:
    return {who: log_in(site.app, None if who == "anonymous" else who) for who in USERS}


def _path_values(site: Site, rule: Rule) -> list[dict[str, Any]]:
    """Values for the rule's path variables: real ids of every kind, and garbage."""
    if not rule.arguments:
        return [{}]
    if rule.arguments == {"job_id"}:
        return [{"job_id": job_id} for job_id in site.jobs.values()] + [{"job_id": "x"}, {"job_id": "\x00"}]
    if rule.arguments == {"file_id"}:
        return [{"file_id": file_id} for file_id in site.files] + [{"file_id": 0}, {"file_id": 99999999999}]
    if rule.arguments == {"profile_id"}:
        return [{"profile_id": 1}, {"profile_id": 0}, {"profile_id": 99999999999999999999}]
    if rule.arguments == {"export_type"}:
        return [{"export_type": "csv"}, {"export_type": "x"}]
    if rule.arguments == {"unknown"}:  # any other address under /api/
        return [{"unknown": "nothing/here"}, {"unknown": "x"}]
    if rule.arguments == {"name"}:  # a task's name (launch)
        return [{"name": "example_app.tasks.import_products"}, {"name": "x"}, {"name": "\x00"}]
    if rule.arguments == {"job_id", "action"}:
        return [{"job_id": site.jobs["running"], "action": "stop"}, {"job_id": site.jobs["import"], "action": "x"}]
    raise AssertionError(f"no values for the path variables of {rule.rule}: name them in _path_values")


def _urls(site: Site, every_kind: bool = False) -> list[str]:
    """Every GET route of the app with each set of path values (``every_kind``), or with the
    first real one and the first garbage one."""
    urls = []
    for rule in site.app.url_map.iter_rules():
        if rule.endpoint in SKIPPED or "GET" not in (rule.methods or ()):
            continue
        choices = _path_values(site, rule)
        if not every_kind and len(choices) > 2:
            choices = [choices[0], choices[-1]]
        for path_values in choices:
            built = rule.rule
            for name, value in path_values.items():
                built = re.sub(rf"<(?:[^:<>]+:)?{name}>", quote(str(value), safe=""), built)
            urls.append(built)
    return urls


_exceptions: list[BaseException] = []


def _remember_exception(sender: Flask, exception: BaseException, **extra: Any) -> None:
    _exceptions.append(exception)


def _problem(response: Any, url: str, who: str) -> str | None:
    """What is wrong with the answer (a 500, internals in the body), or None."""
    body = response.get_data(as_text=True)
    if response.status_code >= 500:
        # Flask-Admin calls a view again when it raises TypeError: the first error is the context
        raised = body[:1500]
        if _exceptions:
            error = _exceptions[-1]
            raised = "".join(traceback.format_exception(error.__context__ or error, chain=False)[-6:])
        _exceptions.clear()
        return f"{who}: {url[:300]} answered {response.status_code}:\n{raised}"
    if TRACEBACK.search(body):
        return f"{who}: {url[:300]} shows internals:\n{body[:1500]}"
    return None


def _report(problems: list[str]) -> str:
    """The problems, one per route (the first of each), so one run names every broken page."""
    first: dict[str, str] = {}
    for problem in problems:
        first.setdefault(re.sub(r"[0-9a-f-]{36}|/\d+$", "<id>", problem.split("?")[0]), problem)
    return f"{len(problems)} bad answers:\n\n" + "\n\n".join(first.values())


def test_every_get_route_is_walked(site: Site) -> None:
    """The walk reaches the pages this file was written for (a guard against an empty walk)."""
    urls = _urls(site, every_kind=True)
    for expected in (
        "/admin/jobs/",
        "/admin/job-statistics/",
        "/admin/job-audit/",
        "/jobmonitor/api/jobs",
        "/admin/product/",
    ):
        assert expected in urls
    assert f"/admin/jobs/{site.jobs['real_import']}/" in urls
    assert f"/jobmonitor/files/{site.files[0]}" in urls


def test_every_page_with_one_garbage_value_in_all_parameters(site: Site, clients: dict[str, FlaskClient]) -> None:
    """Every route, path values of every kind, each person, every parameter set to one value."""
    problems = []
    for url in _urls(site, every_kind=True):
        for who in USERS:
            for value in SHORT_GARBAGE:
                query = urlencode([(name, value) for name in PARAMS])
                problems.append(_problem(clients[who].get(f"{url}?{query}"), f"{url}?{query}", who))
    assert not any(problems), _report([p for p in problems if p])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_garbage_in_one_parameter_never_causes_a_server_error(
    site: Site, clients: dict[str, FlaskClient], data: Any
) -> None:
    """One parameter at a time (as the admin, who sees every page), so that a parameter a view
    refuses first does not hide another one's error."""
    url = data.draw(st.sampled_from(_urls(site)))
    name = data.draw(st.sampled_from(PARAMS))
    value = data.draw(st.sampled_from(GARBAGE))
    query = urlencode({name: value})
    problem = _problem(clients["admin"].get(f"{url}?{query}"), f"{url}?{query}", "admin")
    assert problem is None, problem


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mixed_garbage_never_causes_a_server_error(site: Site, clients: dict[str, FlaskClient], data: Any) -> None:
    """Any value (GARBAGE and the list property tests' values), one to three of them for each of
    a few parameters, on any route as anyone."""
    url = data.draw(st.sampled_from(_urls(site, every_kind=True)))
    who = data.draw(st.sampled_from(USERS))
    chosen = data.draw(
        st.dictionaries(
            st.sampled_from(PARAMS),
            st.lists(st.one_of(values, st.sampled_from(GARBAGE)), min_size=1, max_size=3),
            max_size=6,
        )
    )
    query = urlencode([(name, value) for name, several in chosen.items() for value in several])
    problem = _problem(clients[who].get(f"{url}?{query}"), f"{url}?{query}", who)
    assert problem is None, problem


@pytest.mark.parametrize(
    "query",
    ["format=x", "to=0001-01-01", "to=0001-01-05&granularity=hour", "format=csv&endpoint=x", "_method=x"],
)
def test_the_statistics_page_answers_bad_parameters_without_a_server_error(
    site: Site, clients: dict[str, FlaskClient], query: str
) -> None:
    """Issue 15, row 8: the CSV link carried ``format`` (twice) into url_for; "to" in year 1 had
    no default period before it."""
    response = clients["admin"].get(f"/admin/job-statistics/?{query}")
    assert response.status_code in (200, 400), _problem(response, query, "admin")
    body = response.get_data(as_text=True)
    if query.startswith("to=0001"):
        assert response.status_code == 400 and "0001-01-01 or later" in body


@pytest.mark.parametrize("name", ["job_id", "_method", "endpoint", "_external", "_anchor", "_scheme"])
def test_the_detail_page_ignores_parameters_it_does_not_read(
    site: Site, clients: dict[str, FlaskClient], name: str
) -> None:
    """Issue 15, row 8: the page passed its whole query string into url_for."""
    job_id = site.jobs["import"]  # with subtasks and log lines over several pages: every link is built
    response = clients["admin"].get(f"/admin/jobs/{job_id}/?{name}=x&log_level=info&subtask_page=2")
    assert response.status_code == 200, _problem(response, name, "admin")
    body = response.get_data(as_text=True)
    links = re.findall(r'href="([^"]*)"', body)
    assert not [link for link in links if f"{name}=x" in link]
    assert [link for link in links if "log_level=info" in link]  # the parameters it reads are carried


@pytest.mark.parametrize("percent", ["nan", "inf", "-inf", "NaN", "1e999", "-100", "1001"])
def test_a_mass_edit_by_a_percentage_that_is_not_a_price_change_is_refused(
    site: Site, clients: dict[str, FlaskClient], percent: str
) -> None:
    """Issue 15, row 8: float() reads "nan" and "inf", which no JSON column holds (a 500)."""
    from example_app.extensions import db

    with site.app.app_context(), db.engine.connect() as connection:
        before = connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar()
    response = clients["clerk"].post("/mass-edit", data={"percent": percent}, follow_redirects=True)
    assert response.status_code == 200, _problem(response, percent, "clerk")
    assert "The percentage must be a number above -100 and at most 1000." in response.get_data(as_text=True)
    with site.app.app_context(), db.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar() == before


#: POST routes the form walk leaves out: they end the session or pause every worker.
POST_SKIPPED = {"auth.logout", "auth.login", "jobmonitor_queues.pause", "jobmonitor_queues.resume"}
#: Form fields the POST routes read (and a few generic ones).
#: Actions of the forms that take one (the product list's, the job list's bulk form).
REAL_ACTIONS = ("raise_prices", "stop")
FORM_FIELDS = ("action", "ids", "scope", "percent", "file", "priority", "next", "csrf_token", "url", "rowid")


def _post_urls(site: Site) -> list[str]:
    urls = []
    for rule in site.app.url_map.iter_rules():
        if rule.endpoint in POST_SKIPPED or "POST" not in (rule.methods or ()):
            continue
        choices = _path_values(site, rule)
        for path_values in [choices[0], choices[-1]] if len(choices) > 1 else choices:  # real, garbage
            built = rule.rule
            for name, value in path_values.items():
                built = re.sub(rf"<(?:[^:<>]+:)?{name}>", quote(str(value), safe=""), built)
            urls.append(built)
    return urls


def test_every_form_with_garbage_in_every_field(site: Site, clients: dict[str, FlaskClient]) -> None:
    """The POST routes (the job actions, bulk actions, the example's launch forms, the product
    views) on a real and a garbage path, every field set to one garbage value, as the clerk and
    the admin: no 500. (CSRF is off here: the walk is about the fields.)"""
    problems = []
    for url in _post_urls(site):
        for who in ("clerk", "admin"):
            for value in ("x", "nan", "\x00", "99999999999999999999", "²", ""):
                form = dict.fromkeys(FORM_FIELDS, value)
                problems.append(_problem(clients[who].post(url, data=form), f"{url} POST {value!r}", who))
                # a real action with garbage beside it: the action runs and reads the ids
                for action in REAL_ACTIONS:
                    form = {**dict.fromkeys(FORM_FIELDS, value), "action": action}
                    answer = clients[who].post(url, data=form)
                    problems.append(_problem(answer, f"{url} POST action={action} {value!r}", who))
    assert not any(problems), _report([p for p in problems if p])
