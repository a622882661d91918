"""Tasks of the job-control tests (``tests/test_control.py``) and the stop benchmark
(``bench/bench_stop.py``), and the Redis keys through which a test meets them
(the worker that runs them in a thread of the test process: ``tests/support/workers.py``).

The tasks are registered on the shared test ``jobmonitor`` when this module is imported; the
test module and the benchmark import it before any worker starts, so a forked work horse
inherits them and a SimpleWorker shares them. Tasks that the test has to meet at a precise
moment push their job id onto a Redis list (``arrived(...)``), which the test pops with BLPOP:
no polling delay between the task reaching the point and the test acting.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask_jobmonitor import JobContext
from flask_jobmonitor.state import get_state

from .support.extensions import jobmonitor

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


# -- waiting ----------------------------------------------------------------------------------


def wait_arrival(name: str, timeout: float = 10.0) -> str:
    """Block until a task pushes its job id onto ``arrival_key(name)``; return that id."""
    popped = _redis().blpop([arrival_key(name)], timeout=timeout)
    if popped is None:
        raise AssertionError(f"no task reached {name!r} within {timeout} s")
    return popped[1].decode()
