"""Actions on jobs (stop, force stop, resume, cancel, restart, delete, priority) through the JSON
endpoint and the admin form, for every kind of user: who may do what, what a refusal leaves
behind (nothing), CSRF, wrong statuses, the buttons each user is shown, the audit log lines and
bulk actions on a selection and on "all matching the filters".

The expectations are written out here from the documented default rules (permissions.py), not
asked of the package's own permission functions.
"""

from __future__ import annotations

import html
import logging
import re
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from flask_jobmonitor.jobs import control
from flask_jobmonitor.keys import control_key
from flask_jobmonitor.records.models import job_table, log_table
from flask_jobmonitor.state import get_state
from flask_jobmonitor.timeutil import utcnow

from .. import tasks
from ..support.extensions import QUEUE_NAMES, db
from ..support.rows import add_job, log_messages
from ..support.users import USERS, csrf_token
from ..support.web import enqueue
from ..support.workers import run_worker

# -- the expectation table -------------------------------------------------------------------------
#
# Default rules (permissions.py, with the harness's roles: admin holds every permission, manager
# view_all + stop, auditor view_all, clerks nothing extra):
# - a job of someone else is invisible (404) without view_all;
# - the owner may stop, force stop, resume, cancel, restart and re-prioritise, never delete;
# - someone else's job: stop/force stop need jobmonitor.stop; resume, cancel, restart and
#   priority need jobmonitor.manage; delete needs jobmonitor.delete (also for one's own job);
# - anonymous: 401 (JSON) or the login redirect (form).

ORDER = ("stop", "force_stop", "resume", "cancel", "restart", "delete", "set_low_priority", "set_normal_priority")
STOPS = frozenset({"stop", "force_stop"})
MANAGES = frozenset({"resume", "cancel", "restart", "set_low_priority", "set_normal_priority"})
EVERYTHING = STOPS | MANAGES | {"delete"}
HIDDEN = "hidden"
ANONYMOUS = "anonymous"

#: (acting user, whose job) -> the actions permitted, or HIDDEN / ANONYMOUS.
PERMITTED: dict[tuple[str | None, str], Any] = {
    ("admin", "own"): EVERYTHING,
    ("admin", "other"): EVERYTHING,  # view_all, stop, manage, delete
    ("manager", "own"): STOPS | MANAGES,  # owner; no delete permission
    ("manager", "other"): STOPS,  # view_all + stop, but not manage or delete
    ("clerk_a", "own"): STOPS | MANAGES,
    ("clerk_a", "other"): HIDDEN,  # clerk B's job: no view_all
    ("clerk_b", "own"): STOPS | MANAGES,
    ("clerk_b", "other"): HIDDEN,  # clerk A's job
    ("auditor", "own"): STOPS | MANAGES,
    ("auditor", "other"): frozenset(),  # view_all only: sees it, may do nothing to it
    (None, "other"): ANONYMOUS,
}
CASES = list(PERMITTED)


def owner_of(who: str | None, relation: str) -> str:
    """Whose job it is: the user's own, or clerk A's (clerk B's when the user is clerk A)."""
    if relation == "own":
        assert who is not None
        return who
    return "clerk_b" if who == "clerk_a" else "clerk_a"


def outcome(action: str, who: str | None, relation: str) -> str:
    permitted = PERMITTED[(who, relation)]
    if permitted in (HIDDEN, ANONYMOUS):
        return permitted
    return "done" if action in permitted else "forbidden"


#: How a refusal names each action ("You may not force-stop this job.").
REFUSED_WORDS = {
    "stop": "stop",
    "force_stop": "force-stop",
    "resume": "resume",
    "cancel": "cancel",
    "restart": "restart",
    "delete": "delete",
    "set_low_priority": "change the priority of",
    "set_normal_priority": "change the priority of",
}
MATRIX = [
    pytest.param(action, who, relation, id=f"{action}-{who or 'anonymous'}-{relation}")
    for action in ORDER
    for who, relation in CASES
]

#: What the single-job endpoints answer for each action that was done.
MESSAGES = {
    "stop": "The job will stop at its next checkpoint. Work already done is kept.",
    "force_stop": "The job was force-stopped.",
    "resume": "The job is queued again and will continue from its checkpoint.",
    "cancel": "The job was cancelled.",
    "restart": "A new job was started with the same parameters.",
    "delete": "The job and everything recorded about it were deleted.",
    "set_low_priority": "Priority set to low.",
    "set_normal_priority": "Priority set to normal.",
}
#: The status a done action leaves the job in (restart leaves the original as it was).
STATUS_AFTER = {
    "stop": "stopping",
    "force_stop": "stopped",
    "resume": "queued",
    "cancel": "cancelled",
    "restart": "completed",
    "delete": None,
    "set_low_priority": "queued",
    "set_normal_priority": "queued",
}


