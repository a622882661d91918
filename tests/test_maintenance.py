"""Recovery of jobs whose worker died, jobs Redis forgot, database outages during a job, and the
retention clean-up. Worker deaths use real ``flask jobmonitor worker`` subprocesses.

A "lost machine" is simulated by SIGKILLing the worker and its work horse (which sits in a
process group of its own: docs/architecture.md, "RQ behaviour the design relies on"); killing
only the worker leaves an orphaned horse that keeps its job's heartbeat going, so that job must
*not* be recovered.
"""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rq.job import Job as RQJob
from sqlalchemy.orm import Session

from flask_jobmonitor.jobs.maintenance import delete_old_jobs, recover
from flask_jobmonitor.jobs.schedules import LAUNCHER_PATH, RETENTION_SCHEDULE
from flask_jobmonitor.jobs.submit import submit_to_rq
from flask_jobmonitor.records.models import Job, file_table, job_table, log_table, step_table, subtask_table
from flask_jobmonitor.timeutil import utcnow
from flask_jobmonitor.web.listing import ListFilters, fetch_page

from . import reliability_tasks as rt
from .support.extensions import jobmonitor
from .support.reliability import QUEUES, ReliabilityEnv, reliability_env
from .support.rows import children, insert_job, job_row, log_messages, subtasks, task_checkpoint
from .support.waiting import wait_for, wait_row, wait_status
from .support.workers import run_worker
from .tasks import import_rows, noop

pytestmark = pytest.mark.slow
ABANDONED_AFTER = 3.0
#: How long a test waits for recovery to act on a dead run: it acts ABANDONED_AFTER after the last
#: heartbeat, and the wait returns then; the rest is room for a busy machine (CI's two halves).
RECOVERY_WAIT = ABANDONED_AFTER + 30
RECOVERY_INTERVAL = 1.0  # ABANDONED_AFTER / 3


@pytest.fixture
def rel(database_url: str, redis_url: str, tmp_path: Path):
    with reliability_env(database_url, redis_url, tmp_path) as env:
        yield env


def running_with_progress(rel: ReliabilityEnv, job_id: str, items: int = 3, timeout: float = 60) -> sa.Row[Any]:
    """Wait until the job runs and has written ``items`` subtasks (it is mid-job)."""
    return wait_row(
        rel.engine,
        job_id,
        lambda r: r.status == "running" and len(subtasks(rel.engine, job_id)) >= items,
        timeout,
        f"job {job_id} to run with {items} subtasks written\n{rel.worker_logs()}",
    )


def item_numbers(engine: sa.Engine, job_id: str) -> list[int]:
    return [int(s.name.split()[1]) for s in subtasks(engine, job_id) if s.name.startswith("item ")]


def attempt_of(subtask: sa.Row[Any]) -> int:
    return int(subtask.message.split()[1])


# -- worker deaths ------------------------------------------------------------------------------


@pytest.mark.parametrize("victim", ["rq.Worker", "rq.SimpleWorker"], ids=["forking", "simple"])
def test_lost_machine_fails_a_non_resumable_job_through_another_workers_recovery(rel, victim):
    rel.start()
    doomed = rel.worker(victim)
    job = jobmonitor.enqueue(rt.plain_items, count=200, item_seconds=0.1)
    running_with_progress(rel, job.id)
    rel.worker("rq.SimpleWorker")  # a healthy worker, whose RecoveryLoop notices the dead one

    horse = doomed.kill_machine()
    killed_at = time.monotonic()

    assert (horse is not None) == (victim == "rq.Worker")
    failed = wait_status(rel.engine, job.id, "failed", 30)
    took = time.monotonic() - killed_at
    assert failed.error_message == f"worker {doomed.name} stopped responding"
    assert failed.ended_at is not None and failed.error_count >= 1
    # noticed from the job's heartbeat: not before it expired, and within one more recovery pass
    assert ABANDONED_AFTER - 1.0 <= took <= ABANDONED_AFTER + RECOVERY_INTERVAL + 5, f"{took}\n{rel.worker_logs()}"
    assert f"worker {doomed.name} stopped responding" in log_messages(rel.engine, job.id)
    with rel.engine.connect() as connection:
        steps = connection.execute(sa.select(step_table.c.status).where(step_table.c.job_id == job.id)).scalars()
        assert list(steps) == ["failed"]


