"""Tasks of the job-control tests (``tests/test_control.py``) and the stop benchmark
(``bench/bench_stop.py``), and a way to run a real RQ worker in a thread of the test process.

The tasks are registered on the shared test ``jobmonitor`` when this module is imported; the
test module and the benchmark import it before any worker starts, so a forked work horse
inherits them and a SimpleWorker shares them. Tasks that the test has to meet at a precise
moment push their job id onto a Redis list (``arrived(...)``), which the test pops with BLPOP:
no polling delay between the task reaching the point and the test acting.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Flask
from rq import SimpleWorker
from rq.timeouts import BaseDeathPenalty

from flask_jobmonitor import JobContext
from flask_jobmonitor.state import get_state
from flask_jobmonitor.worker.process import create_worker

from .app_factory import jobmonitor

T = TypeVar("T")
#: Redis keys the tasks write (side effects the tests look for); each test run uses its own pid.
_PREFIX = f"jm-control-test:{os.getpid()}:"


def arrival_key(name: str) -> str:
    """The Redis list a task pushes its job id onto when it reaches the point called ``name``."""
    return f"{_PREFIX}arrived:{name}"


def ran_key(marker: str) -> str:
    """The Redis set of job ids whose task ``records_run`` ran (its side effect)."""
    return f"{_PREFIX}ran:{marker}"


def delete_keys(redis: Any) -> None:
    """Delete every Redis key these tasks wrote in this process (one SCAN pass, big pages)."""
    keys = list(redis.scan_iter(f"{_PREFIX}*", count=10000))
    if keys:
        redis.delete(*keys)


def _redis() -> Any:
    return get_state().redis


def _arrive(ctx: JobContext, name: str) -> None:
    _redis().rpush(arrival_key(name), ctx.job_id)


# -- tasks --------------------------------------------------------------------------------------


@jobmonitor.task(type="test")
def ticks(ctx: JobContext, seconds: float = 30.0, interval: float = 0.02, total: int | None = None) -> None:
    """Works for ``seconds``: every ``interval`` one item (a subtask and ``step.advance()``)."""
    deadline = time.monotonic() + seconds
    with ctx.step("Work", total=total) as step:
        i = 0
        while time.monotonic() < deadline:
            ctx.subtask(f"item {i}")
            step.advance()
            i += 1
            time.sleep(interval)
        step.count("items", i)


@jobmonitor.task(type="test", stoppable=False)
def ticks_unstoppable(ctx: JobContext, seconds: float = 30.0, interval: float = 0.02) -> None:
    """Declared not stoppable: work that must not be interrupted half-way."""
    ticks.func(ctx, seconds=seconds, interval=interval)


@jobmonitor.task(type="test", cancel_running=True)
def ticks_cancellable(ctx: JobContext, seconds: float = 30.0, interval: float = 0.02) -> None:
    """Declared cancellable while it runs: Cancel stops it, and it ends cancelled."""
    ticks.func(ctx, seconds=seconds, interval=interval)


@jobmonitor.task(type="test", restartable=False)
def runs_once(ctx: JobContext) -> None:
    """Declared not restartable: work that must happen once (an approval)."""


@jobmonitor.task(type="test", resumable=True)
def ticks_resumable(ctx: JobContext, seconds: float = 30.0, interval: float = 0.02) -> None:
    """Like ``ticks``, but resumable (saves a checkpoint per item)."""
    deadline = time.monotonic() + seconds
    with ctx.step("Work") as step:
        i = ctx.checkpoint.get("next", 0)
        while time.monotonic() < deadline:
            ctx.subtask(f"item {i}")
            step.advance()
            i += 1
            ctx.save_checkpoint(next=i)
            time.sleep(interval)


@jobmonitor.task(type="test")
def sleeps_without_ticking(ctx: JobContext, seconds: float = 30.0) -> None:
    """Starts a step, says where it runs, then sleeps without ever reaching a checkpoint."""
    with ctx.step("Sleep"):
        ctx.save_checkpoint(pid=os.getpid())
        ctx.flush()
        _arrive(ctx, "sleeping")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
        _redis().sadd(ran_key("slept-to-the-end"), ctx.job_id)


@jobmonitor.task(type="test", steps=["Prepare", "Process"], resumable=True)
def resumable_items(ctx: JobContext, count: int = 40, interval: float = 0.02) -> None:
    """Two steps; "Process" handles ``count`` items, one subtask and one checkpoint per item."""
    with ctx.step("Prepare") as step:
        if not step.finished:
            ctx.subtask("prepared")
            step.advance()
    with ctx.step("Process", total=count) as step:
        for i in range(ctx.checkpoint.get("next", 0), count):
            ctx.subtask(f"item {i}")
            step.advance()
            ctx.save_checkpoint(next=i + 1)
            time.sleep(interval)


@jobmonitor.task(type="test")
def ends_soon(
    ctx: JobContext, seconds: float = 0.05, tail: float = 0.0, interval: float = 0.002, after_step: bool = False
) -> None:
    """Ticks for ``seconds``, announces that it is about to end, ticks ``tail`` seconds more, returns.
    With ``after_step`` it announces after leaving its step instead: nothing but the runner's
    recording of the result follows."""
    with ctx.step("Work") as step:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            step.advance()
            time.sleep(interval)
        if not after_step:
            _arrive(ctx, "ending")
            deadline = time.monotonic() + tail
            while time.monotonic() < deadline:
                step.advance()
                time.sleep(interval)
    if after_step:
        _arrive(ctx, "ending")


@jobmonitor.task(type="test")
def ends_step_after_go(ctx: JobContext, pause: float = 0.1) -> None:
    """Starts a step, announces it, waits (without a tick) for the test's go and ``pause`` more
    seconds, then leaves the step: the write at the end of the step is its next look at SQL."""
    with ctx.step("Work") as step:
        step.advance()
        _arrive(ctx, "waiting")
        _redis().blpop([go_key(ctx.job_id)], timeout=10)
        time.sleep(pause)


def go_key(job_id: str) -> str:
    """The Redis list ``ends_step_after_go`` waits on."""
    return f"{_PREFIX}go:{job_id}"


@jobmonitor.task(type="test")
def records_run(ctx: JobContext, marker: str, seconds: float = 0.0) -> None:
    """Its side effect: adds its job id to the Redis set ``ran_key(marker)``."""
    _redis().sadd(ran_key(marker), ctx.job_id)
    if seconds:
        time.sleep(seconds)


@jobmonitor.task(type="test")
def spawns_and_ticks(ctx: JobContext, children: int = 2, seconds: float = 30.0) -> None:
    """Queues ``children`` ``ticks`` children, then ticks itself until stopped."""
    for i in range(children):
        ctx.spawn(ticks, seconds=seconds, name=f"child {i}")
    _arrive(ctx, "spawned")
    ticks.func(ctx, seconds=seconds)


@jobmonitor.task(type="test")
def leaves_traces(ctx: JobContext, children: int = 0) -> None:
    """Leaves a step, a subtask, a log line and an output file; spawns ``children`` like itself."""
    with ctx.step("Trace") as step:
        ctx.subtask("traced", status="warning", message="a trace")
        ctx.log.info("a log line")
        step.advance()
    ctx.add_output_file("out.txt", b"output")
    for i in range(children):
        ctx.spawn(leaves_traces, name=f"child {i}")


@jobmonitor.task(type="test")
def reads_inputs(ctx: JobContext) -> None:
    """Reads every input file and writes the bytes it read as an output file per input."""
    for filename in ctx.input_files:
        ctx.add_output_file(f"copy of {filename}", ctx.input_file(filename).read())


def plain_ticks(seconds: float = 30.0, interval: float = 0.1) -> None:
    """A plain RQ function (not tracked) with the shape of ``ticks``: the bare-RQ baseline of
    ``bench/bench_stop.py``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(interval)


