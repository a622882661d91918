"""Pause all / resume all: operators stop every worker from starting jobs (a deploy, database
maintenance) and let them continue afterwards.

The rules:

* **Workers start no new job** through RQ's own suspension (``rq.suspension``, what ``rq
  suspend`` does): one Redis key that every RQ worker on that Redis checks before it takes a
  job, on every machine. It suspends *every* RQ worker of that Redis, tracked jobs or not.
  (RQ checks it only before it starts waiting for a job; the worker mixin puts back a job
  that an already waiting worker received meanwhile: worker/process.py.)
* **Running jobs of resumable tasks are asked to pause** at their next checkpoint (the
  ``pause`` signal of signals.py, as a worker's warm shutdown does): they go ``paused`` and
  back to the front of their queue, where they wait. A job someone asked to stop keeps its stop.
  Jobs of other tasks run to their end; :func:`progress` tells when that is expected.
* **New jobs are accepted**: they are queued and wait with the rest.
* **The state lives in Redis** (keys.py), next to RQ's suspension, so every process on every
  machine sees it: since when and by whom jobs are paused, and which jobs this pause asked to
  pause (and when). Pausing again keeps the first time and person, and asks the jobs that
  started meanwhile. :func:`resume_all` lifts the suspension and forgets the record; jobs the
  pause paused continue from their checkpoints, jobs people stopped, cancelled or paused
  themselves stay as they are. Resuming twice is harmless.

The CLI (``flask jobmonitor pause`` / ``resume``) and the queue health page are thin shells
over :func:`pause_all`, :func:`progress`, :func:`wait_until_idle` and :func:`resume_all`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import g, has_app_context
from redis.exceptions import RedisError
from rq.suspension import resume, suspend

from ..errors import JobMonitorError, JobNotFound, PauseAllUnavailable, TransitionRefused
from ..i18n import N_, format_number, gettext, ngettext
from ..keys import PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY, control_key
from ..records.estimates import jobs_time_left
from ..records.journal import write_log
from ..records.models import job_table
from ..records.status import JobStatus
from ..state import JobMonitorState
from ..timeutil import utcnow
from ..users import describe_user
from . import audit
from . import rq as rq_internals
from .enqueue import requeue
from .signals import send_signal

log = logging.getLogger("flask_jobmonitor.internal.pause_all")
#: The logger named in the lines a pause writes into each job's own log.
_LOG_AS = "flask_jobmonitor.pause_all"
#: Statuses of a job that holds a worker now.
_RUNNING = (JobStatus.RUNNING.value, JobStatus.STOPPING.value)

#: The kinds of running job during a pause, as a person reads them (translated where shown).
KIND_NAMES = {"pausing": N_("pausing"), "stopping": N_("stopping"), "not resumable": N_("not resumable")}
#: "2 pausing": the count of each kind in the pause's summary.
KIND_COUNTS = {
    "pausing": N_("%(count)s pausing"),
    "stopping": N_("%(count)s stopping"),
    "not resumable": N_("%(count)s not resumable"),
}


@dataclass(frozen=True)
class PauseState:
    """Jobs are paused: since when and by whom (None when the workers were suspended by other
    means, such as ``rq suspend``)."""

    since: datetime | None
    by: str | None


@dataclass(frozen=True)
class RunningJob:
    """A job that still holds a worker while jobs are paused."""

    id: str
    name: str
    #: "pausing" (resumable, asked to pause), "stopping" (someone asked it to stop) or
    #: "not resumable" (runs to its end)
    kind: str
    expected_end: datetime | None = None


@dataclass
class Progress:
    """What still runs."""

    running: list[RunningJob] = field(default_factory=list)

    @property
    def idle(self) -> bool:
        """Nothing runs: every worker is free."""
        return not self.running

    def by_kind(self, kind: str) -> list[RunningJob]:
        return [job for job in self.running if job.kind == kind]

    def summary(self, time_text: Callable[[datetime], str]) -> str:
        """ "2 running: 1 pausing, 1 not resumable, expected end 14:07" (times through ``time_text``)."""
        if self.idle:
            return gettext("nothing runs")
        parts = []
        for kind, words in KIND_COUNTS.items():
            jobs = self.by_kind(kind)
            if jobs:
                parts.append(gettext(words, count=format_number(len(jobs))))
        not_resumable = self.by_kind("not resumable")
        if not_resumable:
            parts[-1] += ", " + _expected_end_text(not_resumable, time_text)
        return gettext("%(count)s running: %(parts)s", count=format_number(len(self.running)), parts=", ".join(parts))


def _expected_end_text(jobs: list[RunningJob], time_text: Callable[[datetime], str]) -> str:
    ends = [job.expected_end for job in jobs]
    if any(end is None for end in ends):
        return gettext("expected end unknown")
    return gettext("expected end %(time)s", time=time_text(max(end for end in ends if end is not None)))


def describe_job(job: RunningJob, time_text: Callable[[datetime], str]) -> str:
    """One line about one job: "<id> Import (not resumable, expected end 14:07)"."""
    detail = gettext(KIND_NAMES[job.kind])
    if job.kind == "not resumable":
        detail += ", " + _expected_end_text([job], time_text)
    return f"{job.id} {job.name} ({detail})"


# -- reading the state ------------------------------------------------------------------------


def current(state: JobMonitorState) -> PauseState | None:
    """Whether jobs are paused (None: they are not, or Redis cannot be read, which the pages
    then do not claim either way). Read once per request when asked in one."""
    if has_app_context() and "_jobmonitor_pause_state" in g:
        cached: PauseState | None = g._jobmonitor_pause_state
        return cached
    try:
        with state.redis.pipeline(transaction=False) as pipeline:
            pipeline.hgetall(PAUSE_ALL_KEY)
            rq_internals.check_suspension(pipeline)
            record, suspended = pipeline.execute()
    except RedisError as error:
        log.warning("cannot tell whether jobs are paused: %s", error)
        found = None
    else:
        found = _state_of(record) if record else PauseState(None, None) if suspended else None
    if has_app_context():
        g._jobmonitor_pause_state = found
    return found


def _state_of(record: dict[bytes, bytes]) -> PauseState:
    since = record.get(b"since")
    by = record.get(b"by")
    return PauseState(
        datetime.fromisoformat(since.decode()) if since else None,
        by.decode() if by else None,
    )


def progress(state: JobMonitorState) -> Progress:
    """The jobs that hold a worker now, each with what it is about to do."""
    c = job_table.c
    with state.engine.connect() as connection:
        rows = connection.execute(
            sa.select(c.id, c.name, c.task, c.status, c.attempt).where(c.status.in_(_RUNNING)).order_by(c.started_at)
        ).all()
        now = utcnow()
        time_left = jobs_time_left(connection, rows, now) if rows else {}
    result = Progress()
    for row in rows:
        if row.status == JobStatus.STOPPING.value:
            kind = "stopping"
        elif _is_resumable(state, row.task):
            kind = "pausing"
        else:
            kind = "not resumable"
        left = time_left.get(row.id)
        result.running.append(
            RunningJob(row.id, row.name, kind, now + timedelta(seconds=left) if left is not None else None)
        )
    return result


def _is_resumable(state: JobMonitorState, task: str) -> bool:
    return task in state.tasks and state.tasks.get(task).resumable


# -- pausing and resuming ---------------------------------------------------------------------


def pause_all(state: JobMonitorState, user: Any = None) -> Progress:
    """Suspend every RQ worker of this Redis, record the pause (the first one's time and person
    stay), ask the running jobs of resumable tasks to pause; return what still runs.

    Raises :class:`PauseAllUnavailable` when Redis cannot be reached."""
    name = describe_user(user)[1] or "the system"
    try:
        with state.redis.pipeline() as pipeline:  # MULTI: suspended and recorded together
            suspend(pipeline)
            pipeline.hsetnx(PAUSE_ALL_KEY, "since", utcnow().isoformat())
            pipeline.hsetnx(PAUSE_ALL_KEY, "by", name)
            pipeline.execute()
    except RedisError as error:
        log.warning("jobs not paused: Redis is unreachable (%s)", error)
        raise PauseAllUnavailable(gettext("Jobs could not be paused: Redis is unreachable.")) from error
    _forget_cached_state()
    log.info("jobs paused by %s", name)
    audit.record(state, audit.PAUSE_ALL, user)
    try:
        return ask_running_jobs_to_pause(state, name)
    except sa.exc.SQLAlchemyError as error:
        log.warning("running jobs not asked to pause: the database is unreachable (%s)", error)
        raise PauseAllUnavailable(
            gettext(
                "Workers take no new job, but the running jobs could not be asked to pause: the database is"
                " unreachable. Pause again once it is back."
            )
        ) from error


def ask_running_jobs_to_pause(state: JobMonitorState, name: str = "the system") -> Progress:
    """Ask every running job of a resumable task to pause (again: a job that a worker took just
    as the workers were suspended is asked too); the first time for a job, record it and say so
    in its log. Returns what still runs."""
    now = utcnow()
    found = progress(state)
    for job in found.by_kind("pausing"):
        send_signal(state, job.id, "pause", replace=False)
        try:
            first_time = state.redis.hsetnx(PAUSED_BY_PAUSE_ALL_KEY, job.id, now.isoformat())
        except RedisError as error:
            log.warning("job %s: asked to pause, but not recorded as paused by the pause: %s", job.id, error)
            continue
        if first_time:
            _note(state, [job.id], f"Asked by {name} to pause for maintenance; it continues from its checkpoint.")
    return found


def wait_until_idle(
    state: JobMonitorState,
    timeout: float,
    on_progress: Callable[[Progress], None] = lambda _progress: None,
    interval: float = 1.0,
) -> Progress:
    """Until nothing runs or ``timeout`` seconds have passed: look at the running jobs every
    ``interval`` seconds, ask the newly started resumable ones to pause, and hand what runs to
    ``on_progress``. Returns what still runs at the end."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    while True:
        found = ask_running_jobs_to_pause(state)
        on_progress(found)
        now = time.monotonic()
        # idle twice, ``interval`` apart: a worker that took a job just before the suspension
        # may not have claimed it yet when the first look finds nothing running
        idle_since = (idle_since or now) if found.idle else None
        if (idle_since is not None and now - idle_since >= interval) or now >= deadline:
            return found
        time.sleep(min(interval, max(0.0, deadline - now)))


