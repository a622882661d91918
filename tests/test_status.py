"""The status machine: every move it allows, every move it refuses, on a real job row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa

from flask_jobmonitor import JobNotFound, JobStatus, TransitionRefused
from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.records.status import (
    ACTIVE_STATUSES,
    DELETABLE_STATUSES,
    FINISHED_STATUSES,
    TRANSITIONS,
    get_transition,
    is_allowed,
)
from flask_jobmonitor.records.transitions import apply_transition, apply_transition_where

from .support.rows import insert_job, job_row

# The machine of docs/reference.md ("Job statuses"), written out independently of status.py so
# that a change to the table there has to be a deliberate change here too.
EXPECTED: dict[str, tuple[set[str], str]] = {
    "start": ({"queued"}, "running"),
    "finish": ({"running", "stopping"}, "completed"),
    "fail": ({"queued", "running", "stopping", "paused"}, "failed"),
    "retry": ({"running"}, "queued"),
    "request_stop": ({"running"}, "stopping"),
    "stopped": ({"stopping"}, "stopped"),
    "force_stop": ({"running", "stopping", "waiting"}, "stopped"),
    "pause": ({"running"}, "paused"),
    "resume": ({"stopped", "paused"}, "queued"),
    "requeue": ({"running", "stopping"}, "queued"),
    "cancel": ({"queued", "stopped", "paused"}, "cancelled"),
    "request_cancel": ({"running"}, "stopping"),
    "cancelled_at_checkpoint": ({"stopping"}, "cancelled"),
    "wait_for_children": ({"running", "stopping"}, "waiting"),
    "stop_family": ({"waiting"}, "waiting"),
    "family_completed": ({"waiting"}, "completed"),
    "family_failed": ({"waiting"}, "failed"),
    "family_stopped": ({"waiting"}, "stopped"),
}
ALL_MOVES = [(status, action) for status in JobStatus for action in EXPECTED]
ALLOWED = [(s, a) for s, a in ALL_MOVES if s.value in EXPECTED[a][0]]
REFUSED = [(s, a) for s, a in ALL_MOVES if s.value not in EXPECTED[a][0]]
OLD = datetime(2020, 1, 2, 3, 4, 5)
NOW = datetime(2024, 6, 7, 8, 9, 10)


def _move_id(value: object) -> str:
    return str(value)


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A plain engine on the test database. Every test works on a job row of its own, so the
    tables need not be emptied between these (many) tests."""
    engine = sa.create_engine(database_url)
    yield engine
    engine.dispose()


def test_the_machine_has_exactly_the_documented_actions():
    assert set(TRANSITIONS) == set(EXPECTED)


@pytest.mark.parametrize(("status", "action"), ALLOWED, ids=_move_id)
def test_allowed_move_changes_status_and_stamps_the_change(engine, status, action):
    job_id = insert_job(engine, status=status.value, status_changed_at=OLD)

    with engine.begin() as connection:
        result = apply_transition(connection, job_id, action, now=NOW)

    assert result is None
    row = job_row(engine, job_id)
    assert row.status == EXPECTED[action][1]
    assert row.status_changed_at == NOW


@pytest.mark.parametrize(("status", "action"), REFUSED, ids=_move_id)
def test_refused_move_raises_and_leaves_the_row_unchanged(engine, status, action):
    job_id = insert_job(engine, status=status.value, status_changed_at=OLD, attempt=3)
    before = job_row(engine, job_id)

    with pytest.raises(TransitionRefused) as refused, engine.begin() as connection:
        apply_transition(connection, job_id, action, now=NOW, values={"error_message": "must not be written"})

    # the message is for people (no id, no internal status name); code reads the attributes
    message = str(refused.value)
    assert message.startswith("This job ") and job_id not in message and repr(status.value) not in message
    assert (refused.value.job_id, refused.value.status, refused.value.action) == (job_id, status, action)
    assert job_row(engine, job_id) == before