# -- workers in a thread --------------------------------------------------------------------------


class NoDeathPenalty(BaseDeathPenalty):
    """RQ's default job timeout uses SIGALRM, which only the main thread may set up. Workers run
    in a thread here, and no test relies on RQ's timeout."""

    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


_thread_classes: dict[type[Any], type[Any]] = {}


def thread_worker_class(base: type[Any]) -> type[Any]:
    """``base`` (``rq.Worker`` or ``rq.SimpleWorker``) made runnable outside the main thread: no
    signal handlers (SIGINT/SIGTERM stay the test runner's), no SIGALRM timeout."""
    if base not in _thread_classes:
        _thread_classes[base] = type(
            f"Threaded{base.__name__}",
            (base,),
            {"death_penalty_class": NoDeathPenalty, "_install_signal_handlers": lambda self: None},
        )
    return _thread_classes[base]


class WorkerThread:
    """A real RQ worker working the app's queues in a background thread: a burst worker (quits
    once the queues are empty), or with ``idle`` seconds, one that waits for work and quits after
    ``idle`` seconds without any. ``queues``: priorities to listen to (default: all three)."""

    def __init__(
        self,
        app: Flask,
        worker_class: type[Any] = SimpleWorker,
        queues: tuple[str, ...] = ("high", "default", "low"),
        idle: int | None = None,
        logging_level: str = "INFO",
    ) -> None:
        names = [get_state(app).settings.queue_names[priority] for priority in queues]
        self.worker = create_worker(app, names, worker_class=thread_worker_class(worker_class))
        _stop_pubsub_listener_first(self.worker)
        self.idle = idle
        self.logging_level = logging_level
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name=f"rq-{self.worker.name}", daemon=True)

    def _work(self) -> None:
        try:
            if self.idle is None:
                self.worker.work(burst=True, logging_level=self.logging_level)
            else:
                self.worker.work(burst=False, max_idle_time=self.idle, logging_level=self.logging_level)
        except BaseException as error:  # reported by join()
            self.error = error

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def join(self, timeout: float = 30.0) -> None:
        """Wait for the burst worker to finish the queues and quit (raises if it does not)."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"worker {self.worker.name} still busy after {timeout} s")
        if self.error is not None:
            raise self.error

    @property
    def horse_pid(self) -> int:
        return int(getattr(self.worker, "horse_pid", 0) or 0)


def _stop_pubsub_listener_first(worker: Any) -> None:
    """Same as the conftest helper: a burst worker's exit is prompt when its command listener
    thread is stopped before it unsubscribes."""
    unsubscribe = worker.unsubscribe

    def stop_then_unsubscribe() -> None:
        if worker.pubsub_thread is not None:
            worker.pubsub_thread.stop()
        unsubscribe()

    worker.unsubscribe = stop_then_unsubscribe


@contextmanager
def worker_thread(
    app: Flask, worker_class: type[Any] = SimpleWorker, timeout: float = 30.0, **options: Any
) -> Iterator[WorkerThread]:
    """Start a worker thread (see :class:`WorkerThread`); on leaving the block wait for it to quit."""
    running = WorkerThread(app, worker_class, **options).start()
    try:
        yield running
    finally:
        running.join(timeout)


# -- waiting ----------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, message: str = "", interval: float = 0.005) -> T:
    """Call ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {message} (last value: {value!r})")
        time.sleep(interval)
        value = predicate()
    return value


def wait_arrival(name: str, timeout: float = 10.0) -> str:
    """Block until a task pushes its job id onto ``arrival_key(name)``; return that id."""
    popped = _redis().blpop([arrival_key(name)], timeout=timeout)
    if popped is None:
        raise AssertionError(f"no task reached {name!r} within {timeout} s")
    return popped[1].decode()


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            data = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return data[data.rindex(")") + 2] in "ZX"
