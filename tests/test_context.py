"""JobContext: what a running task reports (steps, progress, subtasks, logs, files, checkpoints,
children) and how often it writes it."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa
from rq import SimpleWorker, Worker

from flask_jobmonitor import FileNotInJob, InvalidJobArguments, JobContext, JobStatus, RunSuperseded
from flask_jobmonitor.errors import PauseRequested, StopRequested
from flask_jobmonitor.jobs import control
from flask_jobmonitor.records.bulkwrite import insert_rows
from flask_jobmonitor.records.models import (
    Job,
    JobLog,
    JobStep,
    JobSubtask,
    job_table,
    notification_table,
    subtask_table,
)
from flask_jobmonitor.state import get_state
from flask_jobmonitor.worker import context as context_module
from flask_jobmonitor.worker.runner import WARM_UP_ACTIONS, claim

from . import tasks as tasks_module
from .support.apps import build_app
from .support.databases import count_rows, pushed, recorded_statements
from .support.extensions import QUEUE_NAMES, db, jobmonitor
from .support.rows import add_job, job_row, task_checkpoint
from .support.workers import run_worker
from .tasks import (
    advances_for,
    checkpoints,
    dies_once,
    fails,
    grows_steps,
    import_rows,
    logs_everything,
    many_subtasks,
    noop,
    records_param,
    spawns_children,
    spawns_nested,
)


def steps_of(job_id: str) -> list[JobStep]:
    return list(db.session.scalars(sa.select(JobStep).where(JobStep.job_id == job_id).order_by(JobStep.position)))


def subtasks_of(job_id: str) -> list[JobSubtask]:
    db.session.rollback()  # a new transaction: MariaDB's REPEATABLE READ would keep the first snapshot
    return list(db.session.scalars(sa.select(JobSubtask).where(JobSubtask.job_id == job_id).order_by(JobSubtask.id)))


def logs_of(job_id: str) -> list[JobLog]:
    db.session.rollback()  # a new transaction, as above
    return list(db.session.scalars(sa.select(JobLog).where(JobLog.job_id == job_id).order_by(JobLog.id)))


def completed(engine: sa.Engine, job_id: str) -> Any:
    row = job_row(engine, job_id)
    assert row.status == JobStatus.COMPLETED, row.error_message
    return row


def running_context(app: Any, task: Any, *args: Any, **kwargs: Any) -> JobContext:
    """Enqueue a job, claim it as a worker would, and return the context its task would get."""
    state = get_state(app)
    job = jobmonitor.enqueue(task, *args, **kwargs)
    run = claim(state, job.id, "test-worker")
    assert run is not None
    return JobContext(state, run, state.tasks.get(task))


# -- steps and progress -------------------------------------------------------------------------


def test_declared_steps_run_in_order_with_progress_and_counters(app, engine, worker_class):
    job = jobmonitor.enqueue(import_rows, bad_every=2, files={"rows.csv": b"a\nb\nc\nd\n"})

    run_worker(app, worker_class)

    row = completed(engine, job.id)
    steps = steps_of(job.id)
    assert [(s.position, s.name, s.status, s.done, s.total) for s in steps] == [
        (1, "Read file", "completed", 4, 4),
        (2, "Validate", "completed", 4, 4),
        (3, "Save", "completed", 0, None),
    ]
    assert [s.counters for s in steps] == [{"read": 4}, {"rejected": 2, "accepted": 2}, {"created": 2}]
    assert all(s.started_at is not None and s.ended_at is not None and s.started_at <= s.ended_at for s in steps)
    assert (row.step_count, row.current_step) == (3, 3)


def test_undeclared_step_is_appended_and_counted(app, engine):
    job = jobmonitor.enqueue(grows_steps)
    assert job_row(engine, job.id).step_count == 1

    run_worker(app)

    row = completed(engine, job.id)
    assert row.step_count == 2
    assert [(s.position, s.name, s.status, s.done, s.total, s.counters) for s in steps_of(job.id)] == [
        (1, "Declared", "completed", 4, 4, {"created": 3, "skipped": 1}),
        (2, "Added at run time", "completed", 2, 2, {}),
    ]
    assert (row.current_step, row.progress_done, row.progress_total) == (2, 2, 2)


def test_step_is_failed_when_an_exception_escapes_it(app, engine):
    job = jobmonitor.enqueue(fails)

    run_worker(app)

    [step] = steps_of(job.id)
    assert (step.name, step.status, step.done, step.total) == ("Work", "failed", 3, 10)
    assert step.ended_at is not None
    assert job_row(engine, job.id).step_count == 1


def test_step_api_in_a_running_context(app, engine):
    ctx = running_context(app, grows_steps)

    with ctx.step("Declared", total=10) as step:
        assert (step.position, step.status, step.finished) == (1, "running", False)
        step.advance(4)
        step.set_total(12)
        step.count("read", 4)
        ctx.flush()
        stored = db.session.get(JobStep, step.id)
        assert (stored.status, stored.done, stored.total, stored.counters) == ("running", 4, 12, {"read": 4})
        assert (job_row(engine, ctx.job_id).progress_done, job_row(engine, ctx.job_id).progress_total) == (4, 12)
    db.session.rollback()  # a new transaction: MariaDB's REPEATABLE READ would keep the first snapshot

    assert db.session.get(JobStep, step.id).status == "completed"
    assert step.finished


@pytest.mark.parametrize("interruption", [StopRequested, PauseRequested])
def test_step_interrupted_by_a_stop_or_pause_is_not_marked_completed(app, interruption):
    ctx = running_context(app, grows_steps)

    with pytest.raises(interruption), ctx.step("Declared") as step:
        step.advance(2)
        raise interruption(ctx.job_id)
    ctx.mark_current_step("stopped")  # what the runner does when a run ends this way ...
    ctx.flush(honour_stop=False)  # ... before it records the outcome

    db.session.expire_all()
    assert db.session.get(JobStep, step.id).status == "stopped"
    assert not step.finished  # a resumed run must do the rest of this step, not skip it


# -- subtasks ---------------------------------------------------------------------------------------


def test_subtasks_are_written_in_batches_and_counted(app, engine, monkeypatch):
    job = jobmonitor.enqueue(many_subtasks, count=3000)
    batches: list[int] = []

    def counting_insert_rows(connection, table, rows):  # type: ignore[no-untyped-def]
        if table.name == "jobmonitor_subtask" and rows:
            batches.append(len(rows))
        return insert_rows(connection, table, rows)

    monkeypatch.setattr(context_module, "insert_rows", counting_insert_rows)
    with recorded_statements(engine) as statements:
        run_worker(app)

    row = completed(engine, job.id)
    subtasks = subtasks_of(job.id)
    assert len(subtasks) == 3000
    assert [s.name for s in subtasks[:3]] == ["item 0", "item 1", "item 2"]
    assert sum(s.status == "warning" for s in subtasks) == 3
    assert (row.warning_count, row.error_count) == (3, 0)
    assert {s.step_id for s in subtasks} == {steps_of(job.id)[0].id}
    assert 1 <= len(batches) <= 30 and sum(batches) == 3000  # batches, not one write per subtask
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO JOBMONITOR_SUBTASK")]
    # one executemany per batch; PostgreSQL's COPY goes past SQLAlchemy's statement events
    assert len(inserts) == (0 if engine.dialect.name == "postgresql" else len(batches))


def test_error_subtasks_and_error_logs_count_on_the_job(app, engine):
    job = jobmonitor.enqueue(import_rows, bad_every=3, files={"rows.csv": b"1\n2\n3\n4\n5\n6\n7\n"})

    run_worker(app)

    row = completed(engine, job.id)
    assert (row.error_count, row.warning_count) == (2, 0)
    errors = [s for s in subtasks_of(job.id) if s.status == "error"]
    assert [(s.name, s.message) for s in errors] == [("row 3", "bad value '3'"), ("row 6", "bad value '6'")]


# -- logs ---------------------------------------------------------------------------------------


def test_logs_of_the_task_thread_are_captured_with_levels(app, engine, worker_class):
    job = jobmonitor.enqueue(logs_everything)

    run_worker(app, worker_class)

    row = completed(engine, job.id)
    logs = logs_of(job.id)
    assert [(log.level, log.logger, log.message.splitlines()[0]) for log in logs] == [
        (logging.INFO, "flask_jobmonitor.task", "info from ctx.log"),
        (logging.INFO, "tests.some_library", "info from the task's own library"),
        (logging.WARNING, "tests.some_library", "a warning"),
        # every viewer reads the job's log: the exception is named, its text and traceback are not
        (
            logging.ERROR,
            "tests.some_library",
            "an error with a traceback (KeyError; the details are in the server log)",
        ),
    ]
    assert "missing" not in logs[-1].message and "Traceback" not in logs[-1].message
    assert (row.error_count, row.warning_count) == (1, 1)


def test_debug_logs_are_captured_when_the_level_is_lowered(app, engine, redis_url, database_url, tmp_path):
    verbose = build_app(
        database_url,
        JOBMONITOR_REDIS_URL=redis_url,
        JOBMONITOR_QUEUE_NAMES=QUEUE_NAMES,
        JOBMONITOR_STORAGE_PATH=str(tmp_path),
        JOBMONITOR_LOG_LEVEL="DEBUG",
    )
    with pushed(verbose):
        job = jobmonitor.enqueue(logs_everything)
        run_worker(verbose)

    messages = [log.message for log in logs_of(job.id)]
    assert messages[0] == "debug is below the default level"
    assert len(messages) == 5


def test_logs_from_another_thread_are_not_captured(app, engine):
    job = jobmonitor.enqueue("tests.tasks.logs_from_threads")

    run_worker(app)

    completed(engine, job.id)
    assert [log.message for log in logs_of(job.id)] == ["from the task thread"]


def test_log_capture_is_removed_after_the_run(app, engine):
    root_handlers = list(logging.getLogger().handlers)
    root_level = logging.getLogger().level
    job = jobmonitor.enqueue(noop)

    run_worker(app)
    logging.getLogger("tests.some_library").warning("after the job")

    completed(engine, job.id)
    assert logging.getLogger().handlers == root_handlers
    assert logging.getLogger().level == root_level
    assert logs_of(job.id) == []


# -- files ----------------------------------------------------------------------------------------


def test_missing_input_file_fails_the_job_naming_the_available_ones(app, engine):
    job = jobmonitor.enqueue("tests.tasks.reads_input", "missing.csv", files={"present.csv": b"x", "other.txt": b"y"})

    run_worker(app)

    row = job_row(engine, job.id)
    assert row.status == JobStatus.FAILED
    assert "(FileNotInJob)" in row.error_message  # the text is the detail (failures.py)
    assert "FileNotInJob: " in row.error_detail
    assert "'missing.csv'" in row.error_detail
    assert "['present.csv', 'other.txt']" in row.error_detail


def test_input_file_not_in_job_raises_file_not_in_job(app):
    ctx = running_context(app, "tests.tasks.reads_input", "a.txt", files={"a.txt": b"a"})

    assert ctx.input_files == ["a.txt"]
    assert ctx.input_file("a.txt").read() == b"a"
    with pytest.raises(FileNotInJob, match=r"has no input file 'b\.txt'; it has \['a\.txt'\]"):
        ctx.input_file("b.txt")


def test_output_file_and_error_report_are_stored_and_listed(app, engine, worker_class):
    job = jobmonitor.enqueue(import_rows, bad_every=2, files={"rows.csv": b"a\nb\nc\nd\n"})

    run_worker(app, worker_class)

    completed(engine, job.id)
    storage = get_state(app).storage
    files = {f.kind: f for f in db.session.get(Job, job.id).files}
    assert set(files) == {"input", "output", "error_report"}
    report, output = files["error_report"], files["output"]
    assert (report.filename, report.content_type, report.size) == ("errors.csv", "text/csv", 3)
    assert storage.open(report.storage_key).read() == b"b\nd"
    assert (output.filename, output.content_type, output.size) == ("summary.txt", "text/plain", 4)
    assert storage.open(output.storage_key).read() == b"done"


def test_add_output_file_returns_the_file_id_and_takes_a_content_type(app):
    ctx = running_context(app, noop)

    file_id = ctx.add_output_file("data.bin", b"\x00\x01", content_type="application/x-thing")

    row = db.session.get(Job, ctx.job_id).files[0]
    assert (row.id, row.kind, row.content_type, row.size) == (file_id, "output", "application/x-thing", 2)


def test_add_output_file_with_an_unknown_kind_is_refused(app):
    ctx = running_context(app, noop)

    with pytest.raises(ValueError, match="kind"):
        ctx.add_output_file("x.txt", b"x", kind="input")


# -- checkpoints and resuming ----------------------------------------------------------------------


def test_checkpoint_is_saved_on_the_job_row(app, engine):
    job = jobmonitor.enqueue(checkpoints, count=4)

    run_worker(app)

    row = completed(engine, job.id)
    assert task_checkpoint(row) == {"next": 4}
    assert [s.name for s in subtasks_of(job.id)] == ["item 0", "item 1", "item 2", "item 3"]


def test_resumed_job_continues_from_its_checkpoint_without_repeating_subtasks(app, engine):
    job = jobmonitor.enqueue(dies_once, count=6, die_after=2)

    # the first attempt's work horse dies after item 2; the forking worker sees its horse die
    # without a recorded outcome, queues the resumable job again, and runs it to the end
    run_worker(app, Worker)

    row = completed(engine, job.id)
    assert "ended unexpectedly" in " ".join(line.message for line in logs_of(job.id))
    assert row.attempt == 2
    assert task_checkpoint(row) == {"prepare_finished_1": False, "prepare_finished_2": True, "next": 6}
    assert [s.name for s in subtasks_of(job.id)] == ["prepared"] + [f"item {i}" for i in range(6)]
    assert [(s.name, s.status, s.done) for s in steps_of(job.id)] == [
        ("Prepare", "completed", 1),
        ("Process", "completed", 6),
    ]


def test_resumable_task_holds_back_subtasks_recorded_after_the_last_checkpoint(app, engine):
    ctx = running_context(app, checkpoints)

    with ctx.step("Loop"):
        ctx.subtask("covered")
        ctx.save_checkpoint(next=1)
        ctx.subtask("not covered yet")
        ctx.flush(everything=False)  # what a periodic flush of a resumable task writes
        assert [s.name for s in subtasks_of(ctx.job_id)] == ["covered"]
        assert task_checkpoint(job_row(engine, ctx.job_id)) == {"next": 1}
        ctx.save_checkpoint(next=2)
        ctx.flush(everything=False)
        assert [s.name for s in subtasks_of(ctx.job_id)] == ["covered", "not covered yet"]

    assert [s.name for s in subtasks_of(ctx.job_id)] == ["covered", "not covered yet"]


# -- children -------------------------------------------------------------------------------------


def test_spawned_children_are_linked_to_their_parent_and_run(app, engine, worker_class):
    parent = jobmonitor.enqueue(spawns_children, count=3, user=("7", "Ann"))

    run_worker(app, worker_class)

    completed(engine, parent.id)
    children = list(db.session.scalars(sa.select(Job).where(Job.parent_id == parent.id).order_by(Job.name)))
    assert [c.name for c in children] == ["child 0", "child 1", "child 2"]
    for value, child in enumerate(children):
        assert child.status == JobStatus.COMPLETED, child.error_message
        assert (child.root_id, child.run_by_id, child.run_by_name) == (parent.id, "7", "Ann")
        assert child.task == "tests.tasks.records_param"
        assert task_checkpoint(child) == {"value": value}


def test_grandchildren_share_the_root(app, engine):
    root = jobmonitor.enqueue(spawns_nested, 2, user=("8", "Bea"), is_system=True)

    run_worker(app)

    jobs = {j.name: j for j in db.session.scalars(sa.select(Job))}
    assert set(jobs) == {"Spawns nested", "depth 1", "depth 0"}
    child, grandchild = jobs["depth 1"], jobs["depth 0"]
    assert (child.parent_id, child.root_id) == (root.id, root.id)
    assert (grandchild.parent_id, grandchild.root_id) == (child.id, root.id)
    assert all(j.status == JobStatus.COMPLETED for j in jobs.values())
    assert all(j.run_by_id == "8" and j.is_system for j in jobs.values())


def test_spawn_checks_the_childs_arguments(app):
    ctx = running_context(app, noop)

    with pytest.raises(InvalidJobArguments):
        ctx.spawn(records_param, no_such_parameter=1)

    assert count_rows(db.engine, job_table) == 1


# -- how often it writes ---------------------------------------------------------------------------


def test_tight_advance_loop_updates_the_job_row_at_a_bounded_rate(app, engine):
    interval = get_state(app).settings.flush_interval
    job = jobmonitor.enqueue(advances_for, 1.5)

    with recorded_statements(engine) as statements:
        started = time.monotonic()
        run_worker(app, SimpleWorker)
        elapsed = time.monotonic() - started

    row = completed(engine, job.id)
    job_updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE JOBMONITOR_JOB ")]
    assert row.progress_done > 10_000  # the loop was tight: a write per advance would be visible
    # claim + step start + step end + finish, and one write per interval in between; plus the
    # four statements the worker compiles at start-up against no job (runner.warm_up)
    assert len(job_updates) <= elapsed / interval + 8 + len(WARM_UP_ACTIONS), len(job_updates)


def test_on_sqlite_a_due_write_waits_for_the_tasks_commit_and_redis_shows_the_progress_meanwhile(app, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has no single writer: its writes never wait for the task's")
    from flask_jobmonitor.records.live import read_live

    tasks_module.scratch_table.create(engine, checkfirst=True)
    state = get_state(app)
    ctx = running_context(app, tasks_module.saves_in_one_transaction)
    with ctx.running():
        step = ctx.step("Save", total=10)
        db.session.execute(sa.insert(tasks_module.scratch_table).values(job_id=ctx.job_id, item=0))
        time.sleep(state.settings.flush_interval)  # the next advance() finds a write due
        with recorded_statements(engine) as statements:
            step.advance(4)
        # not even tried (it would wait for the task's own lock): shown from Redis instead
        assert not [s for s in statements if "jobmonitor_job" in s], statements
        assert job_row(engine, ctx.job_id).progress_done == 0
        assert read_live(state.redis, [ctx.job_id])[ctx.job_id].progress_done == 4
        db.session.commit()  # the lock is free: the overdue write is made at once
        assert job_row(engine, ctx.job_id).progress_done == 4
        assert read_live(state.redis, [ctx.job_id]) == {}
        step.advance()
    db.session.remove()


# -- fencing --------------------------------------------------------------------------------------


def test_context_whose_attempt_was_superseded_cannot_write(app, engine):
    ctx = running_context(app, noop)
    with engine.begin() as connection:
        connection.execute(sa.update(job_table).where(job_table.c.id == ctx.job_id).values(attempt=2))
    before = job_row(engine, ctx.job_id)

    ctx.subtask("late", status="error")
    with pytest.raises(RunSuperseded, match=f"job {ctx.job_id}: attempt 1"):
        ctx.flush()
    with pytest.raises(RunSuperseded):
        ctx.step("New step")
    with pytest.raises(RunSuperseded):
        ctx.add_output_file("late.txt", b"late")

    assert job_row(engine, ctx.job_id) == before
    assert count_rows(engine, subtask_table) == 0
    assert db.session.get(Job, ctx.job_id).files == []


def test_run_superseded_while_running_leaves_the_new_attempts_record_alone(app, engine):
    job = jobmonitor.enqueue("tests.tasks.superseded_while_running", user=("7", "Ann"))

    run_worker(app)

    row = job_row(engine, job.id)
    assert (row.status, row.attempt, row.ended_at, row.error_message) == ("running", 2, None, None)
    assert subtasks_of(job.id) == []
    assert db.session.get(Job, job.id) is not None
    assert count_rows(engine, notification_table) == 0


def test_deleted_job_supersedes_its_run(app, engine):
    ctx = running_context(app, noop)
    with engine.begin() as connection:
        connection.execute(sa.delete(job_table).where(job_table.c.id == ctx.job_id))

    ctx.subtask("orphan")
    with pytest.raises(RunSuperseded):
        ctx.flush()


def test_a_parent_asked_to_stop_while_it_waits_stops_even_when_its_children_ended_first(app, engine):
    """control.stop stops a parent's children before it signals the parent's run: when they all
    end before the run looks again, the children's end must not read as the parent's completion
    (CI saw a stopped family's parent end ``completed``)."""
    state = get_state(app)
    ctx = running_context(app, tasks_module.noop)
    child = add_job(engine, parent_id=ctx.job_id, root_id=ctx.job_id, status="queued", task="tests.tasks.noop")

    control.stop(state, ctx.job_id, user=("1", "Ops"))
    assert job_row(engine, child).status == "cancelled"

    with pytest.raises(StopRequested):
        ctx.wait_for_children(poll_seconds=0.01, timeout=5)