def test_lost_machine_job_is_failed_by_the_recover_command(rel):
    rel.start()
    doomed = rel.worker("rq.Worker")
    job = jobmonitor.enqueue(rt.plain_items, count=200, item_seconds=0.1)
    running_with_progress(rel, job.id)

    doomed.kill_machine()

    # its heartbeat is still fresh: a recovery pass right away leaves it alone
    assert not recover(rel.state)
    assert job_row(rel.engine, job.id).status == "running"
    time.sleep(ABANDONED_AFTER + 0.5)
    result = rel.cli("jobmonitor", "recover")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("recovery: 0 requeued, "), result.stdout
    assert re.search(r"\b1 failed, 0 stopped, 0 resubmitted\b", result.stdout), result.stdout
    failed = job_row(rel.engine, job.id)
    assert (failed.status, failed.error_message) == ("failed", f"worker {doomed.name} stopped responding")


def test_recover_requeues_a_resumable_job_of_a_lost_machine_at_the_front(rel):
    rel.start()
    doomed = rel.worker("rq.Worker")
    job = jobmonitor.enqueue(rt.resumable_items, count=25, item_seconds=0.1)
    running_with_progress(rel, job.id, items=4)
    doomed.kill_machine()
    waiting = jobmonitor.enqueue(noop)  # queued while the job was "running" elsewhere

    report = wait_for(lambda: recover(rel.state), RECOVERY_WAIT, "recovery to notice the dead run")

    assert (report.requeued, report.failed) == ([job.id], [])
    requeued = job_row(rel.engine, job.id)
    assert requeued.status == "queued"
    assert rel.state.queue().job_ids == [job.id, waiting.id]  # at the front, ahead of later work
    done_before = task_checkpoint(requeued)["next"]
    assert item_numbers(rel.engine, job.id) == list(range(done_before))  # subtasks match the checkpoint

    run_worker(rel.app)

    finished = job_row(rel.engine, job.id)
    assert finished.status == "completed", finished.error_message
    assert item_numbers(rel.engine, job.id) == list(range(25))  # none lost, none repeated
    attempts = [attempt_of(s) for s in subtasks(rel.engine, job.id)]
    assert finished.attempt != 1
    assert attempts == [1] * done_before + [finished.attempt] * (25 - done_before)
    assert job_row(rel.engine, waiting.id).started_at >= finished.started_at


def test_resumable_job_of_a_lost_machine_is_finished_by_another_worker_from_its_checkpoint(rel):
    rel.start()
    doomed = rel.worker("rq.Worker")
    job = jobmonitor.enqueue(rt.resumable_items, count=40, item_seconds=0.1)
    running_with_progress(rel, job.id, items=5)
    survivor = rel.worker("rq.Worker")  # recovers the job, then runs it

    doomed.kill_machine()

    finished = wait_status(rel.engine, job.id, ("completed", "failed"), 120)
    assert finished.status == "completed", f"{finished.error_message}\n{rel.worker_logs()}"
    assert finished.worker_name == survivor.name
    assert item_numbers(rel.engine, job.id) == list(range(40))
    first_run = [s for s in subtasks(rel.engine, job.id) if attempt_of(s) == 1]
    assert 5 <= len(first_run) < 40  # the second run started where the first one's checkpoint was
    assert any("queued again to continue from its checkpoint" in m for m in log_messages(rel.engine, job.id))
    with rel.engine.connect() as connection:
        step = connection.execute(sa.select(step_table).where(step_table.c.job_id == job.id)).one()
    assert (step.status, step.done, step.total) == ("completed", 40, 40)


