"""The live refresh carries the page's own markup: every part of a job that ``/api/jobs`` and
``/api/jobs/<id>`` answer in ``html`` is, character for character, the element the page renders
at load for the same job (the same macro of ``_macros.html``), so the script only swaps it in.

What may differ between two renderings a moment apart is left out of the comparison: the text
of a duration that still runs (the page script ticks it), a running step's elapsed and left
seconds, and CSRF tokens (signed with the second they were made in).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ..support.rows import add_job
from ..support.web import at
from .test_details import add_step, past_run

TASK = "tests.tasks.import_rows"
_TICKING = re.compile(r'(<span data-jm="(?:duration|waiting)" data-jm-since="[^"]*"\s*>)[^<]*(</span>)')
_CSRF = re.compile(r'name="csrf_token" value="[^"]*"')
_STEP_SECONDS = re.compile(r'(<td data-jm="step-time" class="small">).*?(</td>)', re.DOTALL)


def steady(html: str, *, running: bool = False) -> str:
    """``html`` without the parts that move on by themselves (see the module docstring)."""
    html = _CSRF.sub('name="csrf_token"', _TICKING.sub(r"\1\2", html))
    return _STEP_SECONDS.sub(r"\1\2", html) if running else html


def in_page(fragment: str, page: str, *, running: bool = False) -> None:
    assert fragment.strip(), "an empty fragment"
    assert steady(fragment, running=running) in steady(page, running=running), fragment


@pytest.fixture
def failed_job(engine) -> str:
    """A job that ended: nothing about it moves any more."""
    past_run(engine, 90)  # a usual duration for the step it never reached
    job_id = add_job(
        engine,
        task=TASK,
        name="Import <prices>.csv",
        status="failed",
        created_at=at(-1),
        started_at=at(0),
        ended_at=at(3),
        step_count=3,
        current_step=2,
        progress_done=25,
        progress_total=100,
        error_count=2,
        warning_count=1,
        error_message="Row 17: price 'twelve' is not a number & more",
    )
    add_step(engine, job_id, 1, "Read file", status="completed", started_at=at(0), ended_at=at(2), done=10, total=10)
    add_step(engine, job_id, 2, "Validate", status="failed", started_at=at(2), ended_at=at(3), done=25, total=100)
    add_step(engine, job_id, 3, "Save")
    return job_id


@pytest.fixture
def running_job(engine) -> str:
    past_run(engine, 90)
    job_id = add_job(
        engine, task=TASK, status="running", created_at=at(-1), started_at=at(0), step_count=3, current_step=2
    )
    add_step(
        engine,
        job_id,
        1,
        "Read file",
        status="completed",
        started_at=at(0),
        ended_at=at(2),
        done=10,
        total=10,
        counters={"read": 10},
    )
    add_step(engine, job_id, 2, "Validate", status="running", started_at=at(2), done=25, total=100)
    add_step(engine, job_id, 3, "Save")
    return job_id


def detail_answer(client: Any, job_id: str) -> tuple[str, dict[str, Any]]:
    page = client.get(f"/admin/jobs/{job_id}/")
    assert page.status_code == 200
    answer = client.get(f"/jobmonitor/api/jobs/{job_id}")
    assert answer.status_code == 200
    return page.get_data(as_text=True), answer.get_json()


DETAIL_PARTS = {
    "status",
    "progress",
    "duration",
    "waiting",
    "started",
    "ended",
    "counts",
    "error-message",
    "attempts",
    "time-left-row",
    "stop-hint",
}


def test_the_detail_json_carries_the_detail_pages_own_markup_of_an_ended_job(client_for, failed_job):
    page, answer = detail_answer(client_for("clerk_a"), failed_job)
    assert set(answer["html"]) == DETAIL_PARTS
    for name, fragment in answer["html"].items():
        assert f'data-jm="{name}"' in fragment, name
        in_page(fragment, page)
    assert [step["position"] for step in answer["steps"]] == [1, 2, 3]
    for step in answer["steps"]:
        assert step["html"].startswith(f'<tr data-step-position="{step["position"]}">')
        in_page(step["html"], page)
    # escaped once, as on the page, and the error is shown; no Stop hint for an ended job
    assert "&amp; more" in answer["html"]["error-message"] and " hidden" not in answer["html"]["error-message"]
    assert "hidden" in answer["html"]["stop-hint"]
    assert "usually ~1m 30s" in answer["steps"][2]["html"]  # the step it never reached


def test_the_detail_json_carries_the_detail_pages_own_markup_of_a_running_job(client_for, running_job):
    page, answer = detail_answer(client_for("clerk_a"), running_job)
    for fragment in answer["html"].values():
        in_page(fragment, page, running=True)
    for step in answer["steps"]:
        in_page(step["html"], page, running=True)
    # the job may be stopped by its owner now: the hint comes with the Stop button
    assert "stop" in answer["actions"]
    assert "hidden" not in answer["html"]["stop-hint"]
    assert "Still in progress" in answer["html"]["ended"]
    assert "progress-bar-animated" in answer["html"]["progress"]


def test_the_stop_hint_follows_the_actions_of_the_viewer(client_for, running_job):
    # the auditor may see the job but not stop it: no button, no hint, at load and live
    page, answer = detail_answer(client_for("auditor"), running_job)
    assert "stop" not in answer["actions"]
    assert "hidden" in answer["html"]["stop-hint"]
    in_page(answer["html"]["stop-hint"], page)


def test_the_widget_item_in_the_json_is_the_widgets_own(client_for, running_job, failed_job, engine):
    queued = add_job(engine, name="Waits its turn", status="queued", created_at=at(5))
    client = client_for("clerk_a")
    page = client.get("/_test/page").get_data(as_text=True)
    ids = ",".join([running_job, failed_job, queued])
    answer = client.get(f"/jobmonitor/api/jobs?ids={ids}&html=widget-item,actions&next=/_test/page?").get_json()
    assert len(answer["jobs"]) == 3
    for job in answer["jobs"]:
        assert list(job["html"]) == ["widget-item"]  # "actions" is no part of /api/jobs: left out
        in_page(job["html"]["widget-item"], page)
    by_id = {job["id"]: job["html"]["widget-item"] for job in answer["jobs"]}
    assert 'data-jm-action-button="cancel"' in by_id[queued]
    assert 'name="next" value="/_test/page?"' in by_id[queued]
    assert 'data-jm="progress"' not in by_id[failed_job]  # an ended job shows no bar in the widget


def test_the_job_parts_are_rendered_only_when_asked_for(client_for, running_job):
    client = client_for("clerk_a")
    every = client.get(f"/jobmonitor/api/jobs?ids={running_job}").get_json()["jobs"][0]
    assert set(every["html"]) == {"status", "progress", "duration", "waiting", "widget-item"}
    some = client.get(f"/jobmonitor/api/jobs?ids={running_job}&html=status,progress").get_json()["jobs"][0]
    assert set(some["html"]) == {"status", "progress"}
    assert some["html"]["status"] == every["html"]["status"]
    none = client.get(f"/jobmonitor/api/jobs?ids={running_job}&html=").get_json()["jobs"][0]
    assert none["html"] == {}
    # the data the API had before is all still there
    assert none["status"] == "running" and none["status_label"] == "Running" and none["percent"] is not None


def test_too_many_part_names_are_refused(client_for, running_job):
    response = client_for("clerk_a").get(f"/jobmonitor/api/jobs?ids={running_job}&html=" + ",".join(["x"] * 21))
    assert response.status_code == 400
    assert "html" in response.get_json()["error"]


# -- the list's user picker --------------------------------------------------------------------------


def test_an_unknown_user_id_is_said_on_the_list_page(client_for, engine):
    add_job(engine, owner="clerk_a")
    client = client_for("admin")
    response = client.get("/admin/jobs/?user=Clara")  # a name typed where the id belongs
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "No user with id “Clara” has run a job: choose a user from the list." in html
    assert client.get("/admin/jobs/?user=3").status_code == 200


def test_users_with_the_same_name_are_told_apart_in_the_picker(client_for, engine):
    add_job(engine, owner="clerk_a")  # Clara Clerk, id 3
    add_job(engine, owner=None, run_by_id="77", run_by_name="Clara Clerk")
    add_job(engine, owner="clerk_b")
    html = client_for("admin").get("/admin/jobs/").get_data(as_text=True)
    options = dict(re.findall(r'<option value="([^"]*)" data-id="([^"]*)">', html))
    assert options == {"Clara Clerk (3)": "3", "Clara Clerk (77)": "77", "Carl Clerk": "4"}
    # the list filtered by one of them names that one in the picker
    html = client_for("admin").get("/admin/jobs/?user=77").get_data(as_text=True)
    assert 'value="Clara Clerk (77)"' in html


def test_the_picker_says_when_it_lists_every_user(client_for, engine, monkeypatch):
    """The page refuses a name it does not know only when its list holds every user who ran a
    job; past the list's limit, what is typed goes to the server as an id (which says whether
    such a user ran a job)."""
    from flask_jobmonitor.web.admin import views

    add_job(engine, owner="clerk_a")
    add_job(engine, owner="clerk_b")
    html = client_for("admin").get("/admin/jobs/").get_data(as_text=True)
    assert '<datalist id="jm-users" data-jm-complete>' in html
    monkeypatch.setattr(views, "USER_CHOICES", 2)
    monkeypatch.setattr("flask_jobmonitor.web.listing.USER_CHOICES", 2)
    html = client_for("admin").get("/admin/jobs/").get_data(as_text=True)
    assert '<datalist id="jm-users">' in html
