"""The end of a job that waits for its worker's next claim, to be written in its transaction.

A forking worker that goes straight on from one job to the next writes the first one's end and
the next one's claim in one transaction: one commit (one WAL flush) a job instead of two
(bench_core.py measures it: "the floor with each end in the next claim's commit"). The rules:

* Only a forking worker's plain completion waits: the worker records it once its work horse
  has exited (runner.settle_after_horse), when RQ holds the job as finished with the run's
  result "completed" already, so a worker killed with the end waiting leaves recovery what it
  needs (below). A SimpleWorker writes its ends at once: its end would wait before RQ's own
  record of the job, and a kill in between would leave nothing saying the job completed.
* Only a job that is no child (its family's end and its siblings' release follow its end), when
  nobody listens to ``job_ended`` (its receivers run after the commit). The notification of the
  job's user is written with the end.
* Only in the thread of a worker's loop (process.py lets ends wait from the start of ``work``);
  a forked work horse drops what it inherited. At most one end waits.
* The waiting end is written

  - in the next claim's transaction (runner.claim), whatever that claim's answer;
  - alone, before the worker waits or does anything else first: a pop that would block finds
    every queue empty, or a slice of a blocking pop passes without a job (a worker that raced
    this one for the job: the end then waited at most ``POP_SLICE``, 1 s); the next job is not
    one the worker claims (a schedule's launch, a plain RQ job); Redis fails (RQ then waits
    for it); RQ's maintenance; a suspension (a pause of all jobs); the end of the loop (a burst
    that found no more jobs, a shutdown);
  - alone, if the claim's transaction fails (a deadlock, an outage), retried through a database
    outage like any end (runner._durably), and never cut in two by a shutdown signal.

* A worker killed (SIGKILL, a lost machine) while an end waits leaves the job ``running`` in SQL,
  while RQ holds it as finished with the run's result "completed": recovery records it completed
  once its heartbeat is older than ``JOBMONITOR_ABANDONED_AFTER`` (maintenance.py, the late
  success of a run whose worker died), as it does for a forking worker killed before it settled.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ..errors import JobNotFound, TransitionRefused
from ..records.notifications import add_notification, notifies
from ..records.transitions import apply_transition
from ..state import JobMonitorState
from . import shutdown
from .context import RunInfo
from .retry import retry_db

log = logging.getLogger("flask_jobmonitor.internal.ends")


@dataclass(frozen=True)
class WaitingEnd:
    """A completed run whose end is not written yet."""

    run: RunInfo
    ended_at: datetime


class _Ends:
    """The waiting end of this process's worker (see the module docstring)."""

    def __init__(self) -> None:
        #: The thread that runs the worker's loop, while it runs (never in a work horse): only
        #: its ends wait (another thread of the process, such as a test's, writes its own).
        self.loop_thread: int | None = None
        self.waiting: WaitingEnd | None = None

    def hold(self, run: RunInfo, ended_at: datetime) -> bool:
        """Keep the end of ``run`` for the next claim; False (write it now) outside a worker's
        loop or when another end waits already."""
        if self.loop_thread != threading.get_ident() or self.waiting is not None:
            return False
        self.waiting = WaitingEnd(run, ended_at)
        return True

    def take(self) -> WaitingEnd | None:
        """The waiting end, now the caller's to write (None from another thread than the loop's)."""
        if self.loop_thread not in (None, threading.get_ident()):
            return None
        waiting, self.waiting = self.waiting, None
        return waiting

    def flush(self, state: JobMonitorState) -> None:
        """Write the waiting end, if any, on its own (retried through a database outage); a
        shutdown signal waits until it is written (it cannot land between the take and the write)."""
        with shutdown.critical_section():
            waiting = self.take()
            if waiting is not None:
                write_alone(state, waiting)


#: The waiting end of this process (a forked work horse inherits none: process.py clears it).
ends = _Ends()


def write(state: JobMonitorState, connection: sa.Connection, end: WaitingEnd) -> None:
    """Write ``end`` in the caller's transaction: ``completed``, and the notification of its user.
    A move refused (a person force-stopped the job meanwhile) leaves their record standing."""
    run = end.run
    try:
        apply_transition(connection, run.job_id, "finish", attempt=run.attempt, values={"ended_at": end.ended_at})
    except (TransitionRefused, JobNotFound) as refused:  # force-stopped, or deleted, meanwhile
        log.info("end of job %s not recorded: %s", run.job_id, refused)
        return
    if notifies(state, run.run_by_id, run.root_id):
        add_notification(connection, run.run_by_id, run.job_id, "completed")


def write_alone(state: JobMonitorState, end: WaitingEnd) -> None:
    """Write ``end`` in a transaction of its own, retried through a database outage and never
    cut in two by a shutdown signal (as runner._durably writes every end)."""

    def writing() -> None:
        with state.engine.begin() as connection:
            write(state, connection, end)

    with shutdown.critical_section():
        retry_db(writing, state.settings.db_retry_seconds, "recording the result")