def test_resumable_job_fails_once_its_recoveries_are_used_up(rel):
    """JOBMONITOR_MAX_RECOVERIES is how often a resumable job whose worker died is queued again:
    with 2, three runs die before the job is failed."""
    rel.start(MAX_RECOVERIES=2)
    job = jobmonitor.enqueue(rt.resumable_items, count=400, item_seconds=0.1)
    runs = 0
    while job_row(rel.engine, job.id).status != "failed" and runs < 5:
        worker = rel.worker("rq.Worker")
        wait_row(rel.engine, job.id, lambda r: r.status == "running", 60, "the next run to start")
        runs += 1
        before = len(subtasks(rel.engine, job.id))
        running_with_progress(rel, job.id, items=before + 2)
        worker.kill_machine()
        wait_for(lambda: recover(rel.state), RECOVERY_WAIT, "recovery of the dead run")

    failed = job_row(rel.engine, job.id)
    assert failed.status == "failed"
    assert runs == 3, f"the job was failed after {runs} runs with JOBMONITOR_MAX_RECOVERIES=2"
    assert failed.error_message.endswith("stopped responding (after 2 recoveries)")
    assert item_numbers(rel.engine, job.id) == list(range(len(item_numbers(rel.engine, job.id))))


def test_orphaned_work_horse_keeps_its_job_alive_and_completes_it(rel):
    rel.start()
    doomed = rel.worker("rq.Worker")
    # ~30 s: still running after the second worker's start (seconds on a busy machine) and the
    # wait below (at 45 items, ~9 s, a loaded CI run saw it completed before the check)
    job = jobmonitor.enqueue(rt.plain_items, count=150, item_seconds=0.2)
    running_with_progress(rel, job.id, items=3)
    rel.worker("rq.SimpleWorker")  # runs recovery every second

    horse = doomed.kill_worker_only()
    assert horse is not None

    # well past ABANDONED_AFTER: the horse still beats, so nobody recovers the job
    time.sleep(ABANDONED_AFTER + 2 * RECOVERY_INTERVAL + 0.5)
    alive = job_row(rel.engine, job.id)
    assert (alive.status, alive.attempt) == ("running", 1)
    assert alive.heartbeat_at > utcnow() - timedelta(seconds=ABANDONED_AFTER)
    finished = wait_status(rel.engine, job.id, ("completed", "failed", "queued"), 120)
    assert (finished.status, finished.attempt) == ("completed", 1), finished.error_message
    assert item_numbers(rel.engine, job.id) == list(range(150))
    assert not any("stopped responding" in m for m in log_messages(rel.engine, job.id))


def test_an_idle_forking_worker_records_a_completion_before_it_waits_for_more_work(rel):
    rel.start()
    worker = rel.worker("rq.Worker")
    job = jobmonitor.enqueue(noop)

    # well within ABANDONED_AFTER: recorded by the worker itself, not later by recovery
    done = wait_status(rel.engine, job.id, ("completed", "failed"), ABANDONED_AFTER - 1)

    assert done.status == "completed", done.error_message
    assert worker.alive  # it did not need to exit to record it
    assert not any("stopped responding" in m for m in log_messages(rel.engine, job.id))


# -- Redis and database faults ------------------------------------------------------------------


def forget_in_redis(rel: ReliabilityEnv, job_id: str) -> None:
    """What a Redis restart without persistence does to a queued job: hash and entry gone."""
    rel.redis.delete(RQJob.key_for(job_id))
    for name in QUEUES.values():
        rel.redis.lrem(f"rq:queue:{name}", 0, job_id)


def test_queued_job_that_redis_forgot_is_resubmitted_by_recover_and_completes(rel):
    rel.start()
    lost = jobmonitor.enqueue(import_rows, files={"rows.csv": b"a\nb\n"})
    kept = jobmonitor.enqueue(noop)
    forget_in_redis(rel, lost.id)
    assert rel.state.queue().job_ids == [kept.id]

    assert not recover(rel.state)  # queued a moment ago: not yet suspicious
    time.sleep(ABANDONED_AFTER + 0.2)
    report = recover(rel.state)

    assert report.resubmitted == [lost.id]  # the job RQ still holds is not queued twice
    assert sorted(rel.state.queue().job_ids) == sorted([lost.id, kept.id])
    assert job_row(rel.engine, lost.id).status == "queued"
    run_worker(rel.app)
    assert job_row(rel.engine, lost.id).status == "completed", job_row(rel.engine, lost.id).error_message
    assert job_row(rel.engine, kept.id).status == "completed"
    assert rel.state.queue().count == 0


