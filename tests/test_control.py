"""Job control on real RQ workers: stop, force stop, resume, cancel, restart, delete, priority,
bulk actions, and the races between people and workers.

A job that must be running while the test acts runs on a worker in a thread of this process
(``tests/control_tasks.py``: SimpleWorker, or a forking ``rq.Worker`` whose horse is a real
child process). The test waits for the moment it needs by polling the job row, or by BLPOP on
a Redis list the task pushes to, never by a fixed sleep.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import SimpleWorker, Worker
from rq.job import Job as RQJob
from rq.job import JobStatus as RQJobStatus
from rq.registry import FailedJobRegistry
from sqlalchemy.orm import Session

from flask_jobmonitor.errors import ActionNotAllowed, EnqueueError, TransitionRefused
from flask_jobmonitor.jobs import control
from flask_jobmonitor.jobs.submit import RUNNER_PATH
from flask_jobmonitor.keys import control_key
from flask_jobmonitor.records.models import (
    Job,
    file_table,
    job_table,
    log_table,
    notification_table,
    step_table,
    subtask_table,
)
from flask_jobmonitor.state import JobMonitorState, get_state
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.worker import runner
from flask_jobmonitor.worker.process import create_worker

from . import control_tasks as ct
from .support.apps import build_app, emptied
from .support.databases import count_rows, fetch_all, pushed
from .support.extensions import QUEUE_NAMES, jobmonitor
from .support.processes import process_alive
from .support.rows import (
    insert_job,
    job_row,
    log_messages,
    notifications,
    status_of,
    steps_of,
    subtask_names,
)
from .support.storage import files_under
from .support.users import User
from .support.waiting import wait_for, wait_row, wait_status
from .support.workers import run_worker, stop_pubsub_listener_first, worker_thread

#: The stop signal is read every 20 ms here (default 0.25 s), so tasks that tick every 20 ms
#: stop within a tick or two and the races below have a narrow, real window.
STOP_CHECK_INTERVAL = 0.02


ADA = User("1", "Ada Admin", ["admin"])
BOB = User("2", "Bob Boss", ["admin"])
USERS = {user.id: user for user in (ADA, BOB)}
#: Who launches the jobs (and receives their notifications).
OWNER = ("7", "Olga Owner")
#: How often a wait polls here: the races below have windows of a few ticks.
POLL = 0.005


@pytest.fixture
def app(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """Overrides the root ``app``: same database and Redis handling, a host with Flask-Login (user
    from the ``X-User`` header) and the admin views, and a stop signal read every 20 ms."""
    application = build_app(
        database_url,
        redis_url,
        str(tmp_path / "files"),
        name="jobmonitor_control_tests",
        login="header",
        users=USERS,
        admin="Control tests",
        WTF_CSRF_ENABLED=False,
        JOBMONITOR_STOP_CHECK_INTERVAL=STOP_CHECK_INTERVAL,
        JOBMONITOR_FLASH_ON_ENQUEUE=False,
    )
    with pushed(emptied(application, redis_url)):
        try:
            yield application
        finally:
            ct.delete_keys(Redis.from_url(redis_url))


@pytest.fixture
def state(app: Flask) -> JobMonitorState:
    return get_state(app)


# -- reading what happened ------------------------------------------------------------------------


def wait_progress(engine: sa.Engine, job_id: str, done: int, timeout: float = 10.0) -> sa.Row[Any]:
    """Poll until the running job has written progress of at least ``done``."""
    return wait_row(
        engine,
        job_id,
        lambda row: row.status == "running" and (row.progress_done or 0) >= done,
        timeout,
        f"job {job_id} running with progress >= {done}",
        POLL,
    )


def orm_jobs(engine: sa.Engine, ids: list[str]) -> list[Job]:
    """Detached Job objects, in the order of ``ids`` (what the views hand to ``perform``)."""
    with Session(engine) as session:
        found = {job.id: job for job in session.scalars(sa.select(Job).where(Job.id.in_(ids)))}
        session.expunge_all()
    return [found[job_id] for job_id in ids]


def rq_ids(state: JobMonitorState, priority: str) -> list[str]:
    return list(state.queue(priority).job_ids)


# -- cooperative stop -----------------------------------------------------------------------------


def test_cooperative_stop_ends_stopped_at_the_next_tick_keeping_the_work(app, engine, state, worker_class):
    job = jobmonitor.enqueue(ct.ticks, user=OWNER, seconds=30, interval=0.02)
    with worker_thread(app, worker_class, timeout=10) as running:
        wait_progress(engine, job.id, 3)
        requested = time.monotonic()
        result = control.stop(state, job.id, ADA)
        assert result.action == "stop"
        assert status_of(engine, job.id) in ("stopping", "stopped")  # the task may have stopped already
        row = wait_status(engine, job.id, "stopped", timeout=5, interval=POLL)
        latency = time.monotonic() - requested
        running.join(10)  # the task really ended: the burst worker had nothing left and quit

    assert latency < 1.0
    assert row.stop_forced is False
    assert row.stop_requested_at is not None and row.ended_at >= row.stop_requested_at
    step = steps_of(engine, job.id)["Work"]
    assert (step.status, step.ended_at is not None) == ("stopped", True)
    # no rollback: every item done before the stop is recorded, and the step counts them all
    items = subtask_names(engine, job.id)
    assert len(items) >= 3
    assert items == [f"item {i}" for i in range(len(items))]
    # the stop is raised inside subtask() or advance(), so the last item may miss its advance()
    assert len(items) - 1 <= step.done <= len(items)
    assert notifications(engine, job.id) == [("7", "stopped")]
    messages = log_messages(engine, job.id)
    assert "Stop requested by Ada Admin; work already done is kept." in messages
    # it went through "stopping": the request was logged before the task's own stop record
    assert messages.index("Stop requested by Ada Admin; work already done is kept.") < messages.index(
        "Stopped at a checkpoint; work already done is kept."
    )
    assert state.redis.exists(control_key(job.id)) == 0


def test_a_run_that_ended_before_the_stop_signal_was_set_leaves_no_signal(app, engine, state, monkeypatch):
    """The task read "stopping" from SQL (a write of its progress) and recorded its stop, clearing
    the signal, before the request had set it: the request must not leave a signal for no run.
    The interleaving is made, not waited for: the run ends while the request stops the children."""
    from flask_jobmonitor.jobs.signals import clear_signal
    from flask_jobmonitor.records.transitions import apply_transition

    job_id = insert_job(engine, task=ct.ticks.name, status="running", run_by_id="7", attempt=1)

    def the_run_stops_meanwhile(state_: Any, parent_id: str, user: Any) -> None:
        with engine.begin() as connection:
            apply_transition(connection, parent_id, "stopped", attempt=1, values={"ended_at": utcnow()})
        clear_signal(state_, parent_id)

    monkeypatch.setattr(control, "stop_children", the_run_stops_meanwhile)
    control.stop(state, job_id, ADA)
    assert job_row(engine, job_id).status == "stopped"
    assert state.redis.exists(control_key(job_id)) == 0


def test_stop_noticed_by_a_write_instead_of_the_signal_still_ends_the_job(app, engine, state):
    """The task's write at the end of a step reads "stopping" back from SQL and stops; its stop
    check is due at that moment too (the task spent longer than the check interval without a
    tick). Recording the stop must not be interrupted by a second look at the signal."""
    job = jobmonitor.enqueue(ct.ends_step_after_go, user=OWNER, pause=5 * STOP_CHECK_INTERVAL)
    with worker_thread(app, SimpleWorker, timeout=10):
        assert ct.wait_arrival("waiting") == job.id
        control.stop(state, job.id, ADA)
        state.redis.rpush(ct.go_key(job.id), "go")
    row = job_row(engine, job.id)
    assert row.status in ("stopped", "completed"), f"left {row.status!r} after its run ended"
    assert [event for _user, event in notifications(engine, job.id)] == [row.status]


# -- refusals ------------------------------------------------------------------------------------
# (an action that does not fit the status: web/test_actions.py checks every one, with its message,
# through the JSON API and the form, and that nothing changes)


def _snapshot(engine: sa.Engine, job_id: str) -> tuple[Any, ...]:
    return (tuple(job_row(engine, job_id)), log_messages(engine, job_id), notifications(engine, job_id))


def test_a_task_declared_not_stoppable_is_offered_no_stop_and_refuses_one(app, engine, state):
    running = insert_job(engine, task=ct.ticks_unstoppable.name, status="running", run_by_id="7", attempt=1)
    job = orm_jobs(engine, [running])[0]
    before = _snapshot(engine, running)

    assert control.allowed_actions(state, job, ADA) == []  # no stop, no force stop
    for action in ("stop", "force_stop"):
        with pytest.raises(ActionNotAllowed, match=r"^Jobs of this kind cannot be stopped\.$"):
            control.perform(state, action, job, ADA)
    assert _snapshot(engine, running) == before
    summary = control.perform_bulk(state, "stop", [job], ADA)
    assert summary.message == "0 asked to stop, 1 skipped: Jobs of this kind cannot be stopped."


def test_stopping_a_parent_leaves_its_running_unstoppable_child_to_finish(app, engine, state):
    parent = insert_job(engine, task=ct.ticks.name, status="running", run_by_id="7", attempt=1)
    kids = {
        task: insert_job(engine, task=task, status="running", parent_id=parent, root_id=parent, attempt=1)
        for task in (ct.ticks_unstoppable.name, ct.ticks.name)
    }

    control.stop(state, parent, ADA)

    assert status_of(engine, parent) == "stopping"
    assert status_of(engine, kids[ct.ticks.name]) == "stopping"
    assert status_of(engine, kids[ct.ticks_unstoppable.name]) == "running"
    assert not state.redis.exists(control_key(kids[ct.ticks_unstoppable.name]))


def test_a_task_declared_not_restartable_is_not_submitted_again(app, engine, state):
    done = orm_jobs(engine, [insert_job(engine, task=ct.runs_once.name, status="completed", run_by_id="7")])[0]

    assert "restart" not in control.allowed_actions(state, done, ADA)
    assert "delete" in control.allowed_actions(state, done, ADA)
    with pytest.raises(ActionNotAllowed, match=r"^Jobs of this kind cannot be submitted again\.$"):
        control.perform(state, "restart", done, ADA)
    assert count_rows(engine, job_table) == 1


def test_system_jobs_cannot_be_stopped_unless_the_setting_allows_it(app, engine, state):
    running = insert_job(engine, task=ct.ticks.name, status="running", is_system=True, attempt=1)
    job = orm_jobs(engine, [running])[0]

    assert {"stop", "force_stop", "cancel"}.isdisjoint(control.allowed_actions(state, job, ADA))
    with pytest.raises(ActionNotAllowed, match=r"^System jobs cannot be stopped\.$"):
        control.perform(state, "stop", job, ADA)
    assert status_of(engine, running) == "running"

    state.settings = dataclasses.replace(state.settings, system_jobs_stoppable=True)
    assert {"stop", "force_stop"} <= set(control.allowed_actions(state, job, ADA))
    control.perform(state, "stop", job, ADA)
    assert status_of(engine, running) == "stopping"


def test_a_finished_parent_with_an_active_child_is_not_offered_delete(app, engine, state):
    """Its task failed while a child still runs: delete refuses it, so it is not offered; looked
    up when the caller does not know the family, taken from the caller's count when it does."""
    parent = insert_job(engine, task=ct.ticks.name, status="failed", run_by_id="7", attempt=1)
    child = insert_job(engine, task=ct.ticks.name, status="running", parent_id=parent, root_id=parent, attempt=1)
    job = orm_jobs(engine, [parent])[0]

    assert "delete" not in control.allowed_actions(state, job, ADA)
    assert "delete" not in control.allowed_actions(state, job, ADA, active_children=1)
    with pytest.raises(ActionNotAllowed, match="has a child job that is still active"):
        control.perform(state, "delete", job, ADA)

    with engine.begin() as connection:
        connection.execute(sa.update(job_table).where(job_table.c.id == child).values(status="completed"))
    assert "delete" in control.allowed_actions(state, job, ADA)
    assert "delete" in control.allowed_actions(state, job, ADA, active_children=0)


