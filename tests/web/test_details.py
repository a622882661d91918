"""records/estimates.py and web/details.py: steps with time estimates and the detail page's paginated grids."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from flask_jobmonitor.errors import InvalidFilter
from flask_jobmonitor.records.estimates import (
    ESTIMATE_SAMPLE,
    job_remaining_seconds,
    jobs_time_left,
    steps_with_estimates,
)
from flask_jobmonitor.records.models import Job, file_table, log_table, step_table, subtask_table
from flask_jobmonitor.web.details import (
    GRID_PAGE_SIZE,
    children_grid,
    files_of,
    log_grid,
    restarts_of,
    subtask_counts,
    subtask_grid,
    time_left_text,
)
from flask_jobmonitor.web.presenters import step_json

from ..support.databases import recorded_statements
from ..support.rows import add_job
from ..support.web import at

TASK = "tests.tasks.import_rows"


def add_step(engine: sa.Engine, job_id: str, position: int, name: str, **values: Any) -> None:
    row = {"job_id": job_id, "position": position, "name": name, "status": "pending", "done": 0, "counters": {}}
    row.update(values)
    with engine.begin() as connection:
        connection.execute(sa.insert(step_table).values(**row))


def past_run(
    engine: sa.Engine, seconds: float | None, *, status: str = "completed", task: str = TASK, **job: Any
) -> str:
    """A past job of ``task`` whose "Save" step took ``seconds`` (None: never ended)."""
    job_id = add_job(engine, task=task, status=status, **job)
    started = at(0)
    ended = None if seconds is None else at(seconds / 60)
    add_step(engine, job_id, 1, "Save", status="completed", started_at=started, ended_at=ended, done=1)
    return job_id


def load(engine: sa.Engine, job_id: str) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def steps_of(engine: sa.Engine, job_id: str, now: Any) -> dict[str, Any]:
    with engine.connect() as connection:
        return {step.name: step for step in steps_with_estimates(connection, load(engine, job_id), now)}


# -- steps -----------------------------------------------------------------------------------------


@pytest.fixture
def running_job(engine) -> str:
    job_id = add_job(engine, task=TASK, status="running", created_at=at(-1), started_at=at(0), step_count=4)
    add_step(engine, job_id, 1, "Read file", status="completed", started_at=at(0), ended_at=at(2), done=10, total=10)
    add_step(engine, job_id, 2, "Validate", status="running", started_at=at(2), done=25, total=100)
    add_step(engine, job_id, 3, "Save")
    add_step(engine, job_id, 4, "Archive")
    return job_id


def test_steps_come_in_their_order(engine, running_job):
    with engine.connect() as connection:
        steps = steps_with_estimates(connection, load(engine, running_job), at(7))
    assert [(s.position, s.name, s.status) for s in steps] == [
        (1, "Read file", "completed"),
        (2, "Validate", "running"),
        (3, "Save", "pending"),
        (4, "Archive", "pending"),
    ]


def test_a_finished_step_shows_its_elapsed_time_and_nothing_left(engine, running_job):
    step = steps_of(engine, running_job, at(7))["Read file"]
    assert step.elapsed_seconds == 120
    assert step.remaining_seconds is None


def test_a_running_step_estimates_the_time_left_from_its_rate(engine, running_job):
    step = steps_of(engine, running_job, at(7))["Validate"]
    assert step.elapsed_seconds == 300  # 5 minutes for 25 of 100
    assert step.remaining_seconds == pytest.approx(900)  # 75 more at the same rate
    assert step_json(step)["remaining_seconds"] == pytest.approx(900)


def test_a_running_step_without_progress_has_no_estimate_of_time_left(engine):
    job_id = add_job(engine, task=TASK, status="running")
    add_step(engine, job_id, 1, "Validate", status="running", started_at=at(0), done=0, total=100)
    add_step(engine, job_id, 2, "Save", status="running", started_at=at(0), done=5, total=None)
    steps = steps_of(engine, job_id, at(1))
    assert steps["Validate"].remaining_seconds is None
    assert steps["Save"].remaining_seconds is None
    assert steps["Save"].elapsed_seconds == 60


def test_a_pending_step_is_estimated_by_the_median_of_past_completed_runs(engine, running_job):
    for seconds in (10, 20, 60):
        past_run(engine, seconds)
    past_run(engine, 1000, status="failed")  # not a completed run
    past_run(engine, 5, task="tests.tasks.fails")  # another task
    past_run(engine, None)  # its step never ended
    steps = steps_of(engine, running_job, at(7))
    assert steps["Save"].elapsed_seconds is None
    assert steps["Save"].estimated_seconds == 20


def test_a_pending_step_without_history_has_no_estimate(engine, running_job):
    past_run(engine, 10)  # past runs recorded "Save" only
    steps = steps_of(engine, running_job, at(7))
    assert steps["Archive"].estimated_seconds is None
    assert steps["Save"].estimated_seconds == 10


def test_only_the_latest_completed_runs_feed_the_estimate(engine, running_job):
    for i in range(5):
        past_run(engine, 1000, created_at=at(-1000 + i))
    for i in range(ESTIMATE_SAMPLE):
        past_run(engine, 30, created_at=at(-100 + i))
    assert steps_of(engine, running_job, at(7))["Save"].estimated_seconds == 30


def test_a_job_without_steps_has_none(engine):
    job_id = add_job(engine)
    assert steps_of(engine, job_id, at(0)) == {}


# -- time left for the whole job --------------------------------------------------------------------


def past_steps(engine: sa.Engine, durations: dict[str, float], task: str = TASK, **job: Any) -> str:
    """A completed past job of ``task`` whose steps took ``durations`` seconds each."""
    job_id = add_job(engine, task=task, status="completed", **job)
    for position, (name, seconds) in enumerate(durations.items(), start=1):
        add_step(engine, job_id, position, name, status="completed", started_at=at(0), ended_at=at(seconds / 60))
    return job_id


def time_left(engine: sa.Engine, job_ids: list[str], now: Any) -> dict[str, float | None]:
    with engine.connect() as connection:
        return jobs_time_left(connection, [load(engine, job_id) for job_id in job_ids], now)


def test_time_left_is_the_current_steps_plus_the_usual_durations_of_the_pending_ones(engine, running_job):
    past_steps(engine, {"Save": 60, "Archive": 30})
    past_steps(engine, {"Save": 80, "Archive": 40})
    # Validate: 25 of 100 in 5 minutes -> 900 s more; Save usually 70 s, Archive 35 s
    assert time_left(engine, [running_job], at(7)) == {running_job: pytest.approx(900 + 70 + 35)}
    with engine.connect() as connection:
        steps = steps_with_estimates(connection, load(engine, running_job), at(7))
    assert job_remaining_seconds("running", steps) == pytest.approx(1005)


def test_time_left_is_unknown_while_a_pending_step_has_no_history(engine, running_job):
    past_steps(engine, {"Save": 60})  # "Archive" never ran before
    assert time_left(engine, [running_job], at(7)) == {running_job: None}


def test_a_current_step_without_a_rate_yet_counts_its_usual_duration_minus_its_time_so_far(engine):
    job_id = add_job(engine, task=TASK, status="running", started_at=at(0))
    add_step(engine, job_id, 1, "Validate", status="running", started_at=at(0), done=0, total=100)
    add_step(engine, job_id, 2, "Save")
    past_steps(engine, {"Validate": 300, "Save": 60})
    assert time_left(engine, [job_id], at(1)) == {job_id: pytest.approx(240 + 60)}
    # past its usual duration nobody knows: no figure rather than a wrong one
    assert time_left(engine, [job_id], at(6)) == {job_id: None}


def test_only_running_jobs_have_a_time_left(engine, running_job):
    past_steps(engine, {"Save": 60, "Archive": 30})
    queued = add_job(engine, task=TASK, status="queued")
    add_step(engine, queued, 1, "Save")
    completed = past_steps(engine, {"Save": 60, "Archive": 30})
    assert time_left(engine, [running_job, queued, completed], at(7)) == {
        running_job: pytest.approx(900 + 60 + 30),
        queued: None,
        completed: None,
    }


def test_a_page_of_jobs_of_many_tasks_costs_two_statements(engine):
    job_ids, expected = [], {}
    for number in range(30):
        task = f"tests.tasks.task_{number % 10}"
        past_steps(engine, {"Validate": 100, "Save": 10 * (number % 10 + 1)}, task=task)
        job_id = add_job(engine, task=task, status="running", started_at=at(0))
        add_step(engine, job_id, 1, "Validate", status="running", started_at=at(0), done=50, total=100)
        add_step(engine, job_id, 2, "Save")
        job_ids.append(job_id)
        expected[job_id] = pytest.approx(60 + 10 * (number % 10 + 1))  # 50 more at 1.2 s each, then Save
    jobs = [load(engine, job_id) for job_id in job_ids]
    with engine.connect() as connection, recorded_statements(engine) as statements:
        assert jobs_time_left(connection, jobs, at(1)) == expected
    assert len(statements) == 2


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (10, "Less than a minute left"),
        (50, "About 1 min left"),
        (130, "About 2 min left"),
        (89 * 60, "About 89 min left"),
        (2 * 3600 + 21 * 60, "About 2 h 20 min left"),
        (3 * 3600, "About 3 h left"),
    ],
)
def test_time_left_reads_as_a_person_would_say_it(seconds, text):
    assert time_left_text(seconds) == text


# -- grids -----------------------------------------------------------------------------------------


@pytest.fixture
def job_with_records(engine) -> str:
    job_id = add_job(engine, name="busy job")
    other = add_job(engine, name="other job")
    with engine.begin() as connection:
        connection.execute(
            sa.insert(subtask_table),
            [
                {
                    "job_id": job_id,
                    "name": f"row {i}",
                    "status": "error" if i % 10 == 0 else "done",
                    "message": None,
                    "created_at": at(i / 60),
                }
                for i in range(1, 121)
            ]
            + [{"job_id": other, "name": "foreign", "status": "error", "message": None, "created_at": at(0)}],
        )
        levels = [10, 20, 30, 40]
        connection.execute(
            sa.insert(log_table),
            [
                {"job_id": job_id, "created_at": at(i / 60), "level": levels[i % 4], "message": f"line {i}"}
                for i in range(1, 101)
            ]
            + [
                {"job_id": job_id, "created_at": at(2), "level": 30, "message": "Disk almost FULL"},
                {"job_id": job_id, "created_at": at(2), "level": 20, "message": "100% of rows read"},
                {"job_id": job_id, "created_at": at(2), "level": 20, "message": "wrote sku_17"},
                {"job_id": other, "created_at": at(0), "level": 40, "message": "foreign disk line"},
            ],
        )
    return job_id


def test_subtasks_are_paginated_oldest_first(engine, job_with_records):
    with engine.connect() as connection:
        first = subtask_grid(connection, job_with_records, "", None)
        third = subtask_grid(connection, job_with_records, "", "3")
        beyond = subtask_grid(connection, job_with_records, "", "4")
    assert len(first.rows) == GRID_PAGE_SIZE and first.has_next and first.page == 1
    assert [r.name for r in first.rows[:2]] == ["row 1", "row 2"]
    assert [r.name for r in third.rows] == [f"row {i}" for i in range(101, 121)]
    assert not third.has_next
    assert beyond.rows == [] and not beyond.has_next


def test_subtasks_filter_by_status(engine, job_with_records):
    with engine.connect() as connection:
        grid = subtask_grid(connection, job_with_records, "error", "")
        none = subtask_grid(connection, job_with_records, "skipped", "")
    assert [r.name for r in grid.rows] == [f"row {i}" for i in range(10, 121, 10)]
    assert not grid.has_next
    assert none.rows == []


def test_subtask_counts_per_status(engine, job_with_records):
    with engine.connect() as connection:
        assert subtask_counts(connection, job_with_records) == {"done": 108, "error": 12}


def test_log_is_paginated_oldest_first(engine, job_with_records):
    with engine.connect() as connection:
        first = log_grid(connection, job_with_records, "", "", None)
        third = log_grid(connection, job_with_records, "", "", "3")
    assert first.has_next and [r.message for r in first.rows[:2]] == ["line 1", "line 2"]
    assert len(third.rows) == 3 and not third.has_next


def test_log_filters_by_lowest_level(engine, job_with_records):
    with engine.connect() as connection:
        errors = log_grid(connection, job_with_records, "error", "", None)
        warnings = log_grid(connection, job_with_records, "warning", "", None)
        everything = log_grid(connection, job_with_records, "debug", "", "3")
    assert {r.level for r in errors.rows} == {40} and len(errors.rows) == 25
    assert {r.level for r in warnings.rows} == {30, 40}
    assert len(warnings.rows) == GRID_PAGE_SIZE and warnings.has_next  # 50 lines + "Disk almost FULL"
    assert len(everything.rows) == 3


def test_log_filters_by_text_ignoring_case(engine, job_with_records):
    with engine.connect() as connection:
        grid = log_grid(connection, job_with_records, "", "disk", None)
        combined = log_grid(connection, job_with_records, "error", "disk", None)
    assert [r.message for r in grid.rows] == ["Disk almost FULL"]
    assert combined.rows == []


def test_log_text_filter_takes_wildcards_literally(engine, job_with_records):
    with engine.connect() as connection:
        percent = log_grid(connection, job_with_records, "", "%", None)
        underscore = log_grid(connection, job_with_records, "", "_", None)
    assert [r.message for r in percent.rows] == ["100% of rows read"]
    assert [r.message for r in underscore.rows] == ["wrote sku_17"]


def test_children_are_paginated_oldest_first(engine):
    parent = add_job(engine, name="parent")
    for i in range(GRID_PAGE_SIZE + 5):
        add_job(engine, name=f"child {i:02d}", parent_id=parent, root_id=parent, created_at=at(i))
    add_job(engine, name="not a child")
    with engine.connect() as connection:
        first = children_grid(connection, parent, None)
        second = children_grid(connection, parent, "2")
        none = children_grid(connection, add_job(engine), None)
    assert first.has_next and first.rows[0].name == "child 00"
    assert [r.name for r in second.rows] == [f"child {i:02d}" for i in range(GRID_PAGE_SIZE, GRID_PAGE_SIZE + 5)]
    assert not second.has_next
    assert none.rows == []


@pytest.mark.parametrize(
    ("grid", "value", "message"),
    [
        ("subtasks", "abc", "subtask_page must be a whole number, got 'abc'"),
        ("subtasks", "0", "subtask_page must be between 1 and 1000000, got 0"),
        ("subtasks", "-1", "subtask_page must be between 1 and 1000000, got -1"),
        ("subtasks", "1000001", "subtask_page must be between 1 and 1000000, got 1000001"),
        ("logs", "2.0", "log_page must be a whole number, got '2.0'"),
        ("logs", "0", "log_page must be between 1 and 1000000"),
        ("children", "x", "children_page must be a whole number, got 'x'"),
        ("children", "99999999999999999999", "children_page must be between 1 and 1000000"),
    ],
)
def test_bad_page_values_raise_invalid_filter(engine, grid, value, message):
    job_id = add_job(engine)
    with engine.connect() as connection, pytest.raises(InvalidFilter) as raised:
        if grid == "subtasks":
            subtask_grid(connection, job_id, "", value)
        elif grid == "logs":
            log_grid(connection, job_id, "", "", value)
        else:
            children_grid(connection, job_id, value)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": "verbose"}, "log_level must be one of debug, info, warning, error; got 'verbose'"),
        ({"level": "ERROR"}, "log_level must be one of"),
        ({"text": "x" * 201}, "log_q is longer than 200 characters"),
    ],
)
def test_bad_log_filters_raise_invalid_filter(engine, kwargs, message):
    job_id = add_job(engine)
    args = {"level": "", "text": "", **kwargs}
    with engine.connect() as connection, pytest.raises(InvalidFilter, match=message):
        log_grid(connection, job_id, args["level"], args["text"], None)


def test_a_too_long_subtask_status_raises_invalid_filter(engine):
    job_id = add_job(engine)
    with engine.connect() as connection, pytest.raises(InvalidFilter, match="subtask_status is longer than 32"):
        subtask_grid(connection, job_id, "s" * 33, None)


def test_nul_in_a_grid_text_filter_raises_invalid_filter(engine):
    # as in the job list's filters: PostgreSQL refuses NUL in text parameters
    job_id = add_job(engine)
    with engine.connect() as connection:
        with pytest.raises(InvalidFilter, match="NUL"):
            log_grid(connection, job_id, "", "disk\x00", None)
        with pytest.raises(InvalidFilter, match="NUL"):
            subtask_grid(connection, job_id, "error\x00", None)


# -- files and relatives ---------------------------------------------------------------------------


def test_files_come_inputs_first_then_outputs_then_error_reports(engine):
    job_id = add_job(engine)
    with engine.begin() as connection:
        for kind, name in (("error_report", "errors.csv"), ("output", "out.csv"), ("input", "in.csv")):
            connection.execute(
                sa.insert(file_table).values(
                    job_id=job_id,
                    kind=kind,
                    filename=name,
                    content_type="text/csv",
                    size=1,
                    storage_key=f"{job_id}/{'0' * 32}",
                    created_at=at(0),
                )
            )
    with engine.connect() as connection:
        assert [f.filename for f in files_of(connection, job_id)] == ["in.csv", "out.csv", "errors.csv"]


def test_restarts_of_a_job_are_listed_oldest_first(engine):
    original = add_job(engine, status="failed")
    second = add_job(engine, restarted_from_id=original, created_at=at(2))
    first = add_job(engine, restarted_from_id=original, created_at=at(1))
    with engine.connect() as connection:
        assert [r.id for r in restarts_of(connection, original)] == [first, second]
        assert restarts_of(connection, first) == []