def test_the_table_covers_every_action_of_the_package():
    assert ORDER == control.ACTIONS
    assert set(EVERYTHING) == set(control.ACTIONS)


# -- jobs in a status that fits each action ------------------------------------------------------


def minutes_ago(minutes: float):
    return utcnow() - timedelta(minutes=minutes)


def make_job(app, engine, action: str, owner: str) -> str:
    """A job of ``owner`` in a status where ``action`` fits. Actions that go through RQ (cancel a
    queued job, priority) get a real queued job; resume and restart queue a real RQ job."""
    if action in ("stop", "force_stop"):
        return add_job(engine, owner, name="Running import", status="running", started_at=minutes_ago(1))
    if action == "resume":
        return add_job(
            engine,
            owner,
            name="Stopped resumable",
            task="tests.tasks.checkpoints",
            params={"args": [], "kwargs": {"count": 5}},
            status="stopped",
            checkpoint={"next": 2},
            created_at=minutes_ago(5),
            started_at=minutes_ago(4),
            stop_requested_at=minutes_ago(3),
            ended_at=minutes_ago(3),
        )
    if action in ("cancel", "set_low_priority"):
        return enqueue(app, tasks.noop, owner, name="Queued export")
    if action == "set_normal_priority":
        return enqueue(app, tasks.noop, owner, name="Queued low export", low_priority=True)
    if action in ("restart", "delete"):
        job_id = add_job(
            engine,
            owner,
            name="Finished report",
            status="completed",
            created_at=minutes_ago(5),
            started_at=minutes_ago(4),
            ended_at=minutes_ago(3),
        )
        with engine.begin() as connection:
            connection.execute(
                sa.insert(log_table).values(job_id=job_id, created_at=minutes_ago(3), level=20, message="did it")
            )
        return job_id
    raise AssertionError(action)


# -- what the world looks like -------------------------------------------------------------------


def queues(app) -> dict[str, list[str]]:
    redis = get_state(app).redis
    return {
        level: [raw.decode() for raw in redis.lrange(f"rq:queue:{name}", 0, -1)] for level, name in QUEUE_NAMES.items()
    }