@pytest.mark.parametrize(("status", "action"), ALL_MOVES, ids=_move_id)
def test_is_allowed_follows_the_documented_machine(status, action):
    assert is_allowed(status, action) is (status.value in EXPECTED[action][0])
    assert is_allowed(status.value, action) is (status.value in EXPECTED[action][0])


def test_is_allowed_with_an_unknown_action_raises_key_error_naming_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown job transition 'explode'.*start"):
        is_allowed(JobStatus.RUNNING, "explode")


def test_get_transition_with_an_unknown_action_raises_key_error():
    with pytest.raises(KeyError, match="explode"):
        get_transition("explode")


def test_is_allowed_with_an_unknown_status_raises_value_error():
    with pytest.raises(ValueError):
        is_allowed("sleeping", "start")


def test_apply_transition_with_an_unknown_action_raises_key_error_and_writes_nothing(engine):
    job_id = insert_job(engine, status="queued")
    before = job_row(engine, job_id)

    with pytest.raises(KeyError), engine.begin() as connection:
        apply_transition(connection, job_id, "explode")

    assert job_row(engine, job_id) == before


def test_transition_of_unknown_job_raises_job_not_found(engine):
    with pytest.raises(JobNotFound) as missing, engine.begin() as connection:
        apply_transition(connection, "00000000-0000-0000-0000-000000000000", "start")

    assert missing.value.job_id == "00000000-0000-0000-0000-000000000000"
    assert "00000000-0000-0000-0000-000000000000" in str(missing.value)


def test_transition_of_unknown_job_with_returning_raises_job_not_found(engine):
    with pytest.raises(JobNotFound), engine.begin() as connection:
        apply_transition(connection, "no-such-job", "start", returning=(job_table.c.task,))


def test_transition_writes_extra_values_in_the_same_statement(engine):
    job_id = insert_job(engine, status="running")

    with engine.begin() as connection:
        apply_transition(connection, job_id, "fail", values={"error_message": "ValueError: boom", "ended_at": NOW})

    row = job_row(engine, job_id)
    assert (row.status, row.error_message, row.ended_at) == ("failed", "ValueError: boom", NOW)


def test_transition_without_now_stamps_the_current_time(engine):
    job_id = insert_job(engine, status="queued", status_changed_at=OLD)

    with engine.begin() as connection:
        apply_transition(connection, job_id, "cancel")

    assert job_row(engine, job_id).status_changed_at > OLD


def test_returning_gives_back_the_updated_row(engine):
    job_id = insert_job(engine, status="queued", task="tests.tasks.greets", attempt=4)

    with engine.begin() as connection:
        row = apply_transition(
            connection,
            job_id,
            "start",
            values={"attempt": job_table.c.attempt + 1},
            returning=(job_table.c.task, job_table.c.attempt, job_table.c.status),
        )

    assert row is not None
    assert (row.task, row.attempt, row.status) == ("tests.tasks.greets", 5, "running")


def test_without_update_returning_a_move_reads_back_what_it_wrote(engine, monkeypatch):
    """MySQL/MariaDB have no UPDATE ... RETURNING: a move reads its columns after the UPDATE, a
    move of many locks the rows first (records/transitions.py). The same path on every database."""
    monkeypatch.setattr(engine.dialect, "update_returning", False)
    job_id = insert_job(engine, status="queued", task="tests.tasks.greets", attempt=4)
    batch = [insert_job(engine, status=s, queue_name="read-after") for s in ("queued", "queued", "running")]

    with engine.begin() as connection:
        row = apply_transition(
            connection, job_id, "start", values={"attempt": job_table.c.attempt + 1}, returning=(job_table.c.attempt,)
        )
        moved = apply_transition_where(
            connection, "cancel", job_table.c.queue_name == "read-after", returning=(job_table.c.status,)
        )
        with pytest.raises(TransitionRefused):
            apply_transition(connection, batch[2], "start", returning=(job_table.c.task,))

    assert row is not None and row.attempt == 5
    assert sorted((r.id, r.status) for r in moved) == sorted((i, "cancelled") for i in batch[:2])
    assert [job_row(engine, i).status for i in batch] == ["cancelled", "cancelled", "running"]


