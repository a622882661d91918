"""The :class:`JobContext` a running task receives: steps, progress, subtasks, logs, files,
checkpoints and child jobs.

Everything a task reports is buffered in memory and written in one transaction at most once
per ``JOBMONITOR_FLUSH_INTERVAL`` (and at step boundaries and the end of the run). That keeps
``step.advance()`` as cheap as a counter increment and a clock read, and bounds the database
load of a job to ~2 writes per second however tight its loop is.

Every write is fenced by the run's ``attempt`` number: if this run was given up for dead and
the job resumed elsewhere, the first write of the old run finds no row to update and raises
:class:`RunSuperseded`, so an orphaned process cannot overwrite its successor's record.

Progress keeps moving on the pages while SQL cannot be written. On SQLite one connection
writes at a time, and the task's own ``db.session`` holds that lock from its first write until
it commits; the context writes from the task's thread, so waiting for the lock would wait for
itself. The rules:

- A periodic write on SQLite never waits for the lock: while the task's session (of the class
  of the host's ``db.session``, followed through its events while the task runs) holds
  uncommitted writes, the write is not even tried; otherwise it waits at most 50 ms and gives
  way. A full buffer (``JOBMONITOR_FLUSH_MAX_ROWS``) waits for the commit too.
- A write that was due and did not happen ("overdue") is made right after the task's session
  commits, when the lock is free: a task that commits in batches has its progress in SQL
  within one flush interval plus one batch.
- While a write is overdue, each flush interval publishes the progress to Redis instead
  (:mod:`flask_jobmonitor.records.live`: one ``SET``; the pages overlay it), so even a task holding
  one transaction open for a whole step shows that step moving. The next SQL write deletes it.
  While SQL writes succeed there is no Redis round trip: the per-job cost is unchanged.
- After a write gave way for another reason (another process writing, a database outage) SQL
  is tried again after ``max(2 s, JOBMONITOR_FLUSH_INTERVAL)`` or at the task's next commit.
"""

from __future__ import annotations

import logging
import mimetypes
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from redis.exceptions import RedisError

from .. import events
from ..errors import FileNotInJob, PauseRequested, RunSuperseded, StopRequested
from ..jobs.enqueue import JobRequest, enqueue_job
from ..keys import control_key
from ..records import live
from ..records.bulkwrite import insert_rows
from ..records.dialects import updates_return
from ..records.models import STEP_STATUSES, Job, file_table, job_table, log_table, step_table, subtask_table
from ..records.status import FINISHED_STATUSES, JobStatus
from ..timeutil import utcnow
from .retry import TRANSIENT_ERRORS, retry_db

if TYPE_CHECKING:
    from ..state import JobMonitorState
    from ..tasks import TrackedTask

#: The logger ``ctx.log`` returns. Records of any logger emitted by the task's thread are
#: captured too; this one just saves the task author from naming one.
TASK_LOGGER_NAME = "flask_jobmonitor.task"
#: Subtask statuses counted as errors and as warnings on the job.
ERROR_SUBTASK_STATUSES = frozenset({"error", "failed"})
WARNING_SUBTASK_STATUSES = frozenset({"warning"})
_MAX_MESSAGE = 65536
# Loggers whose records describe the machinery running the job, not the job itself.
_IGNORED_LOGGERS = ("rq.", "flask_jobmonitor.internal", "sqlalchemy.")

_STOP_STATUSES = frozenset({JobStatus.STOPPING.value, JobStatus.STOPPED.value})
#: A step's statuses once it has ended (a step running when its job is stopped ends "stopped").
_STEP_ENDS = frozenset(STEP_STATUSES) - {"pending", "running"}
# a force stop ends the record as "stopped" while a SimpleWorker's task still runs to its tick
# how long a periodic flush waits for SQLite's write lock before keeping its rows for later
_IMPATIENT_SQLITE_MS = 50
# after a periodic flush gave way, SQL is not tried again (except at a commit of the task's
# session) for this long: each try may cost the task _IMPATIENT_SQLITE_MS
_RETRY_SQL_SECONDS = 2.0
_OWNED_STATUSES = (JobStatus.RUNNING.value, JobStatus.STOPPING.value, JobStatus.STOPPED.value)
internal_log = logging.getLogger("flask_jobmonitor.internal.context")


#: Key in the stored checkpoint under which the context keeps each step's progress at the
#: checkpoint; ``ctx.checkpoint`` never shows it.
_STEPS_KEY = "_jobmonitor_steps"


