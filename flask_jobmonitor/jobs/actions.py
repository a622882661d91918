"""What an action people take on a job is: one :class:`Action` holds all there is to say about it.

An action (stop, force stop, resume, cancel, restart, delete, low or normal priority) is one
entry of ``control.REGISTRY``, in the order the pages offer them; nothing else lists actions.
Each entry says who may take it (the permissions method it asks), from which statuses it fits
and on what further condition, what it runs, whether it interrupts a job's work (refused then
for tasks declared ``stoppable=False`` and for system jobs), which task option can forbid it,
how messages name it, and how its button looks. ``control`` reads the entries to choose the
actions to offer, check and perform them; the pages read the looks (``web/presenters.py``); the
docs' tables of actions are checked against the registry (tests/test_actions.py).

The registry lives in ``control.py``, next to the functions its entries run; this module holds
only the types, so it imports nothing from ``control``. The look is plain strings (a button's
text, a Bootstrap 4 colour name, a confirmation question): ``jobs`` imports nothing from ``web``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..records.models import Job
from ..records.status import JobStatus
from ..state import JobMonitorState

#: A rule about one job: ``(state, job) -> bool``.
JobPredicate = Callable[[JobMonitorState, Job], bool]


@dataclass
class ActionResult:
    """The outcome of one action on one job."""

    job_id: str
    action: str
    message: str
    new_job_id: str | None = None  # restart creates a job


class ActionLook(NamedTuple):
    """How an action's button looks: its text, its Bootstrap 4 colour name, and the question a
    person confirms before it is sent ("" asks nothing)."""

    label: str
    colour: str
    question: str


def always(state: JobMonitorState, job: Job) -> bool:
    """No condition besides the status."""
    return True


def never(state: JobMonitorState, job: Job) -> bool:
    """Never (the default of :attr:`Action.interrupts`)."""
    return False


@dataclass(frozen=True)
class Action:
    """One action people take on jobs, defined once.

    ``permission`` names the :class:`~flask_jobmonitor.permissions.JobPermissions` method that
    decides who may take it (``can_stop``, ``can_manage``, ``can_delete``). It fits a job whose
    status is one of ``statuses`` and for which ``condition`` holds. ``run(state, job_id, user)``
    does it, without permission checks. ``past_tense`` names it in bulk summaries ("3 asked to
    stop": the singular and plural forms, with ``%(num)s``), ``denied`` is the refusal of a
    person without the permission ("You may not force-stop this job."). ``interrupts``
    tells whether it would interrupt the job's work; ``forbidden_by`` is the task option that
    can forbid it whatever the status, with the reason said then.
    """

    name: str
    permission: str
    statuses: frozenset[JobStatus]
    run: Callable[[JobMonitorState, str, Any], ActionResult]
    past_tense: tuple[str, str]
    denied: str
    look: ActionLook
    condition: JobPredicate = always
    interrupts: JobPredicate = never
    forbidden_by: tuple[str, str] | None = None

    def fits(self, state: JobMonitorState, job: Job) -> bool:
        """Whether the action fits ``job`` now: its status and the action's condition."""
        return JobStatus(job.status) in self.statuses and self.condition(state, job)


__all__ = ["Action", "ActionLook", "ActionResult", "JobPredicate", "always", "never"]
