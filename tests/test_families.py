"""Job families on real RQ workers: a parent whose task returned waits for its children and
ends with their outcome, exactly once however its children end, with one notification for the
family; recovery ends a family whose last child's end was never looked at; stop and force stop
of a waiting parent; families nested two deep end bottom up."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from flask_jobmonitor.jobs import control, families, maintenance
from flask_jobmonitor.records.models import notification_table
from flask_jobmonitor.records.transitions import apply_transition
from flask_jobmonitor.timeutil import utcnow

from . import reliability_tasks as rt
from .support.extensions import jobmonitor
from .support.reliability import QUEUES, TERMINAL, reliability_env
from .support.rows import children, insert_job, job_row, log_messages
from .support.waiting import wait_for, wait_status

ANN = ("7", "Ann")
WAITS = "Its own work is done; it waits for its child jobs to end."


@pytest.fixture
def rel(database_url: str, redis_url: str, tmp_path: Path):
    with reliability_env(database_url, redis_url, tmp_path) as env:
        yield env


def notifications(engine: sa.Engine) -> list[tuple[str, str]]:
    """Every notification recorded: (job id, event)."""
    n = notification_table.c
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.select(n.job_id, n.event).order_by(n.id)).all()]


def family_end_notes(engine: sa.Engine, job_id: str) -> list[str]:
    return [m for m in log_messages(engine, job_id) if m.startswith("All ")]


def a_gate() -> str:
    return f"jm-test-gate-{uuid.uuid4().hex}"


def statuses(engine: sa.Engine, parent_id: str) -> list[str]:
    return [c.status for c in children(engine, parent_id)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failing", "outcome", "message"),
    [([], "completed", None), ([1], "failed", "1 of 3 child jobs failed")],
    ids=["all-complete", "one-fails"],
)
@pytest.mark.parametrize("worker_class", ["rq.Worker", "rq.SimpleWorker"], ids=["forking", "simple"])
def test_a_parent_waits_for_its_children_and_ends_with_the_familys_outcome(
    rel, worker_class, failing, outcome, message
):
    rel.start(CHILDREN_IN_FLIGHT=4)
    rel.worker(worker_class)
    rel.worker(worker_class)
    gate = a_gate()
    parent = jobmonitor.enqueue(rt.spawns_at_gate, gate=gate, count=3, failing=failing, user=ANN)

    waiting = wait_status(rel.engine, parent.id, "waiting", 60)
    assert waiting.ended_at is None
    assert WAITS in log_messages(rel.engine, parent.id)
    # the waiting parent holds no worker: both workers run its children
    wait_for(
        lambda: statuses(rel.engine, parent.id).count("running") == 2, 60, f"two children running{rel.worker_logs()}"
    )
    assert job_row(rel.engine, parent.id).status == "waiting"
    assert notifications(rel.engine) == []

    rel.state.redis.set(gate, 1)

    done = wait_status(rel.engine, parent.id, TERMINAL, 60)
    assert (done.status, done.error_message) == (outcome, message), rel.worker_logs()
    assert done.ended_at is not None
    assert sorted(statuses(rel.engine, parent.id)) == sorted(
        ["completed"] * (3 - len(failing)) + ["failed"] * len(failing)
    )
    # one notification for the family, none per child
    assert notifications(rel.engine) == [(parent.id, outcome)]
    assert len(family_end_notes(rel.engine, parent.id)) == 1


@pytest.mark.slow
def test_children_notify_their_user_too_when_the_setting_says_so(rel):
    rel.start(NOTIFY_CHILDREN=True)
    rel.worker("rq.SimpleWorker")
    gate = a_gate()
    rel.state.redis.set(gate, 1)  # open from the start
    parent = jobmonitor.enqueue(rt.spawns_at_gate, gate=gate, count=2, user=ANN)

    assert wait_status(rel.engine, parent.id, TERMINAL, 60).status == "completed"
    kids = [c.id for c in children(rel.engine, parent.id)]
    assert sorted(notifications(rel.engine)) == sorted(
        [(kids[0], "completed"), (kids[1], "completed"), (parent.id, "completed")]
    )


@pytest.mark.slow
def test_two_children_ending_at_once_on_two_workers_end_the_parent_once(rel):
    rel.start(CHILDREN_IN_FLIGHT=2)
    rel.worker("rq.Worker")
    rel.worker("rq.SimpleWorker")
    for _ in range(3):
        gate = a_gate()
        parent = jobmonitor.enqueue(rt.spawns_at_gate, gate=gate, count=2, user=ANN)
        wait_for(
            lambda parent_id=parent.id: (
                statuses(rel.engine, parent_id) == ["running", "running"]
                and job_row(rel.engine, parent_id).status == "waiting"
            ),
            60,
            f"both children running, the parent waiting{rel.worker_logs()}",
        )

        rel.state.redis.set(gate, 1)

        assert wait_status(rel.engine, parent.id, TERMINAL, 60).status == "completed"
        assert len(family_end_notes(rel.engine, parent.id)) == 1
        assert [n for n in notifications(rel.engine) if n[0] == parent.id] == [(parent.id, "completed")]
    assert len(notifications(rel.engine)) == 3


def test_children_ending_at_the_same_instant_in_two_threads_end_the_parent_exactly_once(rel):
    """The race without workers: two threads record the end of the last two children and look at
    the parent at the same moment, twenty times over."""
    rel.start()
    for _ in range(20):
        parent = insert_job(rel.engine, status="waiting", attempt=1, run_by_id="7", queue_name=QUEUES["default"])
        kids = [
            insert_job(rel.engine, status="running", attempt=1, parent_id=parent, root_id=parent, run_by_id="7")
            for _ in range(2)
        ]
        errors = _end_at_once(rel, parent, kids)

        assert errors == []
        assert job_row(rel.engine, parent).status == "completed"
        assert len(family_end_notes(rel.engine, parent)) == 1
        assert [n for n in notifications(rel.engine) if n[0] == parent] == [(parent, "completed")]


def _end_at_once(rel, parent_id: str, kids: list[str]) -> list[BaseException]:
    """Two threads each finish one child and look at the parent, released by one barrier."""
    barrier = threading.Barrier(len(kids))
    errors: list[BaseException] = []

    def end(child_id: str) -> None:
        try:
            with rel.app.app_context():
                barrier.wait()
                with rel.engine.begin() as connection:
                    apply_transition(connection, child_id, "finish", attempt=1, values={"ended_at": utcnow()})
                families.child_ended(rel.state, parent_id)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=end, args=(kid,)) for kid in kids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_recovery_ends_a_waiting_parent_whose_children_all_ended_and_its_own_parent(rel):
    rel.start()
    root = insert_job(rel.engine, status="waiting", attempt=1, run_by_id="7")
    middle = insert_job(rel.engine, status="waiting", attempt=1, parent_id=root, root_id=root, run_by_id="7")
    for status in ("completed", "failed", "completed"):
        insert_job(rel.engine, status=status, parent_id=middle, root_id=root, run_by_id="7")
    # waiting for a long time, with no heartbeat: a waiting parent is not an abandoned run
    busy = insert_job(
        rel.engine, status="waiting", attempt=1, run_by_id="7", status_changed_at=utcnow().replace(year=2020)
    )
    insert_job(rel.engine, status="running", attempt=1, parent_id=busy, root_id=busy, heartbeat_at=utcnow())

    report = maintenance.recover(rel.state)

    assert sorted(report.families_ended) == sorted([middle, root])
    assert (job_row(rel.engine, middle).status, job_row(rel.engine, middle).error_message) == (
        "failed",
        "1 of 3 child jobs failed",
    )
    assert (job_row(rel.engine, root).status, job_row(rel.engine, root).error_message) == (
        "failed",
        "1 of 1 child jobs failed",
    )
    assert job_row(rel.engine, busy).status == "waiting"
    assert report.failed == [] and report.requeued == []
    assert notifications(rel.engine) == [(root, "failed")]  # the middle one is a child: no notification
    assert maintenance.recover(rel.state).families_ended == []


@pytest.mark.slow
def test_nested_families_end_bottom_up_with_one_notification(rel):
    rel.start(CHILDREN_IN_FLIGHT=3)
    rel.worker("rq.Worker")
    rel.worker("rq.SimpleWorker")
    gate = a_gate()
    root = jobmonitor.enqueue(rt.spawns_nested_family, gate=gate, children=2, grandchildren=2, user=ANN)

    wait_for(
        lambda: statuses(rel.engine, root.id) == ["waiting", "waiting"],
        60,
        f"both middle children waiting for theirs{rel.worker_logs()}",
    )
    assert job_row(rel.engine, root.id).status == "waiting"
    rel.state.redis.set(gate, 1)

    assert wait_status(rel.engine, root.id, TERMINAL, 60).status == "completed"
    middle = children(rel.engine, root.id)
    assert [m.status for m in middle] == ["completed", "completed"]
    for m in middle:
        assert statuses(rel.engine, m.id) == ["completed", "completed"]
        assert m.ended_at <= job_row(rel.engine, root.id).ended_at  # bottom up
    assert notifications(rel.engine) == [(root.id, "completed")]


@pytest.mark.slow
@pytest.mark.parametrize("force", [False, True], ids=["stop", "force-stop"])
def test_stopping_a_waiting_parent_stops_its_children_and_ends_the_family_stopped(rel, force):
    rel.start(CHILDREN_IN_FLIGHT=2)
    rel.worker("rq.Worker")
    rel.worker("rq.SimpleWorker")
    parent = jobmonitor.enqueue(rt.spawns_at_gate, gate=a_gate(), count=4, user=ANN)  # the gate never opens
    wait_for(
        lambda: (
            statuses(rel.engine, parent.id).count("running") == 2 and job_row(rel.engine, parent.id).status == "waiting"
        ),
        60,
        f"two children running, the parent waiting{rel.worker_logs()}",
    )
    if force:
        control.force_stop(rel.state, parent.id, user=("1", "Ops"))
        assert job_row(rel.engine, parent.id).status == "stopped"  # at once
    else:
        result = control.stop(rel.state, parent.id, user=("1", "Ops"))
        assert "child jobs will stop" in result.message

    done = wait_status(rel.engine, parent.id, TERMINAL, 30)
    assert done.status == "stopped"
    wait_for(lambda: all(s in TERMINAL for s in statuses(rel.engine, parent.id)), 30, "every child to end")
    assert sorted(set(statuses(rel.engine, parent.id))) == ["cancelled", "stopped"]
    assert notifications(rel.engine) == [(parent.id, "stopped")]
    if not force:
        assert family_end_notes(rel.engine, parent.id) == [
            "All 4 child jobs have ended (2 cancelled, 2 stopped). 4 of 4 child jobs were stopped or cancelled."
        ]


def test_a_parent_whose_children_ended_before_its_task_returned_still_ends_with_their_outcome(rel):
    """The outcome does not depend on timing: children that all ended before the parent's task
    returned give the same outcome as children that end after (it passes through waiting)."""
    rel.start()
    parent = insert_job(rel.engine, status="running", attempt=1, task=rt.spawns_family.name, run_by_id="7")
    insert_job(rel.engine, status="failed", parent_id=parent, root_id=parent)
    insert_job(rel.engine, status="completed", parent_id=parent, root_id=parent)

    assert families.start_waiting(rel.state, _run_info(rel, parent)) is True

    assert (job_row(rel.engine, parent).status, job_row(rel.engine, parent).error_message) == (
        "failed",
        "1 of 2 child jobs failed",
    )
    assert notifications(rel.engine) == [(parent, "failed")]
    lonely = insert_job(rel.engine, status="running", attempt=1, task=rt.spawns_family.name)
    assert families.start_waiting(rel.state, _run_info(rel, lonely)) is False  # no children
    assert job_row(rel.engine, lonely).status == "running"


def _run_info(rel, job_id: str):
    from flask_jobmonitor.worker.context import RunInfo

    r = job_row(rel.engine, job_id)
    return RunInfo(
        job_id=job_id,
        attempt=r.attempt,
        name=r.name,
        task=r.task,
        params={},
        checkpoint=None,
        root_id=r.root_id,
        run_by_id=r.run_by_id,
        run_by_name=r.run_by_name,
        is_system=False,
        run_at_url=None,
        parent_id=r.parent_id,
    )


def test_family_outcome_rule():
    assert families.family_outcome({"completed": 13}) == ("family_completed", None)
    assert families.family_outcome({"completed": 11, "failed": 2}) == ("family_failed", "2 of 13 child jobs failed")
    assert families.family_outcome({"completed": 1, "failed": 1, "stopped": 1}) == (
        "family_failed",
        "1 of 3 child jobs failed",
    )
    assert families.family_outcome({"completed": 3, "cancelled": 1}) == (
        "family_stopped",
        "1 of 4 child jobs were stopped or cancelled",
    )
