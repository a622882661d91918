"""RQ workers that run tracked jobs inside a Flask app context.

Any RQ worker class works (the forking ``Worker``, ``SimpleWorker``, ...): :func:`worker_class_for`
mixes :class:`AppWorkerMixin` into it. The mixin pushes the app context around each job and,
in a forked work horse, makes SQLAlchemy forget the parent's pooled connections: a forked
process that reused the parent's socket would interleave its queries with the parent's.

SIGTERM and SIGINT (see shutdown.py for the mechanism) act only where they cannot cut a job in
two. The worker holds them back from the moment its own Redis client pops a job id off a queue
until the job is RQ's current job (RQ's ``busy`` state: prepared, about to be forked or run), and
again from the moment its work horse has exited until the job's end is recorded. A signal held
back is then replayed to RQ's handler, so a SIGTERM at any moment ends in exactly one of:

* the job not claimed and back at the front of its queue (the signal came before the claim);
* the job running to its end, or pausing at its next checkpoint (the signal came from the
  claim on: the worker is then busy, and a warm shutdown asks the job to pause);
* the job's end recorded, then the worker exits (the signal came while the horse's outcome was
  being recorded).

A second signal, a second or more after the first (cold shutdown), is held back the same way,
except while a job runs: RQ then kills the horse, and its run ends as the work horse's death
(queued again when resumable or never begun, failed otherwise). The hold starts before each
pop, so a signal cannot land while a popped id is on its way from Redis; a blocking pop waits in
slices of ``POP_SLICE`` (1 s), so an idle worker notices a held signal within a second and stops.
"""

from __future__ import annotations

import functools
import mmap
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SpawnWorker, Worker
from rq.suspension import is_suspended
from rq.worker import BaseWorker, WorkerStatus

from ..jobs import rq as rq_internals
from ..jobs.maintenance import RecoveryLoop, abandon_run
from ..jobs.signals import send_signal
from ..jobs.submit import RUNNER_PATHS, resubmit_by_id
from ..records.models import job_table
from ..records.status import JobStatus
from ..state import get_state
from . import runner, shutdown
from .context import RunInfo
from .ends import ends
from .handover import hand_over