def test_refused_move_with_returning_raises_and_leaves_the_row_unchanged(engine):
    job_id = insert_job(engine, status="completed")
    before = job_row(engine, job_id)

    with (
        pytest.raises(TransitionRefused, match="This job has already completed; it can no longer start"),
        engine.begin() as connection,
    ):
        apply_transition(connection, job_id, "start", returning=(job_table.c.task,))

    assert job_row(engine, job_id) == before


def test_move_fenced_to_the_current_attempt_is_applied(engine):
    job_id = insert_job(engine, status="running", attempt=2)

    with engine.begin() as connection:
        apply_transition(connection, job_id, "finish", attempt=2)

    assert job_row(engine, job_id).status == "completed"


def test_move_fenced_to_an_older_attempt_is_refused_and_names_both_attempts(engine):
    job_id = insert_job(engine, status="running", attempt=2)
    before = job_row(engine, job_id)

    with pytest.raises(TransitionRefused) as refused, engine.begin() as connection:
        apply_transition(connection, job_id, "finish", attempt=1)

    assert str(refused.value) == "This job was run again meanwhile (it is on attempt 2); attempt 1 cannot finish."
    assert refused.value.status == JobStatus.RUNNING
    assert job_row(engine, job_id) == before


def test_late_completion_after_failure_is_refused(engine):
    job_id = insert_job(engine, status="running", attempt=1)
    with engine.begin() as connection:
        apply_transition(connection, job_id, "fail", attempt=1, values={"error_message": "worker died"})

    with pytest.raises(TransitionRefused), engine.begin() as connection:
        apply_transition(connection, job_id, "finish", attempt=1)

    row = job_row(engine, job_id)
    assert (row.status, row.error_message) == ("failed", "worker died")


def test_two_actors_racing_for_the_same_job_only_one_wins(engine):
    job_id = insert_job(engine, status="running")

    with engine.connect() as first, engine.connect() as second:
        apply_transition(first, job_id, "request_stop")
        first.commit()
        with pytest.raises(TransitionRefused):
            apply_transition(second, job_id, "pause")
        second.rollback()

    assert job_row(engine, job_id).status == "stopping"


@pytest.mark.parametrize("action", sorted(EXPECTED))
def test_a_move_of_many_jobs_moves_only_those_its_sources_allow(engine, action):
    sources, target = EXPECTED[action]
    batch = "batch-" + action
    ids = {status.value: insert_job(engine, status=status.value, queue_name=batch) for status in JobStatus}
    outsider = insert_job(engine, status=sorted(sources)[0], queue_name="other")
    when = datetime(2030, 1, 2, 3, 4, 5)

    with engine.begin() as connection:
        moved = apply_transition_where(
            connection,
            action,
            job_table.c.queue_name == batch,
            values={"error_message": "moved together"},
            now=when,
            returning=(job_table.c.queue_name,),
        )

    assert sorted(row.id for row in moved) == sorted(ids[s] for s in sources)
    assert {row.queue_name for row in moved} == {batch}
    for status, job_id in ids.items():
        row = job_row(engine, job_id)
        if status in sources:
            assert (row.status, row.error_message, row.status_changed_at.replace(tzinfo=None)) == (
                target,
                "moved together",
                when,
            )
        else:
            assert (row.status, row.error_message) == (status, None)
    assert job_row(engine, outsider).status == sorted(sources)[0]


def test_status_groups_cover_every_status_once():
    assert set(JobStatus) == ACTIVE_STATUSES | FINISHED_STATUSES
    assert not ACTIVE_STATUSES & FINISHED_STATUSES
    assert DELETABLE_STATUSES.isdisjoint(ACTIVE_STATUSES)


def test_status_is_stored_and_printed_as_its_value(engine):
    job_id = insert_job(engine, status=JobStatus.PAUSED)

    with engine.connect() as connection:
        stored = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == job_id)).scalar_one()

    assert stored == "paused"
    assert str(JobStatus.PAUSED) == "paused"