def snapshot(app, engine, job_id: str) -> dict[str, Any]:
    """Everything an action could change: the row, its log, the job count, RQ queues, the signal."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(job_table).where(job_table.c.id == job_id)).mappings().first()
        logs = connection.execute(
            sa.select(log_table.c.message).where(log_table.c.job_id == job_id).order_by(log_table.c.id)
        ).scalars()
        count = connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar()
        return {
            "row": dict(row) if row is not None else None,
            "logs": list(logs),
            "jobs": count,
            "queues": queues(app),
            "signal": get_state(app).redis.get(control_key(job_id)),
        }


def row_of(engine, job_id: str):
    with engine.connect() as connection:
        return connection.execute(sa.select(job_table).where(job_table.c.id == job_id)).first()


def restarts_of(engine, job_id: str) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(sa.select(job_table.c.id).where(job_table.c.restarted_from_id == job_id)).scalars()
        )


def flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return [tuple(item) for item in session.get("_flashes", [])]


# -- requests ------------------------------------------------------------------------------------

NEXT = "/admin/jobs/?q=report"


def post_json(client, job_id: str, action: str, token: str | None = "valid"):
    headers = {}
    if token == "valid":
        headers["X-CSRFToken"] = csrf_token(client)
    elif token is not None:
        headers["X-CSRFToken"] = token
    return client.post(f"/jobmonitor/api/jobs/{job_id}/{action}", headers=headers)


def post_form(client, job_id: str, action: str, token: str | None = "valid", next_url: str = NEXT):
    data = {"action": action, "next": next_url}
    if token == "valid":
        data["csrf_token"] = csrf_token(client)
    elif token is not None:
        data["csrf_token"] = token
    return client.post(f"/admin/jobs/{job_id}/action", data=data)


def assert_effect(app, engine, action: str, job_id: str, who: str, before: dict[str, Any], caplog) -> str | None:
    """Check that ``action`` was done to ``job_id`` by ``who``; return the new job of a restart."""
    name = USERS[who].name
    row = row_of(engine, job_id)
    rq = queues(app)
    lines = log_messages(engine, job_id)
    new_job_id = None
    if action == "delete":
        assert row is None
        assert lines == []
        assert any(
            r.name == "flask_jobmonitor.internal.control" and f"deleted by {name}" in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
        return None
    assert row.status == STATUS_AFTER[action]
    expected_line = {
        "stop": f"Stop requested by {name}; work already done is kept.",
        "force_stop": f"Force-stopped by {name}.",
        "resume": f"Resumed by {name}.",
        "cancel": f"Cancelled by {name}.",
        "set_low_priority": f"Set to low priority by {name}.",
        "set_normal_priority": f"Set to normal priority by {name}.",
    }
    if action == "stop":
        assert row.stop_requested_at is not None
        assert get_state(app).redis.get(control_key(job_id)) == b"stop"
    elif action == "force_stop":
        assert row.stop_forced and row.ended_at is not None
    elif action == "resume":
        assert row.ended_at is None
        assert job_id in rq["default"]
    elif action == "cancel":
        assert row.ended_at is not None
        assert all(job_id not in ids for ids in rq.values())
    elif action == "set_low_priority":
        assert (row.low_priority, row.queue_name) == (True, QUEUE_NAMES["low"])
        assert job_id in rq["low"] and job_id not in rq["default"]
    elif action == "set_normal_priority":
        assert (row.low_priority, row.queue_name) == (False, QUEUE_NAMES["default"])
        assert job_id in rq["default"] and job_id not in rq["low"]
    elif action == "restart":
        assert dict(row._mapping) == before["row"]  # the original stays as it was
        [new_job_id] = restarts_of(engine, job_id)
        new = row_of(engine, new_job_id)
        assert (new.status, new.task, new.name) == ("queued", before["row"]["task"], before["row"]["name"])
        assert (new.run_by_id, new.run_by_name) == (USERS[who].id, name)  # the one who pressed the button
        assert new_job_id in rq["default"]
        expected_line["restart"] = f"Restarted by {name}."
    assert lines[: len(before["logs"])] == before["logs"]
    assert lines[len(before["logs"]) :] == [expected_line[action]]
    return new_job_id


# -- the permission matrix -----------------------------------------------------------------------


@pytest.mark.parametrize(("action", "who", "relation"), MATRIX)
def test_json_action_permission_matrix(app, engine, client_for, caplog, action, who, relation):
    caplog.set_level(logging.INFO, logger="flask_jobmonitor.internal.control")
    job_id = make_job(app, engine, action, owner_of(who, relation))
    client = client_for(who)
    before = snapshot(app, engine, job_id)
    response = post_json(client, job_id, action)
    expected = outcome(action, who, relation)
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    if expected == "done":
        assert response.status_code == 200, body
        new_job_id = assert_effect(app, engine, action, job_id, who, before, caplog)
        assert body == {"message": MESSAGES[action], "status": STATUS_AFTER[action], "new_job_id": new_job_id}
        return
    if expected == ANONYMOUS:
        assert response.status_code == 401
    elif expected == HIDDEN:
        assert response.status_code == 404
        assert body == {"error": f"no job with id {job_id!r}"}
    else:
        assert response.status_code == 403
        assert body == {"error": f"You may not {REFUSED_WORDS[action]} this job."}
    assert snapshot(app, engine, job_id) == before


@pytest.mark.parametrize(("action", "who", "relation"), MATRIX)
def test_form_action_permission_matrix(app, engine, client_for, caplog, action, who, relation):
    caplog.set_level(logging.INFO, logger="flask_jobmonitor.internal.control")
    job_id = make_job(app, engine, action, owner_of(who, relation))
    client = client_for(who)
    before = snapshot(app, engine, job_id)
    response = post_form(client, job_id, action)
    expected = outcome(action, who, relation)
    if expected == "done":
        assert response.status_code == 302, response.get_data(as_text=True)
        new_job_id = assert_effect(app, engine, action, job_id, who, before, caplog)
        location = response.headers["Location"]
        if action == "restart":
            assert urlsplit(location).path == f"/admin/jobs/{new_job_id}/"
        else:
            assert location == NEXT
        # one message: a restart leads to the new job's page, so enqueue's own "started" flash
        # (with a link to that page) is not added to it
        assert flashes(client) == [("success", MESSAGES[action])]
        return
    if expected == ANONYMOUS:
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/login"
    elif expected == HIDDEN:
        assert response.status_code == 404
    else:
        assert response.status_code == 403
        page = html.unescape(response.get_data(as_text=True))
        assert f"You may not {REFUSED_WORDS[action]} this job." in page
        assert job_id not in page
    assert flashes(client) == []
    assert snapshot(app, engine, job_id) == before


def test_a_restart_by_the_owner_runs_as_a_real_job(app, engine, client_for):
    """The job a restart queues is a real RQ job that a worker runs to completion."""
    job_id = make_job(app, engine, "restart", "clerk_a")
    response = post_json(client_for("clerk_a"), job_id, "restart")
    new_job_id = response.get_json()["new_job_id"]
    run_worker(app)
    assert row_of(engine, new_job_id).status == "completed"
    assert row_of(engine, job_id).status == "completed"


# -- POST only, CSRF -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ORDER)
def test_every_action_is_post_only(app, engine, client_for, action):
    job_id = make_job(app, engine, action, "clerk_a")
    client = client_for("admin")
    before = snapshot(app, engine, job_id)
    assert client.get(f"/jobmonitor/api/jobs/{job_id}/{action}").status_code == 405
    assert client.get(f"/admin/jobs/{job_id}/action?action={action}").status_code == 405
    assert client.put(f"/jobmonitor/api/jobs/{job_id}/{action}").status_code == 405
    assert snapshot(app, engine, job_id) == before


def test_bulk_endpoints_are_post_only(app, engine, client_for):
    job_id = make_job(app, engine, "cancel", "clerk_a")
    client = client_for("admin")
    before = snapshot(app, engine, job_id)
    # a GET is refused as such (not taken for the detail page of a job called "bulk")
    for url in (f"/admin/jobs/bulk?action=cancel&ids={job_id}", "/jobmonitor/api/jobs/bulk"):
        response = client.get(url)
        assert (response.status_code, response.headers.get("Allow")) == (405, "POST"), url
    assert "POST" in client.get("/jobmonitor/api/jobs/bulk").get_json()["error"]
    assert "Bulk actions are sent from the job list" in client.get("/admin/jobs/bulk").get_data(as_text=True)
    assert client_for(None).get("/jobmonitor/api/jobs/bulk").status_code == 405  # nothing to reveal
    assert snapshot(app, engine, job_id) == before


@pytest.mark.parametrize("token", [None, "forged"], ids=["no-token", "forged-token"])
@pytest.mark.parametrize("action", ORDER)
def test_every_action_needs_a_csrf_token(app, engine, client_for, action, token):
    job_id = make_job(app, engine, action, "admin")
    client = client_for("admin")
    before = snapshot(app, engine, job_id)
    response = post_json(client, job_id, action, token=token)
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    response = post_form(client, job_id, action, token=token)
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert flashes(client) == []
    assert snapshot(app, engine, job_id) == before


def test_bulk_needs_a_csrf_token(app, engine, client_for):
    job_id = make_job(app, engine, "cancel", "admin")
    client = client_for("admin")
    before = snapshot(app, engine, job_id)
    response = client.post("/jobmonitor/api/jobs/bulk", json={"action": "cancel", "ids": [job_id]})
    assert response.status_code == 400
    response = client.post("/admin/jobs/bulk", data={"action": "cancel", "ids": [job_id], "scope": "selected"})
    assert response.status_code == 400
    response = client.post("/admin/jobs/bulk", data={"action": "cancel", "scope": "matching"})
    assert response.status_code == 400
    assert snapshot(app, engine, job_id) == before


def test_a_csrf_token_of_another_session_is_refused(app, engine, client_for):
    job_id = make_job(app, engine, "stop", "clerk_a")
    token_of_b = csrf_token(client_for("clerk_b"))
    client = client_for("clerk_a")
    before = snapshot(app, engine, job_id)
    assert post_json(client, job_id, "stop", token=token_of_b).status_code == 400
    assert post_form(client, job_id, "stop", token=token_of_b).status_code == 400
    assert snapshot(app, engine, job_id) == before


def test_without_csrf_protection_actions_need_no_token(make_app, client_for):
    app = make_app(WTF_CSRF_ENABLED=False)
    with app.app_context():
        engine = db.engine
    client = app.test_client()
    client.get("/_test/login/clerk_a")
    first = add_job(engine, "clerk_a", status="running")
    second = add_job(engine, "clerk_a", status="running")
    assert post_json(client, first, "stop", token=None).status_code == 200
    assert post_form(client, second, "force_stop", token=None).status_code == 302
    assert (row_of(engine, first).status, row_of(engine, second).status) == ("stopping", "stopped")


# -- a status the action does not fit ------------------------------------------------------------

WRONG_STATUS = {
    "stop": {"status": "completed"},
    "force_stop": {"status": "queued"},
    "resume": {"status": "completed", "task": "tests.tasks.checkpoints"},
    "resume-not-resumable": {"status": "stopped"},  # tests.tasks.noop cannot resume
    "cancel": {"status": "running"},
    "restart": {"status": "running"},
    "delete": {"status": "running"},
    "set_low_priority": {"status": "completed"},
    "set_normal_priority": {"status": "running", "low_priority": True},
}
REFUSAL = {
    "stop": "This job has already completed; it can no longer be stopped.",
    "force_stop": "This job is still waiting for a worker; it cannot be force-stopped now.",
    "resume": "This job has already completed; it can no longer be resumed.",
    "resume-not-resumable": "This job cannot continue where it stopped; restart it instead.",
    "cancel": "This job is running; it cannot be cancelled now.",
    "restart": "This job is running; it cannot be restarted now.",
    "delete": "This job is running; it cannot be deleted now.",
    "set_low_priority": "This job has already completed; it can no longer change priority.",
    "set_normal_priority": "This job is running; it cannot change priority now.",
}


@pytest.mark.parametrize("case", list(WRONG_STATUS))
def test_an_action_that_does_not_fit_the_status_answers_409_and_changes_nothing(app, engine, client_for, case):
    action = case.split("-")[0]
    job_id = add_job(engine, "clerk_a", **WRONG_STATUS[case])
    client = client_for("admin")  # holds every permission: only the status is in the way
    before = snapshot(app, engine, job_id)
    response = post_json(client, job_id, action)
    assert response.status_code == 409
    assert response.is_json
    assert REFUSAL[case] in response.get_json()["error"]
    assert snapshot(app, engine, job_id) == before


@pytest.mark.parametrize("case", list(WRONG_STATUS))
def test_a_form_action_that_does_not_fit_the_status_flashes_an_error_and_changes_nothing(app, engine, client_for, case):
    action = case.split("-")[0]
    job_id = add_job(engine, "clerk_a", **WRONG_STATUS[case])
    client = client_for("admin")
    before = snapshot(app, engine, job_id)
    response = post_form(client, job_id, action)
    assert response.status_code == 302
    assert response.headers["Location"] == NEXT
    [(category, message)] = flashes(client)
    assert category == "error"
    assert REFUSAL[case] in message
    assert snapshot(app, engine, job_id) == before
    # the flashed error is shown on the page the user is sent back to
    page = client.get(NEXT).get_data(as_text=True)
    assert REFUSAL[case].replace("'", "&#39;") in page


def test_unknown_actions_are_refused(app, engine, client_for):
    job_id = make_job(app, engine, "stop", "clerk_a")
    client = client_for("admin")
    before = snapshot(app, engine, job_id)
    response = post_json(client, job_id, "explode")
    assert response.status_code == 404 and "unknown action" in response.get_json()["error"]
    assert post_form(client, job_id, "explode").status_code == 400
    assert snapshot(app, engine, job_id) == before


# -- the buttons each user is shown --------------------------------------------------------------

#: Job statuses (with the task's resumability and priority) and the actions that fit each.
STATUS_CASES: dict[str, dict[str, Any]] = {
    "queued": {"status": "queued"},
    "queued_low": {"status": "queued", "low_priority": True},
    "running": {"status": "running"},
    "stopping": {"status": "stopping"},
    "paused": {"status": "paused"},
    "stopped_resumable": {"status": "stopped", "task": "tests.tasks.checkpoints"},
    "stopped": {"status": "stopped"},
    "completed": {"status": "completed"},
    "failed": {"status": "failed"},
    "cancelled": {"status": "cancelled"},
}
FITS: dict[str, set[str]] = {
    "queued": {"cancel", "set_low_priority"},
    "queued_low": {"cancel", "set_normal_priority"},
    "running": {"stop", "force_stop"},
    "stopping": {"force_stop"},
    "paused": {"cancel", "set_low_priority"},
    "stopped_resumable": {"resume", "cancel", "restart", "delete", "set_low_priority"},
    "stopped": {"cancel", "restart", "delete", "set_low_priority"},
    "completed": {"restart", "delete"},
    "failed": {"restart", "delete"},
    "cancelled": {"restart", "delete"},
}
ACTIVE = {"queued", "queued_low", "running", "stopping", "paused"}
BUTTON = re.compile(r'data-jm-action-button="([a-z_]+)"')
#: The page's button templates (every action, for the live refresh to clone): not buttons shown.
TEMPLATES = re.compile(r"<template data-jm-action-templates>.*?</template>", re.DOTALL)


def expected_buttons(case: str, who: str, relation: str) -> list[str]:
    permitted = PERMITTED[(who, relation)]
    return [action for action in ORDER if action in FITS[case] and action in permitted]


def row_html(page: str, job_id: str) -> str | None:
    match = re.search(rf'<tr data-job-id="{job_id}".*?</tr>', page, re.DOTALL)
    return match.group(0) if match else None


def widget_item(page: str, job_id: str) -> str | None:
    match = re.search(rf'<li class="list-group-item py-2" data-job-id="{job_id}".*?</li>', page, re.DOTALL)
    return match.group(0) if match else None


@pytest.mark.parametrize(("who", "relation"), [case for case in CASES if case[0] is not None], ids=lambda v: str(v))
def test_only_the_buttons_a_user_may_use_are_rendered(app, engine, client_for, who, relation):
    owner = owner_of(who, relation)
    jobs = {
        case: add_job(engine, owner, name=f"job {case}", created_at=minutes_ago(i), **values)
        for i, (case, values) in enumerate(STATUS_CASES.items())
    }
    client = client_for(who)
    listing = client.get("/admin/jobs/?per_page=100").get_data(as_text=True)
    widget = client.get("/_test/page").get_data(as_text=True)
    for case, job_id in jobs.items():
        if PERMITTED[(who, relation)] == HIDDEN:
            assert row_html(listing, job_id) is None
            assert client.get(f"/admin/jobs/{job_id}/").status_code == 404
            assert widget_item(widget, job_id) is None
            continue
        expected = expected_buttons(case, who, relation)
        row = row_html(listing, job_id)
        assert row is not None, case
        assert BUTTON.findall(row) == expected, ("list", case)
        detail = client.get(f"/admin/jobs/{job_id}/")
        assert detail.status_code == 200
        assert BUTTON.findall(TEMPLATES.sub("", detail.get_data(as_text=True))) == expected, ("detail", case)
        assert client.get(f"/jobmonitor/api/jobs/{job_id}").get_json()["actions"] == expected, ("api", case)
        item = widget_item(widget, job_id)
        if relation == "other":
            assert item is None  # "My jobs" holds only the user's own jobs
        elif item is not None:
            # the widget offers stop and cancel, on active jobs only
            wanted = [a for a in expected if a in ("stop", "cancel")] if case in ACTIVE else []
            assert BUTTON.findall(item) == wanted, ("widget", case)
        else:
            assert case not in ACTIVE, case  # active jobs are always in the widget
    if relation == "own":
        assert all(widget_item(widget, jobs[case]) is not None for case in ACTIVE)


# -- bulk ----------------------------------------------------------------------------------------


def parse_summary(message: str) -> tuple[str, int, Counter[str]]:
    """ "2 cancelled, 3 skipped: 2 not permitted; already running" -> ("2 cancelled", 3, {...})."""
    head, _, reasons = message.partition(", ")
    if not reasons:
        return head, 0, Counter()
    match = re.fullmatch(r"(\d+) skipped: (.*)", reasons)
    assert match, message
    counted: Counter[str] = Counter()
    for part in match.group(2).split("; "):
        number = re.fullmatch(r"(\d+) (.*)", part)  # a reason that occurred more than once
        if number:
            counted[number.group(2)] += int(number.group(1))
        else:
            counted[part] += 1
    return head, int(match.group(1)), counted


@pytest.fixture
def mixed(app, engine) -> dict[str, str]:
    """The manager's own and others' jobs, for a manager's bulk actions."""
    return {
        "a_queued": enqueue(app, tasks.noop, "clerk_a", name="A queued"),
        "b_queued": enqueue(app, tasks.noop, "clerk_b", name="B queued"),
        "own_queued": enqueue(app, tasks.noop, "manager", name="Own queued"),
        "own_queued_2": enqueue(app, tasks.noop, "manager", name="Own queued 2"),
        "own_running": add_job(engine, "manager", name="Own running", status="running"),
        "own_completed": add_job(engine, "manager", name="Own completed", status="completed"),
        "a_running": add_job(engine, "clerk_a", name="A running", status="running"),
        "a_completed": add_job(engine, "clerk_a", name="A completed", status="completed"),
        "b_running": add_job(engine, "clerk_b", name="B running", status="running"),
        "system_running": add_job(engine, None, name="System running", status="running", is_system=True),
    }