def test_paused_job_that_redis_forgot_is_queued_again_by_recover(rel):
    rel.start()
    past = utcnow() - timedelta(seconds=60)
    job_id = insert_job(
        rel.engine,
        task=rt.resumable_items.name,
        params={"args": [], "kwargs": {"count": 3, "item_seconds": 0.0}},
        status="paused",
        queue_name=QUEUES["default"],
        enqueued_at=past,
        status_changed_at=past,
        checkpoint={"next": 1},
        attempt=1,
    )

    report = recover(rel.state)

    assert report.resubmitted == [job_id]
    assert job_row(rel.engine, job_id).status == "queued"
    run_worker(rel.app)
    done = job_row(rel.engine, job_id)
    assert done.status == "completed", done.error_message
    assert item_numbers(rel.engine, job_id) == [1, 2]  # it continued from its checkpoint


@pytest.mark.parametrize("victim", ["rq.Worker", "rq.SimpleWorker"], ids=["forking", "simple"])
def test_job_a_dead_worker_dequeued_but_never_claimed_is_run_by_another_worker(rel, victim):
    """The worker took the job off the RQ queue and died before its claim reached the database
    (SQL: queued; RQ: the job hash still says queued, but no queue holds it). Nothing will run
    it; recovery must give it to another worker."""
    rel.start()
    doomed = rel.worker(victim)
    job_id = insert_job(rel.engine, queue_name=QUEUES["default"], enqueued_at=utcnow())
    with Session(rel.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
    blocker = rel.engine.connect()
    transaction = blocker.begin()
    blocker.execute(sa.update(job_table).where(job_table.c.id == job_id).values(name="held by the test"))
    try:
        submit_to_rq(rel.state, job)  # Redis only: the worker dequeues it, its claim waits for our lock
        wait_for(lambda: rel.state.queue().count == 0, 30, "the worker to dequeue the job")
        time.sleep(0.5)
        doomed.kill_machine()
    finally:
        transaction.rollback()
        blocker.close()
    assert job_row(rel.engine, job_id).status == "queued"
    # RQ still calls it queued (or started), but no queue holds it and no worker runs it
    assert rel.redis.hget(RQJob.key_for(job_id), "status") in (b"queued", b"started")
    assert job_id not in rel.state.queue().job_ids

    rel.worker("rq.SimpleWorker")

    done = wait_status(rel.engine, job_id, ("completed", "failed"), ABANDONED_AFTER + RECOVERY_INTERVAL + 15)
    assert done.status == "completed", done.error_message


def test_a_run_resubmitted_to_rq_while_it_runs_still_completes(rel):
    """Recovery can hand a queued job to RQ again just as a worker starts it (its SQL snapshot
    said queued; the soak saw it after a Redis restart). The RQ hash then says queued again
    while the first run works. That run's outcome must still be recorded from what the run
    did, not from the RQ hash: the job completes (and the second RQ entry runs nothing)."""
    rel.start()
    rel.worker("rq.Worker")
    job_id = jobmonitor.enqueue(rt.ticks_for, seconds=2.0).id
    wait_status(rel.engine, job_id, "running", 60)
    with Session(rel.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
    submit_to_rq(rel.state, job)  # what recovery's resubmission does

    done = wait_status(rel.engine, job_id, ("completed", "failed"), 30)
    assert done.status == "completed", done.error_message
    assert done.attempt == 1


def test_a_dead_run_is_not_recorded_completed_because_a_duplicate_rq_entry_finished(rel):
    """A second RQ entry of a job (recovery resubmitted it twice: seen in the soak after a Redis
    restart) is dequeued while the job runs elsewhere; its claim is refused, and RQ records that
    no-op execution "finished" on the job's one RQ hash. When the real run then dies, recovery must
    not take that "finished" for the dead run's result: the job continues from its checkpoint."""
    rel.start()
    doomed = rel.worker("rq.Worker")
    job_id = jobmonitor.enqueue(rt.resumable_items, count=30, item_seconds=0.1).id
    running_with_progress(rel, job_id, items=4)
    with Session(rel.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
    submit_to_rq(rel.state, job)  # the duplicate entry
    run_worker(rel.app)  # its claim is refused: "not run", and RQ says finished
    assert rel.redis.hget(RQJob.key_for(job_id), "status") == b"finished"
    assert job_row(rel.engine, job_id).status == "running"

    doomed.kill_machine()
    wait_for(lambda: recover(rel.state), RECOVERY_WAIT, "recovery of the dead run")

    after = job_row(rel.engine, job_id)
    done_items = item_numbers(rel.engine, job_id)
    assert after.status != "completed" or done_items == list(range(30)), (
        f"recorded completed with {len(done_items)} of 30 items done"
    )
    rel.worker("rq.SimpleWorker")
    finished = wait_status(rel.engine, job_id, ("completed", "failed"), 60)
    assert finished.status == "completed", finished.error_message
    assert item_numbers(rel.engine, job_id) == list(range(30))


def test_a_worker_does_not_settle_its_dead_horse_completed_because_a_duplicate_entry_finished(rel):
    """The same duplicate as above, but only the work horse dies and its worker lives: the worker
    settles the run from what its own horse reported, not from RQ's shared job hash."""
    rel.start()
    survivor = rel.worker("rq.Worker")
    job_id = jobmonitor.enqueue(rt.resumable_items, count=30, item_seconds=0.1).id
    running_with_progress(rel, job_id, items=4)
    with Session(rel.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
    submit_to_rq(rel.state, job)
    run_worker(rel.app)
    assert rel.redis.hget(RQJob.key_for(job_id), "status") == b"finished"

    horse = survivor.horse_pid()
    assert horse is not None
    os.killpg(horse, signal.SIGKILL)

    finished = wait_status(rel.engine, job_id, ("completed", "failed"), 60)
    assert finished.status == "completed", finished.error_message
    assert item_numbers(rel.engine, job_id) == list(range(30))
    assert any("killed by signal 9" in m for m in log_messages(rel.engine, job_id))


@pytest.fixture
def database_outage(rel):
    """Make every statement of the app's engine fail while ``reliability_tasks.DB_OUTAGE`` is set."""
    failures: list[str] = []

    def refuse(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if rt.DB_OUTAGE.is_set():
            failures.append(statement)
            raise sa.exc.OperationalError(statement, parameters, ConnectionRefusedError("database unreachable"))

    def install() -> list[str]:
        sa.event.listen(rel.engine, "before_cursor_execute", refuse)
        return failures

    yield install
    rt.DB_OUTAGE.clear()
    if sa.event.contains(rel.engine, "before_cursor_execute", refuse):
        sa.event.remove(rel.engine, "before_cursor_execute", refuse)


@pytest.mark.parametrize("task", [rt.survives_db_outage, rt.resumable_survives_db_outage], ids=["plain", "resumable"])
def test_database_outage_in_the_middle_of_a_job_loses_nothing(rel, database_outage, task):
    rel.start()
    job = jobmonitor.enqueue(task, count=40, outage_at=5, outage_seconds=1.0, item_seconds=0.05)
    failures = database_outage()

    run_worker(rel.app)

    assert failures, "the outage did not happen while the job wrote"
    assert not rt.DB_OUTAGE.is_set()
    done = job_row(rel.engine, job.id)
    assert done.status == "completed", done.error_message
    assert [s.name for s in subtasks(rel.engine, job.id)] == [f"item {i}" for i in range(40)]
    assert (done.progress_done, done.progress_total) == (40, 40)
    assert (done.error_count, done.warning_count) == (0, 4)
    assert [m for m in log_messages(rel.engine, job.id) if m.startswith("item ")] == [
        f"item {i} done" for i in range(40)
    ]
    with rel.engine.connect() as connection:
        step = connection.execute(sa.select(step_table).where(step_table.c.job_id == job.id)).one()
    assert (step.status, step.done, step.counters) == ("completed", 40, {"done": 40})


@pytest.mark.parametrize(
    "task",
    [rt.db_outage_at_step_end, rt.db_outage_before_a_new_step, rt.db_outage_at_the_end],
    ids=["step-end", "new-step", "result"],
)
def test_database_outage_when_a_step_or_the_job_ends_is_waited_out(rel, database_outage, task):
    rel.start()
    job = jobmonitor.enqueue(task, outage_seconds=1.0)
    failures = database_outage()

    run_worker(rel.app)

    assert failures, "the outage did not happen while the job wrote"
    done = job_row(rel.engine, job.id)
    assert done.status == "completed", done.error_message
    expected = [f"first {i}" for i in range(3)] + [f"second {i}" for i in range(3)]
    if task is rt.db_outage_at_the_end:
        expected = [f"item {i}" for i in range(3)]
    assert [s.name for s in subtasks(rel.engine, job.id)] == expected
    with rel.engine.connect() as connection:
        statuses = connection.execute(
            sa.select(step_table.c.status).where(step_table.c.job_id == job.id).order_by(step_table.c.position)
        ).scalars()
        assert set(statuses) == {"completed"}


# -- retention ----------------------------------------------------------------------------------


def age(engine: sa.Engine, job_ids: list[str], days: float) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.update(job_table).where(job_table.c.id.in_(job_ids)).values(created_at=utcnow() - timedelta(days=days))
        )


def stored_files(rel: ReliabilityEnv, job_id: str) -> list[Path]:
    with rel.engine.connect() as connection:
        keys = connection.execute(sa.select(file_table.c.storage_key).where(file_table.c.job_id == job_id)).scalars()
        return [Path(rel.storage_path, *key.split("/")) for key in keys]


def rows_of(engine: sa.Engine, job_ids: list[str]) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.job_id.in_(job_ids))
            ).scalar_one()
            for table in (step_table, subtask_table, log_table, file_table)
        }


def existing(engine: sa.Engine, job_ids: list[str]) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(job_table.c.id).where(job_table.c.id.in_(job_ids))).scalars())


