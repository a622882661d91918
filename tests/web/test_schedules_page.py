"""The schedules page (web/admin/schedules.py, jobs/schedules.py): every schedule with its cron,
its next run (rq-scheduler's own time once a scheduler holds it) and its last run linked to the
job; a switch that turns a schedule off for every process and after restarts (kept in SQL), its
launcher then launching nothing, written to the audit trail; who may see and switch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from croniter import croniter
from flask import Flask
from flask.testing import FlaskClient
from rq_scheduler import Scheduler

from flask_jobmonitor.jobs.schedules import create_scheduler, launch_scheduled
from flask_jobmonitor.records.models import audit_table, job_table
from flask_jobmonitor.state import get_state
from flask_jobmonitor.tasks import SCHEDULE_ID_PREFIX
from flask_jobmonitor.timeutil import utcnow

from .. import tasks
from ..support.apps import WEB_HOST, build_app
from ..support.databases import dispose_engines
from ..support.extensions import jobmonitor
from ..support.users import csrf_token

NAME = "tests.nightly-noop"
PAGE = "/admin/job-schedules/"


@pytest.fixture
def schedule(app: Flask) -> Iterator[str]:
    """A schedule of the shared ``jobmonitor`` for this test only; rq-scheduler left empty."""
    before = dict(jobmonitor.schedules)
    jobmonitor.schedule(tasks.noop, "0 2 * * *", name=NAME, job_name="Nightly no-op")
    try:
        yield NAME
    finally:
        jobmonitor.schedules.clear()
        jobmonitor.schedules.update(before)
        scheduler = Scheduler(connection=get_state(app).redis)
        for entry in scheduler.get_jobs():
            if entry.id.startswith(SCHEDULE_ID_PREFIX):
                scheduler.cancel(entry)
                entry.delete()


def _page(client: FlaskClient) -> str:
    response = client.get(PAGE)
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


def _row(html: str, name: str) -> str:
    start = html.index(f'data-jm-schedule="{name}"')
    return html[start : html.index("</tr>", start)]


def _switch(client: FlaskClient, name: str, enabled: str, token: str | None = "") -> Any:
    data = {"name": name, "enabled": enabled}
    if token is not None:
        data["csrf_token"] = token or csrf_token(client)
    return client.post(PAGE + "switch", data=data)


def _jobs(app: Flask) -> list[Any]:
    with app.app_context(), get_state(app).engine.connect() as connection:
        return list(connection.execute(sa.select(job_table.c.id, job_table.c.name)))


def _launch(app: Flask, name: str) -> str:
    with app.app_context():
        return launch_scheduled(name)


def test_an_operator_sees_each_schedule_with_its_next_run_and_its_last_run(
    app: Flask, schedule: str, client_for: Callable[[str | None], FlaskClient]
) -> None:
    admin = client_for("admin")
    html = _page(admin)
    row = _row(html, NAME)
    assert "Nightly no-op" in row and "0 2 * * *" in row and "not run yet" in row
    assert "jobmonitor.retention" in html  # the package's own schedule too
    # no scheduler ever ran here: the next run is the cron's, and the page says why nothing runs
    assert "No scheduler is running" in html and "not in the scheduler yet" in row
    due = croniter("0 2 * * *", utcnow()).get_next(datetime)
    assert f'data-utc="{due.isoformat(timespec="seconds")}Z"' in row

    # a scheduler process starts: it holds the schedule, and the page shows its time
    create_scheduler(app)
    held = dict((job.id, when) for job, when in Scheduler(connection=get_state(app).redis).get_jobs(with_times=True))
    row = _row(_page(admin), NAME)
    assert "not in the scheduler yet" not in row
    assert f'data-utc="{held[SCHEDULE_ID_PREFIX + "tests_nightly-noop"].isoformat(timespec="seconds")}Z"' in row

    # its time comes: the launcher starts the job, and the page links its last run
    job_id = _launch(app, NAME)
    row = _row(_page(admin), NAME)
    assert f'href="/admin/jobs/{job_id}/"' in row and "Queued" in row


def test_a_schedule_switched_off_launches_nothing_until_switched_on_for_every_process(
    app: Flask,
    schedule: str,
    client_for: Callable[[str | None], FlaskClient],
    database_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    admin = client_for("admin")
    response = _switch(admin, NAME, "0")
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    html = _page(admin)
    assert "is off: its runs are skipped until it is switched on" in html
    row = _row(html, NAME)
    assert "Off" in row and "none while it is off" in row and "Switch on" in row and "Ada Admin" in row

    assert _launch(app, NAME) == "switched off"
    assert _jobs(app) == []
    assert "while off" in _row(_page(admin), NAME)
    # kept in SQL: another app (a restarted worker) reads the switch as it was left
    other = build_app(database_url, redis_url, str(tmp_path / "files"), **WEB_HOST)
    try:
        assert _launch(other, NAME) == "switched off"
        assert _jobs(app) == []

        assert _switch(admin, NAME, "1").status_code == 302
        job_id = _launch(other, NAME)
        assert [job.id for job in _jobs(app)] == [job_id]
    finally:
        dispose_engines(other)

    with app.app_context(), get_state(app).engine.connect() as connection:
        entries = connection.execute(
            sa.select(audit_table.c.action, audit_table.c.actor_name, audit_table.c.detail).order_by(audit_table.c.id)
        ).all()
    assert [tuple(entry) for entry in entries] == [
        ("disable_schedule", "Ada Admin", NAME),
        ("enable_schedule", "Ada Admin", NAME),
    ]
    # switching to what it already is changes nothing and writes nothing more
    assert _switch(admin, NAME, "1").status_code == 302
    assert "Nothing changed" in _page(admin)


@pytest.mark.parametrize("who", ["clerk_a", None])
def test_people_without_view_all_do_not_see_schedules(
    app: Flask, schedule: str, client_for: Callable[[str | None], FlaskClient], who: str | None
) -> None:
    response = client_for(who).get(PAGE)
    assert response.status_code in (302, 403)  # anonymous: to the login page
    assert NAME not in response.get_data(as_text=True)


def test_switching_needs_the_permission_a_csrf_token_and_a_known_schedule(
    app: Flask, schedule: str, client_for: Callable[[str | None], FlaskClient]
) -> None:
    manager = client_for("manager")  # sees every job, may not switch schedules
    row = _row(_page(manager), NAME)
    assert "<form" not in row and "On" in row
    assert _switch(manager, NAME, "0").status_code == 403
    clerk = client_for("clerk_a")
    assert _switch(clerk, NAME, "0").status_code == 403

    admin = client_for("admin")
    assert _switch(admin, NAME, "0", token=None).status_code == 400
    unknown = _switch(admin, "no-such-schedule", "0")
    assert unknown.status_code == 400 and "There is no schedule called 'no-such-schedule'." in unescape(
        unknown.get_data(as_text=True)
    )
    twice = admin.post(PAGE + "switch", data={"name": NAME, "enabled": ["0", "1"], "csrf_token": csrf_token(admin)})
    assert twice.status_code == 400
    assert _switch(admin, NAME, "2").status_code == 400
    assert admin.get(PAGE + "switch").status_code == 405
    assert "Switch off" in _row(_page(admin), NAME)  # still on


def test_the_command_line_lists_the_schedules_and_switches_one(
    app: Flask, schedule: str, client_for: Callable[[str | None], FlaskClient]
) -> None:
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["jobmonitor", "schedules"])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith(NAME))
    assert "\t0 2 * * *\ton\tnext " in line and "(not in the scheduler yet)" in line and line.endswith("last never")
    assert "no scheduler is running" in listed.output

    switched = runner.invoke(args=["jobmonitor", "schedule", NAME, "off"])
    assert switched.exit_code == 0 and switched.output.strip() == f"schedule {NAME} is off"
    assert "Off" in _row(_page(client_for("admin")), NAME)
    assert _launch(app, NAME) == "switched off"
    again = runner.invoke(args=["jobmonitor", "schedule", NAME, "off"])
    assert again.output.strip() == f"schedule {NAME} already was off"
    unknown = runner.invoke(args=["jobmonitor", "schedule", "nope", "on"])
    assert unknown.exit_code == 1 and "no schedule is registered under the name 'nope'" in unknown.output
    with app.app_context(), get_state(app).engine.connect() as connection:
        entry = connection.execute(sa.select(audit_table).order_by(audit_table.c.id.desc())).first()
    assert (entry.action, entry.origin, entry.detail) == ("disable_schedule", "command line", NAME)
    assert entry.actor_name.endswith("(command line)")


def test_the_page_knows_whether_a_scheduler_runs_between_its_looks(
    app: Flask, schedule: str, client_for: Callable[[str | None], FlaskClient]
) -> None:
    admin = client_for("admin")
    scheduler = Scheduler(connection=get_state(app).redis, interval=60, name="tests-scheduler")
    scheduler.register_birth()  # as `flask jobmonitor scheduler` does, then sleeps between looks
    try:
        assert "No scheduler is running" not in _page(admin)
        assert "no scheduler is running" not in app.test_cli_runner().invoke(args=["jobmonitor", "schedules"]).output
    finally:
        scheduler.register_death()
    assert "No scheduler is running" in _page(admin)
