"""The host app, the plain RQ function and the tracked tasks used by ``bench_core.py``.

It lives in its own module (not in the ``__main__`` script) so that RQ can import the functions
by their dotted path in a work horse, and the tracked tasks get stable names (``benchapp.*``).
Tasks that measure something time their own loop inside the worker and hand the figures back
through ``ctx.save_checkpoint``, so the measurement runs inside a real ``JobContext``.
"""

from __future__ import annotations

import io
import time
from time import monotonic, perf_counter, perf_counter_ns
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_jobmonitor import JobContext, JobMonitor

db = SQLAlchemy()
jobmonitor = JobMonitor(db=db)


def create_app(database_url: str, redis_url: str, storage_path: str, **config: Any) -> Flask:
    """A host app with the package's defaults (flush interval 0.5 s) bound to the given stores."""
    app = Flask("jobmonitor_bench")
    app.config.update(
        SECRET_KEY="bench",
        SQLALCHEMY_DATABASE_URI=database_url,
        JOBMONITOR_REDIS_URL=redis_url,
        JOBMONITOR_STORAGE_PATH=storage_path,
        **config,
    )
    db.init_app(app)
    jobmonitor.init_app(app)
    return app


def noop(*_job_id: str) -> None:
    """The bare-RQ baseline job: a plain function that does nothing (the floor's job is given
    the id of its job row, which its worker claims and ends by hand: bench_core.py)."""


#: What the "20 ms" jobs do: wait 20 ms, as a job waiting on a service or a disk would (a busy
#: loop would compete for the 2 cores with the database server and the worker itself).
WORK_SECONDS = 0.02


def work_20ms(*_job_id: str) -> None:
    """The bare-RQ job of the realistic comparison: 20 ms of work."""
    time.sleep(WORK_SECONDS)


@jobmonitor.task(type="bench")
def noop_task(ctx: JobContext) -> None:
    """The tracked job: does nothing, so a run costs only what tracking costs."""


@jobmonitor.task(type="bench")
def work_20ms_task(ctx: JobContext) -> None:
    """The tracked job of the realistic comparison: the same 20 ms of work."""
    time.sleep(WORK_SECONDS)


@jobmonitor.task(type="bench")
def time_advance(ctx: JobContext, iterations: int, repeats: int) -> None:
    """Time ``iterations`` calls of an empty loop, ``step.advance()`` and ``tqdm.update(1)``,
    interleaved ``repeats`` times; save the nanoseconds of each run in the checkpoint."""
    from tqdm import tqdm

    loop_ns: list[int] = []
    advance_ns: list[int] = []
    tqdm_ns: list[int] = []
    with ctx.step("Advance", total=iterations * repeats) as step:
        for _ in range(repeats):
            start = perf_counter_ns()
            for _ in range(iterations):
                pass
            loop_ns.append(perf_counter_ns() - start)

            start = perf_counter_ns()
            for _ in range(iterations):
                step.advance()
            advance_ns.append(perf_counter_ns() - start)

            bar = tqdm(total=iterations, file=io.StringIO(), disable=False)
            start = perf_counter_ns()
            for _ in range(iterations):
                bar.update(1)
            tqdm_ns.append(perf_counter_ns() - start)
            bar.close()
    ctx.save_checkpoint(iterations=iterations, loop_ns=loop_ns, advance_ns=advance_ns, tqdm_ns=tqdm_ns)


@jobmonitor.task(type="bench")
def flood_advance(ctx: JobContext, seconds: float) -> None:
    """Call ``step.advance()`` as fast as possible for ``seconds``; save the window (monotonic
    clock, comparable with the benchmark's statement listener in a SimpleWorker) and the count."""
    calls = 0
    with ctx.step("Flood") as step:
        start = monotonic()
        end = start + seconds
        while True:
            for _ in range(1000):
                step.advance()
            calls += 1000
            if monotonic() >= end:
                break
        stop = monotonic()
    ctx.save_checkpoint(start=start, stop=stop, calls=calls)


@jobmonitor.task(type="bench")
def record_subtasks(ctx: JobContext, count: int) -> None:
    """Record ``count`` subtasks as fast as possible; save the seconds until all were written."""
    names = [f"item {i}" for i in range(count)]
    with ctx.step("Record", total=count):
        start = perf_counter()
        for name in names:
            ctx.subtask(name)
        ctx.flush()
        seconds = perf_counter() - start
    ctx.save_checkpoint(seconds=seconds, count=count)