def test_a_parent_waiting_for_its_children_offers_stop_and_force_stop_only(app, engine, state):
    parent = insert_job(engine, task=ct.spawns_and_ticks.name, status="waiting", run_by_id="7", attempt=1)
    child = insert_job(engine, task=ct.ticks.name, parent_id=parent, root_id=parent, run_by_id="7")

    assert control.allowed_actions(state, orm_jobs(engine, [parent])[0], ADA) == ["stop", "force_stop"]
    for action, refusal in (("cancel", "be cancelled"), ("restart", "be restarted"), ("delete", "be deleted")):
        with pytest.raises(TransitionRefused, match=f"^This job is waiting for its child jobs; it cannot {refusal}"):
            control.perform(state, action, orm_jobs(engine, [parent])[0], ADA)

    result = control.stop(state, parent, ADA)  # its only child was queued: cancelled, so the family ends

    assert result.message == "Its child jobs will stop at their next checkpoint, and the job with them."
    assert (status_of(engine, child), status_of(engine, parent)) == ("cancelled", "stopped")
    assert notifications(engine, parent) == [("7", "stopped")]
    assert notifications(engine, child) == []


def test_cancel_of_a_running_job_stops_it_at_its_checkpoint_and_ends_it_cancelled(app, engine, state, worker_class):
    """Where a task asks for it (``cancel_running=True``); other running jobs refuse a cancel."""
    job = jobmonitor.enqueue(ct.ticks_cancellable, user=OWNER, seconds=30, interval=0.02)
    with worker_thread(app, worker_class, timeout=10) as running:
        wait_progress(engine, job.id, 3)
        assert "cancel" in control.allowed_actions(state, orm_jobs(engine, [job.id])[0], ADA)

        result = control.perform(state, "cancel", orm_jobs(engine, [job.id])[0], ADA)

        assert result.message == "The job will stop at its next checkpoint and end cancelled."
        row = wait_status(engine, job.id, ("cancelled", "stopped"), timeout=5, interval=POLL)
        running.join(10)
    assert row.status == "cancelled"
    assert row.ended_at is not None and row.stop_forced is False
    assert steps_of(engine, job.id)["Work"].status == "stopped"
    messages = log_messages(engine, job.id)
    assert "Cancel requested by Ada Admin; work already done is kept." in messages
    assert "Cancelled at a checkpoint; work already done is kept." in messages
    assert notifications(engine, job.id) == []  # the person who cancelled it needs no news
    assert control.allowed_actions(state, orm_jobs(engine, [job.id])[0], ADA) == ["restart", "delete"]
    # a plain stop still ends stopped, and can still be cancelled from there
    again = jobmonitor.enqueue(ct.ticks_cancellable, user=OWNER, seconds=30, interval=0.02)
    with worker_thread(app, worker_class, timeout=10):
        wait_progress(engine, again.id, 3)
        control.stop(state, again.id, ADA)
        assert wait_status(engine, again.id, ("stopped", "cancelled"), timeout=5, interval=POLL).status == "stopped"
    control.cancel(state, again.id, ADA)
    assert status_of(engine, again.id) == "cancelled"


