"""How long stopping a running job takes, on real RQ workers, against bare RQ's own stop.

    .venv/bin/python bench/bench_stop.py [--runs 50] [--quick] [--database-url URL]

Series (each ``--runs`` jobs, one after the other, on one worker):
1. cooperative stop, forking ``rq.Worker``: a tracked task that ticks (``step.advance()`` and a
   subtask) every 100 ms; time from ``control.stop()`` returning to the job row reading
   ``stopped``.
2. the same on ``rq.SimpleWorker``.
3. forced stop, forking ``rq.Worker``: a tracked task that sleeps and never ticks; time from
   calling ``control.force_stop()`` until the row reads ``stopped`` (SQL), until the work horse
   process is gone, and until RQ reports the job ``stopped``.
4. baseline: bare RQ, a plain RQ job of the same shape (sleeps in 100 ms steps), forking
   ``rq.Worker``; time from ``rq.command.send_stop_job_command()`` until RQ reports it stopped
   and until the horse is gone.

A cooperative stop is requested 0.2 s after the job was seen running plus a uniformly random
part of the cycle in which the task's looks at its stop request repeat (1.5 s at the defaults:
a signal check every third 100 ms tick, a status read-back every fifth), so every phase of that
cycle gets its share; a forced stop 0.2-0.5 s after the task started sleeping. The package runs
with its defaults (stop check every 0.25 s, flush every 0.5 s). Workers run in a thread of this
process (``tests/control_tasks.py``); a forking worker's horse is a real child process. Polling
for the outcome every 2 ms adds up to 2 ms to each figure.

Needs Redis (127.0.0.1:6379, database 11; only this run's queues and keys are touched) and
PostgreSQL (database ``jobmonitor_bench_stop``, created if missing, its job tables re-created),
or ``--database-url sqlite:///...``. Prints a table, writes ``bench/results/stop.json``.
Targets: cooperative p95 < 1 s, forced (SQL and horse gone) p95 < 2 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # measured, the package and the test tasks from this checkout

import redis  # noqa: E402
import rq  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from measured import revision  # noqa: E402
from redis import Redis  # noqa: E402
from rq import SimpleWorker, Worker  # noqa: E402
from rq.command import send_stop_job_command  # noqa: E402
from rq.job import Job as RQJob  # noqa: E402
from rq.job import JobStatus as RQJobStatus  # noqa: E402
from runinfo import cpu_model  # noqa: E402

from flask_jobmonitor.jobs import control  # noqa: E402
from flask_jobmonitor.records.models import Base, job_table  # noqa: E402
from flask_jobmonitor.state import JobMonitorState, get_state  # noqa: E402
from tests import control_tasks as ct  # noqa: E402
from tests.support.databases import ensure_postgres_database  # noqa: E402
from tests.support.extensions import db, jobmonitor  # noqa: E402
from tests.support.processes import process_alive  # noqa: E402
from tests.support.workers import worker_thread  # noqa: E402

DEFAULT_DATABASE_URL = os.environ.get(
    "JOBMONITOR_BENCH_STOP_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_bench_stop"
)
DEFAULT_REDIS_URL = os.environ.get("JOBMONITOR_BENCH_STOP_REDIS_URL", "redis://127.0.0.1:6379/11")
TICK_SECONDS = 0.1
COOPERATIVE_TARGET = 1.0  # p95, seconds
FORCED_TARGET = 2.0  # p95, seconds
QUEUES = {level: f"jm-bench-stop-{os.getpid()}-{level}" for level in ("high", "default", "low")}
POLL = 0.002
PERSON = ("1", "Bench Person")


def create_app(database_url: str, redis_url: str, storage_path: str) -> Flask:
    """A host app with the package's defaults, on the shared test ``db``/``jobmonitor`` objects
    (the tasks are those of ``tests/control_tasks.py``)."""
    app = Flask("jobmonitor_bench_stop")
    app.config.update(
        SECRET_KEY="bench",
        SQLALCHEMY_DATABASE_URI=database_url,
        JOBMONITOR_REDIS_URL=redis_url,
        JOBMONITOR_STORAGE_PATH=storage_path,
        JOBMONITOR_QUEUE_NAMES=QUEUES,
        JOBMONITOR_FLASH_ON_ENQUEUE=False,
    )
    db.init_app(app)
    jobmonitor.init_app(app)
    return app


# -- measuring ----------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll ``predicate`` every 2 ms; return the monotonic time at which it first held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


def status_reader(engine: sa.Engine, job_id: str) -> Callable[[], str | None]:
    statement = sa.select(job_table.c.status).where(job_table.c.id == job_id)

    def read() -> str | None:
        with engine.connect() as connection:
            return connection.execute(statement).scalar()

    return read


def settle(cycle: float = 0.0) -> None:
    """Let the job run 0.2 s and then a random part of ``cycle`` seconds before it is stopped."""
    time.sleep(0.2 + random.uniform(0.0, cycle))


def cooperative_cycle(state: JobMonitorState) -> float:
    """Seconds after which the task's looks at its stop request (a signal check at the first tick
    after each stop-check interval, a status read-back at the first tick after each flush
    interval) repeat: stopping at a uniformly random point of it gives every phase its share."""
    ticks_per_check = math.ceil(state.settings.stop_check_interval / TICK_SECONDS - 1e-9)
    ticks_per_flush = math.ceil(state.settings.flush_interval / TICK_SECONDS - 1e-9)
    return math.lcm(ticks_per_check, ticks_per_flush) * TICK_SECONDS


def cooperative(app: Flask, state: JobMonitorState, worker_class: type[Any], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"stopped_in_sql": []}
    look_cycle = cooperative_cycle(state)
    with worker_thread(app, worker_class, timeout=30, idle=2, logging_level="WARNING"):
        for _ in range(runs):
            job = jobmonitor.enqueue(ct.ticks, user=PERSON, seconds=60, interval=TICK_SECONDS)
            status = status_reader(state.engine, job.id)
            wait_until(lambda: status() == "running", 30, "the job to run")  # noqa: B023
            settle(look_cycle)
            control.stop(state, job.id, PERSON)
            returned = time.monotonic()
            stopped = wait_until(lambda: status() == "stopped", 10, "the job to stop")  # noqa: B023
            samples["stopped_in_sql"].append(stopped - returned)
    return samples


def forced(app: Flask, state: JobMonitorState, runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"stopped_in_sql": [], "horse_gone": [], "rq_stopped": []}
    with worker_thread(app, Worker, timeout=30, idle=2, logging_level="WARNING") as running:
        for _ in range(runs):
            job = jobmonitor.enqueue(ct.sleeps_without_ticking, user=PERSON, seconds=60)
            if ct.wait_arrival("sleeping", timeout=30) != job.id:
                raise RuntimeError("another job reached the sleep")
            horse = running.horse_pid
            status = status_reader(state.engine, job.id)
            rq_job = RQJob.fetch(job.id, connection=state.redis)
            settle(0.3)
            called = time.monotonic()
            control.force_stop(state, job.id, PERSON)
            in_sql = wait_until(lambda: status() == "stopped", 10, "the row to read stopped")  # noqa: B023
            gone = wait_until(lambda: not process_alive(horse), 10, "the horse to go")  # noqa: B023
            in_rq = wait_until(
                lambda: rq_job.get_status(refresh=True) == RQJobStatus.STOPPED,  # noqa: B023
                10,
                "RQ to report it stopped",
            )
            samples["stopped_in_sql"].append(in_sql - called)
            samples["horse_gone"].append(gone - called)
            samples["rq_stopped"].append(in_rq - called)
    return samples


def bare_rq(app: Flask, state: JobMonitorState, runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"rq_stopped": [], "horse_gone": []}
    queue = state.queue("default")
    with worker_thread(app, Worker, timeout=30, idle=2, logging_level="WARNING") as running:
        for _ in range(runs):
            rq_job = queue.enqueue(ct.plain_ticks, 60, TICK_SECONDS, job_timeout=300)
            wait_until(
                lambda: rq_job.get_status(refresh=True) == RQJobStatus.STARTED and running.horse_pid,  # noqa: B023
                30,
                "the plain job to start",
            )
            horse = running.horse_pid
            settle(0.3)
            called = time.monotonic()
            send_stop_job_command(state.redis, rq_job.id)
            stopped = wait_until(
                lambda: rq_job.get_status(refresh=True) == RQJobStatus.STOPPED,  # noqa: B023
                10,
                "RQ to report it stopped",
            )
            gone = wait_until(lambda: not process_alive(horse), 10, "the horse to go")  # noqa: B023
            samples["rq_stopped"].append(stopped - called)
            samples["horse_gone"].append(gone - called)
    return samples


# -- reporting ----------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "runs": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "max": max(values),
        "min": min(values),
    }


def machine(state: JobMonitorState) -> dict[str, Any]:
    model = cpu_model()
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_py": redis.__version__,
        "sqlalchemy": sa.__version__,
        "redis_server": state.redis.info("server").get("redis_version"),
        "database": state.engine.dialect.name,
    }
    if state.engine.dialect.name == "postgresql":
        with state.engine.connect() as connection:
            info["postgresql"] = connection.exec_driver_sql("SHOW server_version").scalar()
    return info


def main() -> int:
    measured = revision()  # taken first: a commit made while it runs is not what it measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="jobs stopped per series (default 50)")
    parser.add_argument("--quick", action="store_true", help="10 runs per series")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--output", default=str(HERE / "results" / "stop.json"))
    args = parser.parse_args()
    runs = 10 if args.quick else args.runs
    random.seed(20240601)

    if sa.make_url(args.database_url).get_backend_name() == "postgresql":
        ensure_postgres_database(args.database_url)
    redis_client = Redis.from_url(args.redis_url)
    with tempfile.TemporaryDirectory(prefix="bench-stop-") as files:
        app = create_app(args.database_url, args.redis_url, files)
        with app.app_context():
            state = get_state(app)
            Base.metadata.drop_all(db.engine)
            Base.metadata.create_all(db.engine)
            series: dict[str, dict[str, list[float]]] = {}
            try:
                check_every = state.settings.stop_check_interval
                print(f"{runs} runs per series; stop check every {check_every} s, task tick {TICK_SECONDS} s")
                for name, measure in (
                    ("cooperative_worker", lambda: cooperative(app, state, Worker, runs)),
                    ("cooperative_simpleworker", lambda: cooperative(app, state, SimpleWorker, runs)),
                    ("forced_worker", lambda: forced(app, state, runs)),
                    ("bare_rq_stop_worker", lambda: bare_rq(app, state, runs)),
                ):
                    started = time.monotonic()
                    series[name] = measure()
                    print(f"  {name}: {time.monotonic() - started:.1f} s", flush=True)
                info = machine(state)
            finally:
                redis_client.delete(*(f"rq:queue:{name}" for name in QUEUES.values()))
                ct.delete_keys(redis_client)
                db.session.remove()
                db.engine.dispose()

    results = {
        name: {figure: summary(values) for figure, values in figures.items()} for name, figures in series.items()
    }
    checks = {
        "cooperative_worker_p95_under_1s": results["cooperative_worker"]["stopped_in_sql"]["p95"] < COOPERATIVE_TARGET,
        "cooperative_simpleworker_p95_under_1s": results["cooperative_simpleworker"]["stopped_in_sql"]["p95"]
        < COOPERATIVE_TARGET,
        "forced_sql_p95_under_2s": results["forced_worker"]["stopped_in_sql"]["p95"] < FORCED_TARGET,
        "forced_horse_gone_p95_under_2s": results["forced_worker"]["horse_gone"]["p95"] < FORCED_TARGET,
    }

    print()
    print(f"{'series':<28} {'measured until':<18} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, figures in results.items():
        for figure, stats in figures.items():
            print(
                f"{name:<28} {figure:<18} {stats['p50'] * 1000:8.1f} {stats['p95'] * 1000:8.1f} "
                f"{stats['max'] * 1000:8.1f}"
            )
    check_ms = state.settings.stop_check_interval * 1000
    print(f"baseline: task tick {TICK_SECONDS * 1000:.0f} ms; stop check interval {check_ms:.0f} ms")
    for check, met in checks.items():
        print(f"target {check}: {'met' if met else 'MISSED'}")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "benchmark": "stop",
                "runs_per_series": runs,
                "settings": {
                    "tick_seconds": TICK_SECONDS,
                    "stop_check_interval": state.settings.stop_check_interval,
                    "flush_interval": state.settings.flush_interval,
                    "poll_seconds": POLL,
                },
                "targets": {"cooperative_p95_seconds": COOPERATIVE_TARGET, "forced_p95_seconds": FORCED_TARGET},
                "results": results,
                "checks": checks,
                "samples": series,
                "machine": info,
                "revision": measured,
                "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {output}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
