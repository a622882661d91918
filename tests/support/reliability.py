"""The reliability tests' environment: an app with short timeouts, and real worker subprocesses
(``flask --app tests.worker_app:create_app jobmonitor worker``) that can be SIGKILLed or SIGTERMed.
Job rows are read with ``rows`` and waited for with ``waiting``.

Redis: the reliability tests use their own database on the test Redis server (default: number 14,
``JOBMONITOR_TEST_RELIABILITY_REDIS_URL`` overrides it), because what they exercise lives in keys
that RQ and the package share across queues: the recovery lock, rq-scheduler's schedule, RQ's
worker registrations. Other test runs on database 15 can then neither delay a recovery pass
(by holding the lock) nor cancel a schedule (by syncing their own). Nothing is flushed: only the
keys of this process's queues and jobs are deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis import Redis

from flask_jobmonitor.keys import RECOVERY_LOCK, control_key
from flask_jobmonitor.records.models import job_table
from flask_jobmonitor.state import JobMonitorState, get_state

from ..worker_app import APP_NAME, environment
from .apps import build_app
from .databases import dispose_engines, empty_tables
from .extensions import db
from .processes import children_of, process_alive, process_group, start_time
from .services import reliability_redis_url
from .waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
#: RQ queues of this test process (pid in the name: two runs never share a queue).
QUEUES = {level: f"jm-rel-{os.getpid()}-{level}" for level in ("high", "default", "low")}
#: Short timeouts so that a dead worker is noticed in seconds: abandoned after 3 s (a heartbeat
#: every 0.75 s, a recovery pass every second), a shutdown grace of 5 s.
BASE_CONFIG: dict[str, Any] = {
    "JOBMONITOR_ABANDONED_AFTER": 3,
    "JOBMONITOR_SHUTDOWN_GRACE": 5,
    "JOBMONITOR_FLUSH_INTERVAL": 0.2,
    "JOBMONITOR_STOP_CHECK_INTERVAL": 0.1,
    "JOBMONITOR_DB_RETRY_SECONDS": 20,
}
TERMINAL = ("completed", "failed", "stopped", "cancelled")


class WorkerProcess:
    """One ``flask jobmonitor worker`` subprocess (in its own session, so its process group is
    its pid; a forking worker's work horse makes a process group of its own)."""

    def __init__(
        self,
        env: ReliabilityEnv,
        name: str,
        worker_class: str,
        scheduler: bool,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.env = env
        self.name = name
        self.worker_class = worker_class
        self.log_path = env.tmp_path / f"worker-{name}.log"
        command = [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "tests.worker_app:create_app",
            "jobmonitor",
            "worker",
            "--name",
            name,
            "--worker-class",
            worker_class,
            "--with-scheduler" if scheduler else "--without-scheduler",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **env.environment, **(extra_env or {}), "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.process.pid
        self.horses: list[tuple[int, int]] = []  # (pid, start time) of every horse seen

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        """Wait until the worker works: registered in Redis and past RQ's bootstrap (its state is
        idle, busy or suspended). RQ registers a worker before it installs its signal handlers;
        a SIGTERM in between would kill it outright instead of starting a warm shutdown."""

        def working() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            state = self.env.redis.hget(f"rq:worker:{self.name}", "state")
            return state in (b"idle", b"busy", b"suspended")

        wait_for(working, timeout, f"worker {self.name} to start", interval=0.05)
        return self

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def horse_pid(self) -> int | None:
        """The work horse running a job now (a forking worker's child in its own process group)."""
        for child in children_of(self.pid):
            started = start_time(child)
            if process_group(child) == child and started is not None:
                self.horses.append((child, started))
                return child
        return None

    def kill_machine(self) -> int | None:
        """SIGKILL the worker and its work horse (the horse's process group too): a lost machine.
        Returns the horse's pid (None for a SimpleWorker, whose job runs in the worker)."""
        horse = self.horse_pid()
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if horse is not None:
            with suppress(ProcessLookupError):
                os.killpg(horse, signal.SIGKILL)
        self.process.wait(timeout=10)
        return horse

    def kill_worker_only(self) -> int | None:
        """SIGKILL the worker's process group, which does not hold the work horse: the horse
        runs on as an orphan. Returns the horse's pid."""
        horse = self.horse_pid()
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return horse

    def terminate(self) -> None:
        """SIGTERM to the worker process only (what a deploy sends): a warm shutdown."""
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def cleanup(self) -> None:
        """Kill whatever of this worker still runs: the worker, its horse, orphaned horses."""
        if self.alive:
            self.horse_pid()
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        for pid, start in self.horses:
            if process_alive(pid, start):
                with suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


# -- the environment of one test -----------------------------------------------------------------


class ReliabilityEnv:
    """The app (context pushed), its workers and the keys to clean for one test."""

    def __init__(self, database_url: str, redis_url: str, tmp_path: Path) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.tmp_path = tmp_path
        self.storage_path = str(tmp_path / "files")
        self.redis = Redis.from_url(self.redis_url)
        self.workers: list[WorkerProcess] = []
        self.config: dict[str, Any] = {}
        self.environment: dict[str, str] = {}
        self._app: Flask | None = None
        self._stack = ExitStack()

    def start(self, **config: Any) -> Flask:
        """Build the app with BASE_CONFIG and ``config`` (keys without the JOBMONITOR_ prefix
        get it), push its context, empty the job tables and this process's Redis keys."""
        assert self._app is None, "start() once per test"
        self.config = {**BASE_CONFIG, **{_key(k): v for k, v in config.items()}}
        self.environment = environment(self.database_url, self.redis_url, self.storage_path, QUEUES, self.config)
        app = build_app(
            self.database_url, self.redis_url, self.storage_path, name=APP_NAME, queue_names=QUEUES, **self.config
        )
        self._stack.enter_context(app.app_context())
        self._app = app
        empty_tables(db.engine)
        self.clean_redis()
        return app

    @property
    def app(self) -> Flask:
        assert self._app is not None, "call start() first"
        return self._app

    @property
    def state(self) -> JobMonitorState:
        return get_state(self.app)

    @property
    def engine(self) -> sa.Engine:
        return self.state.engine

    def worker(
        self,
        worker_class: str = "rq.Worker",
        *,
        scheduler: bool = False,
        wait: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        """Start a worker subprocess (``rq.Worker`` forks a horse per job, ``rq.SimpleWorker``
        runs jobs in itself); ``extra_env`` adds environment variables of that worker only."""
        kind = "simple" if "Simple" in worker_class else "fork"
        name = f"{kind}-{len(self.workers) + 1}-{uuid.uuid4().hex[:6]}"
        worker = WorkerProcess(self, name, worker_class, scheduler, extra_env)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``flask --app tests.worker_app:create_app <args>`` with this test's app settings."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "tests.worker_app:create_app", *args],
            cwd=ROOT,
            env={**os.environ, **self.environment},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def worker_logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in self.workers)

    def clean_redis(self) -> None:
        """Delete this process's queues, registries, scheduler locks, job hashes and signals."""
        keys: set[bytes | str] = {RECOVERY_LOCK}
        for name in QUEUES.values():
            keys.update(self.redis.scan_iter(match=f"*{name}*", count=1000))
        with suppress(Exception):
            with self.engine.connect() as connection:
                ids = list(connection.execute(sa.select(job_table.c.id)).scalars())
            for job_id in ids:
                keys.update((f"rq:job:{job_id}", f"rq:results:{job_id}", control_key(job_id)))
        for batch in _batches(sorted(keys, key=str), 500):
            self.redis.delete(*batch)
        self.redis.srem("rq:queues", *(f"rq:queue:{name}" for name in QUEUES.values()))

    def close(self) -> None:
        for worker in self.workers:
            worker.cleanup()
        if self._app is not None:
            with suppress(Exception):
                self.clean_redis()
        self._stack.close()
        if self._app is not None:
            dispose_engines(self._app)
        self.redis.close()


@contextmanager
def reliability_env(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[ReliabilityEnv]:
    """A :class:`ReliabilityEnv` on the reliability tests' Redis database; closed (workers killed,
    keys deleted) when the block ends."""
    env = ReliabilityEnv(database_url, reliability_redis_url(redis_url), tmp_path)
    try:
        yield env
    finally:
        env.close()


def _key(name: str) -> str:
    return name if name.startswith("JOBMONITOR_") else f"JOBMONITOR_{name}"


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