# -- force stop ----------------------------------------------------------------------------------


def test_a_cancel_whose_signal_comes_after_the_run_read_stopping_still_ends_cancelled(app, engine, state, monkeypatch):
    """The request writes "stopping" to SQL, stops the children, then sets its "cancel" signal; a
    run whose write read "stopping" in between learns from the signal that it is a cancel, by
    waiting for it (runner._record_stop). Under load that window was wide enough for the run to
    end "stopped". The interleaving is made: the request stops the children once the run waits."""
    waiting = threading.Event()
    real_await = runner.await_signal
    real_stop_children = control.stop_children

    def noted(*args: Any, **kwargs: Any) -> Any:
        waiting.set()
        return real_await(*args, **kwargs)

    def once_the_run_waits(*args: Any, **kwargs: Any) -> Any:
        waiting.wait(10)
        return real_stop_children(*args, **kwargs)

    monkeypatch.setattr(runner, "await_signal", noted, raising=False)
    monkeypatch.setattr(control, "stop_children", once_the_run_waits)
    job = jobmonitor.enqueue(ct.ticks_cancellable, user=OWNER, seconds=30, interval=0.02)
    with worker_thread(app, SimpleWorker, timeout=10) as running:
        wait_progress(engine, job.id, 3)
        control.perform(state, "cancel", orm_jobs(engine, [job.id])[0], ADA)
        row = wait_status(engine, job.id, ("cancelled", "stopped"), timeout=10, interval=POLL)
        running.join(10)

    assert row.status == "cancelled"
    assert waiting.is_set(), "the run did not wait for the request's signal"
    assert notifications(engine, job.id) == []  # a person who cancels a job needs no news of it


