"""The signals a host connects to (flask_jobmonitor/events.py): each one sent once, after its
change is committed, in the process that made it, with the job's record; a receiver that raises
changes nothing.

The receivers here write what they were told into a Redis list, so that a receiver that runs in a
forked work horse is heard too (a list in this process would stay empty).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, current_app
from redis import Redis
from rq import SimpleWorker, Worker

import flask_jobmonitor
from flask_jobmonitor import events
from flask_jobmonitor.errors import EnqueueError, TransitionRefused
from flask_jobmonitor.jobs import control
from flask_jobmonitor.jobs.maintenance import abandon_run
from flask_jobmonitor.state import JobMonitorState, get_state

from . import control_tasks as ct
from .support.apps import build_app, emptied
from .support.databases import pushed
from .support.extensions import jobmonitor
from .support.rows import add_job, job_row, status_of
from .support.users import User
from .support.waiting import wait_status
from .support.workers import run_worker, worker_thread
from .tasks import fails_for_people, import_rows, noop, spawns_children

ADA = User("1", "Ada Admin", ["admin"])
OWNER = ("7", "Olga Owner")
#: The Redis list the receivers write to.
HEARD = "jobmonitor-tests:events"


@pytest.fixture
def app(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A host with Flask-Login (user from the ``X-User`` header) and a stop signal read every
    20 ms, like the control tests'."""
    application = build_app(
        database_url,
        redis_url,
        str(tmp_path / "files"),
        name="jobmonitor_event_tests",
        login="header",
        users={ADA.id: ADA},
        admin="Event tests",
        WTF_CSRF_ENABLED=False,
        JOBMONITOR_STOP_CHECK_INTERVAL=0.02,
        JOBMONITOR_FLASH_ON_ENQUEUE=False,
    )
    with pushed(emptied(application, redis_url)):
        Redis.from_url(redis_url).delete(HEARD)
        try:
            yield application
        finally:
            ct.delete_keys(Redis.from_url(redis_url))
            Redis.from_url(redis_url).delete(HEARD)


@pytest.fixture
def state(app: Flask) -> JobMonitorState:
    return get_state(app)


def _writer(name: str) -> Any:
    def receiver(sender: Flask, job_id: str, job: Any, **fields: Any) -> None:
        user = fields.pop("user", None)
        heard = {
            "signal": name,
            "app": sender.name,
            "job_id": job_id,
            "status": job.status if job is not None else None,
            "user": getattr(user, "id", None),
            **{key: str(value) if key == "outcome" else value for key, value in fields.items()},
        }
        get_state(sender).redis.rpush(HEARD, json.dumps(heard))

    receiver.__name__ = f"writes_{name}"
    return receiver


#: One receiver per signal, kept here (blinker holds receivers weakly).
WRITERS = {signal: _writer(signal.name.removeprefix("jobmonitor.")) for signal in events.SIGNALS}


@pytest.fixture
def heard(app: Flask, state: JobMonitorState) -> Iterator[Any]:
    """Connect a writer to every signal, for this app; the fixture's value reads what they heard
    (optionally for one job only)."""
    for signal, receiver in WRITERS.items():
        signal.connect(receiver, sender=app)
    try:

        def read(job_id: str | None = None) -> list[dict[str, Any]]:
            items = [json.loads(item) for item in state.redis.lrange(HEARD, 0, -1)]
            return [item for item in items if job_id is None or item["job_id"] == job_id]

        yield read
    finally:
        for signal, receiver in WRITERS.items():
            signal.disconnect(receiver, sender=app)


