"""RQ workers that run tracked jobs inside a Flask app context.

Any RQ worker class works (the forking ``Worker``, ``SimpleWorker``, ...): :func:`worker_class_for`
mixes :class:`AppWorkerMixin` into it. The mixin pushes the app context around each job and,
in a forked work horse, makes SQLAlchemy forget the parent's pooled connections: a forked
process that reused the parent's socket would interleave its queries with the parent's.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq import Queue, SpawnWorker, Worker
from rq.suspension import is_suspended
from rq.worker import BaseWorker

from . import runner
from .enqueue import RUNNER_PATH
from .extension import get_state
from .maintenance import RecoveryLoop, abandon_run
from .models import job_table
from .signals import send_signal
from .status import JobStatus


class AppWorkerMixin:
    """Runs each job inside ``self.app``'s app context, keeps database pools fork-safe, runs
    recovery of abandoned jobs in the background, and turns a warm shutdown into a pause."""

    app: Flask
    #: How the last work horse ended (``os.wait4`` status), for the record of a horse that died.
    _last_horse_wait_status: int | None = None

    #: A fresh, never used pool per engine, made once by the worker for its horses (see
    #: :meth:`main_work_horse`); None until :meth:`work` starts.
    _fresh_pools: dict[sa.Engine, sa.Pool] | None = None

    def work(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.app_context():
            state = get_state(self.app)
            runner.warm_up(state)
            if _claims_before_fork(self):
                self._fresh_pools = self._make_fresh_pools()
        loop = RecoveryLoop(self.app).start()
        try:
            return super().work(*args, **kwargs)  # type: ignore[misc]
        finally:
            loop.stop()

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
        its queue, and the worker waits for the suspension to end like the others."""
        while True:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)  # type: ignore[misc]
            if result is None or not is_suspended(self.connection):  # type: ignore[attr-defined]
                return result
            job, queue = result
            with self.connection.pipeline() as pipeline:  # type: ignore[attr-defined]
                pipeline.lrem(queue.intermediate_queue_key, 1, job.id)  # where RQ's LMOVE put it
                queue.push_job_id(job.id, pipeline=pipeline, at_front=True)
                pipeline.execute()
            self.log.info("Worker %s: suspended; job %s put back in its queue", self.name, job.id)  # type: ignore[attr-defined]
            self.check_for_suspension(burst=timeout is None)  # type: ignore[attr-defined]
            if self._stop_requested:  # type: ignore[attr-defined]
                return None

    def _give_up_job(self, job_id: str) -> None:
        """The grace period is over and the job still runs: end its run and kill the work."""
        with self.app.app_context():
            state = get_state(self.app)
            with state.engine.connect() as connection:
                job = connection.execute(
                    sa.select(job_table).where(
                        job_table.c.id == job_id,
                        job_table.c.status.in_([JobStatus.RUNNING.value, JobStatus.STOPPING.value]),
                    )
                ).first()
            if job is None:
                return
            abandon_run(state, job, f"worker {self.name} shut down before the job could pause")  # type: ignore[attr-defined]
        horse_pid = getattr(self, "horse_pid", 0)
        if horse_pid:
            self.kill_horse()  # type: ignore[attr-defined]

    def main_work_horse(self, *args: Any, **kwargs: Any) -> Any:
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
        A horse that died without recording its outcome is noticed here at once."""
        if not _claims_before_fork(self) or job.func_name != RUNNER_PATH or not job.args:
            return super().execute_job(job, queue)  # type: ignore[misc]
        job_id = job.args[0]
        with self.app.app_context():
            state = get_state(self.app)
            try:
                run = runner.claim(state, job_id, self.name)  # type: ignore[attr-defined]
            except sa.exc.SQLAlchemyError as error:
                self.log.warning("job %s: claim before fork failed (%s); the horse claims it", job_id, error)  # type: ignore[attr-defined]
                return super().execute_job(job, queue)  # type: ignore[misc]
        runner.preclaimed[job_id] = run
        runner.settling_parent_pid = os.getpid()
        outcome = self._horse_outcome_byte()
        outcome[0] = 0
        runner.horse_outcome = outcome
        self._last_horse_wait_status = None
        try:
            return super().execute_job(job, queue)  # type: ignore[misc]
        finally:
            runner.preclaimed.pop(job_id, None)
            if run is not None:
                with self.app.app_context():
                    runner.settle_after_horse(state, run, outcome[0], _describe_exit(self._last_horse_wait_status))

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
            runner.deferred_callbacks_supported = True
            try:
                return super().perform_job(*args, **kwargs)  # type: ignore[misc]
            finally:
                runner.run_after_job_callbacks()
                runner.deferred_callbacks_supported = False
                if getattr(self, "_is_horse", False) and os.getpid() in _pids_that_connected:
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