def test_force_stop_kills_a_forked_task_that_never_ticks(app, engine, state):
    job = jobmonitor.enqueue(ct.sleeps_without_ticking, user=OWNER, seconds=30)
    with worker_thread(app, Worker, timeout=10) as running:
        assert ct.wait_arrival("sleeping") == job.id
        horse = running.horse_pid
        assert horse and job_row(engine, job.id).checkpoint["pid"] == horse
        requested = time.monotonic()
        control.force_stop(state, job.id, ADA)
        row = wait_status(engine, job.id, "stopped", timeout=2, interval=POLL)
        wait_for(lambda: not process_alive(horse), 2.0, "the work horse to be killed", interval=POLL)
        rq_job = RQJob.fetch(job.id, connection=state.redis)
        wait_for(
            lambda: rq_job.get_status(refresh=True) == RQJobStatus.STOPPED, 2.0, "RQ to mark it stopped", interval=POLL
        )
        elapsed = time.monotonic() - requested
    assert elapsed < 2.0
    assert row.stop_forced is True and row.ended_at is not None
    assert job.id in FailedJobRegistry(queue=state.queue("default"))
    assert steps_of(engine, job.id)["Sleep"].status == "stopped"
    assert notifications(engine, job.id) == [("7", "stopped")]
    assert "Force-stopped by Ada Admin." in log_messages(engine, job.id)
    assert not state.redis.sismember(ct.ran_key("slept-to-the-end"), job.id)


def test_force_stop_on_a_simple_worker_ends_the_task_at_its_next_tick(app, engine, state):
    job = jobmonitor.enqueue(ct.ticks, user=OWNER, seconds=30, interval=0.02)
    with worker_thread(app, SimpleWorker, timeout=10) as running:
        wait_progress(engine, job.id, 3)
        control.force_stop(state, job.id, ADA)
        row = job_row(engine, job.id)
        assert (row.status, row.stop_forced) == ("stopped", True)  # recorded at once, in SQL
        running.join(2.0)  # the task ended at its next tick; the burst worker quit

    items = subtask_names(engine, job.id)
    time.sleep(0.1)
    assert subtask_names(engine, job.id) == items  # nothing more happens
    row = job_row(engine, job.id)
    assert (row.status, row.stop_forced) == ("stopped", True)
    assert steps_of(engine, job.id)["Work"].status == "stopped"
    assert notifications(engine, job.id) == [("7", "stopped")]  # one, though the task saw the stop too


# -- resume --------------------------------------------------------------------------------------


def test_resume_continues_from_the_checkpoint_without_repeating_anything(app, engine, state):
    count = 40
    job = jobmonitor.enqueue(ct.resumable_items, user=OWNER, count=count, interval=0.02)
    with worker_thread(app, SimpleWorker, timeout=10):
        wait_for(
            lambda: (job_row(engine, job.id).checkpoint or {}).get("next", 0) >= 8,
            10.0,
            "some items checkpointed",
            interval=POLL,
        )
        control.stop(state, job.id, ADA)
        wait_status(engine, job.id, "stopped", timeout=5, interval=POLL)
    stopped_at = job_row(engine, job.id).checkpoint["next"]
    assert 8 <= stopped_at < count
    assert steps_of(engine, job.id)["Prepare"].status == "completed"
    assert steps_of(engine, job.id)["Process"].status == "stopped"

    result = control.resume(state, job.id, ADA)
    assert result.action == "resume"
    assert status_of(engine, job.id) == "queued"
    assert job.id in rq_ids(state, "default")
    run_worker(app)

    row = job_row(engine, job.id)
    assert row.status == "completed", row.error_message
    assert row.attempt == 2
    steps = steps_of(engine, job.id)
    assert (steps["Prepare"].status, steps["Prepare"].done) == ("completed", 1)
    assert (steps["Process"].status, steps["Process"].done, steps["Process"].total) == ("completed", count, count)
    counts = Counter(subtask_names(engine, job.id))
    assert counts == Counter(["prepared", *(f"item {i}" for i in range(count))])  # each exactly once
    assert notifications(engine, job.id) == [("7", "stopped"), ("7", "completed")]
    assert "Resumed by Ada Admin." in log_messages(engine, job.id)


def _child_of(engine: sa.Engine, parent: str, root: str, task: str, status: str) -> str:
    """A child job of ``parent`` (family ``root``) that ticks for 0.1 s when it runs."""
    return insert_job(
        engine,
        task=task,
        status=status,
        run_by_id="7",
        attempt=1,
        parent_id=parent,
        root_id=root,
        enqueued_at=utcnow(),
        params={"args": [], "kwargs": {"seconds": 0.1, "interval": 0.02}},
    )


def _stopped_family(engine: sa.Engine, *children: tuple[str, str]) -> tuple[str, list[str]]:
    """A stopped parent of a resumable task with children of (task name, status)."""
    parent = insert_job(
        engine,
        task=ct.resumable_items.name,
        status="stopped",
        run_by_id="7",
        attempt=1,
        params={"args": [], "kwargs": {"count": 1, "interval": 0.0}},
    )
    kids = [_child_of(engine, parent, parent, task, status) for task, status in children]
    return parent, kids


