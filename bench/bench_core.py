"""Core benchmarks of flask-jobmonitor, each against a baseline measured in the same run.

    .venv/bin/python bench/bench_core.py [--quick] [--only throughput,advance,writes,subtasks]

1. throughput: tracked no-op jobs vs bare RQ no-op jobs and vs the floor of the durability
   contract (the bare job plus its claim and end statements by hand: ``ContractFloor``), drained
   by a burst worker of the same class (forking ``rq.Worker`` and ``rq.SimpleWorker``), on
   SQLite (file, WAL) and PostgreSQL, as jobs/s and milliseconds per job; and the same four
   sides for jobs that do 20 ms of work (the target is tracked vs bare; the floor's own ratio
   says what the contract leaves of it).
2. advance: nanoseconds per ``step.advance()`` inside a running job vs an empty loop and vs
   ``tqdm.update(1)``.
3. writes: UPDATEs of ``jobmonitor_job`` per second while a job calls ``advance()`` flat out,
   vs the number of ``advance()`` calls (what a write-through counter would cost).
4. subtasks: subtasks recorded per second on PostgreSQL vs one Core ``executemany`` INSERT of
   the same rows.

Needs Redis (default 127.0.0.1:6379, databases 8 and 9, which must be
empty at the start, are flushed between runs) and PostgreSQL (database
``jobmonitor_bench``, created if missing, its job tables dropped and re-created). Prints a
table and writes ``bench/results/core.json``. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # benchapp, and the package from this checkout

import benchapp  # noqa: E402
import redis  # noqa: E402
import rq  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from measured import revision  # noqa: E402
from redis import Redis  # noqa: E402
from rq import Queue, SimpleWorker, Worker  # noqa: E402
from runinfo import cpu_model, require_empty_redis_dbs, warn_if_busy  # noqa: E402

from flask_jobmonitor.records.models import Base, job_table, subtask_table  # noqa: E402
from flask_jobmonitor.state import get_state  # noqa: E402
from flask_jobmonitor.timeutil import utcnow  # noqa: E402
from flask_jobmonitor.worker.process import create_worker  # noqa: E402
from tests.support.databases import ensure_postgres_database  # noqa: E402

BENCHMARKS = ("throughput", "advance", "writes", "subtasks")
# Redis databases this benchmark flushes; the test suites use 13, 14 and 15 (--redis-dbs changes them).
REDIS_DBS = (8, 9)
WORKER_CLASSES: dict[str, type[Any]] = {"Worker": Worker, "SimpleWorker": SimpleWorker}
# Targets from the issue: (comparison, threshold) on the figure named in `target_of`.
#: Milliseconds a tracked no-op job may cost above the contract's floor (ContractFloor).
FLOOR_TARGET_MS = {"Worker": 1.5, "SimpleWorker": 0.5}
WORK_TARGET = 0.95  # tracked / bare RQ throughput of jobs that do 20 ms of work
ADVANCE_TARGET = 1.0  # advance() net cost / tqdm.update(1) net cost
WRITES_TARGET = 2.2  # job-row UPDATEs per second ("at most ~2/s" at the default 0.5 s interval)
SUBTASKS_TARGET = 20_000.0  # subtasks per second


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does; --quick shrinks everything."""

    fork_jobs: int
    simple_jobs: int
    fork_work_jobs: int
    simple_work_jobs: int
    throughput_repeats: int
    advance_calls: int
    advance_repeats: int
    flood_seconds: float
    subtasks: int
    subtask_repeats: int


FULL = Sizes(
    fork_jobs=100,
    simple_jobs=400,
    fork_work_jobs=60,
    simple_work_jobs=150,
    throughput_repeats=5,
    advance_calls=2_000_000,
    advance_repeats=7,
    flood_seconds=3.0,
    subtasks=200_000,
    subtask_repeats=2,
)
QUICK = Sizes(
    fork_jobs=30,
    simple_jobs=120,
    fork_work_jobs=20,
    simple_work_jobs=50,
    throughput_repeats=3,
    advance_calls=500_000,
    advance_repeats=5,
    flood_seconds=3.0,
    subtasks=40_000,
    subtask_repeats=1,
)


# -- environment ---------------------------------------------------------------------------------