class AppWorkerMixin:
    """Runs each job inside ``self.app``'s app context, keeps database pools fork-safe, runs
    recovery of abandoned jobs in the background, and turns a warm shutdown into a pause."""

    app: Flask
    #: How the last work horse ended (``os.wait4`` status), for the record of a horse that died.
    _last_horse_wait_status: int | None = None

    #: A fresh, never used pool per engine, made once by the worker for its horses (see
    #: :meth:`main_work_horse`); None until :meth:`work` starts.
    _fresh_pools: dict[sa.Engine, sa.Pool] | None = None

    #: True while RQ waits for a job (``dequeue_job_and_maintain_ttl``): a pop then takes a job.
    _dequeuing = False
    #: Whether the last pop of a dequeue waited for a job (at least :data:`WAITED` seconds).
    _waited_for_job = False
    #: True while this worker holds signals back for the job in its hands (module docstring).
    _holding_signals = False

    def work(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.app_context():
            state = get_state(self.app)
            runner.warm_up(state)
            if _claims_before_fork(self):
                self._fresh_pools = self._make_fresh_pools()
        shutdown.arm(state.settings.shutdown_grace)
        self._hold_signals_on_pop()
        loop = RecoveryLoop(self.app).start()
        ends.loop_thread = threading.get_ident()  # a job's end may wait for the next claim (ends.py)
        try:
            return super().work(*args, **kwargs)  # type: ignore[misc]
        finally:
            ends.loop_thread = None
            try:
                self._write_waiting_end()  # the loop is over: a burst found no more jobs, or a stop
            finally:
                loop.stop()

    def _write_waiting_end(self) -> None:
        """Write the end that waits for a next claim, now (ends.py: before the worker waits)."""
        if ends.waiting is not None:
            with self.app.app_context():
                ends.flush(get_state(self.app))

    def set_state(self, state: str, *args: Any, **kwargs: Any) -> Any:
        """An end that waits is written before the worker waits in a suspension (RQ's
        ``check_for_suspension`` says so first; a pause of all jobs waits for running jobs)."""
        if state == WorkerStatus.SUSPENDED:
            self._write_waiting_end()
        return super().set_state(state, *args, **kwargs)  # type: ignore[misc]

    def heartbeat(self, *args: Any, **kwargs: Any) -> Any:
        """Redis failing (RQ then waits for it, with backoff): an end that waits is written first."""
        try:
            return super().heartbeat(*args, **kwargs)  # type: ignore[misc]
        except RedisError:
            self._write_waiting_end()
            raise

    def run_maintenance_tasks(self, *args: Any, **kwargs: Any) -> Any:
        """RQ's maintenance (registries cleaned every few minutes) may take a while: an end that
        waits is written first."""
        self._write_waiting_end()
        return super().run_maintenance_tasks(*args, **kwargs)  # type: ignore[misc]

    # -- signals: when a SIGTERM or SIGINT takes effect (module docstring) ---------------------

    def request_stop(self, signum: int, frame: Any) -> None:
        if not shutdown.defer(signum):
            super().request_stop(signum, frame)  # type: ignore[misc]

    def teardown(self) -> None:
        # RQ's handler raises StopRequested wherever an idle worker is, also between a command's
        # send and its read: that connection went back to the pool with its reply unread, and
        # the teardown's own pipeline (register_death) would read it and fail. Its last writes
        # start on fresh connections (idle ones only: the pub/sub listener keeps its own).
        self.connection.connection_pool.disconnect(inuse_connections=False)  # type: ignore[attr-defined]
        super().teardown()  # type: ignore[misc]

    def request_force_stop(self, signum: int, frame: Any) -> None:
        gap = shutdown.replay_after_first()
        if gap is not None:
            # a held signal handed on: a duplicate or a cold shutdown by when it arrived (RQ
            # would judge it by now, and take two signals held together for duplicates)
            if gap < shutdown.DUPLICATE_WITHIN:
                return
            # no duplicate rule for this one: as if the first had come longer ago than it
            rq_internals.date_shutdown_request(self, shutdown.DUPLICATE_WITHIN + 1)
        elif shutdown.defer(signum):
            return
        super().request_force_stop(signum, frame)  # type: ignore[misc]

    def _hold_signals(self) -> None:
        if not self._holding_signals:
            self._holding_signals = True
            shutdown.enter()

    def _release_signals(self) -> None:
        """End the hold; a signal that came meanwhile acts now (it may raise RQ's
        ``StopRequested`` or ``SystemExit`` from here)."""
        if self._holding_signals:
            self._holding_signals = False
            shutdown.leave()

    def _hold_signals_on_pop(self) -> None:
        """Wrap the pops of this worker's own Redis client (RQ's ``Queue.lpop``/``Queue.lmove``
        call them) so that the hold starts as soon as a job id has left its queue."""
        connection: Any = self.connection  # type: ignore[attr-defined]
        for name, timeout_at in rq_internals.POP_COMMANDS:
            pop = getattr(connection, name)
            if not getattr(pop, "_jobmonitor_holds_signals", False):
                setattr(connection, name, self._holding_on_pop(pop, timeout_at))

    def _holding_on_pop(self, pop: Callable[..., Any], timeout_at: int | None) -> Callable[..., Any]:
        """The hold starts before the pop, so a signal cannot land while a popped id is on its
        way from Redis. A blocking pop waits in slices of :data:`POP_SLICE` seconds: a signal
        held meanwhile ends the wait at the end of its slice, as if no job had come, and then
        acts (an idle worker so stops within a slice)."""

        @functools.wraps(pop)
        def popping(*args: Any, **kwargs: Any) -> Any:
            if not self._dequeuing:
                return pop(*args, **kwargs)
            # an earlier id of this dequeue had no job hash (RQ pops again): it needs no hold
            self._release_signals()
            self._hold_signals()
            started = time.monotonic()
            try:
                result = _pop_in_slices(pop, timeout_at, args, kwargs, self._before_waiting)
                self._waited_for_job = time.monotonic() - started >= WAITED
            except BaseException as error:
                if isinstance(error, RedisError):
                    self._write_waiting_end()  # RQ waits for Redis to come back
                self._release_signals()
                raise
            if result is None:
                self._release_signals()  # a held signal acts here: RQ's idle worker stops
            return result

        popping._jobmonitor_holds_signals = True  # type: ignore[attr-defined]
        return popping

    def _before_waiting(self, keys: Sequence[Any] | None) -> None:
        """A blocking pop of ``keys`` is about to wait for a job (None: it waited a slice in
        vain): an end that waits for the next claim is written first, unless a job is there
        to be taken at once (ends.py)."""
        if ends.waiting is None:
            return
        if keys is not None:
            try:
                with self.connection.pipeline(transaction=False) as pipeline:  # type: ignore[attr-defined]
                    for key in keys:
                        pipeline.llen(key)
                    if any(pipeline.execute()):
                        return  # the worker goes straight on: the end goes with the next claim
            except RedisError:
                pass  # written below; the pop meets the failure again, and RQ waits for Redis
        self._write_waiting_end()

    def prepare_execution(self, job: Any) -> Any:
        """RQ makes the job its current one (``busy``): from here a SIGTERM pauses it."""
        execution = super().prepare_execution(job)  # type: ignore[misc]
        self._release_signals()
        return execution

    def monitor_work_horse(self, *args: Any, **kwargs: Any) -> Any:
        """The horse has exited (or was killed): hold signals until its outcome is recorded."""
        try:
            return super().monitor_work_horse(*args, **kwargs)  # type: ignore[misc]
        finally:
            self._hold_signals()

    def _put_back(self, job: Any, queue: Any, why: str = "shutting down before its claim") -> None:
        """``job`` left its queue but is not to be claimed (a shutdown signal came before its
        claim, or the workers are suspended): put it back at the front, untouched (RQ's
        intermediate list too, where one queue moved it)."""
        self.log.info("job %s: %s; back at the front of %s", job.id, why, queue.name)  # type: ignore[attr-defined]
        rq_internals.put_back_at_front(self.connection, queue, job.id)  # type: ignore[attr-defined]

    def handle_warm_shutdown_request(self) -> None:
        """SIGTERM (a deploy): ask the running job to pause at its next checkpoint (resumable
        tasks; it is then queued again at the front), and give any job that does not end
        within ``JOBMONITOR_SHUTDOWN_GRACE`` seconds up, so the shutdown finishes."""
        super().handle_warm_shutdown_request()  # type: ignore[misc]
        job_id = self.get_current_job_id()  # type: ignore[attr-defined]
        if not job_id:
            return
        state = get_state(self.app)
        send_signal(state, job_id, "pause")
        timer = threading.Timer(state.settings.shutdown_grace, self._give_up_job, args=(job_id,))
        timer.daemon = True
        timer.start()

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """RQ looks at its suspension (``rq suspend``, a pause of all jobs: pause_all.py) only
        before it starts waiting for a job: a worker already waiting when the workers were
        suspended would still take the next job queued. Such a job goes back to the front of
        its queue, and the worker waits for the suspension to end like the others. Its pops hold
        signals back while ``_dequeuing`` (see the module docstring)."""
        while True:
            self._dequeuing = True
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)  # type: ignore[misc]
            finally:
                self._dequeuing = False
            # RQ looked at the suspension just before it popped: only a pop that waited for a job
            # may have begun before a suspension (one Redis round trip less for every other job)
            if result is None or not self._waited_for_job or not _suspended(self.connection):  # type: ignore[attr-defined]
                return result
            job, queue = result
            try:
                self._put_back(job, queue, "the workers are suspended")
            finally:
                self._release_signals()  # the job is back: a signal held since its pop acts now
            self.check_for_suspension(burst=timeout is None)  # type: ignore[attr-defined]
            if rq_internals.stop_requested(self):
                return None

    def _give_up_job(self, job_id: str) -> None:
        """The grace period is over and the job still runs: end its run and kill the work. The
        horse is killed whatever the database answers (a deploy during a database outage must
        still end within the grace; recovery records the run later). A SimpleWorker has no
        horse to kill: its task stops at its next tick, where the ended run's writes are refused
        (operators.md)."""
        try:
            with self.app.app_context():
                state = get_state(self.app)
                with state.engine.connect() as connection:
                    job = connection.execute(
                        sa.select(job_table).where(
                            job_table.c.id == job_id,
                            job_table.c.status.in_([JobStatus.RUNNING.value, JobStatus.STOPPING.value]),
                        )
                    ).first()
                if job is not None:
                    abandon_run(state, job, f"worker {self.name} shut down before the job could pause")  # type: ignore[attr-defined]
        except sa.exc.SQLAlchemyError as error:
            self.log.warning("job %s: its run could not be ended (%s); recovery will", job_id, error)  # type: ignore[attr-defined]
        finally:
            if self._has_horse():
                self.kill_horse()  # type: ignore[attr-defined]

    def _has_horse(self) -> bool:
        return bool(getattr(self, "horse_pid", None))

    def main_work_horse(self, *args: Any, **kwargs: Any) -> Any:
        shutdown.reset()  # the worker's signals and holds are not the horse's
        ends.loop_thread, ends.waiting = None, None  # the worker's waiting end is the worker's to write
        # First thing in the forked child: drop (without closing) the sockets inherited from
        # the parent, so this process opens its own connections if it needs any.
        # (a horse forked without work(), by a caller of execute_job, builds its pools itself)
        for engine, fresh_pool in (self._fresh_pools or self._make_fresh_pools()).items():
            _use_fresh_pool(engine, fresh_pool)
        return super().main_work_horse(*args, **kwargs)  # type: ignore[misc]

    def _make_fresh_pools(self) -> dict[sa.Engine, sa.Pool]:
        """A new, unused pool for each of the app's engines, with the same options and listeners."""
        with self.app.app_context():
            return {engine: engine.pool.recreate() for engine in get_state(self.app).db.engines.values()}

    def execute_job(self, job: Any, queue: Any) -> Any:
        """A forking worker claims a tracked job itself before it forks, and records its
        completion after the horse exits: both on the worker's pooled connection with its warm
        statement cache, so the horse of a small job needs no database connection of its own.
        A horse that died without recording its outcome is noticed here at once.

        Signals are held back from the pop until RQ is busy with the job and from the horse's
        exit until here (module docstring); the hold ends here at the latest."""
        run: RunInfo | None = None
        claimed = False
        try:
            if shutdown.pending():
                self._put_back(job, queue)
                return None  # the signal is replayed below: RQ stops the idle worker
            if job.func_name not in RUNNER_PATHS or not job.args:
                self._write_waiting_end()  # no claim of this job to write it with
            if not _claims_before_fork(self) or job.func_name not in RUNNER_PATHS or not job.args:
                return super().execute_job(job, queue)  # type: ignore[misc]
            job_id = job.args[0]
            with self.app.app_context():
                state = get_state(self.app)
                try:
                    run = runner.claim(state, job_id, self.name)  # type: ignore[attr-defined]
                except sa.exc.SQLAlchemyError as error:
                    self.log.warning("job %s: claim before fork failed (%s); the horse claims it", job_id, error)  # type: ignore[attr-defined]
                    return super().execute_job(job, queue)  # type: ignore[misc]
            claimed = True
            outcome = self._horse_outcome_byte()
            hand_over.give(job_id, run, outcome)
            self._last_horse_wait_status = None
            return super().execute_job(job, queue)  # type: ignore[misc]
        finally:
            self._hold_signals()
            try:
                if claimed:
                    hand_over.take_back(job.args[0])
                if run is not None:
                    with self.app.app_context():
                        runner.settle_after_horse(state, run, outcome[0], _describe_exit(self._last_horse_wait_status))
                if shutdown.retry_deadline() is not None and job.func_name in RUNNER_PATHS and job.args:
                    self._requeue_if_lost(job.args[0], queue)
            finally:
                self._release_signals()

    def _requeue_if_lost(self, job_id: str, queue: Queue) -> None:
        """After a shutdown signal: a run given back (``queued`` in SQL) while RQ still handled
        the job (a SimpleWorker's cold shutdown before the task began) is then ended by RQ's own
        failure handling, which leaves it in no queue: put it back at the front."""
        with self.app.app_context():
            state = get_state(self.app)
            try:
                with state.engine.connect() as connection:
                    status = connection.execute(sa.select(job_table.c.status).where(job_table.c.id == job_id)).scalar()
                # a retry waiting for its time is held by RQ's scheduled registry, not by the queue
                if (
                    status == JobStatus.QUEUED.value
                    and queue.get_job_position(job_id) is None
                    and rq_internals.job_statuses(queue.connection, [job_id])[0] not in rq_internals.HELD_ELSEWHERE
                ):
                    resubmit_by_id(state, job_id, at_front=True)
                    self.log.info("job %s: given back during the shutdown; back at the front of %s", job_id, queue.name)  # type: ignore[attr-defined]
            except (sa.exc.SQLAlchemyError, RedisError) as error:
                self.log.warning("job %s: not checked after the shutdown (%s); recovery will", job_id, error)  # type: ignore[attr-defined]

    def _horse_outcome_byte(self) -> mmap.mmap:
        """This worker's shared byte (made once per worker process, so the workers of one
        ``rq worker-pool``, forked from one parent, do not share it)."""
        outcome: mmap.mmap | None = getattr(self, "_horse_outcome", None)
        if outcome is None:
            outcome = self._horse_outcome = mmap.mmap(-1, 1)
        return outcome

    def wait_for_horse(self) -> Any:
        """Remember how the horse ended (exit status or signal), to say so if it died."""
        pid, wait_status, rusage = super().wait_for_horse()  # type: ignore[misc]
        if pid:
            self._last_horse_wait_status = wait_status
        return pid, wait_status, rusage

    def perform_job(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.app_context():
            hand_over.deferred_callbacks_supported = True
            try:
                return super().perform_job(*args, **kwargs)  # type: ignore[misc]
            finally:
                with shutdown.critical_section():  # a paused job is queued again before a stop
                    runner.run_after_job_callbacks()
                hand_over.deferred_callbacks_supported = False
                if self.is_horse and os.getpid() in _pids_that_connected:  # type: ignore[attr-defined]
                    # the horse ends with os._exit(): close the connections it opened, cleanly
                    for engine in get_state(self.app).db.engines.values():
                        engine.dispose()


_pids_that_connected: set[int] = set()
_watched_engines: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def _watch_connections(engine: sa.Engine) -> None:
    """Remember which processes opened a connection (a horse that opened none closes none)."""
    if engine in _watched_engines:
        return

    def on_connect(_dbapi_connection: Any, _record: Any) -> None:
        _pids_that_connected.add(os.getpid())

    sa.event.listen(engine, "connect", on_connect)
    _watched_engines.add(engine)


def _use_fresh_pool(engine: sa.Engine, fresh_pool: sa.Pool) -> None:
    """In a forked horse, what ``engine.dispose(close=False)`` does, at a quarter of its cost.

    The worker made ``fresh_pool`` (``pool.recreate()``) once, before its first fork, and never
    uses it: every horse inherits it unused, so none has to build a pool of its own (1.1 ms of
    copy-on-write faults per job against 0.3 ms for this). SQLAlchemy's lazy alternative, a pid
    check in a ``checkout`` listener, is not safe here: ``pool_pre_ping`` and ``pool_recycle``
    act on the inherited connection before any listener runs, on the parent's socket.
    """
    # pool listeners added after the worker started (``recreate`` copied the earlier ones)
    fresh_pool.dispatch._update(engine.pool.dispatch, only_propagate=False)
    engine.pool = fresh_pool
    if engine.dispatch.engine_disposed:
        engine.dispatch.engine_disposed(engine)


def _describe_exit(wait_status: int | None) -> str:
    if wait_status is None:
        return "its exit was not seen"
    if os.WIFSIGNALED(wait_status):
        return f"killed by signal {os.WTERMSIG(wait_status)}"
    return f"exit status {os.waitstatus_to_exitcode(wait_status)}"


def _suspended(connection: Redis) -> bool:
    """RQ's suspension flag; a Redis error reads as "not suspended" (the job just popped then
    runs, as RQ's own loop would have it, instead of the worker quitting on a blip)."""
    try:
        return bool(is_suspended(connection))
    except RedisError:
        return False


#: A pop that took this long (seconds) waited for its job: the workers may have been suspended
#: since RQ last looked.
WAITED = 0.05

#: Longest single wait of a blocking pop (seconds): how long a held signal can wait for an
#: idle worker to notice it.
POP_SLICE = 1


def _pop_in_slices(
    pop: Callable[..., Any],
    timeout_at: int | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    before_waiting: Callable[[Sequence[Any] | None], None] = lambda _keys: None,
) -> Any:
    """Call ``pop`` (a Redis pop; blocking when its timeout argument, at position ``timeout_at``,
    is given) in waits of at most :data:`POP_SLICE` seconds, until it returns an item, its whole
    timeout has passed, or a shutdown signal is pending (then None, as a timeout).
    ``before_waiting`` is called with the popped keys before the first wait, and with None
    after each slice that passed without an item."""
    positional = timeout_at is not None and len(args) > timeout_at
    timeout = args[timeout_at] if positional else kwargs.get("timeout")  # type: ignore[index]
    if timeout_at is None or not timeout:
        return pop(*args, **kwargs)

    def waiting(seconds: int) -> Any:
        if positional:
            return pop(*args[:timeout_at], seconds, *args[timeout_at + 1 :], **kwargs)
        return pop(*args, **{**kwargs, "timeout": seconds})

    source = args[0] if args else None  # BLPOP's list of keys, BLMOVE's one source key
    before_waiting(list(source) if isinstance(source, (list, tuple)) else [source] if source else None)
    remaining = float(timeout)
    while True:
        wait = min(POP_SLICE, remaining)
        result = waiting(max(1, round(wait)))
        remaining -= wait
        if result is not None or remaining <= 0 or shutdown.pending():
            return result
        before_waiting(None)


def _claims_before_fork(worker: Any) -> bool:
    """Only a worker that forks (the horse shares its memory) can hand a claim to the horse."""
    return isinstance(worker, Worker) and not isinstance(worker, SpawnWorker)


_worker_classes: dict[type[BaseWorker], type[BaseWorker]] = {}


def worker_class_for(base: type[BaseWorker]) -> type[BaseWorker]:
    """Return ``base`` with :class:`AppWorkerMixin` mixed in (one class per base, cached)."""
    if issubclass(base, AppWorkerMixin):
        return base
    if base not in _worker_classes:
        _worker_classes[base] = type(f"JobMonitor{base.__name__}", (AppWorkerMixin, base), {})
    return _worker_classes[base]


def create_worker(
    app: Flask,
    queue_names: Sequence[str] | None = None,
    worker_class: type[BaseWorker] = Worker,
    name: str | None = None,
    connection: Redis | None = None,
    **worker_options: Any,
) -> BaseWorker:
    """Build a worker for ``app`` listening to ``queue_names`` (default: high, default, low)."""
    state = get_state(app)
    with app.app_context():
        for engine in state.db.engines.values():
            _watch_connections(engine)
    connection = connection or state.redis_for_workers()
    names = list(queue_names or state.settings.queues_in_priority_order)
    queues = [Queue(queue_name, connection=connection) for queue_name in names]
    cls = worker_class_for(worker_class)
    worker = cls(queues, connection=connection, name=name, **worker_options)
    worker.app = app  # type: ignore[attr-defined]
    return worker