def test_resuming_a_stopped_family_resumes_its_stopped_children_and_the_family_completes(app, engine, state):
    """Resuming only the parent ran its task again and found no active child: the family ended
    stopped again at once. Its stopped children continue first, and the parent waits for them."""
    parent, kids = _stopped_family(engine, (ct.ticks_resumable.name, "stopped"), (ct.ticks.name, "completed"))

    result = control.perform(state, "resume", orm_jobs(engine, [parent])[0], ADA)

    assert (
        result.message
        == "The job is queued again and will continue from its checkpoint. 1 stopped child job continues too."
    )
    assert [status_of(engine, kid) for kid in kids] == ["queued", "completed"]
    assert "Resumed with its parent by Ada Admin." in log_messages(engine, kids[0])
    run_worker(app)
    assert [status_of(engine, kid) for kid in kids] == ["completed", "completed"]
    assert status_of(engine, parent) == "completed", log_messages(engine, parent)[-3:]
    assert notifications(engine, parent)[-1] == ("7", "completed")


def test_resuming_a_family_says_which_children_cannot_continue(app, engine, state):
    parent, kids = _stopped_family(
        engine, (ct.ticks_resumable.name, "stopped"), (ct.ticks.name, "stopped"), (ct.ticks_resumable.name, "cancelled")
    )

    result = control.resume(state, parent, ADA)

    assert result.message.endswith(
        "1 stopped child job continues too. 1 stopped child job cannot continue (submit it again)."
    )
    assert [status_of(engine, kid) for kid in kids] == ["queued", "stopped", "cancelled"]
    run_worker(app)
    # the family's outcome counts the children that did not continue
    assert status_of(engine, parent) == "stopped"
    assert any("2 of 3 child jobs were stopped or cancelled" in line for line in log_messages(engine, parent))


def test_resuming_a_family_queues_the_deepest_stopped_jobs_first(app, engine, state):
    """A child queued before its own stopped children could run at once, find none active and
    end stopped: the grandchild is queued first, then the child, then the parent."""
    parent, (child,) = _stopped_family(engine, (ct.ticks_resumable.name, "stopped"))
    grandchild = _child_of(engine, child, parent, ct.ticks_resumable.name, "stopped")

    result = control.resume(state, parent, ADA)

    assert result.message.endswith("2 stopped child jobs continue too.")
    assert rq_ids(state, "default") == [grandchild, child, parent]
    run_worker(app)
    assert [status_of(engine, job) for job in (grandchild, child, parent)] == ["completed"] * 3


def test_resume_after_a_force_stop_runs_the_job_to_the_end(app, engine, state):
    """A force stop leaves the job's stop signal in Redis; a resumed run must not obey it."""
    job = jobmonitor.enqueue(ct.resumable_items, user=OWNER, count=30, interval=0.02)
    with worker_thread(app, SimpleWorker, timeout=10):
        wait_for(
            lambda: (job_row(engine, job.id).checkpoint or {}).get("next", 0) >= 5, 10.0, "progress", interval=POLL
        )
        control.force_stop(state, job.id, ADA)
    assert status_of(engine, job.id) == "stopped"

    control.resume(state, job.id, ADA)
    with worker_thread(app, SimpleWorker, timeout=10):
        pass

    row = job_row(engine, job.id)
    assert row.status == "completed", f"resumed run ended {row.status!r}; logs: {log_messages(engine, job.id)[-3:]}"
    assert Counter(subtask_names(engine, job.id)) == Counter(["prepared", *(f"item {i}" for i in range(30))])


# -- cancel --------------------------------------------------------------------------------------


def test_cancelled_queued_job_leaves_the_queue_and_never_runs(app, engine, state, worker_class):
    job = jobmonitor.enqueue(ct.records_run, user=OWNER, marker="cancel")
    assert job.id in rq_ids(state, "default")

    control.cancel(state, job.id, ADA)

    assert job.id not in rq_ids(state, "default")
    run_worker(app, worker_class)
    row = job_row(engine, job.id)
    assert (row.status, row.started_at, row.attempt) == ("cancelled", None, 0)
    assert row.ended_at is not None
    assert state.redis.smembers(ct.ran_key("cancel")) == set()
    assert "Cancelled by Ada Admin." in log_messages(engine, job.id)
    assert notifications(engine, job.id) == []


def test_cancelling_a_stopped_job_discards_it(app, engine, state):
    stopped = insert_job(engine, task=ct.ticks.name, status="stopped", attempt=1)

    control.cancel(state, stopped, ADA)

    row = job_row(engine, stopped)
    assert row.status == "cancelled" and row.ended_at is not None
    assert "Cancelled by Ada Admin." in log_messages(engine, stopped)
    with pytest.raises(TransitionRefused, match="This job has been cancelled; it can no longer be cancelled"):
        control.cancel(state, stopped, ADA)


# -- races ---------------------------------------------------------------------------------------


def test_race_stop_just_as_the_task_ends(app, engine, state):
    """(a) Stop requested at the moment a short task returns, 20 times."""
    # where the stop lands: after the step closed (only the runner's recording of the result is
    # left), just before the step closes, or in the last ticks
    shapes = [{"after_step": True}, {"tail": 0.0}, {"tail": 0.005}, {"tail": 0.02}, {"tail": 0.04}]
    jobs = [jobmonitor.enqueue(ct.ends_soon, user=OWNER, seconds=0.02, **shapes[i % len(shapes)]) for i in range(20)]
    accepted = 0
    with worker_thread(app, SimpleWorker, timeout=30):
        for _ in jobs:
            job_id = ct.wait_arrival("ending")
            try:
                control.stop(state, job_id, ADA)
                accepted += 1
            except TransitionRefused:
                pass

    outcomes = Counter()
    for job in jobs:
        row = job_row(engine, job.id)
        assert row.status in ("completed", "stopped"), (job.id, row.status)
        events = [event for _user, event in notifications(engine, job.id)]
        assert events == [row.status], (job.id, row.status, events)
        outcomes[row.status] += 1
    assert accepted >= 1
    assert outcomes["stopped"] >= 1 and outcomes["completed"] >= 1, outcomes  # the race went both ways