def test_json_bulk_cancel_by_a_manager_with_mixed_jobs(app, engine, client_for, mixed):
    client = client_for("manager")
    chosen = [
        *("a_queued", "b_queued", "own_queued", "own_queued_2", "own_running", "own_completed", "a_completed"),
        "system_running",
    ]
    before = {key: snapshot(app, engine, mixed[key]) for key in mixed}
    unknown = str(uuid.uuid4())
    response = client.post(
        "/jobmonitor/api/jobs/bulk",
        json={"action": "cancel", "ids": [mixed[key] for key in chosen] + [unknown]},
        headers={"X-CSRFToken": csrf_token(client)},
    )
    assert response.status_code == 200
    body = response.get_json()
    # cancel needs manage on others' jobs (permission is asked before the status), the manager's
    # own running or completed job does not fit, the system job is invisible to the manager
    assert sorted(body["done"]) == sorted([mixed["own_queued"], mixed["own_queued_2"]])
    assert parse_summary(body["message"]) == (
        "2 cancelled",
        7,
        Counter({"not permitted": 3, "already running": 1, "already completed": 1, "not found": 2}),
    )
    reasons = {item["id"]: item["reason"] for item in body["skipped"]}
    assert reasons == {
        mixed["a_queued"]: "not permitted",
        mixed["b_queued"]: "not permitted",
        mixed["a_completed"]: "not permitted",
        mixed["own_running"]: "already running",
        mixed["own_completed"]: "already completed",
        # the caller's own ids come back: the system job it may not see answers like the unknown one
        mixed["system_running"]: "not found",
        unknown: "not found",
    }
    for key in ("own_queued", "own_queued_2"):
        assert row_of(engine, mixed[key]).status == "cancelled"
        assert log_messages(engine, mixed[key]) == ["Cancelled by Max Manager."]
    for key in mixed.keys() - {"own_queued", "own_queued_2"}:
        now = snapshot(app, engine, mixed[key])
        assert (now["row"], now["logs"]) == (before[key]["row"], before[key]["logs"]), key
    rq = queues(app)
    assert mixed["a_queued"] in rq["default"] and mixed["own_queued"] not in rq["default"]


