"""Tracked tasks used by the tests, registered on the test app's JobMonitor."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from typing import Any

import sqlalchemy as sa

from flask_jobmonitor import JobContext, JobFailed

from .support.extensions import jobmonitor

foreign_logger = logging.getLogger("tests.some_library")


@jobmonitor.task(type="test")
def noop(ctx: JobContext) -> None:
    """Does nothing: measures the bare cost of a tracked job."""


@jobmonitor.task(type="import", steps=["Read file", "Validate", "Save"])
def import_rows(ctx: JobContext, bad_every: int = 0) -> None:
    """Reads the input CSV, rejects every ``bad_every``-th row, writes an error report."""
    lines = ctx.input_file("rows.csv").read().decode().splitlines()
    with ctx.step("Read file", total=len(lines)) as step:
        for _ in lines:
            step.advance()
            step.count("read")
    rejected = []
    with ctx.step("Validate", total=len(lines)) as step:
        for number, line in enumerate(lines, start=1):
            if bad_every and number % bad_every == 0:
                ctx.subtask(f"row {number}", status="error", message=f"bad value {line!r}")
                step.count("rejected")
                rejected.append(line)
            else:
                ctx.subtask(f"row {number}", status="done")
                step.count("accepted")
            step.advance()
    with ctx.step("Save") as step:
        ctx.log.info("saved %d rows", len(lines) - len(rejected))
        step.count("created", len(lines) - len(rejected))
    if rejected:
        ctx.add_error_report("errors.csv", "\n".join(rejected).encode())
    ctx.add_output_file("summary.txt", io.BytesIO(b"done"))


@jobmonitor.task(type="test")
def fails(ctx: JobContext, message: str = "boom") -> None:
    """Raises after logging a little, in a step."""
    with ctx.step("Work", total=10) as step:
        step.advance(3)
        ctx.log.warning("about to fail")
        raise ValueError(message)


#: What a database error tells: the statement, its parameters and a server path (failures.py).
INTERNAL_ERROR_TEXT = (
    "(sqlite3.IntegrityError) NOT NULL constraint failed: product.price\n"
    "[SQL: INSERT INTO product (sku, price) VALUES (?, ?)]\n[parameters: ('SECRET-SKU', nan)] "
    "in /srv/secret-app/tasks.py"
)


@jobmonitor.task(type="test")
def fails_revealing(ctx: JobContext) -> None:
    """Raises an exception whose text holds SQL, parameters and a path, in a step."""
    with ctx.step("Work", total=10) as step:
        step.advance(3)
        raise RuntimeError(INTERNAL_ERROR_TEXT)


@jobmonitor.task(type="test")
def fails_for_people(ctx: JobContext, message: str = "the import failed at line 17: price is not a number") -> None:
    """Fails with a message meant for every viewer of the job."""
    with ctx.step("Work"):
        raise JobFailed(message)


@jobmonitor.task(type="test")
def logs_everything(ctx: JobContext) -> None:
    ctx.log.debug("debug is below the default level")
    ctx.log.info("info from ctx.log")
    foreign_logger.info("info from the task's own library")
    foreign_logger.warning("a warning")
    try:
        raise KeyError("missing")
    except KeyError:
        foreign_logger.exception("an error with a traceback")


@jobmonitor.task(type="test", resumable=True)
def checkpoints(ctx: JobContext, count: int = 5) -> None:
    start = ctx.checkpoint.get("next", 0)
    with ctx.step("Loop", total=count) as step:
        for i in range(start, count):
            ctx.subtask(f"item {i}")
            step.advance()
            ctx.save_checkpoint(next=i + 1)


@jobmonitor.task(type="test")
def many_subtasks(ctx: JobContext, count: int = 10000) -> None:
    with ctx.step("Record", total=count) as step:
        for i in range(count):
            ctx.subtask(f"item {i}", status="warning" if i % 1000 == 0 else "done")
            step.advance()


@jobmonitor.task(type="test")
def spawns_children(ctx: JobContext, count: int = 3) -> None:
    for i in range(count):
        ctx.spawn(records_param, value=i, name=f"child {i}")


@jobmonitor.task(type="test")
def records_param(ctx: JobContext, value: Any = None) -> None:
    ctx.save_checkpoint(value=value)


@jobmonitor.task(type="test")
def waits_for_completion_of(ctx: JobContext, other_id: str, timeout: float = 10.0) -> None:
    """Polls another job's row until it reads ``completed`` (or ``timeout`` passes) and saves
    the status it saw last: when a worker records the end of the job before this one."""
    from flask_jobmonitor.records.models import job_table

    from .support.extensions import db

    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        with db.engine.connect() as connection:
            status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == other_id)).scalar()
        if status == "completed":
            break
        time.sleep(0.02)
    ctx.save_checkpoint(seen=status)


@jobmonitor.task(type="test")
def backend_pid(ctx: JobContext) -> None:
    """Records the database backend of the process that ran it (fork-safety test)."""
    import os

    from .support.extensions import db

    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            value = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        elif connection.dialect.name in ("mysql", "mariadb"):
            value = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        else:
            value = None
    ctx.save_checkpoint(backend=value, pid=os.getpid())


@jobmonitor.task(type="test", steps=["Declared"])
def grows_steps(ctx: JobContext) -> None:
    """One declared step and one that only appears at run time."""
    with ctx.step("Declared") as step:
        step.set_total(4)
        step.advance()
        step.advance(3)
        step.count("created")
        step.count("created", 2)
        step.count("skipped")
    with ctx.step("Added at run time", total=2) as step:
        step.advance(2)


@jobmonitor.task(type="test")
def greets(ctx: JobContext, name: str) -> None:
    """Has a parameter called ``name``, which clashes with enqueue's own ``name`` option."""
    ctx.save_checkpoint(greeted=name)


