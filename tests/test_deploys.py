"""Deploys: a worker that gets SIGTERM (warm shutdown) pauses a resumable job at its next
checkpoint and puts it back at the front of its queue; it waits for a job that cannot pause
for at most ``JOBMONITOR_SHUTDOWN_GRACE`` seconds (5 s here), then gives it up."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_jobmonitor.records.models import step_table

from . import reliability_tasks as rt
from .support.extensions import jobmonitor
from .support.reliability import ReliabilityEnv, reliability_env
from .support.rows import job_row, log_messages, subtasks, task_checkpoint
from .support.waiting import wait_row, wait_status
from .tasks import noop

pytestmark = pytest.mark.slow
GRACE = 5.0
PAUSED_NOTE = "Paused for a worker shutdown"
_TOLERANCE = timedelta(milliseconds=50)
WORKER_CLASSES = pytest.mark.parametrize("worker_class", ["rq.Worker", "rq.SimpleWorker"], ids=["forking", "simple"])


@pytest.fixture
def rel(database_url: str, redis_url: str, tmp_path: Path):
    with reliability_env(database_url, redis_url, tmp_path) as env:
        yield env


def mid_job(rel: ReliabilityEnv, job_id: str, items: int) -> None:
    wait_row(
        rel.engine,
        job_id,
        lambda r: r.status == "running" and len(subtasks(rel.engine, job_id)) >= items,
        60,
        f"job {job_id} to be mid-job\n{rel.worker_logs()}",
    )


def items_by_attempt(rel: ReliabilityEnv, job_id: str) -> list[tuple[int, int]]:
    """(item number, attempt that recorded it) of every subtask, in the order written."""
    return [(int(s.name.split()[1]), int(s.message.split()[1])) for s in subtasks(rel.engine, job_id)]


@WORKER_CLASSES
def test_sigterm_pauses_a_resumable_job_which_a_new_worker_resumes_first(rel, worker_class):
    rel.start()
    old = rel.worker(worker_class)
    job = jobmonitor.enqueue(rt.resumable_items, count=40, item_seconds=0.1)
    mid_job(rel, job.id, items=5)
    later = [jobmonitor.enqueue(noop), jobmonitor.enqueue(noop)]  # queued behind the running job

    old.terminate()
    signalled = time.monotonic()

    paused = wait_row(
        rel.engine,
        job.id,
        lambda r: r.status == "queued" and any(PAUSED_NOTE in m for m in log_messages(rel.engine, r.id)),
        GRACE + 5,
        f"the job to pause and be queued again\n{rel.worker_logs()}",
    )
    took = time.monotonic() - signalled
    assert took < GRACE, f"pausing took {took:.1f} s"
    assert old.wait_exit(timeout=GRACE + 5) == 0, old.log_tail()
    assert rel.state.queue().job_ids == [job.id] + [j.id for j in later]  # at the front
    stopped_at = task_checkpoint(paused)["next"]
    assert 5 <= stopped_at < 40
    assert [n for n, _attempt in items_by_attempt(rel, job.id)] == list(range(stopped_at))
    with rel.engine.connect() as connection:
        step = connection.execute(sa.select(step_table).where(step_table.c.job_id == job.id)).one()
    assert (step.status, step.done) == ("stopped", stopped_at)

    new = rel.worker(worker_class)

    done = wait_status(rel.engine, job.id, ("completed", "failed"), 60)
    assert done.status == "completed", f"{done.error_message}\n{rel.worker_logs()}"
    assert done.worker_name == new.name
    written = items_by_attempt(rel, job.id)
    assert [n for n, _attempt in written] == list(range(40))  # none lost, none repeated
    first_attempt = written[0][1]
    assert {a for n, a in written if n < stopped_at} == {first_attempt}
    assert {a for n, a in written if n >= stopped_at} == {done.attempt} != {first_attempt}
    resumed_at = next(s.created_at for s in subtasks(rel.engine, job.id) if s.name == f"item {stopped_at}")
    for other in later:  # the resumed job went first, the jobs queued behind it after
        assert wait_status(rel.engine, other.id, "completed", 30).started_at > resumed_at - _TOLERANCE


@WORKER_CLASSES
def test_sigterm_waits_for_a_job_that_cannot_pause_but_ends_within_the_grace_period(rel, worker_class):
    rel.start()
    old = rel.worker(worker_class)
    job = jobmonitor.enqueue(rt.ticks_for, seconds=4.0)
    wait_status(rel.engine, job.id, "running", 60)
    time.sleep(1.0)

    old.terminate()

    assert old.wait_exit(timeout=GRACE + 5) == 0, old.log_tail()
    done = job_row(rel.engine, job.id)
    assert (done.status, done.attempt, done.error_message) == ("completed", 1, None)


@WORKER_CLASSES
def test_sigterm_gives_up_a_job_that_outlasts_the_grace_period(rel, worker_class):
    rel.start()
    old = rel.worker(worker_class)
    job = jobmonitor.enqueue(rt.ticks_for, seconds=120.0)
    wait_status(rel.engine, job.id, "running", 60)

    old.terminate()
    signalled = time.monotonic()

    failed = wait_status(rel.engine, job.id, ("failed", "completed"), GRACE + 10)
    took = time.monotonic() - signalled
    assert failed.status == "failed"
    assert failed.error_message == f"worker {old.name} shut down before the job could pause"
    assert GRACE - 0.5 <= took <= GRACE + 3, took
    assert old.wait_exit(timeout=10) is not None  # the shutdown finishes: the work was ended
    assert time.monotonic() - signalled < GRACE + 10
    with rel.engine.connect() as connection:
        steps = connection.execute(sa.select(step_table.c.status).where(step_table.c.job_id == job.id)).scalars()
        assert list(steps) == ["failed"]


def test_resumable_job_that_cannot_pause_in_time_is_queued_again_and_finished(rel):
    rel.start()
    old = rel.worker("rq.Worker")
    job = jobmonitor.enqueue(rt.resumable_blocks, seconds=120.0)  # its first run blocks, unpausable
    wait_row(rel.engine, job.id, lambda r: task_checkpoint(r).get("runs") == 1, 60, "the first run to block")

    old.terminate()

    wait_status(rel.engine, job.id, "queued", GRACE + 10)
    assert any("shut down before the job could pause" in m for m in log_messages(rel.engine, job.id))
    assert old.wait_exit(timeout=10) is not None
    rel.worker("rq.Worker")
    done = wait_status(rel.engine, job.id, ("completed", "failed"), 60)
    assert done.status == "completed", done.error_message
    assert task_checkpoint(done)["runs"] >= 2