def test_delete_old_jobs_removes_old_finished_jobs_with_records_and_files(rel):
    rel.start(RETENTION_DAYS=30)
    old_ok = jobmonitor.enqueue(import_rows, bad_every=2, files={"rows.csv": b"a\nb\nc\n"})
    old_failed = jobmonitor.enqueue(rt.fails_soon)
    old_parent = jobmonitor.enqueue(rt.spawns_family, count=3, child_seconds=0.01)
    recent = jobmonitor.enqueue(import_rows, files={"rows.csv": b"x\n"})
    run_worker(rel.app)
    family = [c.id for c in children(rel.engine, old_parent.id)]
    assert len(family) == 3
    old_queued = insert_job(rel.engine, queue_name=QUEUES["default"])
    old_running = insert_job(rel.engine, status="running", attempt=1)
    old = [old_ok.id, old_failed.id, old_parent.id, *family, old_queued, old_running]
    age(rel.engine, old, days=31)
    old_files = stored_files(rel, old_ok.id)
    assert len(old_files) == 3 and all(f.exists() for f in old_files)  # input, output, error report
    recent_files = stored_files(rel, recent.id)

    deleted = delete_old_jobs(rel.state, 30)

    assert deleted == 3  # the old finished top-level jobs (each with its children)
    gone = [old_ok.id, old_failed.id, old_parent.id, *family]
    assert existing(rel.engine, gone) == set()
    assert rows_of(rel.engine, gone) == {
        "jobmonitor_step": 0,
        "jobmonitor_subtask": 0,
        "jobmonitor_log": 0,
        "jobmonitor_file": 0,
    }
    assert not any(f.exists() for f in old_files)
    assert existing(rel.engine, [recent.id, old_queued, old_running]) == {recent.id, old_queued, old_running}
    assert all(f.exists() for f in recent_files)
    assert delete_old_jobs(rel.state, 30) == 0


