"""Many workers: tracked jobs drained by 1, 2, 4 and 8 worker processes, against bare RQ, on PostgreSQL.

    .venv/bin/python bench/bench_workers.py [--quick] [--only-class Worker|SimpleWorker] [--counts 1,2,4,8]

What it measures (issue 19, point 4): N separate worker processes of one class (``rq.SimpleWorker``
or the forking ``rq.Worker``) drain 2,000 no-op jobs, and 2,000 jobs that wait 20 ms; bare RQ jobs
run by ``rq worker``, and tracked jobs run by ``flask jobmonitor worker``, for N = 1, 2, 4 and 8.
For each (class, kind, N) it reports the jobs/s of both, their ratio, and each one's speed-up over
its own figure at the smallest N: tracked throughput should scale like bare RQ's (the same shape
of curve). One run each; the curves, not single figures, are what to read.

Rules of a run:

* All the jobs are queued first, while no worker runs. Their queue's list is then set aside under
  another key, the N workers start (not in burst mode), and the run waits until all N are
  registered in Redis and idle (blocked on their queues). The clock starts when the list is
  renamed back, which wakes them all at once. (RQ's suspension would hold them too, but a
  suspended worker looks for its end only once a second: up to a second more on every drain.)
* The clock stops when every job is done, polled every 20 ms: bare, RQ's finished registries
  hold them all and the queues are empty; tracked, SQL has them all ``completed``. The workers
  then get SIGTERM and must exit (their process group is killed after a timeout).
* Every job is recorded exactly once: bare, the finished registries hold exactly the jobs' number
  of distinct ids; tracked, SQL has exactly that many job rows, all ``completed`` at attempt 1,
  and each row's id is carried by exactly one finished RQ job. Nothing fails in RQ, nothing is
  left in a queue, no worker process or worker registration is left. A violation is recorded in
  the results, and makes the run exit with an error once the results are written.
* During each drain (bare ones too, as a control) a thread on a connection of its own polls
  pg_stat_activity and pg_locks every 25 ms: backends of the database waiting for a lock (and
  the first 80 characters of their query), and locks not granted. Lock waits on the job table,
  on the children's release or on the statistics cache would show there.
* Both kinds of worker run as their command lines start them: log level INFO (to a log file per
  run), without RQ's scheduler, listening to the same queues in the same order. ``rq worker`` is
  given ``-c benchapp`` (a settings module with no RQ settings), so that it imports the jobs'
  module before it forks, as ``flask jobmonitor worker`` does with its app: without it, every
  work horse of ``rq.Worker`` imports benchapp, Flask and the package anew (0.6 s per job).

Needs Redis (default 127.0.0.1:6379, databases 8 and 9, which must be empty at the start, are
flushed between runs) and PostgreSQL (database ``jobmonitor_bench_workers``, created if missing,
its job tables dropped and re-created). Prints a table and writes ``bench/results/workers.json``.
The full size takes 15 to 20 minutes on 2 cores; --quick (200 jobs, N = 1 and 2) under two.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # benchapp, and the package from this checkout

import benchapp  # noqa: E402
import redis  # noqa: E402
import rq  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from measured import revision  # noqa: E402
from redis import Redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq import Worker as RQWorker  # noqa: E402
from rq.job import Job as RQJob  # noqa: E402
from runinfo import cpu_model, require_empty_redis_dbs, warn_if_busy  # noqa: E402

from flask_jobmonitor.records.models import Base, job_table  # noqa: E402
from flask_jobmonitor.state import get_state  # noqa: E402
from tests.support.databases import ensure_postgres_database  # noqa: E402

# Redis databases this benchmark flushes; the test suites use 13, 14 and 15 (--redis-dbs changes them).
REDIS_DBS = (8, 9)
WORKER_CLASSES = ("SimpleWorker", "Worker")
STATISTIC = "one run each; the curves, not single figures, are what to read"
TARGET = "every job recorded exactly once; no lock waits"

#: How the worker processes' app factory (:func:`create_bench_app`) finds the stores.
ENV_DATABASE = "JOBMONITOR_BENCH_WORKERS_DATABASE_URL"
ENV_REDIS = "JOBMONITOR_BENCH_WORKERS_REDIS_URL"
ENV_STORAGE = "JOBMONITOR_BENCH_WORKERS_STORAGE"

BIN = Path(sys.executable).parent  # the virtualenv's `flask` and `rq`
DONE_POLL = 0.02  # seconds between two looks at whether the drain is over
LOCK_POLL = 0.025  # seconds between two samples of pg_stat_activity and pg_locks
STARTUP_TIMEOUT = 120.0  # seconds for N workers to be registered and idle
STOP_TIMEOUT = 20.0  # seconds for the workers to exit after SIGTERM; then their process groups are killed
RQ_SETTLE_TIMEOUT = 10.0  # seconds for RQ's finished registries to catch up with SQL after a tracked drain
HELD_SUFFIX = ":held-by-bench"  # where a queue's list waits while the workers start


@dataclass(frozen=True)
class Kind:
    """One kind of job: the bare RQ function and the tracked task doing the same."""

    name: str
    bare: Callable[..., None]
    task: Any
    seconds_per_job: float  # for the drain's timeout


KINDS = (
    Kind("no-op", benchapp.noop, benchapp.noop_task, 0.0),
    Kind("20 ms", benchapp.work_20ms, benchapp.work_20ms_task, benchapp.WORK_SECONDS),
)


@dataclass(frozen=True)
class Sizes:
    """How many jobs each run drains, and with how many workers; --quick shrinks both."""

    jobs: int
    counts: tuple[int, ...]


FULL = Sizes(jobs=2_000, counts=(1, 2, 4, 8))
QUICK = Sizes(jobs=200, counts=(1, 2))


def create_bench_app() -> Flask:
    """The tracked workers' app (``flask --app bench_workers:create_bench_app jobmonitor worker``)."""
    return benchapp.create_app(os.environ[ENV_DATABASE], os.environ[ENV_REDIS], os.environ[ENV_STORAGE])