@dataclass
class ResumeReport:
    """What :func:`resume_all` did."""

    #: jobs were paused (False: nothing to resume; resuming again is harmless)
    was_paused: bool
    #: the jobs the pause had paused that continue now (queued), in the order they were asked
    continuing: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if not self.was_paused:
            return gettext("Jobs were not paused; nothing to resume.")
        if not self.continuing:
            return gettext("Jobs resumed: workers take jobs again.")
        return ngettext(
            "Jobs resumed: workers take jobs again; %(num)s job paused for the maintenance continues from its"
            " checkpoint.",
            "Jobs resumed: workers take jobs again; %(num)s jobs paused for the maintenance continue from their"
            " checkpoint.",
            len(self.continuing),
        )


def resume_all(state: JobMonitorState, user: Any = None) -> ResumeReport:
    """Lift the suspension of the workers and forget the pause. The jobs the pause paused
    continue (a paused one still out of its queue is put back at the front); the others stay as
    they are. Raises :class:`PauseAllUnavailable` when Redis cannot be reached.

    The paused jobs are looked at (and a paused one queued again) while the workers are still
    suspended: looked at after the suspension is lifted, a job a worker had already taken
    again would read ``running`` and go uncounted."""
    name = describe_user(user)[1] or "the system"
    try:
        with state.redis.pipeline() as pipeline:
            rq_internals.check_suspension(pipeline)
            pipeline.exists(PAUSE_ALL_KEY)
            pipeline.hgetall(PAUSED_BY_PAUSE_ALL_KEY)
            suspended, existed, paused = pipeline.execute()
    except RedisError as error:
        raise _resume_unavailable(error) from error
    report = ResumeReport(was_paused=bool(suspended or existed))
    if not report.was_paused:
        _forget_cached_state()
        return report
    asked = [job_id.decode() for job_id, _when in sorted(paused.items(), key=lambda item: item[1])]
    _withdraw_pause_signals(state, asked)
    unreachable: sa.exc.SQLAlchemyError | None = None
    try:
        report.continuing = _continuing(state, asked)
    except sa.exc.SQLAlchemyError as error:
        unreachable = error  # the workers are resumed all the same
    try:
        with state.redis.pipeline() as pipeline:
            resume(pipeline)
            pipeline.delete(PAUSE_ALL_KEY, PAUSED_BY_PAUSE_ALL_KEY)
            pipeline.execute()
    except RedisError as error:
        raise _resume_unavailable(error) from error
    _forget_cached_state()
    log.info("jobs resumed by %s", name)
    audit.record(state, audit.RESUME_ALL, user)
    try:
        if unreachable is not None:
            raise unreachable
        if report.continuing:
            _note(state, report.continuing, f"Jobs resumed by {name} after the maintenance.")
    except sa.exc.SQLAlchemyError as error:
        log.warning("paused jobs not looked at after the resume: the database is unreachable (%s)", error)
        raise PauseAllUnavailable(
            gettext(
                "Workers take jobs again, but the jobs the pause paused could not be looked at: the database is"
                " unreachable. Recovery queues any left paused again."
            )
        ) from error
    return report


