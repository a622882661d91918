"""The heartbeat a running job writes, so that a dead worker is noticed from the job's side.

A worker's own registration in Redis says nothing reliable about its job: RQ's work horse calls
``os.setpgrp()`` and outlives a SIGKILLed worker (docs/architecture.md, "RQ behaviour the
design relies on"). So the process that runs the task updates ``heartbeat_at`` on its job row
every ``JOBMONITOR_ABANDONED_AFTER / 4`` seconds from a thread (it beats even while the task
blocks in a long call). Recovery treats a ``running`` job whose heartbeat is older than
``JOBMONITOR_ABANDONED_AFTER`` as abandoned; an orphaned horse that still runs keeps beating,
so its job is never resumed twice.

The heartbeat is fenced by the attempt number like every write of a run: once recovery has
given the job to another attempt, the old run's heartbeat finds no row and tells its context
to stop writing.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import sqlalchemy as sa

from ..records.models import job_table
from ..timeutil import utcnow

log = logging.getLogger("flask_jobmonitor.internal.heartbeat")


class Heartbeat:
    """The heartbeat of one run of one job: registered with the process's beating thread."""

    def __init__(self, engine: sa.Engine, job_id: str, attempt: int, interval: float) -> None:
        self.engine = engine
        self.job_id = job_id
        self.attempt = attempt
        self.interval = interval
        self.superseded = False

    def start(self) -> Heartbeat:
        """Start beating (the first beat is the claim itself, which set ``heartbeat_at``)."""
        _service(self.engine, self.interval).add(self)
        return self

    def stop(self) -> None:
        """Stop beating for this run."""
        _service(self.engine, self.interval).remove(self)

    def beat(self) -> None:
        """Write one heartbeat now; mark the run superseded if it no longer owns the job."""
        with self.engine.begin() as connection:
            written = connection.execute(
                sa.update(job_table)
                .where(
                    job_table.c.id == self.job_id,
                    job_table.c.attempt == self.attempt,
                    job_table.c.status.in_(("running", "stopping")),
                )
                .values(heartbeat_at=utcnow())
            ).rowcount
        if written != 1:
            self.superseded = True


class _BeatingThread:
    """One daemon thread per process (and engine) that beats for every job running in it.

    A thread per job would cost a thread start and join per job, which for a SimpleWorker
    running small jobs was a noticeable share of each job's time; one long-lived thread does not.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._runs: dict[int, Heartbeat] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            self._runs[id(heartbeat)] = heartbeat
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="jobmonitor-heartbeat", daemon=True)
                self._thread.start()

    def remove(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            self._runs.pop(id(heartbeat), None)

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            with self._lock:
                runs = list(self._runs.values())
            for run in runs:
                try:
                    run.beat()
                except sa.exc.SQLAlchemyError as error:
                    # the database may be back at the next beat; missing a few is what the
                    # generous ABANDONED_AFTER is for
                    log.warning("job %s: heartbeat not written: %s", run.job_id, error)


_services: dict[tuple[int, int, float], _BeatingThread] = {}
_services_lock = threading.Lock()


def _service(engine: sa.Engine, interval: float) -> _BeatingThread:
    # keyed by process too: a forked work horse starts its own thread, not the parent's copy
    key = (os.getpid(), id(engine), interval)
    with _services_lock:
        service = _services.get(key)
        if service is None:
            service = _services[key] = _BeatingThread(interval)
        return service
