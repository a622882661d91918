"""``JOBMONITOR_STATUS_LABELS``: an app's own words for statuses, the same in the list's badges and
status filter, the JSON's ``status_label`` and the notifications; bad values fail at start."""

from __future__ import annotations

import html
import re

import pytest

from flask_jobmonitor import ConfigError
from flask_jobmonitor.config import DEFAULTS, apply_defaults, read_settings

from .. import tasks
from ..support.rows import add_job
from ..support.users import log_in
from ..support.web import enqueue
from ..support.workers import run_worker

LABELS = {"running": "In progress", "queued": "Pending", "completed": "Done"}


@pytest.fixture
def labelled(make_app):
    return make_app(JOBMONITOR_STATUS_LABELS=LABELS)


def test_renamed_labels_show_in_the_badges_and_the_status_filter(labelled):
    with labelled.app_context():
        from flask_jobmonitor.state import get_state

        engine = get_state(labelled).engine
    running = add_job(engine, owner="clerk_a", status="running", name="Busy one")
    add_job(engine, owner="clerk_a", status="queued", name="Waiting one")
    page = html.unescape(log_in(labelled.test_client(), "clerk_a").get("/admin/jobs/").get_data(as_text=True))

    row = page[page.index(f'<tr data-job-id="{running}"') :]
    row = row[: row.index("</tr>")]
    assert '<span data-jm="status-label">In progress</span>' in row
    assert '<span data-jm="status-label">Pending</span>' in page
    assert re.search(r'<option value="running"\s*>In progress</option>', page)
    assert re.search(r'<option value="queued"\s*>Pending</option>', page)
    assert re.search(r'<option value="failed"\s*>Failed</option>', page), "unnamed statuses keep their label"
    assert ">Running<" not in page and ">Queued<" not in page


def test_renamed_labels_are_the_jsons_status_label(labelled):
    with labelled.app_context():
        from flask_jobmonitor.state import get_state

        engine = get_state(labelled).engine
    running = add_job(engine, owner="clerk_a", status="running")
    body = log_in(labelled.test_client(), "clerk_a").get(f"/jobmonitor/api/jobs?ids={running}").get_json()
    [job] = body["jobs"]
    assert (job["status"], job["status_label"]) == ("running", "In progress")
    detail = log_in(labelled.test_client(), "clerk_a").get(f"/jobmonitor/api/jobs/{running}").get_json()
    assert detail["status_label"] == "In progress"


def test_notifications_carry_the_renamed_label(labelled):
    done = enqueue(labelled, tasks.noop, "clerk_a", name="Quick one")
    failed = enqueue(labelled, tasks.fails, "clerk_a", name="Bad one")
    run_worker(labelled)
    items = log_in(labelled.test_client(), "clerk_a").get("/jobmonitor/api/notifications").get_json()["items"]
    assert {(item["job_id"], item["event"], item["status_label"], item["status_colour"]) for item in items} == {
        (done, "completed", "Done", "success"),
        (failed, "failed", "Failed", "danger"),
    }


def test_without_the_setting_the_labels_are_the_usual_ones(client_for, engine):
    running = add_job(engine, owner="clerk_a", status="running")
    body = client_for("clerk_a").get(f"/jobmonitor/api/jobs/{running}").get_json()
    assert body["status_label"] == "Running"
    assert DEFAULTS["JOBMONITOR_STATUS_LABELS"] == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"runing": "In progress"}, "names unknown statuses ['runing']"),
        ({"Running": "In progress"}, "names unknown statuses ['Running']"),
        ({"running": 3}, "JOBMONITOR_STATUS_LABELS['running'] must be a non-empty text, got 3"),
        ({"running": "  "}, "JOBMONITOR_STATUS_LABELS['running'] must be a non-empty text"),
        (["running"], "JOBMONITOR_STATUS_LABELS must map statuses to labels"),
    ],
)
def test_bad_label_settings_fail_at_start_with_a_clear_error(value, message, make_app):
    config = {"JOBMONITOR_STATUS_LABELS": value}
    apply_defaults(config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_settings(config, "/tmp")
    with pytest.raises(ConfigError, match="JOBMONITOR_STATUS_LABELS"):
        make_app(JOBMONITOR_STATUS_LABELS=value)