# -- environment ---------------------------------------------------------------------------------


class Tracked:
    """The tracked side: the benchmark app on PostgreSQL, with a Redis database of its own."""

    def __init__(self, database_url: str, redis_url: str, storage: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.storage = storage
        self.redis = Redis.from_url(redis_url)
        self.app = benchapp.create_app(database_url, redis_url, storage)
        with self.app.app_context():
            state = get_state(self.app)
            self.engine: sa.Engine = state.engine
            self.queue_names: list[str] = state.settings.queues_in_priority_order
            self.abandoned_after: float = state.settings.abandoned_after
            Base.metadata.drop_all(self.engine)
            Base.metadata.create_all(self.engine)

    def reset(self) -> None:
        """Empty Redis and the job tables, so every run starts from the same state."""
        self.redis.flushdb()
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        with self.engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    def enqueue(self, task: Any, jobs: int) -> None:
        with self.app.app_context():
            for _ in range(jobs):
                benchapp.jobmonitor.enqueue(task)

    def completed(self) -> int:
        with self.engine.connect() as connection:
            query = sa.select(sa.func.count()).where(job_table.c.status == "completed")
            return int(connection.execute(query).scalar_one())

    def status_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(job_table.c.status, sa.func.count()).group_by(job_table.c.status))
            return {status: count for status, count in rows}

    def worker_env(self) -> dict[str, str]:
        """The environment of every worker process: imports from bench/ and this checkout."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(ROOT), env.get("PYTHONPATH")) if p)
        env.update({ENV_DATABASE: self.database_url, ENV_REDIS: self.redis_url, ENV_STORAGE: self.storage})
        return env


def machine_info(tracked: Tracked) -> dict[str, Any]:
    model = cpu_model()
    with tracked.engine.connect() as connection:
        postgresql = connection.exec_driver_sql("SHOW server_version").scalar()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "rq": rq.__version__,
        "redis_py": redis.__version__,
        "sqlalchemy": sa.__version__,
        "postgresql": postgresql,
        "redis_server": tracked.redis.info("server").get("redis_version"),
    }


# -- lock waits ----------------------------------------------------------------------------------

#: One sample: locks not granted in this database (as the issue asks: by the lock's database, which
#: misses row-lock waits, taken on transaction ids), locks not granted to this database's backends
#: (those included), its other backends, and each backend waiting for a lock.
LOCK_SAMPLE = sa.text(
    """
    SELECT
      (SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE d.datname = current_database() AND NOT l.granted) AS ungranted,
      (SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE a.datname = current_database() AND NOT l.granted) AS ungranted_of_backends,
      (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()) AS backends,
      (SELECT json_agg(json_build_array(wait_event, left(query, 80))) FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock') AS waiting
    """
)


class LockSampler:
    """Samples lock waits in the database every LOCK_POLL seconds, on a connection of its own."""

    def __init__(self, database_url: str) -> None:
        self.engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.samples = 0
        self.samples_with_wait = 0
        self.max_waiting = 0
        self.max_ungranted = 0
        self.max_ungranted_of_backends = 0
        self.max_backends = 0
        self.waits: Counter[tuple[str, str]] = Counter()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        self._connected.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()
        if self._error is not None and exc[0] is None:
            raise RuntimeError(f"lock sampler failed: {self._error}") from self._error

    def _run(self) -> None:
        try:
            with self.engine.connect() as connection:
                self._connected.set()
                while not self._stop.is_set():
                    self._take(connection.execute(LOCK_SAMPLE).one())
                    self._stop.wait(LOCK_POLL)
        except BaseException as error:  # reported by __exit__
            self._error = error
            self._connected.set()

    def _take(self, row: Any) -> None:
        waiting = row.waiting or []
        self.samples += 1
        self.samples_with_wait += bool(waiting or row.ungranted or row.ungranted_of_backends)
        self.max_waiting = max(self.max_waiting, len(waiting))
        self.max_ungranted = max(self.max_ungranted, row.ungranted)
        self.max_ungranted_of_backends = max(self.max_ungranted_of_backends, row.ungranted_of_backends)
        self.max_backends = max(self.max_backends, row.backends)
        for wait_event, query in waiting:
            self.waits[(wait_event or "", " ".join((query or "").split()))] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "samples_with_wait": self.samples_with_wait,
            "max_waiting_backends": self.max_waiting,
            "max_ungranted_locks": self.max_ungranted,
            "max_ungranted_locks_of_backends": self.max_ungranted_of_backends,
            "max_backends": self.max_backends,
            "waits": [
                {"wait_event": event, "query": query, "samples": n} for (event, query), n in self.waits.most_common()
            ],
        }


# -- one drain -----------------------------------------------------------------------------------


def hold_queues(connection: Redis, queues: list[Queue]) -> list[str]:
    """Set the queues' lists aside, so that workers starting now find nothing to do."""
    held = []
    for queue in queues:
        if connection.exists(queue.key):
            connection.rename(queue.key, queue.key + HELD_SUFFIX)
            held.append(queue.key)
    return held


def release_queues(connection: Redis, keys: list[str]) -> None:
    """Put the lists back in one transaction: the workers blocked on them wake up."""
    with connection.pipeline(transaction=True) as pipeline:
        for key in keys:
            pipeline.rename(key + HELD_SUFFIX, key)
        pipeline.execute()


def log_tail(path: Path, chars: int = 3000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-chars:]


def wait_until_idle(connection: Redis, processes: list[subprocess.Popen[bytes]], log: Path) -> float:
    """Seconds until all the worker processes are registered in Redis and waiting for a job."""
    start = perf_counter()
    while True:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"worker {process.pid} exited ({process.returncode}) before the drain:\n{log_tail(log)}"
                )
        workers = RQWorker.all(connection=connection)
        if len(workers) == len(processes) and all(w.get_state() == "idle" for w in workers):
            return perf_counter() - start
        if perf_counter() - start > STARTUP_TIMEOUT:
            states = [w.get_state() for w in workers]
            raise RuntimeError(f"{len(processes)} workers not idle after {STARTUP_TIMEOUT:.0f} s: {states}")
        time.sleep(0.05)


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    """SIGTERM to each worker; the process group (the worker and any work horse) of one that has
    not exited after STOP_TIMEOUT seconds is killed."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = monotonic() + STOP_TIMEOUT
    killed = []
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed.append(process.pid)
    return {"exit_codes": [process.returncode for process in processes], "killed": killed}


@dataclass
class Drain:
    """How to run one drain: the worker command, where its jobs wait, and when it is over."""

    argv: list[str]
    workers: int
    connection: Redis
    queues: list[Queue]
    done: Callable[[], bool]
    timeout: float
    env: dict[str, str]
    log: Path
    database_url: str
    #: (monotonic time the first job was queued, seconds): the lists must be back before then
    hide_limit: tuple[float, float] | None = None


def drain(spec: Drain) -> dict[str, Any]:
    """Start the workers, open the gate, time the drain, stop the workers; the figures of the run."""
    held = hold_queues(spec.connection, spec.queues)
    processes: list[subprocess.Popen[bytes]] = []
    out: dict[str, Any] = {}
    try:
        with open(spec.log, "ab") as log:
            for _ in range(spec.workers):
                processes.append(
                    subprocess.Popen(
                        spec.argv, env=spec.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        out["startup_seconds"] = wait_until_idle(spec.connection, processes, spec.log)
        if spec.hide_limit is not None and monotonic() - spec.hide_limit[0] >= spec.hide_limit[1]:
            # the workers' recovery would take a queued job that is in no queue for one Redis lost
            raise RuntimeError("jobs queued longer than JOBMONITOR_ABANDONED_AFTER before the drain: use fewer jobs")
        with LockSampler(spec.database_url) as sampler:
            start = perf_counter()
            release_queues(spec.connection, held)
            while not spec.done():
                if perf_counter() - start > spec.timeout:
                    raise RuntimeError(f"drain not over after {spec.timeout:.0f} s:\n{log_tail(spec.log)}")
                time.sleep(DONE_POLL)
            out["drain_seconds"] = perf_counter() - start
        out["locks"] = sampler.summary()
    finally:
        out["stop"] = stop_workers(processes)
    out["stop"]["left_registered"] = len(RQWorker.all(connection=spec.connection))
    out["stop"]["left_running"] = sum(process.poll() is None for process in processes)
    return out


# -- checks: every job recorded exactly once -------------------------------------------------------


def finished_jobs(queues: list[Queue]) -> list[str]:
    return [job_id for queue in queues for job_id in queue.finished_job_registry.get_job_ids()]


def rq_figures(connection: Redis, queues: list[Queue]) -> tuple[list[str], list[RQJob], dict[str, int]]:
    """Finished ids, their jobs, and RQ's counts of finished, failed and still queued jobs."""
    ids = finished_jobs(queues)
    jobs = [job for job in RQJob.fetch_many(ids, connection=connection) if job is not None]
    counts = {
        "finished_in_rq": len(ids),
        "distinct_finished_ids": len(set(ids)),
        "failed_in_rq": sum(queue.failed_job_registry.count for queue in queues),
        "left_in_queues": sum(queue.count for queue in queues),
    }
    return ids, jobs, counts