class Store:
    """One tracked app bound to one database, with a Redis database of its own."""

    def __init__(self, label: str, database_url: str, redis_url: str, files: str) -> None:
        self.label = label
        self.database_url = database_url
        self.redis_url = redis_url
        self.redis = Redis.from_url(redis_url)
        self.app: Flask = benchapp.create_app(database_url, redis_url, files)
        with self.app.app_context():
            self.engine: sa.Engine = get_state(self.app).engine
            Base.metadata.drop_all(self.engine)
            Base.metadata.create_all(self.engine)

    def reset(self) -> None:
        """Empty Redis and the job tables, so every run starts from the same state."""
        self.redis.flushdb()
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                names = ", ".join(t.name for t in Base.metadata.sorted_tables)
                connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())

    def status_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(job_table.c.status, sa.func.count()).group_by(job_table.c.status))
            return {status: count for status, count in rows}

    def run_task(self, task: Any, **kwargs: Any) -> dict[str, Any]:
        """Enqueue a tracked task, run it in a burst SimpleWorker of this process, return its checkpoint."""
        with self.app.app_context():
            job = benchapp.jobmonitor.enqueue(task, **kwargs)
            create_worker(self.app, worker_class=SimpleWorker).work(burst=True, logging_level="WARNING")
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(job_table.c.status, job_table.c.error_message, job_table.c.checkpoint).where(
                    job_table.c.id == job.id
                )
            ).one()
        if row.status != "completed":
            raise RuntimeError(f"bench task {task.name} ended {row.status}: {row.error_message}")
        return dict(row.checkpoint)


def machine_info(stores: list[Store]) -> dict[str, Any]:
    model = cpu_model()
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_py": redis.__version__,
        "sqlalchemy": sa.__version__,
        "sqlite": sqlite3.sqlite_version,
    }
    for store in stores:
        if store.engine.dialect.name == "postgresql":
            with store.engine.connect() as connection:
                info["postgresql"] = connection.exec_driver_sql("SHOW server_version").scalar()
        info["redis_server"] = store.redis.info("server").get("redis_version")
    return info


