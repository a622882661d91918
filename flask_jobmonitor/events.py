"""Signals a host connects to, to act on a job's life: an e-mail or a webhook when a job fails, a
chat message when an import ends, a counter of its own.

They are blinker signals, like Flask's own (``flask.template_rendered``), in this package's
namespace; connect a function with ``job_ended.connect(receiver)`` or, for one app,
``job_ended.connect_via(app)``. The rules every signal keeps:

* **The sender is the Flask app** whose job it is; keyword arguments say what happened:
  ``job_id`` and ``job`` always, and what each signal adds (:data:`SIGNALS` lists them).
  ``job`` is the job's record (:class:`~flask_jobmonitor.Job`, detached from any session) as read
  just after the change; for :data:`job_deleted`, as it was just before.
* **Sent after the change is committed**, never for a change rolled back or refused: a receiver
  that reads the job or its steps sees what the signal says. At most once per change: should a
  commit's acknowledgement be lost and the move be retried and refused, nothing is sent. A job
  can end more than once: a stopped job that is resumed ends again, and one that is cancelled
  later ends again ``cancelled``.
* **Sent in the process that made the change** (docs/developers.md, "Reacting to job events",
  has the table): a job is queued by a web request, a worker (a task spawning children, a
  schedule) or the CLI; it starts, finishes steps and ends in a worker (in the work horse with
  RQ's forking ``Worker``); a person stops or deletes it in a web request; recovery ends jobs of
  lost workers in any worker. A receiver runs in that process, in an app context pushed for it:
  its ``db.session`` is its own (not the session of the task whose step just ended, nor the
  request's), so it commits what it writes, and its rollback undoes nothing else. In a worker
  there is no request: build links with ``url_for(..., _external=True)`` only where
  ``SERVER_NAME`` is set.
* **A receiver that raises changes nothing**: the error is logged (logger
  ``flask_jobmonitor.events``, with its traceback), the other receivers still run, and the job,
  the request or the worker go on as if it had not been connected. It is not called again. RQ's
  job timeout is the exception: it goes on, so that the job still ends.
* **A receiver runs in line**: a job's end waits for it. Slow work (an e-mail through a remote
  server) belongs in a job of its own or a thread of the host's.
* **Nobody connected, nothing done**: no read of the job, no object built (a tracked job's cost
  is measured to the millisecond, bench/bench_core.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from blinker import NamedSignal, Namespace
from rq.timeouts import BaseTimeoutException
from sqlalchemy.orm import Session

from .records.models import Job

if TYPE_CHECKING:
    from .state import JobMonitorState

log = logging.getLogger("flask_jobmonitor.events")

_signals = Namespace()

#: A job was created, ``queued`` (``again=False``), or a stopped or paused job was queued again to
#: continue from its checkpoint (``again=True``). Sent before RQ is handed the job, so it comes
#: before the job's ``job_started``; should Redis then refuse it, ``job_ended`` (failed) follows.
#: A delayed or held-back child job is queued when it is created, though it waits
#: (``job.enqueued_at``).
job_queued: NamedSignal = _signals.signal("jobmonitor.job-queued")
#: A worker claimed the job and its task is about to run (``attempt``: 1, then 2 after a resume
#: or a recovery ...).
job_started: NamedSignal = _signals.signal("jobmonitor.job-started")
#: One of the job's steps ended (``step``: its name, ``position``: 1 ..., ``status``:
#: ``"completed"``, ``"failed"``, or ``"stopped"`` when its job stopped or paused in it); sent
#: once the step's end is written, at most once per run of the job.
step_finished: NamedSignal = _signals.signal("jobmonitor.step-finished")
#: The job ended: ``outcome`` is ``"completed"``, ``"failed"``, ``"stopped"`` or ``"cancelled"``
#: (a :class:`~flask_jobmonitor.JobStatus`). Sent once per end, whatever ended it: its task, a
#: person, recovery after its worker died, the end of its last child (a parent's family).
job_ended: NamedSignal = _signals.signal("jobmonitor.job-ended")
#: A run of the job failed and its task's retry policy tries it again (tasks.RetryPolicy): the job
#: is ``queued`` again; ``retry`` is the number of this retry (1 for the retry of the first try),
#: ``retry_at`` when it runs (naive UTC), and ``error`` the failure's message as the page shows
#: it. No ``job_ended`` is sent for it.
job_retrying: NamedSignal = _signals.signal("jobmonitor.job-retrying")
#: A person (or code through ``control``) asked the job to stop: ``action`` is ``"stop"``,
#: ``"cancel"`` or ``"force_stop"``, ``user`` whoever asked (the host's user object, or None).
#: The job ends later, at its next checkpoint (:data:`job_ended` then says how), or at once for a
#: force stop or the cancel of a job that was not running. Sent once the request has gone out
#: (the stop signal, RQ's kill): a slow receiver does not hold it back, and a job that stops at
#: once may have sent its own :data:`job_ended` first.
job_stopped: NamedSignal = _signals.signal("jobmonitor.job-stopped")
#: The job and its records were deleted: by a person (``user``), or by the retention job
#: (``user`` None). Sent for each job of a deleted family.
job_deleted: NamedSignal = _signals.signal("jobmonitor.job-deleted")

#: Every signal, with the keyword arguments it adds to ``job_id`` and ``job``.
SIGNALS: Mapping[NamedSignal, tuple[str, ...]] = {
    job_queued: ("again",),
    job_started: ("attempt",),
    step_finished: ("step", "position", "status"),
    job_ended: ("outcome",),
    job_retrying: ("retry", "retry_at", "error"),
    job_stopped: ("action", "user"),
    job_deleted: ("user",),
}


def listened(state: JobMonitorState, signal: NamedSignal) -> bool:
    """Whether any receiver waits for ``signal`` from this app (else a sender skips its work)."""
    return bool(signal.receivers) and signal.has_receivers_for(state.app)


def send(state: JobMonitorState, signal: NamedSignal, job_id: str, *, job: Job | None = None, **fields: Any) -> None:
    """Tell ``signal``'s receivers about job ``job_id``: call only after the change is committed.

    ``job`` is read here unless given (a job already deleted is given as it was). Each receiver
    runs in turn; one that raises is logged and skipped (see the module docstring)."""
    if not listened(state, signal):
        return
    # an app context of the receivers' own: their db.session is not the one of the task whose
    # step just ended, nor the request's, so a receiver's commit or rollback touches only its
    # own work (and the context's teardown removes it); a thread without a context gets one too
    with state.app.app_context():
        _send(state, signal, job_id, job, fields)


def send_each(state: JobMonitorState, signal: NamedSignal, job_ids: Iterable[str], **fields: Any) -> None:
    """:func:`send` for many jobs changed by one statement (children cancelled with their
    parent), with their records read in one query."""
    if not listened(state, signal):
        return
    ids = list(job_ids)
    try:
        jobs = load_jobs(state, ids)
    except Exception:
        log.exception("%s about %s jobs not sent: their records could not be read", signal.name, len(ids))
        return
    for job_id in ids:
        send(state, signal, job_id, job=jobs.get(job_id), **fields)


def records_before(state: JobMonitorState, signal: NamedSignal, job_ids: list[str]) -> dict[str, Job]:
    """The records of ``job_ids`` read before a change that removes them (a delete), for the
    :func:`send` after it; nothing when nobody listens to ``signal`` or they cannot be read."""
    if not listened(state, signal):
        return {}
    try:
        return load_jobs(state, job_ids)
    except Exception:
        log.exception("%s: the records of %s jobs could not be read", signal.name, len(job_ids))
        return {}


def load_jobs(state: JobMonitorState, job_ids: list[str]) -> dict[str, Job]:
    """The records of ``job_ids`` (those that exist), detached from their session."""
    found: dict[str, Job] = {}
    with Session(state.engine, expire_on_commit=False) as session:
        for start in range(0, len(job_ids), 500):
            chunk = job_ids[start : start + 500]
            for job in session.scalars(sa.select(Job).where(Job.id.in_(chunk))):
                found[job.id] = job
        session.expunge_all()
    return found


def _send(state: JobMonitorState, signal: NamedSignal, job_id: str, job: Job | None, fields: dict[str, Any]) -> None:
    if job is None:
        try:
            job = load_jobs(state, [job_id]).get(job_id)
        except Exception:  # the database went away just after the change: the change stands
            log.exception("%s about job %s not sent: its record could not be read", signal.name, job_id)
            return
    app = state.app
    for receiver in signal.receivers_for(app):
        try:
            receiver(app, job_id=job_id, job=job, **fields)
        except BaseTimeoutException:
            raise  # RQ's job timeout went off while a receiver ran: the job must still end
        except Exception:
            log.exception("a receiver of %s about job %s raised; the job goes on", signal.name, job_id)