def per_worker(names: list[str | None]) -> dict[str, Any]:
    counts = Counter(names)
    return {"workers_used": len(counts), "fewest_jobs": min(counts.values()), "most_jobs": max(counts.values())}


def check_bare(connection: Redis, queues: list[Queue], jobs: int) -> dict[str, Any]:
    _, finished, counts = rq_figures(connection, queues)
    ok = (
        counts["finished_in_rq"] == counts["distinct_finished_ids"] == jobs
        and counts["failed_in_rq"] == 0
        and counts["left_in_queues"] == 0
    )
    return {**counts, **per_worker([job.worker_name for job in finished]), "exactly_once": ok}


def check_tracked(tracked: Tracked, queues: list[Queue], jobs: int) -> dict[str, Any]:
    deadline = monotonic() + RQ_SETTLE_TIMEOUT  # SQL says completed a moment before RQ files the job
    while sum(queue.finished_job_registry.count for queue in queues) < jobs and monotonic() < deadline:
        time.sleep(DONE_POLL)
    c = job_table.c
    with tracked.engine.connect() as connection:
        rows = connection.execute(sa.select(c.id, c.status, c.attempt, c.worker_name)).all()
    _, finished, counts = rq_figures(tracked.redis, queues)
    carried = Counter(job.args[0] for job in finished if job.args)
    sql_ids = {row.id for row in rows}
    figures = {
        "rows": len(rows),
        "completed": sum(row.status == "completed" for row in rows),
        "attempt_1": sum(row.attempt == 1 for row in rows),
        **counts,
        "rows_run_once_in_rq": sum(carried.get(job_id) == 1 for job_id in sql_ids),
        "rq_jobs_of_no_row": sum(n for job_id, n in carried.items() if job_id not in sql_ids),
        **per_worker([row.worker_name for row in rows]),
    }
    ok = (
        figures["rows"] == figures["completed"] == figures["attempt_1"] == jobs
        and figures["finished_in_rq"] == figures["distinct_finished_ids"] == jobs
        and figures["rows_run_once_in_rq"] == jobs
        and figures["rq_jobs_of_no_row"] == 0
        and figures["failed_in_rq"] == 0
        and figures["left_in_queues"] == 0
    )
    return {**figures, "exactly_once": ok}