def test_json_bulk_stop_by_a_manager_stops_others_jobs(app, engine, client_for, mixed):
    client = client_for("manager")
    chosen = ["a_running", "b_running", "own_completed", "own_queued"]
    response = client.post(
        "/jobmonitor/api/jobs/bulk",
        json={"action": "stop", "ids": [mixed[key] for key in chosen]},
        headers={"X-CSRFToken": csrf_token(client)},
    )
    body = response.get_json()
    assert parse_summary(body["message"]) == (
        "2 asked to stop",
        2,
        Counter({"already completed": 1, "already queued": 1}),
    )
    assert row_of(engine, mixed["a_running"]).status == "stopping"
    assert row_of(engine, mixed["b_running"]).status == "stopping"
    assert log_messages(engine, mixed["b_running"]) == ["Stop requested by Max Manager; work already done is kept."]
    assert row_of(engine, mixed["own_queued"]).status == "queued"


def test_bulk_summary_message_counts_repeated_reasons(app, engine, client_for, mixed):
    client = client_for("auditor")  # sees everyone's jobs, may act on none of them
    response = client.post(
        "/jobmonitor/api/jobs/bulk",
        json={"action": "cancel", "ids": [mixed["a_queued"], mixed["b_queued"]]},
        headers={"X-CSRFToken": csrf_token(client)},
    )
    assert response.get_json()["message"] == "0 cancelled, 2 skipped: 2 not permitted"