@jobmonitor.task(type="test", timeout=321, category="imports", description="Task with options")
def with_options(ctx: JobContext) -> None:
    """Declares a timeout, a category and a description."""


@jobmonitor.task(type="test")
def logs_from_threads(ctx: JobContext) -> None:
    """Logs from its own thread and from a helper thread."""

    def helper() -> None:
        foreign_logger.warning("from a helper thread")

    thread = threading.Thread(target=helper)
    thread.start()
    thread.join()
    foreign_logger.warning("from the task thread")


@jobmonitor.task(type="test")
def reads_input(ctx: JobContext, filename: str) -> None:
    """Reads one input file and remembers its text and the names of all input files."""
    content = ctx.input_file(filename).read().decode()
    ctx.save_checkpoint(content=content, names=ctx.input_files)


@jobmonitor.task(type="test", steps=["Prepare", "Process"], resumable=True)
def dies_once(ctx: JobContext, count: int = 5, die_after: int = 2) -> None:
    """Resumable. Its first attempt kills its own process (a work horse dying mid-run) after
    item ``die_after``, once the checkpoint and the subtasks before it were flushed and one more
    subtask was recorded after it."""
    with ctx.step("Prepare") as step:
        ctx.save_checkpoint(**{f"prepare_finished_{ctx.attempt}": step.finished})
        if not step.finished:
            ctx.subtask("prepared")
            step.advance()
    with ctx.step("Process", total=count) as step:
        for i in range(ctx.checkpoint.get("next", 0), count):
            ctx.subtask(f"item {i}")
            step.advance()
            ctx.save_checkpoint(next=i + 1)
            if ctx.attempt == 1 and i == die_after:
                ctx.subtask(f"item {i + 1}")  # done, but the checkpoint that covers it never is
                ctx.flush(everything=False)  # what a periodic flush of a resumable task writes
                os._exit(1)