# -- the runs ------------------------------------------------------------------------------------


@dataclass
class Bench:
    """What every run needs."""

    tracked: Tracked
    bare_redis: Redis
    bare_url: str
    jobs: int
    logs: Path

    def timeout(self, kind: Kind, workers: int) -> float:
        """Seconds a drain may take: generous (a loaded machine), but a stuck run ends."""
        return 120 + self.jobs * (0.1 + kind.seconds_per_job * 3) / workers


def finish(run: dict[str, Any], jobs: int) -> dict[str, Any]:
    """Add the rate, and whether the workers were left running, to the run's figures."""
    run["jobs_per_s"] = jobs / run["drain_seconds"]
    stop = run["stop"]
    run["checks"]["nothing_left_running"] = stop["left_running"] == 0 and stop["left_registered"] == 0
    return run


def run_bare(bench: Bench, class_name: str, kind: Kind, workers: int) -> dict[str, Any]:
    names = bench.tracked.queue_names  # the same queues, in the same order, as the tracked workers
    connection = bench.bare_redis
    connection.flushdb()
    queues = [Queue(name, connection=connection) for name in names]
    began = perf_counter()
    for _ in range(bench.jobs):
        queues[1].enqueue(kind.bare)
    enqueue_seconds = perf_counter() - began

    def done() -> bool:
        with connection.pipeline(transaction=False) as pipeline:
            for queue in queues:
                pipeline.zcard(queue.finished_job_registry.key)
                pipeline.llen(queue.key)
            values = pipeline.execute()
        return sum(values[0::2]) >= bench.jobs and not any(values[1::2])

    # -c benchapp: the worker imports the jobs' module before it forks, as a tracked worker has it
    # imported with its app (else every work horse of rq.Worker imports Flask and the package anew)
    argv = [str(BIN / "rq"), "worker", "-c", "benchapp", "-w", f"rq.{class_name}", "--url", bench.bare_url, *names]
    log = bench.logs / f"bare-{class_name}-{kind.name.replace(' ', '')}-{workers}.log"
    env = bench.tracked.worker_env()
    spec = Drain(
        argv, workers, connection, queues, done, bench.timeout(kind, workers), env, log, bench.tracked.database_url
    )
    run = {"enqueue_seconds": enqueue_seconds, **drain(spec)}
    run["checks"] = check_bare(connection, queues, bench.jobs)
    return finish(run, bench.jobs)