def test_race_cancel_while_a_worker_drains_the_queue(app, engine, state, worker_class):
    """(b) Cancel queued jobs while a worker is taking them: each is cancelled or ran, never both."""
    marker = "race-cancel"
    jobs = [jobmonitor.enqueue(ct.records_run, marker=marker, seconds=0.005) for _ in range(30)]
    refused = 0
    with worker_thread(app, worker_class, timeout=30):
        wait_status(engine, jobs[0].id, ("running", "completed"), interval=POLL)
        for job in reversed(jobs):  # meets the worker half-way
            try:
                control.cancel(state, job.id, ADA)
            except TransitionRefused:
                refused += 1

    ran = {member.decode() for member in state.redis.smembers(ct.ran_key(marker))}
    outcomes = Counter()
    for job in jobs:
        row = job_row(engine, job.id)
        assert row.status in ("cancelled", "completed"), (job.id, row.status)
        assert (row.status == "completed") == (job.id in ran), (job.id, row.status)
        if row.status == "cancelled":
            assert row.started_at is None
        outcomes[row.status] += 1
    assert outcomes["cancelled"] >= 1 and outcomes["completed"] >= 1, outcomes
    assert refused == outcomes["completed"]
    assert rq_ids(state, "default") == []


def test_race_two_people_stop_the_same_job_at_once(app, engine, state):
    """(c) Exactly one of two simultaneous stops succeeds; the other is refused."""

    def stop_together(job_id: str) -> list[str]:
        barrier = threading.Barrier(2)
        results: list[str] = []

        def stop_as(user: User) -> None:
            with app.app_context():
                barrier.wait()
                try:
                    control.stop(state, job_id, user)
                    results.append("stopped")
                except TransitionRefused:
                    results.append("refused")

        threads = [threading.Thread(target=stop_as, args=(user,)) for user in (ADA, BOB)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        return sorted(results)

    job = jobmonitor.enqueue(ct.ticks, user=OWNER, seconds=30)
    with worker_thread(app, SimpleWorker, timeout=10):
        wait_progress(engine, job.id, 2)
        assert stop_together(job.id) == ["refused", "stopped"]
        wait_status(engine, job.id, "stopped", timeout=5, interval=POLL)
    requests = [m for m in log_messages(engine, job.id) if m.startswith("Stop requested by")]
    assert len(requests) == 1
    assert notifications(engine, job.id) == [("7", "stopped")]

    # more rounds on bare running rows: the conditional UPDATE alone decides
    for _ in range(10):
        job_id = insert_job(engine, task=ct.ticks.name, status="running", attempt=1)
        assert stop_together(job_id) == ["refused", "stopped"]
        assert status_of(engine, job_id) == "stopping"
        assert len([m for m in log_messages(engine, job_id) if m.startswith("Stop requested by")]) == 1
        state.redis.delete(control_key(job_id))


# -- restart and delete --------------------------------------------------------------------------


def test_restart_makes_a_new_job_with_the_same_task_params_sharing_the_stored_inputs(app, engine, state):
    inputs = {"a.csv": b"id,name\n1,x\n", "b.bin": bytes(range(256))}
    job = jobmonitor.enqueue(ct.reads_inputs, user=OWNER, name="Copy the inputs", files=inputs)
    run_worker(app)
    assert status_of(engine, job.id) == "completed"

    result = control.restart(state, job.id, ADA)

    new = job_row(engine, result.new_job_id)
    original = job_row(engine, job.id)
    assert new.id != job.id
    assert (new.task, new.params, new.name, new.status) == (original.task, original.params, original.name, "queued")
    assert new.restarted_from_id == job.id
    assert (new.run_by_id, new.run_by_name) == ("1", "Ada Admin")
    assert new.id in rq_ids(state, "default")

    def input_files(job_id: str) -> dict[str, tuple[str, bytes]]:
        c = file_table.c
        rows = fetch_all(engine, sa.select(file_table).where(c.job_id == job_id, c.kind == "input"))
        result: dict[str, tuple[str, bytes]] = {}
        for r in rows:
            with state.storage.open(r.storage_key) as handle:
                result[r.filename] = (r.storage_key, handle.read())
        return result

    old_files, new_files = input_files(job.id), input_files(new.id)
    assert {name: data for name, (_key, data) in new_files.items()} == inputs
    assert {name: data for name, (_key, data) in old_files.items()} == inputs
    # shared, not copied (issue 15, row 9: each "Submit again" stored another copy)
    assert {key for key, _ in old_files.values()} == {key for key, _ in new_files.values()}
    assert files_under(Path(state.storage.root) / new.id) == []
    # seen from the original: the new job is its restart
    restarts = fetch_all(engine, sa.select(job_table.c.id).where(job_table.c.restarted_from_id == job.id))
    assert [r.id for r in restarts] == [new.id]
    assert "Restarted by Ada Admin." in log_messages(engine, job.id)
    page = app.test_client().get(f"/admin/jobs/{job.id}/", headers={"X-User": "1"})
    assert page.status_code == 200 and new.id in page.get_data(as_text=True)

    run_worker(app)
    assert status_of(engine, new.id) == "completed"


def test_deleting_the_original_keeps_the_input_its_restart_shares(app, engine, state):
    job = jobmonitor.enqueue(ct.reads_inputs, user=OWNER, files={"a.csv": b"id\n1\n"})
    run_worker(app)
    restarted = control.restart(state, job.id, ADA).new_job_id
    assert restarted
    (row,) = fetch_all(engine, sa.select(file_table).where(file_table.c.job_id == restarted))

    control.delete(state, job.id, ADA)

    with state.storage.open(row.storage_key) as handle:
        assert handle.read() == b"id\n1\n"
    download = app.test_client().get(f"/jobmonitor/files/{row.id}", headers={"X-User": "1"})
    assert download.status_code == 200 and download.data == b"id\n1\n"
    run_worker(app)
    assert status_of(engine, restarted) == "completed"  # its task read the shared input

    control.delete(state, restarted, ADA)  # the last job that refers to it: the file goes
    assert files_under(state.storage.root) == []


def test_deleting_a_restart_removes_its_own_store_and_keeps_the_shared_input(app, engine, state):
    job = jobmonitor.enqueue(ct.reads_inputs, user=OWNER, files={"a.csv": b"id\n1\n"})
    run_worker(app)
    restarted = control.restart(state, job.id, ADA).new_job_id
    assert restarted
    run_worker(app)
    stray = Path(state.storage.root) / restarted / "left-by-a-killed-save.part"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"half")

    control.delete(state, restarted, ADA)

    assert not stray.parent.exists()  # the restart's own store, though its input is shared
    (row,) = fetch_all(engine, sa.select(file_table).where(file_table.c.job_id == job.id, file_table.c.kind == "input"))
    with state.storage.open(row.storage_key) as handle:  # the original's input stays
        assert handle.read() == b"id\n1\n"