def _brief(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each signal heard as (signal, what it adds, the job's status as read then)."""
    keys = {"job-queued": "again", "job-started": "attempt", "job-ended": "outcome", "job-stopped": "action"}
    out: list[tuple[Any, ...]] = []
    for item in items:
        if item["signal"] == "step-finished":
            out.append(("step-finished", item["position"], item["step"], item["status"]))
        elif item["signal"] == "job-deleted":
            out.append(("job-deleted", item["user"], item["status"]))
        else:
            out.append((item["signal"], item[keys[item["signal"]]], item["status"]))
    return out


# -- a job's life, in the worker ------------------------------------------------------------------


def test_a_job_tells_it_was_queued_started_each_step_and_its_end_in_that_order(app, state, heard, worker_class):
    job = jobmonitor.enqueue(import_rows, user=OWNER, files={"rows.csv": b"a\nb\nc\n"})
    assert _brief(heard()) == [("job-queued", False, "queued")]  # sent by this process, at once

    run_worker(app, worker_class)

    assert _brief(heard(job.id)) == [
        ("job-queued", False, "queued"),
        ("job-started", 1, "running"),
        ("step-finished", 1, "Read file", "completed"),
        ("step-finished", 2, "Validate", "completed"),
        ("step-finished", 3, "Save", "completed"),
        # the record each receiver got was read after the change: it says what the signal says
        ("job-ended", "completed", "completed"),
    ]
    assert {item["app"] for item in heard()} == {app.name}


def test_a_failing_job_ends_failed_and_its_receiver_reads_the_message_people_may_see(app, state, heard):
    messages: list[str | None] = []

    def keeps_message(sender: Flask, job_id: str, job: Any, outcome: str) -> None:
        messages.append(job.error_message)

    job = jobmonitor.enqueue(fails_for_people, user=OWNER, message="line 17: price is not a number")
    with events.job_ended.connected_to(keeps_message, sender=app):
        run_worker(app)

    assert _brief(heard(job.id))[-2:] == [
        ("step-finished", 1, "Work", "failed"),
        ("job-ended", "failed", "failed"),
    ]
    assert messages == ["line 17: price is not a number"]


def test_a_receiver_that_raises_breaks_neither_the_job_nor_the_other_receivers(app, state, heard, worker_class, caplog):
    def raises(sender: Flask, **_: Any) -> None:
        raise RuntimeError("the webhook's server is down")

    job = jobmonitor.enqueue(import_rows, user=OWNER, files={"rows.csv": b"a\n"})
    caplog.set_level(logging.ERROR, logger="flask_jobmonitor.events")
    with (
        events.job_started.connected_to(raises, sender=app),
        events.step_finished.connected_to(raises, sender=app),
        events.job_ended.connected_to(raises, sender=app),
    ):
        # connected after the writers: blinker calls receivers in the order they connected
        run_worker(app, worker_class)

    assert status_of(state.engine, job.id) == "completed"
    assert [item[0] for item in _brief(heard(job.id))] == [
        "job-queued",
        "job-started",
        "step-finished",
        "step-finished",
        "step-finished",
        "job-ended",
    ]
    if worker_class is SimpleWorker:  # a horse's log goes to the horse's handlers
        logged = [r for r in caplog.records if r.name == "flask_jobmonitor.events"]
        assert len(logged) == 5
        assert all(r.exc_info and "the webhook's server is down" in str(r.exc_info[1]) for r in logged)
        assert "jobmonitor.job-ended about job " + job.id in logged[-1].getMessage()


def test_a_receiver_using_db_session_touches_neither_the_tasks_session_nor_its_work(app, state, worker_class):
    from . import tasks as tasks_module
    from .support.extensions import db

    tasks_module.scratch_table.create(state.engine, checkfirst=True)
    seen: list[str] = []

    def rolls_back(sender: Flask, job_id: str, step: str, **_: Any) -> None:
        # a host's receiver reading (and ending) its own db.session, between the task's write
        # and the task's commit
        seen.append(step)
        db.session.execute(sa.select(1))
        db.session.rollback()

    job = jobmonitor.enqueue(tasks_module.writes_across_a_step)
    with events.step_finished.connected_to(rolls_back, sender=app):
        run_worker(app, worker_class)

    assert status_of(state.engine, job.id) == "completed"
    with state.engine.connect() as connection:
        rows = connection.execute(
            sa.select(tasks_module.scratch_table.c.item).where(tasks_module.scratch_table.c.job_id == job.id)
        ).all()
    assert rows == [(1,)]  # the task's write survived the receiver's rollback
    if worker_class is SimpleWorker:
        assert seen == ["Write", "Commit"]


def test_rqs_job_timeout_in_a_receiver_is_not_swallowed(app, state):
    from rq.timeouts import JobTimeoutException

    def times_out(sender: Flask, **_: Any) -> None:
        raise JobTimeoutException("the job's time is up")

    job_id = add_job(state.engine, owner=None, status="completed")
    with events.job_ended.connected_to(times_out, sender=app), pytest.raises(JobTimeoutException):
        events.send(state, events.job_ended, job_id, outcome="completed")


def test_nobody_listening_means_no_record_is_read(app, state, monkeypatch):
    def must_not_read(*_: Any) -> Any:
        raise AssertionError("a record was read for a signal nobody listens to")

    monkeypatch.setattr(events, "load_jobs", must_not_read)
    job = jobmonitor.enqueue(import_rows, user=OWNER, files={"rows.csv": b"a\n"})
    run_worker(app)

    assert status_of(state.engine, job.id) == "completed"


def test_a_receiver_for_another_app_hears_nothing_of_this_one(app, state):
    other_app = Flask("another_host")
    calls: list[str] = []

    def receiver(sender: Flask, job_id: str, **_: Any) -> None:
        calls.append(job_id)

    with events.job_ended.connected_to(receiver, sender=other_app):
        jobmonitor.enqueue(noop)
        run_worker(app)

    assert calls == []


def test_the_public_api_names_every_signal():
    for signal in events.SIGNALS:
        name = signal.name.removeprefix("jobmonitor.").replace("-", "_")
        assert getattr(flask_jobmonitor, name) is signal


# -- people's actions, in the web request -----------------------------------------------------------


def test_cancelling_a_queued_job_tells_who_stopped_it_and_its_end_and_it_never_starts(app, state, heard):
    job = jobmonitor.enqueue(noop, user=OWNER)

    response = app.test_client().post(f"/jobmonitor/api/jobs/{job.id}/cancel", headers={"X-User": ADA.id})
    assert response.status_code == 200, response.get_data(as_text=True)
    run_worker(app)

    assert _brief(heard(job.id)) == [
        ("job-queued", False, "queued"),
        ("job-stopped", "cancel", "cancelled"),
        ("job-ended", "cancelled", "cancelled"),
    ]
    assert heard(job.id)[1]["user"] == ADA.id


def test_a_receiver_that_raises_in_a_request_does_not_fail_the_request(app, state, heard):
    def raises(sender: Flask, **_: Any) -> None:
        raise RuntimeError("no mail server")

    job = jobmonitor.enqueue(noop, user=OWNER)
    with events.job_stopped.connected_to(raises, sender=app), events.job_ended.connected_to(raises, sender=app):
        response = app.test_client().post(f"/jobmonitor/api/jobs/{job.id}/cancel", headers={"X-User": ADA.id})

    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert [item["signal"] for item in heard(job.id)] == ["job-queued", "job-stopped", "job-ended"]


def test_a_refused_action_tells_nothing(app, state, heard):
    job = jobmonitor.enqueue(noop, user=OWNER)
    run_worker(app)
    before = heard(job.id)

    with pytest.raises(TransitionRefused):
        control.cancel(state, job.id, ADA)

    assert heard(job.id) == before


def test_a_stopped_job_tells_the_request_and_its_end_at_the_checkpoint(app, state, heard, worker_class):
    job = jobmonitor.enqueue(ct.ticks, user=OWNER, seconds=30, interval=0.02)
    with worker_thread(app, worker_class, timeout=10):
        wait_status(state.engine, job.id, "running", timeout=10)
        control.stop(state, job.id, ADA)
        wait_status(state.engine, job.id, "stopped", timeout=10)

    told = _brief(heard(job.id))
    # the request is told last (after the stop signal went out): the job may have stopped first
    stopped = [item for item in told if item[0] == "job-stopped"]
    assert len(stopped) == 1 and stopped[0][1] == "stop" and stopped[0][2] in ("stopping", "stopped")
    assert [item for item in told if item[0] != "job-stopped"] == [
        ("job-queued", False, "queued"),
        ("job-started", 1, "running"),
        ("step-finished", 1, "Work", "stopped"),
        ("job-ended", "stopped", "stopped"),
    ]
    assert [item["user"] for item in heard(job.id) if item["signal"] == "job-stopped"] == [ADA.id]


def test_a_force_stop_tells_the_request_and_the_end_at_once(app, state, heard):
    job = jobmonitor.enqueue(ct.sleeps_without_ticking, user=OWNER, seconds=30)
    with worker_thread(app, Worker, timeout=15):
        assert ct.wait_arrival("sleeping") == job.id
        control.force_stop(state, job.id, ADA)

    told = _brief(heard(job.id))
    assert told[:4] == [
        ("job-queued", False, "queued"),
        ("job-started", 1, "running"),
        ("job-stopped", "force_stop", "stopped"),
        ("job-ended", "stopped", "stopped"),
    ]
    assert [item for item in told if item[0] == "job-ended"] == [("job-ended", "stopped", "stopped")]


def test_a_resumed_job_is_queued_again(app, state, heard):
    job = jobmonitor.enqueue(ct.ticks_resumable, user=OWNER, seconds=30, interval=0.02)
    with worker_thread(app, SimpleWorker, timeout=10):
        wait_status(state.engine, job.id, "running", timeout=10)
        control.stop(state, job.id, ADA)
        wait_status(state.engine, job.id, "stopped", timeout=10)

    control.resume(state, job.id, ADA)

    assert _brief(heard(job.id))[-1] == ("job-queued", True, "queued")


def test_deleting_a_family_tells_each_job_as_it_was(app, state, heard):
    parent = jobmonitor.enqueue(spawns_children, user=OWNER, count=2)
    run_worker(app)
    assert status_of(state.engine, parent.id) == "completed"
    family = {item["job_id"] for item in heard() if item["signal"] == "job-queued"}
    assert len(family) == 3

    control.delete(state, parent.id, ADA)

    deleted = [item for item in heard() if item["signal"] == "job-deleted"]
    assert {item["job_id"] for item in deleted} == family
    assert {(item["user"], item["status"]) for item in deleted} == {(ADA.id, "completed")}
    assert deleted[0]["job_id"] == parent.id


def test_a_family_ends_once_after_its_last_child(app, state, heard):
    parent = jobmonitor.enqueue(spawns_children, user=OWNER, count=2)
    run_worker(app)

    told = heard()
    ends = [(item["job_id"], item["outcome"]) for item in told if item["signal"] == "job-ended"]
    assert [job_id for job_id, _ in ends].count(parent.id) == 1
    assert ends[-1] == (parent.id, "completed")
    children = {item["job_id"] for item in told if item["signal"] == "job-queued"} - {parent.id}
    assert {job_id for job_id, _ in ends[:-1]} == children


# -- recovery and outages ---------------------------------------------------------------------------


def test_recovery_of_a_lost_run_tells_its_end(app, state, heard):
    job_id = add_job(state.engine, owner=None, task=noop.name, status="running", attempt=1, worker_name="gone")
    row = SimpleNamespace(
        id=job_id, attempt=1, task="an.unknown.task", status="running", worker_name="gone", run_by_id=None,
        recoveries=0, parent_id=None, root_id=None,
    )  # fmt: skip

    assert abandon_run(state, row, "worker gone stopped responding") == "failed"

    assert _brief(heard(job_id)) == [("job-ended", "failed", "failed")]


def test_a_job_redis_refuses_is_told_queued_then_failed(app, database_url, tmp_path):
    down = build_app(database_url, "redis://127.0.0.1:1/0", str(tmp_path / "down"))
    told: list[tuple[str, str]] = []

    def queued(sender: Flask, job_id: str, job: Any, again: bool) -> None:
        told.append(("queued", job.status))

    def ended(sender: Flask, job_id: str, job: Any, outcome: str) -> None:
        told.append((str(outcome), job.status))

    with (
        pushed(down),
        events.job_queued.connected_to(queued),
        events.job_ended.connected_to(ended),
        pytest.raises(EnqueueError),
    ):
        jobmonitor.enqueue(noop, user=OWNER)

    # queued is told before RQ is handed the job (so before any job_started), then its end
    assert told == [("queued", "queued"), ("failed", "failed")]


def test_the_record_cannot_be_read_then_the_signal_is_skipped_and_the_change_stands(app, state, monkeypatch, caplog):
    calls: list[str] = []

    def receiver(sender: Flask, job_id: str, **_: Any) -> None:
        calls.append(job_id)

    def database_gone(*_: Any) -> Any:
        raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(events, "load_jobs", database_gone)
    caplog.set_level(logging.ERROR, logger="flask_jobmonitor.events")
    with events.job_queued.connected_to(receiver, sender=app):
        job = jobmonitor.enqueue(noop, user=OWNER)

    assert calls == []
    assert job_row(state.engine, job.id).status == "queued"
    assert "jobmonitor.job-queued about job " + job.id + " not sent" in caplog.text


def test_a_signal_sent_from_a_thread_without_an_app_context_gives_its_receivers_one(app, state):
    seen: list[str] = []

    def receiver(sender: Flask, job_id: str, **_: Any) -> None:
        seen.append(current_app.name)  # as a host's receiver would: url_for, its own db.session ...

    job_id = add_job(state.engine, owner=None, status="completed")
    # a thread of the worker's (the heartbeat's, say) has no app context: the signal pushes one
    thread = threading.Thread(
        target=events.send, args=(state, events.job_ended, job_id), kwargs={"outcome": "completed"}
    )
    with events.job_ended.connected_to(receiver, sender=app):
        thread.start()
        thread.join(10)

    assert seen == [app.name]
