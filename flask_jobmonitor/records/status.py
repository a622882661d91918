"""The job status machine: the statuses and the allowed moves, read top to bottom.

This module is the only place that knows which status may follow which. It is plain data and
imports no table: the models store :class:`JobStatus`, and transitions.py applies a move in
SQL with one conditional UPDATE.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ..i18n import N_


class JobStatus(str, enum.Enum):
    """Where a tracked job is in its life. The values are what the database stores."""

    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    PAUSED = "paused"
    #: the task returned; the job waits for its child jobs to end (it holds no worker)
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


#: Statuses of a job that has not ended: it holds, or is about to hold, a worker, or (``waiting``)
#: its children still run. Such a job may not be deleted.
ACTIVE_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.STOPPING, JobStatus.PAUSED, JobStatus.WAITING}
)
#: Statuses a job ends in. ``stopped`` is final unless a person resumes or cancels it.
FINISHED_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELLED})
#: Statuses from which "restart / submit again" creates a new job.
RESTARTABLE_STATUSES = FINISHED_STATUSES
#: Statuses whose job can be deleted with its records.
DELETABLE_STATUSES = FINISHED_STATUSES
#: What each status is called where a person reads it: a badge, the list's filter, "already
#: waiting for children". An app's ``JOBMONITOR_STATUS_LABELS`` replaces any of them; either
#: goes through gettext where shown (i18n.py), so a catalogue may rename or translate them.
STATUS_WORDS: Mapping[str, str] = {
    JobStatus.QUEUED.value: N_("Queued"),
    JobStatus.RUNNING.value: N_("Running"),
    JobStatus.STOPPING.value: N_("Stopping"),
    JobStatus.PAUSED.value: N_("Paused"),
    JobStatus.WAITING.value: N_("Waiting for children"),
    JobStatus.COMPLETED.value: N_("Completed"),
    JobStatus.FAILED.value: N_("Failed"),
    JobStatus.STOPPED.value: N_("Stopped"),
    JobStatus.CANCELLED.value: N_("Cancelled"),
}

#: "already completed": why a bulk action skipped a job, for each status (a whole phrase per
#: status, so that each language words it its own way). A status renamed by the app reads
#: "already <its label>" instead.
ALREADY_WORDS: Mapping[str, str] = {
    JobStatus.QUEUED.value: N_("already queued"),
    JobStatus.RUNNING.value: N_("already running"),
    JobStatus.STOPPING.value: N_("already stopping"),
    JobStatus.PAUSED.value: N_("already paused"),
    JobStatus.WAITING.value: N_("already waiting for children"),
    JobStatus.COMPLETED.value: N_("already completed"),
    JobStatus.FAILED.value: N_("already failed"),
    JobStatus.STOPPED.value: N_("already stopped"),
    JobStatus.CANCELLED.value: N_("already cancelled"),
}


@dataclass(frozen=True)
class Transition:
    """One allowed move: the statuses it leaves from and the status it arrives at."""

    name: str
    sources: frozenset[JobStatus]
    target: JobStatus


def _move(name: str, sources: set[JobStatus], target: JobStatus) -> tuple[str, Transition]:
    return name, Transition(name, frozenset(sources), target)


S = JobStatus
#: The whole machine. Read it top to bottom as "action: from any of these -> to that".
TRANSITIONS: Mapping[str, Transition] = dict(
    [
        # a worker picks the job up
        _move("start", {S.QUEUED}, S.RUNNING),
        # the task returned; a stop requested too late to take effect does not undo finished work
        _move("finish", {S.RUNNING, S.STOPPING}, S.COMPLETED),
        # the task raised, its worker died, or it could not even be queued
        _move("fail", {S.QUEUED, S.RUNNING, S.STOPPING, S.PAUSED}, S.FAILED),
        # the task raised, and its retry policy (tasks.RetryPolicy) tries it again at its next
        # try time; not while a stop or cancel is asked for (stopping): that run just fails
        _move("retry", {S.RUNNING}, S.QUEUED),
        # a person asks a running job to stop at its next checkpoint
        _move("request_stop", {S.RUNNING}, S.STOPPING),
        # the task reached a checkpoint and honoured the stop request
        _move("stopped", {S.STOPPING}, S.STOPPED),
        # the work was killed through RQ's stop command (a waiting parent: its children are)
        _move("force_stop", {S.RUNNING, S.STOPPING, S.WAITING}, S.STOPPED),
        # a warm shutdown (deploy) reached a checkpoint of a resumable task
        _move("pause", {S.RUNNING}, S.PAUSED),
        # a stopped job is resumed by a person, a paused one automatically after a deploy
        _move("resume", {S.STOPPED, S.PAUSED}, S.QUEUED),
        # an abandoned run of a resumable task is queued again to continue from its checkpoint
        _move("requeue", {S.RUNNING, S.STOPPING}, S.QUEUED),
        # a queued job will never run; a stopped one is discarded for good; a paused one (a
        # deploy interrupted it, nothing runs it now) will not continue
        _move("cancel", {S.QUEUED, S.STOPPED, S.PAUSED}, S.CANCELLED),
        # a person cancels a running job: it is asked to stop, and ends cancelled at its checkpoint
        _move("request_cancel", {S.RUNNING}, S.STOPPING),
        # the task reached a checkpoint and honoured a cancel request (see control.cancel)
        _move("cancelled_at_checkpoint", {S.STOPPING}, S.CANCELLED),
        # families (see families.py): the task of a job with children returned, so it waits for
        # them, holding no worker (momentarily, if they have all ended already)
        _move("wait_for_children", {S.RUNNING, S.STOPPING}, S.WAITING),
        # a person asks a waiting parent to stop: its children are stopped, it keeps waiting for them
        _move("stop_family", {S.WAITING}, S.WAITING),
        # its last child ended: the family's outcome. Every child completed ...
        _move("family_completed", {S.WAITING}, S.COMPLETED),
        # ... one failed ("2 of 13 child jobs failed") ...
        _move("family_failed", {S.WAITING}, S.FAILED),
        # ... or none failed but some were stopped or cancelled
        _move("family_stopped", {S.WAITING}, S.STOPPED),
    ]
)
del S


def get_transition(action: str) -> Transition:
    """Return the transition called ``action`` or raise ``KeyError`` naming the known ones."""
    try:
        return TRANSITIONS[action]
    except KeyError:
        raise KeyError(f"unknown job transition {action!r}; known: {', '.join(TRANSITIONS)}") from None


def is_allowed(status: JobStatus | str, action: str) -> bool:
    """Tell whether ``action`` may be applied to a job that is in ``status``."""
    return JobStatus(status) in get_transition(action).sources