def run_tracked(bench: Bench, class_name: str, kind: Kind, workers: int) -> dict[str, Any]:
    tracked = bench.tracked
    tracked.reset()
    began = monotonic()
    tracked.enqueue(kind.task, bench.jobs)
    enqueue_seconds = monotonic() - began
    queues = [Queue(name, connection=tracked.redis) for name in tracked.queue_names]
    argv = [
        *(str(BIN / "flask"), "--app", "bench_workers:create_bench_app", "jobmonitor", "worker"),
        *("--worker-class", f"rq.{class_name}", "--without-scheduler"),
    ]
    log = bench.logs / f"tracked-{class_name}-{kind.name.replace(' ', '')}-{workers}.log"
    spec = Drain(
        argv,
        workers,
        tracked.redis,
        queues,
        lambda: tracked.completed() >= bench.jobs,
        bench.timeout(kind, workers),
        tracked.worker_env(),
        log,
        tracked.database_url,
        hide_limit=(began, tracked.abandoned_after),
    )
    try:
        run = {"enqueue_seconds": enqueue_seconds, **drain(spec)}
    except RuntimeError as error:
        raise RuntimeError(f"{error}\njob statuses: {tracked.status_counts()}") from error
    run["checks"] = check_tracked(tracked, queues, bench.jobs)
    return finish(run, bench.jobs)


