"""Children of a root job: released into the queue at most ``JOBMONITOR_CHILDREN_IN_FLIGHT`` at a
time, counted by ``ctx.wait_for_children``, stopped and cancelled with their parent; and a child
that cannot be queued because Redis is down."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from flask_jobmonitor.jobs import control
from flask_jobmonitor.jobs.enqueue import JobRequest, enqueue_job
from flask_jobmonitor.records.models import Job, job_table
from flask_jobmonitor.timeutil import utcnow

from . import reliability_tasks as rt
from .support.databases import recorded_statements
from .support.extensions import jobmonitor
from .support.reliability import QUEUES, TERMINAL, ReliabilityEnv, reliability_env
from .support.rows import children, insert_job, job_row, log_messages, task_checkpoint
from .support.waiting import wait_for, wait_status
from .support.workers import run_worker


@pytest.fixture
def rel(database_url: str, redis_url: str, tmp_path: Path):
    with reliability_env(database_url, redis_url, tmp_path) as env:
        yield env


def released_in_sql(engine: sa.Engine, root_id: str) -> int:
    """Children of ``root_id`` released and not finished: waiting in RQ or holding a worker
    (one statement, so one consistent snapshot)."""
    c = job_table.c
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(
                    c.root_id == root_id,
                    sa.or_(
                        c.status.in_(["running", "stopping", "paused"]),
                        sa.and_(c.status == "queued", c.enqueued_at.is_not(None)),
                    ),
                )
            ).scalar_one()
        )


def child_ids(engine: sa.Engine, root_id: str) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(job_table.c.id).where(job_table.c.root_id == root_id)).scalars())


@pytest.mark.slow
def test_no_more_than_children_in_flight_are_released_while_two_workers_drain(rel):
    rel.start(CHILDREN_IN_FLIGHT=4)
    rel.worker("rq.Worker")
    rel.worker("rq.SimpleWorker")
    root = jobmonitor.enqueue(rt.spawns_family, count=30, child_seconds=0.3)
    ids: set[str] = set()
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 120

    while time.monotonic() < deadline:
        in_sql = released_in_sql(rel.engine, root.id)
        ids = ids or child_ids(rel.engine, root.id)
        in_rq = len(ids.intersection(rel.state.queue().job_ids))
        samples.append((in_sql, in_rq))
        with rel.engine.connect() as connection:
            statuses = connection.execute(sa.select(job_table.c.status).where(job_table.c.root_id == root.id)).scalars()
            done = [s for s in statuses if s in TERMINAL]
        if len(done) == 30 and job_row(rel.engine, root.id).status in TERMINAL:
            break
        time.sleep(0.02)

    assert job_row(rel.engine, root.id).status == "completed"
    assert sorted(c.status for c in children(rel.engine, root.id)) == ["completed"] * 30, rel.worker_logs()
    assert len(samples) > 50
    assert max(s[0] for s in samples) == 4, samples  # the limit was reached, never exceeded
    assert max(s[1] for s in samples) <= 4, samples
    # released oldest first: children started in the order they were spawned
    by_start = sorted(children(rel.engine, root.id), key=lambda c: (c.enqueued_at, c.name))
    assert [c.name for c in by_start] == [f"child {i:03d}" for i in range(30)]


@pytest.mark.slow
def test_wait_for_children_returns_how_many_ended_in_each_status(rel):
    rel.start(CHILDREN_IN_FLIGHT=2)
    rel.worker("rq.SimpleWorker")  # the parent waits on one worker, the children run on the other
    rel.worker("rq.SimpleWorker")
    parent = jobmonitor.enqueue(rt.spawns_family, count=6, child_seconds=0.1, failing=[1, 4], wait=True)

    done = wait_status(rel.engine, parent.id, ("completed", "failed"), 90)

    assert done.status == "completed", f"{done.error_message}\n{rel.worker_logs()}"
    assert task_checkpoint(done)["counts"] == {"completed": 4, "failed": 2}
    assert {c.name: c.status for c in children(rel.engine, parent.id) if c.status == "failed"} == {
        "child 001": "failed",
        "child 004": "failed",
    }


@pytest.mark.slow
def test_stopping_the_parent_stops_running_children_and_cancels_the_others(rel):
    rel.start(CHILDREN_IN_FLIGHT=4)
    rel.worker("rq.Worker")
    rel.worker("rq.Worker")
    parent = jobmonitor.enqueue(rt.spawns_family, count=30, child_seconds=30.0, wait=True)
    wait_for(
        lambda: len(rows := children(rel.engine, parent.id)) == 30 and any(c.status == "running" for c in rows),
        60,
        f"all children spawned and one running\n{rel.worker_logs()}",
    )
    before = {c.id: c for c in children(rel.engine, parent.id)}
    started_before = {i for i, c in before.items() if c.started_at is not None}
    stop_requested = utcnow()

    control.stop(rel.state, parent.id, user=("1", "Ops"))

    assert wait_status(rel.engine, parent.id, TERMINAL, 30).status == "stopped"
    ended = all_children_ended(rel, parent.id)
    statuses = {c.id: c.status for c in ended}
    assert set(statuses.values()) <= {"stopped", "cancelled"}, statuses
    # every child that was running is stopped (one may have started between the snapshot and
    # the stop request: it is stopped too, not left running)
    assert started_before <= {i for i, s in statuses.items() if s == "stopped"}
    started_late = sorted(c.name for c in ended if c.started_at is not None and c.started_at > stop_requested)
    assert started_late == [], f"children started after the parent was asked to stop: {started_late}"
    assert rel.state.queue().count == 0


@pytest.mark.slow
def test_children_spawned_while_the_parent_is_being_stopped_do_not_run(rel):
    rel.start(CHILDREN_IN_FLIGHT=4)
    rel.worker("rq.Worker")
    rel.worker("rq.Worker")
    parent = jobmonitor.enqueue(rt.spawns_family, count=400, child_seconds=30.0, wait=True)
    wait_for(
        lambda: any(c.status == "running" for c in children(rel.engine, parent.id)),
        60,
        f"a child to run while the parent still spawns\n{rel.worker_logs()}",
    )
    stop_requested = utcnow()

    control.stop(rel.state, parent.id, user=("1", "Ops"))

    assert wait_status(rel.engine, parent.id, TERMINAL, 30).status == "stopped"
    ended = all_children_ended(rel, parent.id)
    assert len(ended) < 400  # the parent stopped spawning
    late = sorted(c.name for c in ended if c.created_at > stop_requested and c.started_at is not None)
    assert late == [], f"children spawned after the stop request ran: {late}"
    assert {c.status for c in ended} <= {"stopped", "cancelled"}


@pytest.mark.slow
def test_a_stopped_job_records_its_stop_at_the_checkpoint_at_once(rel):
    rel.start()
    rel.worker("rq.SimpleWorker")
    job = jobmonitor.enqueue(rt.ticks_for, seconds=60.0)
    wait_status(rel.engine, job.id, "running", 60)
    time.sleep(0.5)

    control.stop(rel.state, job.id, user=("1", "Ops"))
    asked = time.monotonic()

    stopped = wait_status(rel.engine, job.id, TERMINAL, 30)
    took = time.monotonic() - asked
    assert stopped.status == "stopped"
    assert took < 2.0, f"the stop was recorded after {took:.1f} s{rel.worker_logs()}"
    assert "Stopped at a checkpoint; work already done is kept." in log_messages(rel.engine, job.id)


def all_children_ended(rel: ReliabilityEnv, parent_id: str, timeout: float = 30) -> list[sa.Row]:
    """Wait until no child of ``parent_id`` is active any more (then return them); a child left
    queued or running after its parent was stopped fails the test with their statuses."""

    def check() -> list[sa.Row] | None:
        rows = children(rel.engine, parent_id)
        return rows if all(c.status in TERMINAL for c in rows) else None

    try:
        return wait_for(check, timeout, "every child to end")
    except AssertionError:
        left = Counter(
            (c.status, "released" if c.enqueued_at else "held", "started" if c.started_at else "not started")
            for c in children(rel.engine, parent_id)
            if c.status not in TERMINAL
        )
        raise AssertionError(f"children still active {timeout} s after their parent stopped: {dict(left)}") from None


def spawn_children(rel: ReliabilityEnv, count: int) -> tuple[str, list[str]]:
    """Children of a running root job, spawned the way ``ctx.spawn`` does (no worker running)."""
    root_id = insert_job(rel.engine, status="running", attempt=1, queue_name=QUEUES["default"])
    parent = Job(id=root_id, root_id=None, run_by_id="7", run_by_name="Ann", is_system=False, run_at_url=None)
    ids = [
        enqueue_job(rel.state, JobRequest(task=rel.state.tasks.get(rt.child_work), name=f"child {i}", parent=parent)).id
        for i in range(count)
    ]
    return root_id, ids


def released(engine: sa.Engine, ids: list[str]) -> list[bool]:
    with engine.connect() as connection:
        rows = dict(
            connection.execute(sa.select(job_table.c.id, job_table.c.enqueued_at).where(job_table.c.id.in_(ids))).all()
        )
    return [rows[i] is not None for i in ids]


def test_cancelling_held_and_released_children_frees_slots_for_the_next_held_one(rel):
    rel.start(CHILDREN_IN_FLIGHT=2)
    root_id, (c0, c1, c2, c3, c4) = spawn_children(rel, 5)
    assert released(rel.engine, [c0, c1, c2, c3, c4]) == [True, True, False, False, False]
    assert rel.state.queue().job_ids == [c0, c1]

    control.cancel(rel.state, c2)  # a held child: no slot is freed, nothing more is released
    assert released(rel.engine, [c3, c4]) == [False, False]
    assert rel.state.queue().job_ids == [c0, c1]
    control.cancel(rel.state, c0)  # a released one: its slot goes to the next held child, c3

    assert released(rel.engine, [c3, c4]) == [True, False]
    assert rel.state.queue().job_ids == [c1, c3]
    run_worker(rel.app, SimpleWorker)
    final = {c.id: (c.status, c.started_at is not None) for c in children(rel.engine, root_id)}
    assert final == {
        c0: ("cancelled", False),
        c1: ("completed", True),
        c2: ("cancelled", False),
        c3: ("completed", True),
        c4: ("completed", True),
    }


def test_a_child_spawned_while_older_ones_are_held_is_queued_behind_them(rel):
    """The flaky order of the two-worker test: a child that ends frees its slot (its status is
    committed) a moment before its worker releases the oldest held child; a child spawned in
    that moment took the slot, ahead of every held one (child 027 started fifth)."""
    rel.start(CHILDREN_IN_FLIGHT=2)
    root_id, (c0, c1, c2, c3) = spawn_children(rel, 4)
    assert released(rel.engine, [c0, c1, c2, c3]) == [True, True, False, False]
    set_status(rel.engine, c0, "completed")  # c0 ended; its worker has not released c2 yet
    rel.state.queue().remove(c0)

    parent = Job(id=root_id, root_id=None, run_by_id="7", run_by_name="Ann", is_system=False, run_at_url=None)
    c4 = enqueue_job(rel.state, JobRequest(task=rel.state.tasks.get(rt.child_work), name="child 4", parent=parent)).id

    assert released(rel.engine, [c2, c3, c4]) == [True, False, False]  # the oldest held one got the slot
    assert rel.state.queue().job_ids == [c1, c2]


def test_stopping_a_parent_cancels_its_waiting_children_down_the_tree_in_a_few_statements(rel):
    rel.start(CHILDREN_IN_FLIGHT=3)
    root_id, ids = spawn_children(rel, 60)
    released_child, paused, running, completed, *held = ids
    assert released(rel.engine, ids[:4]) == [True, True, True, False]
    set_status(rel.engine, paused, "paused")
    set_status(rel.engine, running, "running", attempt=1, started_at=utcnow())
    rel.state.queue().remove(running)  # as a worker that took it would have
    set_status(rel.engine, completed, "completed")
    # the paused child had spawned children of its own before a deploy paused it
    paused_parent = Job(id=paused, root_id=root_id, run_by_id="7", run_by_name="Ann", is_system=False, run_at_url=None)
    grandchildren = [
        enqueue_job(
            rel.state, JobRequest(task=rel.state.tasks.get(rt.child_work), name=f"g{i}", parent=paused_parent)
        ).id
        for i in range(20)
    ]
    with recorded_statements(rel.engine) as statements:
        control.stop(rel.state, root_id, user=("1", "Ops"))

    # one UPDATE and one INSERT per level of the tree, not one transaction per child
    assert len(statements) < 40, "\n".join(statements)
    status = {c.id: c.status for c in [*children(rel.engine, root_id), *children(rel.engine, paused)]}
    cancelled = [released_child, paused, *held, *grandchildren]
    assert {i: status[i] for i in cancelled} == dict.fromkeys(cancelled, "cancelled")
    assert (status[running], status[completed]) == ("stopping", "completed")
    assert job_row(rel.engine, root_id).status == "stopping"
    for job_id in cancelled:
        assert log_messages(rel.engine, job_id)[-1] == "Cancelled by Ops."
        assert job_row(rel.engine, job_id).ended_at is not None
    assert log_messages(rel.engine, running)[-1] == "Stop requested by Ops; work already done is kept."
    assert rel.state.queue().job_ids == []  # the released child left its RQ queue
    run_worker(rel.app, SimpleWorker)
    assert job_row(rel.engine, released_child).started_at is None


def set_status(engine: sa.Engine, job_id: str, status: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(sa.update(job_table).where(job_table.c.id == job_id).values(status=status, **values))


@pytest.mark.parametrize("catch", [True, False], ids=["caught", "uncaught"])
def test_spawn_while_redis_is_down_fails_the_child_with_the_reason(rel, catch):
    rel.start()
    parent = jobmonitor.enqueue(rt.spawns_while_redis_is_down, catch=catch)

    run_worker(rel.app, SimpleWorker)

    (child,) = children(rel.engine, parent.id)
    assert child.status == "failed"
    assert child.error_message == "Redis is unreachable"  # host and port: in the detail only
    assert "ConnectionError" in child.error_detail
    assert child.started_at is None
    done = job_row(rel.engine, parent.id)
    if catch:
        # the task carried on, but the family has a failed member: its outcome is failed
        assert done.status == "failed", done.error_message
        assert done.error_message == "1 of 1 child jobs failed"
        assert task_checkpoint(done)["child"] == child.id
        assert task_checkpoint(done)["reason"] == child.error_message
    else:
        assert done.status == "failed"
        assert "(EnqueueError)" in done.error_message
        assert f"EnqueueError: job {child.id}" in done.error_detail
    assert rel.state.queue().count == 0