@dataclass(frozen=True)
class RunInfo:
    """What the runner learnt about the job when it claimed it."""

    job_id: str
    attempt: int
    name: str
    task: str
    params: Mapping[str, Any]
    checkpoint: Mapping[str, Any] | None
    root_id: str | None
    run_by_id: str | None
    run_by_name: str | None
    is_system: bool
    run_at_url: str | None
    parent_id: str | None = None
    #: retries its task's retry policy granted before this run (tasks.RetryPolicy)
    retries: int = 0
    #: when this run claimed the job, and the worker that did
    claimed_at: datetime | None = None
    worker_name: str | None = None


class Step:
    """One step of the running job. Use it as a context manager; call :meth:`advance` per item."""

    __slots__ = (
        "_ctx",
        "_written",
        "counters",
        "done",
        "ended_at",
        "id",
        "name",
        "position",
        "started_at",
        "status",
        "total",
    )

    def __init__(
        self,
        ctx: JobContext,
        step_id: int,
        position: int,
        name: str,
        status: str,
        done: int,
        total: int | None,
        counters: dict[str, int],
    ) -> None:
        self._ctx = ctx
        self.id = step_id
        self.position = position
        self.name = name
        self.status = status
        self.done = done
        self.total = total
        self.counters = counters
        self.started_at: datetime | None = None  # set when this run starts or ends the step
        self.ended_at: datetime | None = None
        self._written: tuple[Any, ...] = self._snapshot()

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            self.status,
            self.done,
            self.total,
            tuple(sorted(self.counters.items())),
            self.started_at,
            self.ended_at,
        )

    def advance(self, amount: int = 1) -> None:
        """Count ``amount`` more items done. Cheap enough to call per row of a large file."""
        self.done += amount
        if monotonic() >= self._ctx._next_tick:
            self._ctx._tick()

    def set_total(self, total: int | None) -> None:
        """Say how many items this step has (once known), so progress can be shown as a bar."""
        self.total = total

    def count(self, counter: str, amount: int = 1) -> None:
        """Add to a named counter of this step (``read``, ``created``, ``skipped``...)."""
        self.counters[counter] = self.counters.get(counter, 0) + amount

    @property
    def finished(self) -> bool:
        """True if an earlier run of this job completed this step (a resumed job skips it)."""
        return self.status == "completed"

    def __enter__(self) -> Step:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            # stop, pause, superseded or interpreter exit: the step is not finished; the runner
            # records it as stopped, and a resumed run continues it
            return
        self._ctx._end_step(self, failed=exc_type is not None)


class _CaptureHandler(logging.Handler):
    """Copies log records emitted by the task's thread into the job's log buffer.

    Every viewer of the job reads its log, so a record's exception (``log.exception``,
    ``exc_info=True``, in the task or in any library it calls) is named by its class only: its
    text and traceback may hold SQL, parameters and paths (failures.py). The record goes on to
    the server's own handlers whole, traceback included."""

    def __init__(self, ctx: JobContext, level: int) -> None:
        super().__init__(level)
        self._ctx = ctx
        self._thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self._thread or record.name.startswith(_IGNORED_LOGGERS):
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message = f"{message} ({record.exc_info[0].__name__}; the details are in the server log)"
        except Exception:  # a bad format string in the task's own logging must not kill the job
            message = f"{record.msg!r} {record.args!r}"
        self._ctx._add_log(record.levelno, record.name, message)


_opened_level: int | None = None


def open_log_levels(level: int) -> None:
    """Let records of ``level`` and above reach the capture handler: the task logger gets that
    level and the root logger is lowered to it if it is higher (so a library's INFO lines are
    captured). Done once per process: changing levels empties every logger's cache, which cost
    more than the rest of a small job. A forking worker does it before its first fork
    (runner.warm_up), so that its horses inherit the open levels."""
    global _opened_level
    if _opened_level is not None and _opened_level <= level:
        return
    root = logging.getLogger()
    if root.level > level or (root.level == logging.NOTSET and level < logging.WARNING):
        root.setLevel(level)
    logging.getLogger(TASK_LOGGER_NAME).setLevel(level)
    _opened_level = level


# The context whose task runs in this thread (set by JobContext.running), for the session events.
_running = threading.local()
_followed_session_classes: set[type[Any]] = set()