def interleave(repeats: int, **measures: Callable[[], float]) -> dict[str, list[float]]:
    """Run each measure ``repeats`` times, alternating which goes first, so that slow drift of
    the machine (other tenants, CPU frequency) hits the measured code and its baseline alike."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    order = list(measures.items())
    for repeat in range(repeats):
        for name, measure in order if repeat % 2 == 0 else reversed(order):
            samples[name].append(measure())
    return samples


# -- 1. throughput, and the floor of the durability contract ------------------------------------


#: The claim and the end as the package writes them (records/transitions.py; its statements for a
#: claim and a finish, with the constants written in), in the named style of both drivers.
FLOOR_CLAIM = (
    "UPDATE jobmonitor_job SET status = 'running', started_at = coalesce(started_at, {now}), ended_at = NULL,"
    " status_changed_at = {now}, worker_name = {worker}, heartbeat_at = {now}, attempt = attempt + 1"
    " WHERE id = {id} AND status IN ('queued')"
    " RETURNING attempt, name, task, params, checkpoint, root_id, run_by_id, run_by_name, is_system, run_at_url,"
    " parent_id, retries"
)
FLOOR_END = (
    "UPDATE jobmonitor_job SET status = 'completed', ended_at = {now}, status_changed_at = {now}"
    " WHERE id = {id} AND status IN ('stopping', 'running') AND attempt = {attempt}"
)


class ContractFloor:
    """The floor the durability contract sets under a tracked job: its claim and its end, the
    statements the package writes, issued by hand on one DBAPI connection of the worker, around
    a bare RQ job.

    The claim is one conditional ``UPDATE ... RETURNING`` in a transaction of its own (a worker
    that dies while the claim waits for a row lock must leave the job queued: runner.claim); the
    end is one fenced ``UPDATE`` in autocommit (a job nobody is to be notified about). Nothing
    else of the package runs: no app context, no task lookup, no JobContext, no heartbeat, no
    events, no hand-over to a horse."""

    def __init__(self, engine: sa.Engine) -> None:
        self.sqlite = engine.dialect.name == "sqlite"
        names = {name: (f":{name}" if self.sqlite else f"%({name})s") for name in ("now", "worker", "id", "attempt")}
        self.claim_sql = FLOOR_CLAIM.format(**names)
        self.end_sql = FLOOR_END.format(**names)
        ended = FLOOR_END.format(now="%(now)s", id="%(end_id)s", attempt="%(end_attempt)s")
        self.end_then_claim_sql = f"WITH ended AS ({ended}) {self.claim_sql}"
        self.raw = engine.raw_connection()  # the package's connect listeners ran (SQLite's pragmas)
        self.dbapi = self.raw.driver_connection

    def _now(self) -> Any:
        now = utcnow()
        return now.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else now  # as SQLAlchemy writes it

    def _autocommit(self, on: bool) -> None:
        if self.sqlite:
            self.dbapi.isolation_level = None if on else ""
        else:
            self.dbapi.autocommit = on

    def claim(self, job_id: str, worker_name: str, after: tuple[str, int] | None = None) -> int:
        """Claim ``job_id``; with ``after`` (the id and attempt of the job this worker ran last),
        end that one in the same transaction: one statement on PostgreSQL (a data-modifying
        ``WITH``), two on SQLite, one commit."""
        self._autocommit(False)
        cursor = self.dbapi.cursor()
        values: dict[str, Any] = {"now": self._now(), "worker": worker_name, "id": job_id}
        if after is None:
            cursor.execute(self.claim_sql, values)
        else:
            ended = {"end_id": after[0], "end_attempt": after[1]}
            if self.sqlite:
                cursor.execute(self.end_sql, {"now": values["now"], "id": after[0], "attempt": after[1]})
                if cursor.rowcount != 1:
                    raise RuntimeError(f"floor: end of job {after[0]} not written")
                cursor.execute(self.claim_sql, values)
            else:
                cursor.execute(self.end_then_claim_sql, {**values, **ended})
        row = cursor.fetchone()
        self.dbapi.commit()
        cursor.close()
        if row is None:
            raise RuntimeError(f"floor: job {job_id} not claimed")
        return int(row[0])

    def end(self, job_id: str, attempt: int) -> None:
        self._autocommit(True)
        cursor = self.dbapi.cursor()
        cursor.execute(self.end_sql, {"now": self._now(), "id": job_id, "attempt": attempt})
        if cursor.rowcount != 1:
            raise RuntimeError(f"floor: end of job {job_id} not written")
        cursor.close()

    def close(self) -> None:
        self.raw.close()


class FloorWorkerMixin:
    """A bare RQ worker that claims each job's row before it runs the job (before the fork, in a
    forking worker: as the package's worker does) and ends it after. With ``combine``, the end
    of a job waits for the next claim and is written in its transaction; the last one is
    written when the worker leaves its loop (a burst worker that found no more jobs)."""

    floor: ContractFloor
    combine = False
    _ended: tuple[str, int] | None = None

    def work(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().work(*args, **kwargs)  # type: ignore[misc]
        finally:
            if self._ended is not None:
                self.floor.end(*self._ended)
                self._ended = None

    def execute_job(self, job: Any, queue: Any) -> Any:
        job_id = job.args[0]
        attempt = self.floor.claim(job_id, self.name, after=self._ended)  # type: ignore[attr-defined]
        self._ended = None
        try:
            return super().execute_job(job, queue)  # type: ignore[misc]
        finally:
            if self.combine:
                self._ended = (job_id, attempt)
            else:
                self.floor.end(job_id, attempt)


FLOOR_WORKERS = {
    name: type(f"Floor{name}", (FloorWorkerMixin, worker_class), {}) for name, worker_class in WORKER_CLASSES.items()
}


def drain_bare(connection: Redis, queue_names: list[str], worker_class: type[Any], jobs: int, func: Any) -> float:
    """Jobs/s of a plain burst worker draining ``jobs`` plain jobs running ``func``."""
    connection.flushdb()
    queue = Queue(queue_names[1], connection=connection)
    for _ in range(jobs):
        queue.enqueue(func)
    # the same queues, in the same order, as the tracked worker listens to
    worker = worker_class([Queue(name, connection=connection) for name in queue_names], connection=connection)
    start = perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    elapsed = perf_counter() - start
    finished = queue.finished_job_registry.count
    if finished != jobs or queue.count:
        raise RuntimeError(f"bare {worker_class.__name__}: {finished} of {jobs} jobs finished")
    return jobs / elapsed


def drain_floor(
    store: Store, queue_names: list[str], class_name: str, jobs: int, func: Any, combine: bool = False
) -> float:
    """Jobs/s of a bare burst worker draining ``jobs`` plain jobs running ``func``, each claimed
    and ended by hand in its own queued job row (:class:`ContractFloor`)."""
    store.reset()
    now = utcnow()
    ids = [str(uuid.uuid4()) for _ in range(jobs)]
    row = {"name": "floor", "task": "floor", "params": {}, "status": "queued", "queue_name": queue_names[1]}
    with store.engine.begin() as connection:
        connection.execute(
            sa.insert(job_table), [{**row, "id": i, "created_at": now, "status_changed_at": now} for i in ids]
        )
    queue = Queue(queue_names[1], connection=store.redis)
    for job_id in ids:
        queue.enqueue(func, job_id)
    queues = [Queue(name, connection=store.redis) for name in queue_names]
    worker = FLOOR_WORKERS[class_name](queues, connection=store.redis)
    worker.floor = floor = ContractFloor(store.engine)
    worker.combine = combine
    try:
        start = perf_counter()
        worker.work(burst=True, logging_level="WARNING")
        elapsed = perf_counter() - start
    finally:
        floor.close()
    counts = store.status_counts()
    if counts != {"completed": jobs}:
        raise RuntimeError(f"floor {class_name} on {store.label}: job statuses {counts}")
    return jobs / elapsed


def drain_tracked(store: Store, worker_class: type[Any], jobs: int, task: Any) -> float:
    """Jobs/s of a jobmonitor burst worker draining ``jobs`` tracked jobs of ``task``."""
    store.reset()
    with store.app.app_context():  # as `flask jobmonitor worker` runs it
        for _ in range(jobs):
            benchapp.jobmonitor.enqueue(task)
        worker = create_worker(store.app, worker_class=worker_class)
        start = perf_counter()
        worker.work(burst=True, logging_level="WARNING")
        elapsed = perf_counter() - start
    counts = store.status_counts()
    if counts != {"completed": jobs}:
        raise RuntimeError(f"tracked {worker_class.__name__} on {store.label}: job statuses {counts}")
    return jobs / elapsed


def per_job_ms(rates: list[float]) -> float:
    """Milliseconds per job of the best run (on a shared machine other work only slows a run)."""
    return 1000 / max(rates)


def bench_throughput(stores: list[Store], bare_redis: Redis, sizes: Sizes) -> list[dict[str, Any]]:
    """No-op jobs: bare RQ, the contract's floor and the tracked job, interleaved; 20 ms jobs:
    bare RQ and tracked."""
    results = []
    for class_name, worker_class in WORKER_CLASSES.items():
        jobs = sizes.fork_jobs if worker_class is Worker else sizes.simple_jobs
        work_jobs = sizes.fork_work_jobs if worker_class is Worker else sizes.simple_work_jobs
        for store in stores:
            with store.app.app_context():
                queue_names = get_state(store.app).settings.queues_in_priority_order
            samples = interleave(
                sizes.throughput_repeats,
                bare=partial(drain_bare, bare_redis, queue_names, worker_class, jobs, benchapp.noop),
                floor=partial(drain_floor, store, queue_names, class_name, jobs, benchapp.noop),
                combined=partial(drain_floor, store, queue_names, class_name, jobs, benchapp.noop, combine=True),
                tracked=partial(drain_tracked, store, worker_class, jobs, benchapp.noop_task),
            )
            bare, floor, tracked = samples["bare"], samples["floor"], samples["tracked"]
            bare_rate, tracked_rate = max(bare), max(tracked)
            bare_ms, floor_ms, tracked_ms = per_job_ms(bare), per_job_ms(floor), per_job_ms(tracked)
            combined_ms = per_job_ms(samples["combined"])
            common = {
                "jobs_per_run": jobs,
                "samples": samples,
                "statistic": f"best of {sizes.throughput_repeats}",
                "median": {name: statistics.median(values) for name, values in samples.items()},
                "per_job_ms": {"bare": bare_ms, "floor": floor_ms, "combined": combined_ms, "tracked": tracked_ms},
            }
            ratio = tracked_rate / bare_rate
            results.append(
                {
                    "id": f"throughput/{class_name}/{store.label}",
                    "figure": f"throughput {class_name}, {store.label}",
                    "unit": "jobs/s",
                    "value": tracked_rate,
                    "baseline": bare_rate,
                    "baseline_name": "bare RQ",
                    "ratio": ratio,
                    "target": None,
                    "met": None,
                    "median_ratio": statistics.median(tracked) / statistics.median(bare),
                    **common,
                }
            )
            print_progress(results[-1])
            above = tracked_ms - floor_ms
            results.append(
                {
                    "id": f"floor/{class_name}/{store.label}",
                    "figure": f"ms per job above the floor, {class_name}, {store.label}",
                    "unit": "ms",
                    "value": above,
                    "baseline": floor_ms - bare_ms,
                    "baseline_name": "the floor above bare RQ",
                    "ratio": above / (floor_ms - bare_ms),
                    "target": f"< {FLOOR_TARGET_MS[class_name]} ms",
                    "met": above < FLOOR_TARGET_MS[class_name],
                    **common,
                }
            )
            print_progress(results[-1])
            results.append(
                {
                    "id": f"combined/{class_name}/{store.label}",
                    "figure": f"the floor with each end in the next claim's commit, {class_name}, {store.label}",
                    "unit": "ms",
                    "value": combined_ms - bare_ms,
                    "baseline": floor_ms - bare_ms,
                    "baseline_name": "the floor, above bare RQ",
                    "ratio": (combined_ms - bare_ms) / (floor_ms - bare_ms),
                    "target": None,
                    "met": None,
                    **common,
                }
            )
            print_progress(results[-1])
            work = interleave(
                sizes.throughput_repeats,
                bare=partial(drain_bare, bare_redis, queue_names, worker_class, work_jobs, benchapp.work_20ms),
                floor=partial(drain_floor, store, queue_names, class_name, work_jobs, benchapp.work_20ms),
                combined=partial(
                    drain_floor, store, queue_names, class_name, work_jobs, benchapp.work_20ms, combine=True
                ),
                tracked=partial(drain_tracked, store, worker_class, work_jobs, benchapp.work_20ms_task),
            )
            ratio = max(work["tracked"]) / max(work["bare"])
            # what the contract alone leaves of the target: the floor's own ratio to bare RQ
            floor_ratios = {name: max(work[name]) / max(work["bare"]) for name in ("floor", "combined")}
            results.append(
                {
                    "id": f"work20/{class_name}/{store.label}",
                    "figure": f"throughput of 20 ms jobs, {class_name}, {store.label}",
                    "unit": "jobs/s",
                    "value": max(work["tracked"]),
                    "baseline": max(work["bare"]),
                    "baseline_name": "bare RQ",
                    "ratio": ratio,
                    "target": f"ratio >= {WORK_TARGET}",
                    "met": ratio >= WORK_TARGET,
                    "jobs_per_run": work_jobs,
                    "samples": work,
                    "statistic": f"best of {sizes.throughput_repeats}",
                    "per_job_ms": {name: per_job_ms(values) for name, values in work.items()},
                    "floor_ratio": floor_ratios["floor"],
                    "combined_floor_ratio": floor_ratios["combined"],
                }
            )
            print_progress(results[-1])
            print(
                f"    the floor's own ratio {floor_ratios['floor']:.3g}, with each end in the next claim's commit"
                f" {floor_ratios['combined']:.3g}",
                flush=True,
            )
    return results


# -- 2. cost of advance() ------------------------------------------------------------------------


def bench_advance(store: Store, sizes: Sizes) -> list[dict[str, Any]]:
    out = store.run_task(benchapp.time_advance, iterations=sizes.advance_calls, repeats=sizes.advance_repeats)
    calls = out["iterations"]
    loop = min(out["loop_ns"]) / calls
    advance = min(out["advance_ns"]) / calls
    bar = min(out["tqdm_ns"]) / calls
    advance_net, tqdm_net = advance - loop, bar - loop
    ratio = advance_net / tqdm_net
    common = {"samples_ns_total": out, "calls_per_sample": calls, "statistic": f"best of {sizes.advance_repeats}"}
    results = [
        {
            "id": "advance/vs_loop",
            "figure": f"step.advance() per call, {store.label}",
            "unit": "ns",
            "value": advance,
            "baseline": loop,
            "baseline_name": "empty loop",
            "ratio": advance / loop,
            "target": None,
            "met": None,
            **common,
        },
        {
            "id": "advance/vs_tqdm",
            "figure": "step.advance() net of loop",
            "unit": "ns",
            "value": advance_net,
            "baseline": tqdm_net,
            "baseline_name": "tqdm.update(1) net",
            "ratio": ratio,
            "target": f"ratio <= {ADVANCE_TARGET}",
            "met": ratio <= ADVANCE_TARGET,
            "gross_ns": {"loop": loop, "advance": advance, "tqdm": bar},
            **common,
        },
    ]
    for result in results:
        print_progress(result)
    return results


# -- 3. database writes per running job ------------------------------------------------------------


@contextmanager
def statement_log(engine: sa.Engine) -> Iterator[list[tuple[float, str]]]:
    """Record (monotonic time, SQL) of every statement the engine sends while the block runs."""
    events: list[tuple[float, str]] = []

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        events.append((monotonic(), statement))

    sa.event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield events
    finally:
        sa.event.remove(engine, "before_cursor_execute", before_cursor_execute)


def bench_writes(stores: list[Store], sizes: Sizes) -> list[dict[str, Any]]:
    results = []
    for store in stores:
        store.reset()
        with statement_log(store.engine) as events:
            out = store.run_task(benchapp.flood_advance, seconds=sizes.flood_seconds)
        start, stop = out["start"], out["stop"]
        seconds = stop - start
        during = [sql.lstrip().split(None, 4) for at, sql in events if start <= at <= stop]
        job_updates = [w for w in during if [x.upper() for x in w[:2]] == ["UPDATE", "JOBMONITOR_JOB"]]
        # the per-process heartbeat thread stamps heartbeat_at every ABANDONED_AFTER / 4 seconds
        # whatever the task does; a 3 s window catches one or none of those
        heartbeats = sum(1 for w in job_updates if len(w) > 3 and w[3].lower().startswith("heartbeat_at"))
        progress = len(job_updates) - heartbeats
        rate = len(job_updates) / seconds
        calls_rate = out["calls"] / seconds
        result = {
            "id": f"writes/{store.label}",
            "figure": f"job-row UPDATEs/s under advance(), {store.label}",
            "unit": "writes/s",
            "value": rate,
            "baseline": calls_rate,
            "baseline_name": "advance() calls/s",
            "ratio": rate / calls_rate,
            "target": f"progress writes <= {WRITES_TARGET}/s",
            "met": progress / seconds <= WRITES_TARGET,
            "window_seconds": seconds,
            "job_updates": len(job_updates),
            "progress_updates": progress,
            "heartbeat_updates": heartbeats,
            "progress_updates_per_second": progress / seconds,
            "all_statements": len(during),
            "all_statements_per_second": len(during) / seconds,
            "advance_calls": out["calls"],
        }
        print_progress(result)
        results.append(result)
    return results


# -- 4. subtasks per second -----------------------------------------------------------------------


def bulk_insert_baseline(store: Store, count: int) -> float:
    """Rows/s of one Core executemany INSERT of ``count`` subtask rows (rows built beforehand)."""
    store.reset()
    now = utcnow()
    job_id = "00000000-0000-0000-0000-000000000000"
    with store.engine.begin() as connection:
        connection.execute(
            sa.insert(job_table).values(
                id=job_id,
                name="baseline",
                task="baseline",
                params={},
                status="completed",
                queue_name="baseline",
                created_at=now,
                status_changed_at=now,
            )
        )
    rows = [
        {"job_id": job_id, "step_id": 1, "name": f"item {i}", "status": "done", "message": None, "created_at": now}
        for i in range(count)
    ]
    start = perf_counter()
    with store.engine.begin() as connection:
        connection.execute(sa.insert(subtask_table), rows)
    return count / (perf_counter() - start)


def tracked_subtasks(store: Store, count: int) -> float:
    store.reset()
    out = store.run_task(benchapp.record_subtasks, count=count)
    with store.engine.connect() as connection:
        written = connection.execute(sa.select(sa.func.count()).select_from(subtask_table)).scalar_one()
    if written != count:
        raise RuntimeError(f"tracked subtasks: {written} of {count} rows written")
    return count / out["seconds"]


def bench_subtasks(store: Store, sizes: Sizes) -> list[dict[str, Any]]:
    samples = interleave(
        sizes.subtask_repeats,
        baseline=partial(bulk_insert_baseline, store, sizes.subtasks),
        tracked=partial(tracked_subtasks, store, sizes.subtasks),
    )
    baseline, tracked = samples["baseline"], samples["tracked"]
    rate, base = max(tracked), max(baseline)
    result = {
        "id": f"subtasks/{store.label}",
        "figure": f"subtasks recorded/s, {store.label}",
        "unit": "rows/s",
        "value": rate,
        "baseline": base,
        "baseline_name": "Core executemany",
        "ratio": rate / base,
        "target": f">= {SUBTASKS_TARGET:,.0f}/s",
        "met": rate >= SUBTASKS_TARGET,
        "rows_per_run": sizes.subtasks,
        "samples": {"tracked": tracked, "baseline": baseline},
        "statistic": f"best of {sizes.subtask_repeats}",
    }
    print_progress(result)
    return [result]


# -- output ------------------------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if unit == "ns" or value < 10:
        return f"{value:,.1f} {unit}" if value >= 1 or unit == "ns" else f"{value:.2e} {unit}"
    return f"{value:,.0f} {unit}"


def baseline_unit(result: dict[str, Any]) -> str:
    return "/s" if result["unit"] == "writes/s" else str(result["unit"])


def print_progress(result: dict[str, Any]) -> None:
    print(
        f"  {result['figure']}: {fmt(result['value'], result['unit'])}"
        f" | {result['baseline_name']}: {fmt(result['baseline'], baseline_unit(result))}"
        f" | ratio {result['ratio']:.3g}",
        flush=True,
    )


def print_table(results: list[dict[str, Any]]) -> None:
    header = ("figure", "measured", "baseline", "ratio", "target", "met")
    rows = []
    for r in results:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        rows.append(
            (
                r["figure"],
                fmt(r["value"], r["unit"]),
                f"{fmt(r['baseline'], baseline_unit(r))} ({r['baseline_name']})",
                f"{r['ratio']:.3g}",
                r["target"] or "-",
                met,
            )
        )
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def main(argv: list[str] | None = None) -> int:
    measured = revision()  # taken first: a commit made while it runs is not what it measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "JOBMONITOR_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_bench"
        ),
    )
    parser.add_argument("--redis", default=os.environ.get("JOBMONITOR_BENCH_REDIS", "redis://127.0.0.1:6379"))
    parser.add_argument(
        "--redis-dbs",
        default=",".join(map(str, REDIS_DBS)),
        help="two Redis database numbers (bare RQ, tracked) that nothing else uses; they are flushed",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "core.json")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; choose from {BENCHMARKS}")
    sizes = QUICK if args.quick else FULL
    began = time.time()
    load_before = warn_if_busy()

    ensure_postgres_database(args.postgres_url)
    bare_db, tracked_db = (int(n) for n in args.redis_dbs.split(","))
    require_empty_redis_dbs(parser, args.redis, (bare_db, tracked_db))
    bare_redis = Redis.from_url(f"{args.redis}/{bare_db}")
    tmp = tempfile.TemporaryDirectory(prefix="jobmonitor-bench-")
    sqlite = Store("SQLite", f"sqlite:///{tmp.name}/jobs.db", f"{args.redis}/{tracked_db}", f"{tmp.name}/files")
    postgres = Store("PostgreSQL", args.postgres_url, f"{args.redis}/{tracked_db}", f"{tmp.name}/files")
    stores = [sqlite, postgres]

    results: list[dict[str, Any]] = []
    try:
        sections: list[tuple[str, str, Callable[[], list[dict[str, Any]]]]] = [
            (
                "throughput",
                "1. throughput (no-op and 20 ms jobs: bare RQ, the floor, the combined floor, tracked)",
                partial(bench_throughput, stores, bare_redis, sizes),
            ),
            ("advance", "2. cost of step.advance()", partial(bench_advance, postgres, sizes)),
            ("writes", "3. database writes of a job calling advance() flat out", partial(bench_writes, stores, sizes)),
            ("subtasks", "4. subtasks recorded per second", partial(bench_subtasks, postgres, sizes)),
        ]
        for name, title, run in sections:
            if name in chosen:
                print(title, flush=True)
                section_start = perf_counter()
                results += run()
                print(f"  ({perf_counter() - section_start:.0f} s)", flush=True)
    finally:
        bare_redis.flushdb()
        for store in stores:
            store.redis.flushdb()
            store.engine.dispose()
        tmp.cleanup()

    print_table(results)
    seconds = time.time() - began
    report = {
        "mode": "quick" if args.quick else "full",
        "benchmarks": chosen,
        "sizes": sizes.__dict__,
        "seconds": round(seconds, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(stores),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "revision": measured,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(results)} figures in {seconds:.0f} s; written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