@jobmonitor.task(type="test")
def spawns_nested(ctx: JobContext, depth: int) -> None:
    """Spawns a child that spawns a child ... ``depth`` levels down."""
    if depth > 0:
        ctx.spawn(spawns_nested, depth - 1, name=f"depth {depth - 1}")


@jobmonitor.task(type="test")
def advances_for(ctx: JobContext, seconds: float) -> None:
    """Calls ``step.advance()`` in a tight loop for ``seconds``."""
    deadline = time.monotonic() + seconds
    with ctx.step("Spin") as step:
        while time.monotonic() < deadline:
            step.advance()


@jobmonitor.task(type="test")
def superseded_while_running(ctx: JobContext) -> None:
    """Another attempt takes the job over while this run still works on it."""
    from flask_jobmonitor.records.models import job_table

    from .support.extensions import db

    with db.engine.begin() as connection:
        connection.execute(
            sa.update(job_table).where(job_table.c.id == ctx.job_id).values(attempt=job_table.c.attempt + 1)
        )
    ctx.subtask("written after losing the job")
    ctx.flush()


#: A host table the tasks below write to through the host's ``db.session`` (created by the test).
scratch_table = sa.Table(
    "jm_test_scratch",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.String(36)),
    sa.Column("item", sa.Integer),
)


def release_key(job_id: str) -> str:
    """The Redis key a test sets to let one of the tasks below end its step."""
    return f"jm-test-release:{job_id}"


def _saves_until_released(ctx: JobContext, commit_every: int, row_delay: float, timeout: float) -> None:
    from flask_jobmonitor.state import get_state

    from .support.extensions import db

    redis = get_state().redis
    deadline = time.monotonic() + timeout
    with ctx.step("Save", total=1_000_000) as step:
        while not redis.exists(release_key(ctx.job_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not released within {timeout} s")
            # the write comes before advance(): every tick finds the task's write lock taken
            db.session.execute(sa.insert(scratch_table).values(job_id=ctx.job_id, item=step.done))
            step.advance()
            if commit_every and step.done % commit_every == 0:
                db.session.commit()
            time.sleep(row_delay)
        db.session.commit()


@jobmonitor.task(type="test", steps=["Save"])
def saves_in_one_transaction(ctx: JobContext, row_delay: float = 0.01, timeout: float = 60.0) -> None:
    """Writes a row per item through ``db.session`` and commits only when the step ends (one
    write transaction held open for the whole step), until the test sets ``release_key``."""
    _saves_until_released(ctx, 0, row_delay, timeout)


@jobmonitor.task(type="test", steps=["Save"])
def saves_in_batches(ctx: JobContext, commit_every: int = 10, row_delay: float = 0.01, timeout: float = 60.0) -> None:
    """Like ``saves_in_one_transaction`` but commits every ``commit_every`` rows; each commit is
    followed at once by the next row's write, so the lock is free only between the two."""
    _saves_until_released(ctx, commit_every, row_delay, timeout)


@jobmonitor.task(type="test", steps=["Write", "Commit"])
def writes_across_a_step(ctx: JobContext) -> None:
    """Writes a row through ``db.session`` in one step and commits it in the next: the end of the
    first step (and its signal) comes between the write and its commit."""
    from .support.extensions import db

    with ctx.step("Write"):
        db.session.execute(sa.insert(scratch_table).values(job_id=ctx.job_id, item=1))
    with ctx.step("Commit"):
        db.session.commit()


@jobmonitor.task(type="test", launch_permission="payroll.run")
def payroll(ctx: JobContext, month: str) -> None:
    """A task launched through the API only with its own permission (``payroll.run``)."""
    ctx.save_checkpoint(month=month)


def plain_job_reading_status_of(other_id: str) -> str | None:
    """A plain RQ job (no tracked task): the status of another job's row while it runs (the
    worker pushes the app context around every job)."""
    from flask_jobmonitor.records.models import job_table

    from .support.extensions import db

    with db.engine.connect() as connection:
        status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == other_id)).scalar()
    return str(status) if status is not None else None