def _running_context() -> JobContext | None:
    return getattr(_running, "ctx", None)


def _new_id(result: sa.CursorResult[Any]) -> int:
    """The id the database gave the row an INSERT wrote (RETURNING where the database has it,
    else the cursor's last row id: MySQL)."""
    key = result.inserted_primary_key
    assert key is not None, "an INSERT of one row has its key"
    return int(key[0])


def follow_task_sessions(state: JobMonitorState) -> None:
    """On SQLite, follow the writes and commits of the host's task sessions (the class of its
    Flask-SQLAlchemy ``db.session``). Called at worker start-up, so that forked work horses
    inherit the listeners, and again (a no-op by then) by each run."""
    if state.engine.dialect.name != "sqlite":
        return
    session_class = getattr(getattr(state.db.session, "session_factory", None), "class_", None)
    if session_class is not None:
        _follow_task_sessions(session_class)


def _follow_task_sessions(session_class: type[Any]) -> None:
    """Listen (once per process and class) to the task sessions' writes and commits; each event
    is passed to the context running in the same thread, if any. Costs a thread-local read per
    flush, statement and commit of that class's sessions, in processes that run jobs."""
    if session_class in _followed_session_classes:
        return
    _followed_session_classes.add(session_class)

    def after_flush(session: Any, _flush_context: Any) -> None:
        ctx = _running_context()
        if ctx is not None:
            ctx._task_session_wrote(session)

    def do_orm_execute(execute_state: Any) -> None:
        if execute_state.is_insert or execute_state.is_update or execute_state.is_delete:
            ctx = _running_context()
            if ctx is not None:
                ctx._task_session_wrote(execute_state.session)

    def after_commit(_session: Any) -> None:
        ctx = _running_context()
        if ctx is not None:
            ctx._task_session_committed()

    def after_transaction_end(_session: Any, transaction: Any) -> None:
        ctx = _running_context()
        if ctx is not None and transaction.parent is None:
            ctx._task_writing = False  # committed, rolled back or closed: the lock is released

    sa.event.listen(session_class, "after_flush", after_flush)
    sa.event.listen(session_class, "do_orm_execute", do_orm_execute)
    sa.event.listen(session_class, "after_commit", after_commit)
    sa.event.listen(session_class, "after_transaction_end", after_transaction_end)