def _resume_unavailable(error: RedisError) -> PauseAllUnavailable:
    log.warning("jobs not resumed: Redis is unreachable (%s)", error)
    return PauseAllUnavailable(gettext("Jobs could not be resumed: Redis is unreachable."))


#: Delete a job's control signal only if it is still the pause's ("pause"): a person's stop or
#: cancel sent meanwhile stays.
_WITHDRAW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _withdraw_pause_signals(state: JobMonitorState, job_ids: list[str]) -> None:
    """The maintenance is over: a pause request the pause sent and no run has read yet (a job
    that paused and was queued again between the pause's look and its request) must not pause
    the job's next run."""
    try:
        for job_id in job_ids:
            state.redis.eval(_WITHDRAW, 1, control_key(job_id), "pause")
    except RedisError as error:
        log.warning("pause requests not withdrawn (%s); a job may pause once more and be queued again", error)


def _continuing(state: JobMonitorState, job_ids: list[str]) -> list[str]:
    """Those of ``job_ids`` that wait to continue: queued, or paused and put back here."""
    if not job_ids:
        return []
    c = job_table.c
    with state.engine.connect() as connection:
        rows = connection.execute(sa.select(c.id, c.status).where(c.id.in_(job_ids))).all()
    statuses = {row.id: row.status for row in rows}
    continuing = []
    for job_id in job_ids:
        if statuses.get(job_id) == JobStatus.PAUSED.value:
            try:
                requeue(state, job_id, "resume", at_front=True)
            except (TransitionRefused, JobNotFound):
                continue  # queued by its worker, or cancelled, just now
            except JobMonitorError as error:
                log.warning("job %s: paused, and could not be queued again: %s", job_id, error)
                continue
            statuses[job_id] = JobStatus.QUEUED.value
        if statuses.get(job_id) == JobStatus.QUEUED.value:
            continuing.append(job_id)
    return continuing


def _note(state: JobMonitorState, job_ids: list[str], message: str) -> None:
    """Say ``message`` in each job's own log."""
    with state.engine.begin() as connection:
        write_log(connection, _LOG_AS, job_ids, message)


def _forget_cached_state() -> None:
    if has_app_context():
        g.pop("_jobmonitor_pause_state", None)


__all__ = [
    "PauseState",
    "Progress",
    "ResumeReport",
    "RunningJob",
    "ask_running_jobs_to_pause",
    "current",
    "describe_job",
    "pause_all",
    "progress",
    "resume_all",
    "wait_until_idle",
]