def test_a_restart_whose_original_was_deleted_meanwhile_is_refused(app, engine, state, monkeypatch):
    """The delete of the original commits between the restart's read of its inputs and the new
    job's rows: the shared file is gone, so the restart is refused, before any row is written
    (it failed later, in the task, with FileNotFoundError). The interleaving is made."""
    job = jobmonitor.enqueue(ct.reads_inputs, user=OWNER, files={"a.csv": b"id\n1\n"})
    run_worker(app)
    real_enqueue = control.enqueue_job

    def delete_first(state_: Any, request: Any) -> Any:
        control.delete(state_, job.id, ADA)
        return real_enqueue(state_, request)

    monkeypatch.setattr(control, "enqueue_job", delete_first)
    before = count_rows(engine, job_table)
    with pytest.raises(EnqueueError, match="deleted meanwhile"):
        control.restart(state, job.id, ADA)
    assert count_rows(engine, job_table) == before - 1  # the original only: no new job


def test_delete_without_delete_returning_locks_then_deletes(app, engine, state, monkeypatch):
    """MySQL 8 has no DELETE ... RETURNING (MariaDB has): the family's rows are locked and read,
    then deleted, and the statistics of their hours forgotten. The same path on every database."""
    job = jobmonitor.enqueue(ct.leaves_traces, user=OWNER)
    run_worker(app)
    assert status_of(engine, job.id) == "completed"
    monkeypatch.setattr(engine.dialect, "delete_returning", False)

    control.delete(state, job.id, ADA)

    assert fetch_all(engine, sa.select(job_table.c.id).where(job_table.c.id == job.id)) == []
    for table in (step_table, subtask_table, log_table, file_table, notification_table):
        assert fetch_all(engine, sa.select(table).where(table.c.job_id == job.id)) == [], table.name