class JobContext:
    """Handed to a tracked task as its first argument while it runs in a worker.

    Attributes a task reads: ``job_id``, ``params``, ``checkpoint`` (dict, empty on a first
    run), ``user_id``, ``log`` (a :class:`logging.Logger`), ``attempt`` (runs so far, resumes
    and recoveries included), ``retries`` (retries granted before this run: 0 on the first try).
    """

    def __init__(self, state: JobMonitorState, run: RunInfo, task: TrackedTask) -> None:
        self._state = state
        self._engine = state.engine
        self._interval = state.settings.flush_interval
        self._max_rows = state.settings.flush_max_rows
        self._sqlite = self._engine.dialect.name == "sqlite"
        self._retry_seconds = state.settings.db_retry_seconds
        self._busy_timeout_ms = state.settings.sqlite_busy_timeout_ms
        self._log_level = state.settings.log_level
        self.job_id = run.job_id
        self.attempt = run.attempt
        #: retries its task's retry policy granted before this run (0: the first try; tasks.RetryPolicy)
        self.retries = run.retries
        self.task = task
        self.run = run
        self.params = run.params
        self.user_id = run.run_by_id
        stored = dict(run.checkpoint or {})
        self._checkpoint_steps: dict[str, int] = stored.pop(_STEPS_KEY, None) or {}
        self.checkpoint: dict[str, Any] = stored
        self.log = logging.getLogger(TASK_LOGGER_NAME)
        self._redis = state.redis
        self._control_key = control_key(run.job_id)
        self._stop_interval = state.settings.stop_check_interval
        self._next_flush = monotonic() + self._interval
        self._next_control_check = monotonic() + self._stop_interval
        self._next_tick = 0.0
        self._schedule_next_tick()
        self._control_unreadable = False
        self._ending = False
        self.pause_requested = False
        self.heartbeat: Any = None  # set by the runner; tells when recovery gave the job away
        self._steps: dict[str, Step] | None = None
        self._current: Step | None = None
        self._subtasks: list[dict[str, Any]] = []
        self._subtasks_at_checkpoint = 0
        self._logs: list[dict[str, Any]] = []
        self._errors = 0
        self._warnings = 0
        self._checkpoint_dirty = False
        self._flushing = False
        # SQLite only: the task's session holds uncommitted writes, so it holds the write lock
        self._task_writing = False
        # a write of the progress was due and did not happen; the task's next commit makes it
        self._sql_overdue = False
        self._retry_sql_at = 0.0  # after a write gave way: no periodic SQL try before this
        self._live_published = False
        self._live_unwritable = False
        # families: whether this run spawned children its task has not waited for (a job run
        # again after a stop, pause or crash may have children from an earlier run)
        self._unawaited_children = run.attempt > 1
        #: set when the task asked to be cancelled rather than stopped (control.cancel)
        self.cancel_requested = False

    # -- steps and progress ---------------------------------------------------------------------

    def step(self, name: str, total: int | None = None) -> Step:
        """Start the step called ``name`` (declared on the task, or new) and return it.

        Use as ``with ctx.step("Validate", total=n) as step:``; leaving the block marks the
        step completed (or failed if an exception escapes) and writes it at once.
        """
        # both need the database: through a short outage they wait (JOBMONITOR_DB_RETRY_SECONDS)
        steps = retry_db(self._load_steps, self._retry_seconds, "loading the steps")
        step = steps.get(name)
        if step is None:
            position = len(steps) + 1
            step = retry_db(lambda: self._create_step(name, position), self._retry_seconds, "creating a step")
            steps[name] = step
        if total is not None:
            step.total = total
        if step.status != "completed":
            step.status = "running"
            step.started_at = step.started_at or utcnow()
            step.ended_at = None
        self._current = step
        self._flush_at_step_boundary()
        return step

    def _end_step(self, step: Step, failed: bool) -> None:
        if step.status == "running":
            step.status = "failed" if failed else "completed"
            step.ended_at = utcnow()
        if self._current is step and not self._ending:
            self._flush_at_step_boundary()

    def _flush_at_step_boundary(self) -> None:
        """Show a step starting or ending at once, unless SQL must give way (on SQLite: the
        task's own open transaction); then Redis shows it and the next commit or tick writes it."""
        self._flush_or_publish(everything=True, honour_stop=not self.task.resumable, at_boundary=True)

    def _load_steps(self) -> dict[str, Step]:
        if self._steps is None:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    sa.select(step_table).where(step_table.c.job_id == self.job_id).order_by(step_table.c.position)
                ).all()
            self._steps = {}
            for r in rows:
                done = r.done
                if r.status != "completed" and str(r.position) in self._checkpoint_steps:
                    # a resumed run continues from the checkpoint: progress made after it is redone
                    done = self._checkpoint_steps[str(r.position)]
                step = Step(self, r.id, r.position, r.name, r.status, done, r.total, dict(r.counters or {}))
                self._steps[r.name] = step
        return self._steps

    def _create_step(self, name: str, position: int) -> Step:
        with self._engine.begin() as connection:
            self._fence(connection, {"step_count": position})
            step_id = _new_id(
                connection.execute(
                    sa.insert(step_table).values(
                        job_id=self.job_id, position=position, name=name, status="pending", done=0, counters={}
                    )
                )
            )
        return Step(self, step_id, position, name, "pending", 0, None, {})

    # -- subtasks, logs, checkpoints --------------------------------------------------------------

    def subtask(self, name: str, status: str = "done", message: str | None = None) -> None:
        """Record one action performed (e.g. ``"row 17", "rejected", "missing SKU"``).

        Statuses ``error``/``failed`` count as errors of the job, ``warning`` as warnings.
        """
        self._subtasks.append(
            {
                "job_id": self.job_id,
                "step_id": self._current.id if self._current else None,
                "name": str(name)[:255],
                "status": status[:32],
                "message": None if message is None else str(message)[:_MAX_MESSAGE],
                "created_at": utcnow(),
            }
        )
        if status in ERROR_SUBTASK_STATUSES:
            self._errors += 1
        elif status in WARNING_SUBTASK_STATUSES:
            self._warnings += 1
        # a full buffer is written at once, unless that would wait for the task's own lock
        if len(self._subtasks) >= self._max_rows and not self._task_writing:
            self.flush(everything=True)
        elif monotonic() >= self._next_tick:
            self._tick()

    def _add_log(self, level: int, logger: str, message: str) -> None:
        self._logs.append(
            {
                "job_id": self.job_id,
                "step_id": self._current.id if self._current else None,
                "created_at": utcnow(),
                "level": level,
                "logger": logger[:255],
                "message": message[:_MAX_MESSAGE],
            }
        )
        if level >= logging.ERROR:
            self._errors += 1
        elif level >= logging.WARNING:
            self._warnings += 1
        if self._flushing:
            return
        if len(self._logs) >= self._max_rows and not self._task_writing:
            self.flush(everything=True)
        elif monotonic() >= self._next_tick:
            self._tick()

    def save_checkpoint(self, **values: Any) -> None:
        """Remember how far a resumable task got; a resumed run reads it from ``ctx.checkpoint``.

        Values must be JSON. The checkpoint is written together with the subtasks recorded
        before it, so a resumed run neither loses nor repeats them.
        """
        self.checkpoint.update(values)
        self._checkpoint_dirty = True
        self._subtasks_at_checkpoint = len(self._subtasks)
        self._checkpoint_steps = {str(step.position): step.done for step in (self._steps or {}).values()}
        if monotonic() >= min(self._next_flush, self._next_control_check):
            self._tick(at_checkpoint=True)

    # -- files -------------------------------------------------------------------------------------

    @property
    def input_files(self) -> list[str]:
        """Names of the files given to this job at enqueue time."""
        return [row.filename for row in self._file_rows("input")]

    def input_file(self, filename: str) -> IO[bytes]:
        """Open an input file given to this job (binary; wrap in ``io.TextIOWrapper`` for text)."""
        for row in self._file_rows("input"):
            if row.filename == filename:
                return self._state.storage.open(row.storage_key)
        raise FileNotInJob(f"job {self.job_id} has no input file {filename!r}; it has {self.input_files}")

    def add_output_file(
        self, filename: str, data: bytes | IO[bytes], content_type: str | None = None, kind: str = "output"
    ) -> int:
        """Store a file the job produced and list it on the job; return the file's id."""
        if kind not in ("output", "error_report"):
            raise ValueError(f"kind must be 'output' or 'error_report', got {kind!r}")
        key, size = self._state.storage.save(self.job_id, data)
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        with self._engine.begin() as connection:
            self._fence(connection, {})
            return _new_id(
                connection.execute(
                    sa.insert(file_table).values(
                        job_id=self.job_id,
                        kind=kind,
                        filename=filename[:255],
                        content_type=content_type,
                        size=size,
                        storage_key=key,
                        created_at=utcnow(),
                    )
                )
            )

    def add_error_report(self, filename: str, data: bytes | IO[bytes], content_type: str | None = None) -> int:
        """Store the job's error report (e.g. the rejected rows as CSV); return the file's id."""
        return self.add_output_file(filename, data, content_type, kind="error_report")

    def _file_rows(self, kind: str) -> list[Any]:
        table = file_table
        with self._engine.connect() as connection:
            return list(
                connection.execute(
                    sa.select(table.c.filename, table.c.storage_key)
                    .where(table.c.job_id == self.job_id, table.c.kind == kind)
                    .order_by(table.c.id)
                ).all()
            )

    # -- children ----------------------------------------------------------------------------------

    def spawn(
        self,
        task: Any,
        *args: Any,
        name: str | None = None,
        description: str | None = None,
        task_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Queue a child job of this one (same user; ``parent_id`` and ``root_id`` set)."""
        # a parent asked to stop spawns no more children: this is a checkpoint for every task
        with self._engine.begin() as connection:
            if self._fence(connection, {}) in _STOP_STATUSES and not self._ending:
                raise StopRequested(self.job_id)
        parent = Job(
            id=self.job_id,
            parent_id=self.run.parent_id,
            root_id=self.run.root_id,
            run_by_id=self.run.run_by_id,
            run_by_name=self.run.run_by_name,
            is_system=self.run.is_system,
            run_at_url=self.run.run_at_url,
        )
        request = JobRequest(
            task=self._state.tasks.get(task),
            args=args,
            kwargs={**kwargs, **(task_kwargs or {})},
            name=name,
            description=description,
            parent=parent,
        )
        self._unawaited_children = True
        return enqueue_job(self._state, request)

    @property
    def has_unawaited_children(self) -> bool:
        """Whether the job may have children whose end its task has not waited for: it then
        waits for them once its task returns, and ends with their outcome (families.py)."""
        return self._unawaited_children

    def wait_for_children(self, poll_seconds: float = 1.0, timeout: float | None = None) -> dict[str, int]:
        """Block until every child of this job has ended; return how many ended in each status.

        A task that waited decides its own outcome from these counts: when it returns, it
        completes, whatever its children did (one that does not wait ends with its family's
        outcome instead, see families.py).

        Stop and pause requests still take effect while waiting. The children need other
        workers: a parent waiting with only one worker running would wait for ever, hence
        ``timeout`` (raises TimeoutError).
        """
        deadline = None if timeout is None else monotonic() + timeout
        finished = [s.value for s in FINISHED_STATUSES]
        while True:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    sa.select(job_table.c.status, sa.func.count())
                    .where(job_table.c.parent_id == self.job_id)
                    .group_by(job_table.c.status)
                ).all()
            counts = {status: int(count) for status, count in rows}
            if all(status in finished for status in counts):
                # a stop of this job ends its children first (control.stop stops them before it
                # signals this run): children that all ended may have ended because of it
                self._stop_if_asked_in_sql()
                # the task has seen how its children ended: its own outcome is its decision
                self._unawaited_children = False
                return counts
            if deadline is not None and monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id}: children still running after {timeout} s: {counts}")
            self._next_control_check = 0.0  # look at the stop signal on every poll
            self._tick(at_checkpoint=True)
            time.sleep(poll_seconds)

    def _stop_if_asked_in_sql(self) -> None:
        """Raise :class:`StopRequested` if this job's row says ``stopping`` (a stop or cancel
        request, committed before the request signals the run)."""
        with self._engine.connect() as connection:
            status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == self.job_id)).scalar()
        if status == JobStatus.STOPPING.value:
            raise StopRequested(self.job_id)

    # -- writing ---------------------------------------------------------------------------------

    def _tick(self, at_checkpoint: bool = False) -> None:
        """Called by the cheap paths (advance, subtask, log, save_checkpoint) once the next flush
        or control check is due: this is where a stop or pause request takes effect.

        A non-resumable task stops at any tick. A resumable one stops only at ``save_checkpoint``
        (``at_checkpoint``): between two checkpoints it may have done work that the checkpoint
        does not cover yet (a row saved, its checkpoint not), and stopping there would make the
        resumed run do that work twice.
        """
        if self._ending:
            return  # the run is being recorded: nothing may interrupt that
        now = monotonic()
        if self.heartbeat is not None and self.heartbeat.superseded:
            raise RunSuperseded(f"job {self.job_id}: attempt {self.attempt} was given up for dead and resumed")
        may_interrupt = at_checkpoint or not self.task.resumable
        if may_interrupt and now >= self._next_control_check:
            self._next_control_check = now + self._stop_interval
            self._check_control()
        if now >= self._next_flush:
            self._flush_or_publish(everything=not self.task.resumable, honour_stop=may_interrupt)
        self._schedule_next_tick()

    def _flush_or_publish(self, everything: bool, honour_stop: bool, at_boundary: bool = False) -> None:
        """The periodic (and step boundary) write: to SQL if it can be done now without waiting
        for the task; otherwise keep everything buffered, mark the write overdue for the task's
        next commit, and publish the progress to Redis for the pages (see the module docstring)."""
        now = monotonic()
        if not ((self._sqlite and self._task_writing) or now < self._retry_sql_at):
            try:
                self.flush(everything=everything, honour_stop=honour_stop, patient=False)
                return
            except TRANSIENT_ERRORS as error:
                # another writer, or an outage: carry on with everything buffered
                if not self._sql_overdue:
                    what = "step change" if at_boundary else "progress"
                    internal_log.warning("job %s: %s not written yet (%s)", self.job_id, what, error)
                now = monotonic()
                self._retry_sql_at = now + max(_RETRY_SQL_SECONDS, self._interval)
        self._sql_overdue = True
        self._next_flush = now + self._interval
        self._schedule_next_tick()
        self._publish_live()

    # -- the task's own session (SQLite), followed while the task runs ----------------------------

    def _task_session_wrote(self, session: Any) -> None:
        """The task's session sent an INSERT/UPDATE/DELETE: on SQLite it now holds the write lock
        until it commits, if it writes to the job tables' database."""
        if not self._sqlite or self._task_writing:
            return
        same = session.info.get("_jobmonitor_same_database")
        if same is None:
            try:
                same = session.get_bind().url == self._engine.url
            except Exception:  # a session bound per model only: its default bind is unknown
                same = False
            session.info["_jobmonitor_same_database"] = same
        self._task_writing = bool(same)

    def _task_session_committed(self) -> None:
        """Right after the task's session committed, the lock is free: make an overdue write now.
        Never raises into the task's ``commit()``: whatever is not written stays buffered."""
        self._task_writing = False
        if self._ending or self._flushing or not (self._sql_overdue or monotonic() >= self._next_flush):
            return
        try:
            self.flush(everything=not self.task.resumable, honour_stop=False, patient=False)
        except TRANSIENT_ERRORS as error:
            internal_log.info("job %s: progress not written after the task's commit (%s)", self.job_id, error)
            self._sql_overdue = True
            self._retry_sql_at = monotonic() + max(_RETRY_SQL_SECONDS, self._interval)
        except Exception as error:  # RunSuperseded: the next tick raises it in the task's code
            internal_log.info("job %s: progress not written after the task's commit (%s)", self.job_id, error)

    # -- live progress in Redis while SQL is overdue ----------------------------------------------

    def _live_progress(self) -> live.LiveProgress:
        current = self._current
        steps = tuple(
            live.LiveStep(s.position, s.status, s.done, s.total, dict(s.counters), s.started_at, s.ended_at)
            for s in (self._steps or {}).values()
            if s._snapshot() != s._written
        )
        return live.LiveProgress(
            attempt=self.attempt,
            current_step=current.position if current is not None else None,
            progress_done=current.done if current is not None else None,
            progress_total=current.total if current is not None else None,
            steps=steps,
        )

    def _publish_live(self) -> None:
        if self._current is None:
            return  # no step: nothing the pages would show differently
        try:
            live.publish(self._redis, self.job_id, self._live_progress())
        except RedisError as error:
            if not self._live_unwritable:
                internal_log.warning("job %s: cannot publish its live progress: %s", self.job_id, error)
                self._live_unwritable = True
            return
        self._live_unwritable = False
        self._live_published = True

    def _sql_written(self) -> None:
        """SQL holds everything the pages need again: forget the live copy."""
        self._sql_overdue = False
        self._retry_sql_at = 0.0
        if self._live_published:
            self._live_published = False
            try:
                live.clear(self._redis, self.job_id)
            except RedisError as error:  # harmless: SQL is ahead of it, and it expires
                internal_log.info("job %s: live progress not deleted: %s", self.job_id, error)

    def _schedule_next_tick(self) -> None:
        # a resumable task looks at its signal only at checkpoints, so its cheap paths need
        # waking only for flushes
        if self.task.resumable:
            self._next_tick = self._next_flush
        else:
            self._next_tick = min(self._next_flush, self._next_control_check)

    def end_run(self) -> None:
        """The runner is recording the outcome: from now on nothing raises stop or pause."""
        self._ending = True

    def _check_control(self) -> None:
        """Read this job's control signal (one Redis GET) and act on it."""
        try:
            signal = self._redis.get(self._control_key)
        except RedisError as error:
            # the SQL status, read back by every flush, still carries a stop request
            if not self._control_unreadable:
                internal_log.warning("job %s: cannot read its stop signal: %s", self.job_id, error)
                self._control_unreadable = True
            return
        self._control_unreadable = False
        if signal in (b"stop", b"cancel"):
            self.cancel_requested = signal == b"cancel"
            raise StopRequested(self.job_id)
        if signal == b"pause" and self.task.resumable:
            self.pause_requested = True
            raise PauseRequested(self.job_id)

    def flush(self, everything: bool = True, *, honour_stop: bool = True, patient: bool = True) -> None:
        """Write what is buffered now. ``everything=False`` (resumable tasks between checkpoints)
        holds back subtasks recorded after the last checkpoint, so a crash cannot persist a
        subtask whose checkpoint was never saved (the resumed run would record it again).

        The same statement reads the job's status back; if someone asked it to stop (even while
        Redis was unreachable) and ``honour_stop`` is true, :class:`StopRequested` is raised after
        the write.

        ``patient=False`` (the periodic flushes) gives way at once on SQLite when another
        connection holds the write lock, typically the task's own ``db.session`` in the middle
        of a transaction: the progress stays buffered for the next tick instead of stalling the
        task for the whole busy timeout."""
        self._next_flush = monotonic() + self._interval
        self._schedule_next_tick()
        cut = len(self._subtasks) if everything else self._subtasks_at_checkpoint
        subtasks, self._subtasks = self._subtasks[:cut], self._subtasks[cut:]
        self._subtasks_at_checkpoint = max(0, self._subtasks_at_checkpoint - cut)
        logs, self._logs = self._logs, []
        steps = [s for s in (self._steps or {}).values() if s._snapshot() != s._written]
        job_values: dict[str, Any] = {}
        current = self._current
        if current is not None:
            job_values.update(progress_done=current.done, progress_total=current.total, current_step=current.position)
        if self._errors:
            job_values["error_count"] = job_table.c.error_count + self._errors
        if self._warnings:
            job_values["warning_count"] = job_table.c.warning_count + self._warnings
        if self._checkpoint_dirty:
            job_values["checkpoint"] = {**self.checkpoint, _STEPS_KEY: dict(self._checkpoint_steps)}
        if not (subtasks or logs or steps or job_values):
            self._sql_written()
            return
        self._flushing = True
        try:
            with self._engine.begin() as connection:
                if not patient and self._sqlite:
                    connection.exec_driver_sql(f"PRAGMA busy_timeout = {_IMPATIENT_SQLITE_MS}")
                try:
                    status = self._fence(connection, job_values)
                finally:
                    if not patient and self._sqlite:
                        connection.exec_driver_sql(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
                for step in steps:
                    values: dict[str, Any] = {
                        "status": step.status,
                        "done": step.done,
                        "total": step.total,
                        "counters": dict(step.counters),
                    }
                    if step.started_at is not None:
                        values["started_at"] = step.started_at
                    values["ended_at"] = step.ended_at
                    connection.execute(sa.update(step_table).where(step_table.c.id == step.id).values(values))
                insert_rows(connection, subtask_table, subtasks)
                insert_rows(connection, log_table, logs)
        except BaseException:
            # keep what was not written, in order, for the next try
            self._subtasks[:0] = subtasks
            self._subtasks_at_checkpoint += cut
            self._logs[:0] = logs
            raise
        finally:
            self._flushing = False
        ended = [s for s in steps if s.status in _STEP_ENDS and s._written[0] != s.status]
        for step in steps:
            step._written = step._snapshot()
        for step in ended:
            events.send(
                self._state,
                events.step_finished,
                self.job_id,
                step=step.name,
                position=step.position,
                status=step.status,
            )
        self._errors = self._warnings = 0
        self._checkpoint_dirty = False
        self._sql_written()
        if honour_stop and status in _STOP_STATUSES:
            raise StopRequested(self.job_id)

    def _fence(self, connection: sa.Connection, values: Mapping[str, Any]) -> str:
        """Update the job row only if this run still owns it (same attempt, and still running or
        stopping: a run that recovery requeued or failed owns nothing) and return its status;
        raise RunSuperseded otherwise."""
        statement = sa.update(job_table).where(
            job_table.c.id == self.job_id,
            job_table.c.attempt == self.attempt,
            job_table.c.status.in_(_OWNED_STATUSES),
        )
        statement = statement.values(**values) if values else statement.values(attempt=job_table.c.attempt)
        if updates_return(connection.dialect):
            status = connection.execute(statement.returning(job_table.c.status)).scalar()
        elif connection.execute(statement).rowcount == 1:  # MySQL/MariaDB: read it in this transaction
            status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == self.job_id)).scalar()
        else:
            status = None
        if status is None:
            raise RunSuperseded(f"job {self.job_id}: attempt {self.attempt} no longer owns the job")
        return str(status)

    @contextmanager
    def running(self) -> Iterator[None]:
        """Bracket the task's call: capture its logs and, on SQLite, follow its session's writes
        and commits (see the module docstring)."""
        follow_task_sessions(self._state)
        previous = _running_context()
        _running.ctx = self
        try:
            with self.capturing_logs():
                yield
        finally:
            _running.ctx = previous
            self._task_writing = False

    @contextmanager
    def capturing_logs(self) -> Iterator[None]:
        """While the task runs, copy its thread's log records into the job's log."""
        open_log_levels(self._log_level)
        handler = _CaptureHandler(self, self._log_level)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)

    def mark_current_step(self, status: str) -> None:
        """Close the step that was running when the run ended abnormally (failed, stopped)."""
        if self._current is not None and self._current.status == "running":
            self._current.status = status
            self._current.ended_at = utcnow()