def test_retention_runs_as_a_system_job_seen_only_with_show_system(rel):
    rel.start(RETENTION_DAYS=30)
    old = jobmonitor.enqueue(noop, user=("7", "Ann"))
    recent = jobmonitor.enqueue(noop, user=("7", "Ann"))
    run_worker(rel.app)
    age(rel.engine, [old.id], days=45)

    # what rq-scheduler queues at the retention schedule's due time
    assert jobmonitor.schedules[RETENTION_SCHEDULE].is_system
    rel.state.queue("high").enqueue(LAUNCHER_PATH, RETENTION_SCHEDULE)
    run_worker(rel.app)

    with rel.engine.connect() as connection:
        system = connection.execute(sa.select(job_table).where(job_table.c.is_system.is_(True))).one()
        steps = connection.execute(
            sa.select(step_table).where(step_table.c.job_id == system.id).order_by(step_table.c.position)
        ).all()
        hidden = fetch_page(connection, ListFilters(), visible_to=None, allow_system=True)
        shown = fetch_page(connection, ListFilters(show_system=True), visible_to=None, allow_system=True)
        refused = fetch_page(connection, ListFilters(show_system=True), visible_to=None, allow_system=False)
    assert (system.name, system.task, system.status) == ("Delete old jobs", RETENTION_SCHEDULE, "completed")
    assert [(step.name, step.status) for step in steps] == [
        ("Delete old jobs", "completed"),
        ("Delete old audit entries", "completed"),
        ("Prepare statistics", "completed"),
    ]
    assert steps[0].counters == {"deleted": 1}
    assert steps[1].counters == {"deleted": 0}
    # every closed day of the last year is kept: not today (still open), nor yesterday in the
    # first minutes after midnight (a day counts as closed 10 minutes after its end)
    assert steps[2].counters["days kept"] in (363, 364)
    assert existing(rel.engine, [old.id, recent.id]) == {recent.id}
    assert [j.id for j in hidden.jobs] == [recent.id]
    assert {j.id for j in shown.jobs} == {recent.id, system.id}
    assert [j.id for j in refused.jobs] == [recent.id]