def test_a_deadlock_while_forgetting_statistics_undoes_the_whole_delete(app, engine, state, monkeypatch):
    """An InnoDB deadlock rolls the whole transaction back, the savepoint the statistics cache's
    update runs in too: the delete must fail as a whole, not go on to delete the files of rows
    that are still there (a missing cache table, by contrast, is only a warning)."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        pytest.skip("PostgreSQL and SQLite undo only the savepoint")
    import pymysql

    job = jobmonitor.enqueue(ct.leaves_traces, user=OWNER, files={"in.txt": b"input"})
    run_worker(app)

    def deadlocked(*_args: Any) -> None:
        raise sa.exc.OperationalError("DELETE ...", {}, pymysql.err.OperationalError(1213, "Deadlock found"))

    monkeypatch.setattr(control.stats_cache, "forget", deadlocked)
    with pytest.raises(sa.exc.OperationalError, match="Deadlock"):
        control.delete(state, job.id, ADA)

    assert status_of(engine, job.id) == "completed"
    assert files_under(Path(state.storage.root) / job.id)


def test_delete_removes_the_job_its_children_and_everything_recorded(app, engine, state):
    parent = jobmonitor.enqueue(ct.leaves_traces, user=OWNER, children=2, files={"in.txt": b"input"})
    other = jobmonitor.enqueue(ct.leaves_traces, user=OWNER)
    # only the parent runs: its children stay queued
    worker = create_worker(app, worker_class=SimpleWorker)
    stop_pubsub_listener_first(worker)
    worker.work(burst=True, max_jobs=1)
    assert status_of(engine, parent.id) == "waiting"  # for its children
    children = [r.id for r in fetch_all(engine, sa.select(job_table.c.id).where(job_table.c.parent_id == parent.id))]
    assert len(children) == 2

    with pytest.raises(TransitionRefused, match="This job is waiting for its child jobs; it cannot be deleted now"):
        control.delete(state, parent.id, ADA)
    assert status_of(engine, parent.id) == "waiting"

    run_worker(app)
    family = [parent.id, *children]
    assert {status_of(engine, job_id) for job_id in [*family, other.id]} == {"completed"}
    storage = Path(state.storage.root)
    for table in (step_table, subtask_table, log_table, file_table, notification_table):
        assert fetch_all(engine, sa.select(table).where(table.c.job_id.in_(family))), table.name
    assert all(files_under(storage / job_id) for job_id in family)

    control.delete(state, parent.id, ADA)

    assert fetch_all(engine, sa.select(job_table).where(job_table.c.id.in_(family))) == []
    for table in (step_table, subtask_table, log_table, file_table, notification_table):
        assert fetch_all(engine, sa.select(table).where(table.c.job_id.in_(family))) == [], table.name
    assert not any(files_under(storage / job_id) for job_id in family)
    assert not any(RQJob.exists(job_id, connection=state.redis) for job_id in family)
    # the unrelated job keeps everything
    assert status_of(engine, other.id) == "completed" and files_under(storage / other.id)
    assert fetch_all(engine, sa.select(subtask_table).where(subtask_table.c.job_id == other.id))


# -- priority ------------------------------------------------------------------------------------


def test_priority_moves_a_queued_job_between_queues_and_workers_take_high_default_low(app, engine, state):
    low = jobmonitor.enqueue(ct.records_run, marker="priority")
    assert rq_ids(state, "default") == [low.id]

    control.set_priority(state, low.id, True, ADA)
    assert (rq_ids(state, "default"), rq_ids(state, "low")) == ([], [low.id])
    row = job_row(engine, low.id)
    assert (row.low_priority, row.queue_name) == (True, QUEUE_NAMES["low"])
    control.set_priority(state, low.id, False, ADA)
    assert (rq_ids(state, "default"), rq_ids(state, "low")) == ([low.id], [])
    assert job_row(engine, low.id).queue_name == QUEUE_NAMES["default"]
    control.set_priority(state, low.id, True, ADA)
    assert RQJob.fetch(low.id, connection=state.redis).origin == QUEUE_NAMES["low"]

    default = jobmonitor.enqueue(ct.records_run, marker="priority")
    high = insert_job(engine, task=ct.records_run.name, params={"args": [], "kwargs": {"marker": "priority"}})
    state.queue("high").enqueue(RUNNER_PATH, high, job_id=high)
    assert "Set to low priority by Ada Admin." in log_messages(engine, low.id)

    run_worker(app)

    started = sorted(
        (job_row(engine, job_id).started_at, name)
        for name, job_id in [("low", low.id), ("default", default.id), ("high", high)]
    )
    assert [name for _at, name in started] == ["high", "default", "low"]
    with pytest.raises(TransitionRefused, match="it can no longer change priority"):
        control.set_priority(state, low.id, False, ADA)


# -- bulk ----------------------------------------------------------------------------------------


def test_bulk_summary_counts_done_and_skipped_with_reasons(app, engine, state):
    queued = [jobmonitor.enqueue(ct.records_run, marker="bulk").id for _ in range(2)]
    completed = insert_job(engine, status="completed")

    summary = control.perform_bulk(state, "cancel", orm_jobs(engine, [*queued, completed]), ADA)

    assert summary.message == "2 cancelled, 1 skipped: already completed"
    assert [r.job_id for r in summary.done] == queued
    assert {status_of(engine, job_id) for job_id in queued} == {"cancelled"}

    more = [insert_job(engine, status="completed"), insert_job(engine, status="running", attempt=1)]
    fresh = jobmonitor.enqueue(ct.records_run, marker="bulk").id
    summary = control.perform_bulk(state, "cancel", orm_jobs(engine, [completed, *more, fresh]), ADA)
    assert summary.message == "1 cancelled, 3 skipped: 2 already completed; already running"


# -- parents and children ------------------------------------------------------------------------


def test_stopping_a_parent_stops_its_running_children_and_cancels_its_queued_ones(app, engine, state):
    parent = jobmonitor.enqueue(ct.spawns_and_ticks, user=OWNER, children=2, low_priority=True)
    # the parent runs on a worker of the low queue, its children (default queue) on another one
    with worker_thread(app, SimpleWorker, queues=("low",), timeout=10):
        assert ct.wait_arrival("spawned") == parent.id
        children = [
            r.id
            for r in fetch_all(
                engine,
                sa.select(job_table.c.id).where(job_table.c.parent_id == parent.id).order_by(job_table.c.created_at),
            )
        ]
        with worker_thread(app, SimpleWorker, queues=("default",), timeout=10):
            wait_progress(engine, children[0], 2)
            assert status_of(engine, children[1]) == "queued"
            # children spawned within runner._SPAWN_RACE before the stop are also swept by the
            # stopped parent itself ("by the system"), whichever comes first: let them be older
            # than that, so only this request stops them, and says who asked
            spawned = job_row(engine, children[-1]).created_at
            wait_for(
                lambda: utcnow() - spawned > runner._SPAWN_RACE,
                10,
                "the children to be older than the race",
                interval=POLL,
            )

            control.stop(state, parent.id, ADA)

            wait_status(engine, parent.id, "stopped", timeout=5, interval=POLL)
            wait_status(engine, children[0], "stopped", timeout=5, interval=POLL)
    first, second = job_row(engine, children[0]), job_row(engine, children[1])
    assert (first.status, first.stop_forced) == ("stopped", False)
    assert (second.status, second.started_at) == ("cancelled", None)
    assert "Stop requested by Ada Admin; work already done is kept." in log_messages(engine, children[0])
    assert "Cancelled by Ada Admin." in log_messages(engine, children[1])