def describe_locks(label: str, locks: dict[str, Any]) -> str:
    line = f"{label} {locks['samples_with_wait']}/{locks['samples']} samples with lock waits"
    if locks["samples_with_wait"]:
        line += f" (max {locks['max_waiting_backends']} waiting, {locks['max_ungranted_locks_of_backends']} ungranted)"
        line += "".join(f"\n      {w['samples']}x {w['wait_event']}: {w['query']}" for w in locks["waits"])
    return line


def result_of(
    class_name: str, kind: Kind, workers: int, bare: dict[str, Any], tracked: dict[str, Any]
) -> dict[str, Any]:
    once = bare["checks"]["exactly_once"] and tracked["checks"]["exactly_once"]
    return {
        "id": f"workers/{class_name}/{kind.name.replace(' ', '')}/{workers}",
        "figure": f"{kind.name} jobs, {class_name}, {workers} workers",
        "unit": "jobs/s",
        "value": tracked["jobs_per_s"],
        "baseline": bare["jobs_per_s"],
        "baseline_name": "bare RQ",
        "ratio": tracked["jobs_per_s"] / bare["jobs_per_s"],
        "target": TARGET,
        "met": once and tracked["locks"]["samples_with_wait"] == 0,
        "exactly_once": once,
        "worker_class": class_name,
        "kind": kind.name,
        "workers": workers,
        "statistic": STATISTIC,
        "bare": bare,
        "tracked": tracked,
    }


def add_speedups(results: list[dict[str, Any]]) -> None:
    """Each side's jobs/s over its own figure with the fewest workers of the same class and kind."""
    for result in results:
        base = min(
            (r for r in results if (r["worker_class"], r["kind"]) == (result["worker_class"], result["kind"])),
            key=lambda r: r["workers"],
        )
        result["speedup"] = {
            "relative_to_workers": base["workers"],
            "bare": result["baseline"] / base["baseline"],
            "tracked": result["value"] / base["value"],
        }


def yes_no(value: bool) -> str:
    return "yes" if value else "NO"


def bench_workers(bench: Bench, classes: list[str], counts: list[int]) -> list[dict[str, Any]]:
    results = []
    for class_name in classes:
        for kind in KINDS:
            for index, workers in enumerate(counts):
                # alternate which side goes first, so slow drift of the machine hits both alike
                sides = [("bare", run_bare), ("tracked", run_tracked)]
                runs = {
                    name: run(bench, class_name, kind, workers) for name, run in sides[:: 1 if index % 2 == 0 else -1]
                }
                result = result_of(class_name, kind, workers, runs["bare"], runs["tracked"])
                results.append(result)
                print(
                    f"  {result['figure']}: tracked {result['value']:,.0f} jobs/s | bare {result['baseline']:,.0f}"
                    f" jobs/s | ratio {result['ratio']:.3g} | exactly once: {yes_no(result['exactly_once'])}",
                    flush=True,
                )
                print("    " + describe_locks("tracked:", runs["tracked"]["locks"]), flush=True)
                print("    " + describe_locks("bare:", runs["bare"]["locks"]), flush=True)
    add_speedups(results)
    return results


# -- output ------------------------------------------------------------------------------------------