def test_cleanup_command_deletes_jobs_older_than_the_given_days(rel):
    app = rel.start(RETENTION_DAYS=90)
    older = jobmonitor.enqueue(noop)
    younger = jobmonitor.enqueue(noop)
    run_worker(app)
    age(rel.engine, [older.id], days=20)
    age(rel.engine, [younger.id], days=5)
    runner = app.test_cli_runner()

    assert runner.invoke(args=["jobmonitor", "cleanup", "--days", "30"]).output.splitlines() == [
        "deleted 0 jobs older than 30 days",
        "deleted 0 audit entries older than 400 days",
    ]
    result = runner.invoke(args=["jobmonitor", "cleanup", "--days", "10"])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "deleted 1 jobs older than 10 days"
    assert existing(rel.engine, [older.id, younger.id]) == {younger.id}
    assert runner.invoke(args=["jobmonitor", "cleanup", "--days", "0"]).exit_code != 0


def test_recover_leaves_a_healthy_long_running_job_alone(rel):
    rel.start()
    rel.worker("rq.Worker")
    job = jobmonitor.enqueue(rt.plain_items, count=30, item_seconds=0.2)
    running_with_progress(rel, job.id)
    time.sleep(ABANDONED_AFTER + 0.5)

    assert not recover(rel.state)
    assert (job_row(rel.engine, job.id).status, job_row(rel.engine, job.id).attempt) == ("running", 1)
    assert rel.state.queue().count == 0  # not resubmitted either
    assert wait_status(rel.engine, job.id, ("completed", "failed"), 30).status == "completed"


def test_recovery_ends_a_dead_stopping_job_cancelled_when_a_person_cancelled_it(rel):
    from flask_jobmonitor.jobs.signals import send_signal
    from flask_jobmonitor.records.models import notification_table

    rel.start()
    long_ago = utcnow() - timedelta(minutes=5)
    common = {"status": "stopping", "attempt": 1, "run_by_id": "7", "heartbeat_at": long_ago, "worker_name": "w1"}
    cancelled = insert_job(rel.engine, task=rt.plain_items.name, **common)
    stopped = insert_job(rel.engine, task=rt.plain_items.name, **common)
    send_signal(rel.state, cancelled, "cancel")
    send_signal(rel.state, stopped, "stop")

    report = recover(rel.state)

    assert sorted(report.stopped) == sorted([cancelled, stopped])
    assert (job_row(rel.engine, cancelled).status, job_row(rel.engine, stopped).status) == ("cancelled", "stopped")
    assert "it was being cancelled, so it is recorded cancelled" in log_messages(rel.engine, cancelled)[-1]
    with rel.engine.connect() as connection:
        told = connection.execute(sa.select(notification_table.c.job_id, notification_table.c.event)).all()
    assert [tuple(n) for n in told] == [(stopped, "stopped")]
