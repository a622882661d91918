"""Tracked tasks of the reliability tests (worker deaths, deploys, faults, children, schedules).

They are registered on the test app's ``jobmonitor`` like ``tests/tasks.py``; the worker
subprocesses started by the reliability tests import this module through ``tests/worker_app.py``.
Every task ticks often (``step.advance()``/``ctx.subtask()``) so that stop and pause requests
and periodic flushes happen while it runs, and records which run did what (``attempt``, pid),
so a test can tell a resumed run from a repeated one.
"""

from __future__ import annotations

import os
import threading
import time

from redis import Redis

from flask_jobmonitor import JobContext
from flask_jobmonitor.errors import EnqueueError

from .support.extensions import jobmonitor

#: While set, the test's SQLAlchemy event hook makes every statement of the engine fail with
#: OperationalError (the database "is unreachable"); the outage tasks set and clear it.
DB_OUTAGE = threading.Event()


def _items(ctx: JobContext, count: int, item_seconds: float, *, checkpoints: bool) -> None:
    ctx.save_checkpoint(pid=os.getpid())
    with ctx.step("Items", total=count) as step:
        for i in range(ctx.checkpoint.get("next", 0), count):
            time.sleep(item_seconds)
            ctx.subtask(f"item {i}", message=f"attempt {ctx.attempt} pid {os.getpid()}")
            step.advance()
            if checkpoints:
                ctx.save_checkpoint(next=i + 1)


@jobmonitor.task(type="reliability", resumable=True)
def resumable_items(ctx: JobContext, count: int = 20, item_seconds: float = 0.1) -> None:
    """Resumable: one subtask per item, a checkpoint after each; a resumed run continues there."""
    _items(ctx, count, item_seconds, checkpoints=True)


@jobmonitor.task(type="reliability")
def plain_items(ctx: JobContext, count: int = 20, item_seconds: float = 0.1) -> None:
    """Not resumable: the same loop without checkpoints of progress."""
    _items(ctx, count, item_seconds, checkpoints=False)


@jobmonitor.task(type="reliability")
def ticks_for(ctx: JobContext, seconds: float, tick: float = 0.05) -> None:
    """Not resumable: works for ``seconds`` while ticking (advance) every ``tick`` seconds."""
    ctx.save_checkpoint(pid=os.getpid())
    deadline = time.monotonic() + seconds
    with ctx.step("Work") as step:
        while time.monotonic() < deadline:
            time.sleep(tick)
            step.advance()


@jobmonitor.task(type="reliability", resumable=True)
def resumable_blocks(ctx: JobContext, seconds: float) -> None:
    """Resumable, but blocks in one long call, so it cannot reach a checkpoint to pause at."""
    ctx.save_checkpoint(pid=os.getpid(), runs=ctx.checkpoint.get("runs", 0) + 1)
    ctx.flush()
    if ctx.checkpoint["runs"] == 1:
        time.sleep(seconds)


@jobmonitor.task(type="reliability")
def child_work(ctx: JobContext, seconds: float = 0.2, fail: bool = False) -> None:
    """A child job: works ``seconds`` (ticking), then fails if asked to."""
    deadline = time.monotonic() + seconds
    with ctx.step("Work") as step:
        while time.monotonic() < deadline:
            time.sleep(min(0.05, seconds))
            step.advance()
    if fail:
        raise RuntimeError("child asked to fail")


@jobmonitor.task(type="reliability")
def spawns_family(
    ctx: JobContext,
    count: int,
    child_seconds: float = 0.2,
    failing: list[int] | None = None,
    wait: bool = False,
    wait_timeout: float = 120.0,
) -> None:
    """Spawns ``count`` children (those in ``failing`` fail); with ``wait``, waits for them and
    saves the counts ``ctx.wait_for_children`` returned."""
    failing_set = set(failing or ())
    with ctx.step("Spawn", total=count) as step:
        for i in range(count):
            ctx.spawn(child_work, seconds=child_seconds, fail=i in failing_set, name=f"child {i:03d}")
            step.advance()
    if wait:
        counts = ctx.wait_for_children(poll_seconds=0.1, timeout=wait_timeout)
        ctx.save_checkpoint(counts=counts)


@jobmonitor.task(type="reliability")
def child_at_gate(ctx: JobContext, gate: str, fail: bool = False) -> None:
    """A child job that ticks until the Redis key ``gate`` exists, then ends (failing if asked):
    a test opens the gate to end many children at the same moment on several workers."""
    from flask_jobmonitor.state import get_state

    redis = get_state().redis
    with ctx.step("Wait at the gate") as step:
        while not redis.exists(gate):
            time.sleep(0.01)
            step.advance()
    if fail:
        raise RuntimeError("child asked to fail")


@jobmonitor.task(type="reliability")
def spawns_at_gate(ctx: JobContext, gate: str, count: int = 2, failing: list[int] | None = None) -> None:
    """Spawns ``count`` children that end when ``gate`` opens, and returns without waiting."""
    for i in range(count):
        ctx.spawn(child_at_gate, gate=gate, fail=i in (failing or ()), name=f"gated child {i}")


@jobmonitor.task(type="reliability")
def spawns_grandchildren(ctx: JobContext, gate: str, count: int = 2) -> None:
    """A child that spawns ``count`` gated children of its own (a nested family)."""
    for i in range(count):
        ctx.spawn(child_at_gate, gate=gate, name=f"grandchild {i}")