def print_table(results: list[dict[str, Any]]) -> None:
    header = ("class", "jobs", "N", "bare/s", "tracked/s", "ratio", "bare x", "tracked x", "lock waits", "once", "met")
    rows = []
    for r in results:
        locks = r["tracked"]["locks"]
        rows.append(
            (
                r["worker_class"],
                r["kind"],
                str(r["workers"]),
                f"{r['baseline']:,.0f}",
                f"{r['value']:,.0f}",
                f"{r['ratio']:.3g}",
                f"{r['speedup']['bare']:.2f}",
                f"{r['speedup']['tracked']:.2f}",
                f"{locks['samples_with_wait']}/{locks['samples']} (max {locks['max_waiting_backends']})",
                yes_no(r["exactly_once"]),
                yes_no(r["met"]),
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(f"speed-ups (x) are over each side's own figure with the fewest workers; {STATISTIC}")
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def violations(results: list[dict[str, Any]]) -> list[str]:
    found = []
    for r in results:
        for side in ("bare", "tracked"):
            checks = r[side]["checks"]
            if not (checks["exactly_once"] and checks["nothing_left_running"]):
                found.append(f"{r['id']} ({side}): {checks}")
    return found


def main(argv: list[str] | None = None) -> int:
    measured = revision()  # taken first: a commit made while it runs is not what it measured
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK.jobs} jobs per run, workers {QUICK.counts}: under two minutes"
    )
    parser.add_argument("--only-class", choices=WORKER_CLASSES, help="run one worker class only")
    parser.add_argument("--counts", help="comma-separated worker counts (default: 1,2,4,8; --quick: 1,2)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "JOBMONITOR_BENCH_WORKERS_DATABASE_URL",
            "postgresql+psycopg://postgres@127.0.0.1:5432/jobmonitor_bench_workers",
        ),
    )
    parser.add_argument("--redis", default=os.environ.get("JOBMONITOR_BENCH_REDIS", "redis://127.0.0.1:6379"))
    parser.add_argument(
        "--redis-dbs",
        default=",".join(map(str, REDIS_DBS)),
        help="two Redis database numbers (bare RQ, tracked) that nothing else uses; they are flushed",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "workers.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    counts = sorted({int(n) for n in args.counts.split(",")}) if args.counts else list(sizes.counts)
    if not counts or min(counts) < 1:
        parser.error("--counts: positive worker counts, e.g. 1,2,4,8")
    classes = [args.only_class] if args.only_class else list(WORKER_CLASSES)
    began = time.time()
    load_before = warn_if_busy()

    ensure_postgres_database(args.postgres_url)
    bare_db, tracked_db = (int(n) for n in args.redis_dbs.split(","))
    require_empty_redis_dbs(parser, args.redis, (bare_db, tracked_db))
    bare_url = f"{args.redis}/{bare_db}"
    tmp = tempfile.TemporaryDirectory(prefix="jobmonitor-bench-workers-")
    tracked = Tracked(args.postgres_url, f"{args.redis}/{tracked_db}", f"{tmp.name}/files")
    bench = Bench(tracked, Redis.from_url(bare_url), bare_url, sizes.jobs, Path(tmp.name))
    print(f"{sizes.jobs} jobs per run; workers {counts}; {', '.join(classes)}; {STATISTIC}", flush=True)
    try:
        results = bench_workers(bench, classes, counts)
        info = machine_info(tracked)
    finally:
        bench.bare_redis.flushdb()
        tracked.redis.flushdb()
        tracked.engine.dispose()
        tmp.cleanup()

    print_table(results)
    seconds = time.time() - began
    report = {
        "mode": "quick" if args.quick else "full",
        "sizes": {"jobs": sizes.jobs, "counts": counts, "classes": classes, "kinds": [kind.name for kind in KINDS]},
        "statistic": STATISTIC,
        "seconds": round(seconds, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "revision": measured,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(results)} rows in {seconds:.0f} s; written to {args.output}")
    found = violations(results)
    if found:
        raise RuntimeError("jobs not recorded exactly once, or workers left running:\n" + "\n".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