def test_form_bulk_on_selected_jobs_flashes_the_summary(app, engine, client_for, mixed):
    client = client_for("manager")
    chosen = ["a_queued", "own_queued", "own_running", "own_completed"]
    before = {key: snapshot(app, engine, mixed[key]) for key in mixed}
    response = client.post(
        "/admin/jobs/bulk",
        data={
            "action": "cancel",
            "scope": "selected",
            "ids": [mixed[key] for key in chosen],
            "next": "/admin/jobs/?status=queued",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/jobs/?status=queued"
    [(category, message)] = flashes(client)
    assert category == "success"
    assert parse_summary(message) == (
        "1 cancelled",
        3,
        Counter({"not permitted": 1, "already running": 1, "already completed": 1}),
    )
    assert row_of(engine, mixed["own_queued"]).status == "cancelled"
    assert log_messages(engine, mixed["own_queued"]) == ["Cancelled by Max Manager."]
    for key in ("a_queued", "own_running", "own_completed"):
        assert snapshot(app, engine, mixed[key])["row"] == before[key]["row"]


def test_form_bulk_counts_unknown_and_foreign_ids_as_not_found(app, engine, client_for, mixed):
    client = client_for("clerk_a")  # sees only its own jobs
    ids = [mixed["a_completed"], mixed["b_queued"], str(uuid.uuid4()), "not-an-id"]
    response = client.post(
        "/admin/jobs/bulk",
        data={"action": "cancel", "scope": "selected", "ids": ids, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    [(category, message)] = flashes(client)
    assert category == "warning"
    assert parse_summary(message) == ("0 cancelled", 4, Counter({"not found": 3, "already completed": 1}))
    assert row_of(engine, mixed["b_queued"]).status == "queued"


def test_form_bulk_where_nothing_is_done_flashes_a_warning(app, engine, client_for, mixed):
    client = client_for("auditor")
    response = client.post(
        "/admin/jobs/bulk",
        data={"action": "stop", "scope": "selected", "ids": [mixed["a_running"]], "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    assert flashes(client) == [("warning", "0 asked to stop, 1 skipped: not permitted")]
    assert row_of(engine, mixed["a_running"]).status == "running"


def test_form_bulk_without_a_selection_or_action_says_so(app, engine, client_for, mixed):
    client = client_for("admin")
    token = csrf_token(client)
    client.post("/admin/jobs/bulk", data={"action": "cancel", "scope": "selected", "csrf_token": token})
    assert flashes(client) == [("error", "Select at least one job.")]
    client = client_for("admin")
    client.post("/admin/jobs/bulk", data={"action": "", "ids": [mixed["a_queued"]], "csrf_token": csrf_token(client)})
    assert flashes(client) == [("error", "Choose an action.")]
    assert row_of(engine, mixed["a_queued"]).status == "queued"


@pytest.fixture
def filtered(app, engine) -> dict[str, str]:
    return {
        "a_import": add_job(engine, "clerk_a", name="A import", type="import", created_at=minutes_ago(6)),
        "b_import": add_job(engine, "clerk_b", name="B import", type="import", created_at=minutes_ago(5)),
        "a_import_running": add_job(
            engine, "clerk_a", name="A import running", type="import", status="running", created_at=minutes_ago(4)
        ),
        "a_export": add_job(engine, "clerk_a", name="A export", type="export", created_at=minutes_ago(3)),
        "b_export": add_job(engine, "clerk_b", name="B export", type="export", created_at=minutes_ago(2)),
        "system_import": add_job(
            engine, None, name="System import", type="import", is_system=True, created_at=minutes_ago(1)
        ),
    }


def bulk_matching(client, action: str, **filters: str):
    return client.post(
        "/admin/jobs/bulk",
        data={"action": action, "scope": "matching", "csrf_token": csrf_token(client), **filters},
    )


def statuses(engine, jobs: dict[str, str]) -> dict[str, str]:
    return {key: row_of(engine, job_id).status for key, job_id in jobs.items()}


def test_bulk_matching_applies_to_the_filtered_set_only(app, engine, client_for, filtered):
    client = client_for("admin")
    response = bulk_matching(client, "cancel", type="import", next="/admin/jobs/?type=import")
    assert response.status_code == 302
    assert flashes(client) == [("success", "2 cancelled, 1 skipped: already running")]
    assert statuses(engine, filtered) == {
        "a_import": "cancelled",
        "b_import": "cancelled",
        "a_import_running": "running",
        "a_export": "queued",
        "b_export": "queued",
        "system_import": "queued",  # system jobs only with system=1
    }
    assert log_messages(engine, filtered["b_import"]) == ["Cancelled by Ada Admin."]
    assert log_messages(engine, filtered["a_export"]) == []


def test_bulk_matching_of_a_clerk_covers_only_its_own_jobs(app, engine, client_for, filtered):
    client = client_for("clerk_a")
    bulk_matching(client, "cancel", type="import")
    assert flashes(client) == [("success", "1 cancelled, 1 skipped: already running")]
    assert statuses(engine, filtered) == {
        "a_import": "cancelled",
        "b_import": "queued",
        "a_import_running": "running",
        "a_export": "queued",
        "b_export": "queued",
        "system_import": "queued",
    }


def test_bulk_matching_with_several_filters(app, engine, client_for, filtered):
    client = client_for("admin")
    bulk_matching(client, "set_low_priority", status="queued", user=USERS["clerk_b"].id)
    assert flashes(client) == [("success", "2 set to low priority")]
    with engine.connect() as connection:
        low = set(connection.execute(sa.select(job_table.c.id).where(job_table.c.low_priority)).scalars())
    assert low == {filtered["b_import"], filtered["b_export"]}


def test_bulk_matching_with_an_invalid_filter_answers_400_and_changes_nothing(app, engine, client_for, filtered):
    client = client_for("admin")
    response = bulk_matching(client, "cancel", status="bogus")
    assert response.status_code == 400
    assert set(statuses(engine, filtered).values()) == {"queued", "running"}


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example/", "javascript:alert(1)"],
)
def test_an_action_sends_back_only_to_a_page_of_this_site(app, engine, client_for, next_url):
    job_id = make_job(app, engine, "stop", "clerk_a")
    response = post_form(client_for("clerk_a"), job_id, "stop", next_url=next_url)
    assert response.status_code == 302
    location = response.headers["Location"]
    # browsers read a raw backslash as a slash ("/\\evil.example/" is "//evil.example/"); Werkzeug
    # sends it percent-encoded, which is a path of this site
    assert (urlsplit(location).scheme, urlsplit(location).netloc) == ("", "")
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location
    if "\\" not in next_url:
        assert location == f"/admin/jobs/{job_id}/"