@jobmonitor.task(type="reliability")
def spawns_nested_family(ctx: JobContext, gate: str, children: int = 2, grandchildren: int = 2) -> None:
    """Spawns ``children`` children that each spawn ``grandchildren`` gated children."""
    for i in range(children):
        ctx.spawn(spawns_grandchildren, gate=gate, count=grandchildren, name=f"middle child {i}")


@jobmonitor.task(type="reliability")
def spawns_while_redis_is_down(ctx: JobContext, catch: bool = True) -> None:
    """Spawns a child while the app's Redis connection points at a port where nothing listens
    (Redis down for the enqueue); records the error, and re-raises it unless ``catch``."""
    from flask_jobmonitor.state import get_state

    state = get_state()
    working = state._redis
    state._redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        ctx.spawn(child_work, seconds=0.01, name="child while Redis is down")
    except EnqueueError as error:
        ctx.save_checkpoint(child=error.job_id, reason=error.reason)
        if not catch:
            raise
    finally:
        state._redis = working


def _outage(seconds: float) -> None:
    DB_OUTAGE.set()
    timer = threading.Timer(seconds, DB_OUTAGE.clear)
    timer.daemon = True
    timer.start()


def _outage_loop(ctx: JobContext, count: int, outage_at: int, outage_seconds: float, item_seconds: float) -> None:
    with ctx.step("Work", total=count) as step:
        for i in range(count):
            if i == outage_at:
                _outage(outage_seconds)
            time.sleep(item_seconds)
            ctx.subtask(f"item {i}", status="warning" if i % 10 == 0 else "done")
            ctx.log.info("item %d done", i)
            step.advance()
            step.count("done")
            if ctx.task.resumable:
                ctx.save_checkpoint(next=i + 1)


@jobmonitor.task(type="reliability")
def survives_db_outage(
    ctx: JobContext, count: int = 40, outage_at: int = 5, outage_seconds: float = 1.0, item_seconds: float = 0.05
) -> None:
    """The database becomes unreachable for ``outage_seconds`` in the middle of the loop."""
    _outage_loop(ctx, count, outage_at, outage_seconds, item_seconds)


@jobmonitor.task(type="reliability", resumable=True)
def resumable_survives_db_outage(
    ctx: JobContext, count: int = 40, outage_at: int = 5, outage_seconds: float = 1.0, item_seconds: float = 0.05
) -> None:
    """Resumable variant: subtasks are written with the checkpoint that covers them."""
    _outage_loop(ctx, count, outage_at, outage_seconds, item_seconds)


@jobmonitor.task(type="reliability", steps=["First", "Second"])
def db_outage_at_step_end(ctx: JobContext, outage_seconds: float = 1.0) -> None:
    """The database becomes unreachable just as a step ends (and the next one starts)."""
    with ctx.step("First", total=3) as step:
        for i in range(3):
            ctx.subtask(f"first {i}")
            step.advance()
        _outage(outage_seconds)
    with ctx.step("Second", total=3) as step:
        for i in range(3):
            ctx.subtask(f"second {i}")
            step.advance()


@jobmonitor.task(type="reliability", steps=["First"])
def db_outage_before_a_new_step(ctx: JobContext, outage_seconds: float = 1.0) -> None:
    """The database becomes unreachable just before a step that was not declared starts."""
    with ctx.step("First", total=3) as step:
        for i in range(3):
            ctx.subtask(f"first {i}")
            step.advance()
    _outage(outage_seconds)
    with ctx.step("Second", total=3) as step:
        for i in range(3):
            ctx.subtask(f"second {i}")
            step.advance()


@jobmonitor.task(type="reliability")
def db_outage_at_the_end(ctx: JobContext, outage_seconds: float = 1.0) -> None:
    """The database becomes unreachable as the task returns (its result is being recorded)."""
    with ctx.step("Work", total=3) as step:
        for i in range(3):
            ctx.subtask(f"item {i}")
            step.advance()
    _outage(outage_seconds)


@jobmonitor.task(type="reliability")
def greets_on_schedule(ctx: JobContext, greeting: str = "hello") -> None:
    """A task run by a schedule (and by delayed enqueues): records what it was given."""
    ctx.save_checkpoint(greeting=greeting, pid=os.getpid())


@jobmonitor.task(type="reliability")
def fails_soon(ctx: JobContext, seconds: float = 0.05) -> None:
    """Works a moment, then raises."""
    with ctx.step("Work") as step:
        time.sleep(seconds)
        step.advance()
    raise ValueError("failing on purpose")


@jobmonitor.task(type="reliability", resumable=True)
def resumable_until_gate(ctx: JobContext, gate: str) -> None:
    """Resumable: one subtask and checkpoint per item (item number and attempt recorded) until
    the Redis key ``gate`` exists; a resumed run continues at the next item."""
    from flask_jobmonitor.state import get_state

    redis = get_state().redis
    with ctx.step("Items") as step:
        i = ctx.checkpoint.get("next", 0)
        while not redis.exists(gate):
            time.sleep(0.02)
            ctx.subtask(f"item {i}", message=f"attempt {ctx.attempt} pid {os.getpid()}")
            step.advance()
            i += 1
            ctx.save_checkpoint(next=i)
