"""How a job looks to a person: status icons and colours, and the JSON the pages refresh from.

One place for both, so the server-rendered page and its live refresh can never disagree.
Templates and the page script never name a status themselves: whether a status is active,
moving (an animated bar) and how it looks all come from here (:func:`is_active`,
:func:`is_moving`, :func:`look`).

The live refresh carries markup, not data to build markup from: each part of a job a page
refreshes (its badge, progress, times, step rows ...) is rendered by the macro of
``jobmonitor/_macros.html`` that rendered it at page load (:func:`job_fragments`,
:func:`detail_fragments`, :func:`step_fragment`), and the page script swaps the element for it.
A fragment is keyed by the ``data-jm`` name of the element it replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from flask import current_app, has_app_context

from .. import i18n
from ..i18n import N_
from ..jobs.actions import ActionLook
from ..jobs.control import REGISTRY
from ..records.estimates import StepView
from ..records.models import Job
from ..records.status import ACTIVE_STATUSES, STATUS_WORDS, JobStatus
from ..state import EXTENSION_KEY
from ..timeutil import to_local, utcnow
from .requests import request_zone


class StatusLook(NamedTuple):
    """Font Awesome 4 icon classes, Bootstrap 4 colour name, and label of a status."""

    icon: str
    colour: str
    label: str


STATUS_LOOKS: Mapping[str, StatusLook] = {
    JobStatus.QUEUED.value: StatusLook("fa-clock-o", "secondary", STATUS_WORDS[JobStatus.QUEUED.value]),
    JobStatus.RUNNING.value: StatusLook("fa-spinner fa-spin", "primary", STATUS_WORDS[JobStatus.RUNNING.value]),
    JobStatus.STOPPING.value: StatusLook("fa-hourglass-half", "warning", STATUS_WORDS[JobStatus.STOPPING.value]),
    JobStatus.PAUSED.value: StatusLook("fa-pause", "info", STATUS_WORDS[JobStatus.PAUSED.value]),
    JobStatus.WAITING.value: StatusLook("fa-sitemap", "info", STATUS_WORDS[JobStatus.WAITING.value]),
    JobStatus.COMPLETED.value: StatusLook("fa-check", "success", STATUS_WORDS[JobStatus.COMPLETED.value]),
    JobStatus.FAILED.value: StatusLook("fa-times", "danger", STATUS_WORDS[JobStatus.FAILED.value]),
    JobStatus.STOPPED.value: StatusLook("fa-stop", "warning", STATUS_WORDS[JobStatus.STOPPED.value]),
    JobStatus.CANCELLED.value: StatusLook("fa-ban", "secondary", STATUS_WORDS[JobStatus.CANCELLED.value]),
}
#: Button text, Bootstrap colour and confirmation question of each action, from its one
#: definition (``control.REGISTRY``, see jobs/actions.py).
ACTION_LOOKS: Mapping[str, ActionLook] = {name: action.look for name, action in REGISTRY.items()}
_ACTIVE = frozenset(s.value for s in ACTIVE_STATUSES)
#: Statuses whose work is under way now: their progress bar is animated.
_MOVING = frozenset({JobStatus.RUNNING.value, JobStatus.STOPPING.value})


def is_active(status: str) -> bool:
    """Whether a job in ``status`` may still change (queued, running, paused ...)."""
    return status in _ACTIVE


def is_moving(status: str) -> bool:
    """Whether a job in ``status`` is being worked on right now (its bar moves)."""
    return status in _MOVING


def ago(value: datetime | None, now: datetime) -> str:
    """``value`` relative to ``now``, in one short phrase of the request's language: "just now",
    "2 min. ago", "3 days ago" (the page script keeps it fresh with the same CLDR words)."""
    if value is None:
        return "—"
    return i18n.format_ago((now - value).total_seconds())


def look(status: str) -> StatusLook:
    """The look of ``status`` (an unknown value, from a newer release, looks neutral), with the
    app's own word for it (``JOBMONITOR_STATUS_LABELS``) when there is an app and it has one.

    Every place a person reads a status goes through here: badges, the list's status filter,
    notifications and the JSON's ``status_label``.
    """
    default = STATUS_LOOKS.get(status, StatusLook("fa-question", "secondary", status))
    return default._replace(label=i18n.gettext(_status_labels().get(status) or default.label))


def _status_labels() -> Mapping[str, str]:
    if not has_app_context():
        return {}
    state = current_app.extensions.get(EXTENSION_KEY)
    return state.settings.status_labels if state is not None else {}


#: Looks of the step statuses that jobs do not have; the others (running, completed, failed,
#: stopped) look like the job status of the same name, so a step badge and a job badge agree.
STEP_LOOKS: Mapping[str, StatusLook] = {
    "pending": StatusLook("fa-circle-o", "light", N_("Pending")),
}


def step_look(status: str) -> StatusLook:
    """The look of a step's status, for the detail page's steps and the JSON it refreshes from."""
    own = STEP_LOOKS.get(status)
    return own._replace(label=i18n.gettext(own.label)) if own else look(status)


def iso(value: datetime | None) -> str | None:
    """UTC timestamp as ISO 8601 with a ``Z``, for the browser to show in the viewer's zone."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def local_time(value: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """The naive UTC ``value`` as the viewer reads it: in their zone (:func:`request_zone`),
    followed by the zone's abbreviation ("2026-03-29 10:00:00 CEST"; in the request's language
    beyond English: i18n.format_local_time)."""
    return i18n.format_local_time(to_local(value, request_zone()), fmt)


def short_time(value: datetime) -> str:
    """A time the viewer reads in a badge: the time alone when it falls on the viewer's today
    ("14:05 CET"), else with its date."""
    zone = request_zone()
    local = to_local(value, zone)
    today = to_local(utcnow(), zone).date() == local.date()
    return i18n.format_local_time(local, "%H:%M" if today else "%Y-%m-%d %H:%M")


class Timing(NamedTuple):
    """When a queued job is to run, and which retry a job is on (:func:`timing`).

    ``kind``: ``"scheduled"`` (delayed: waits for ``at``), ``"retry-wait"`` (a retry waits for
    ``at``), or ``"retry"`` (a retry that is due, queued or running). ``retry``: the number of
    the retry (1 ...), ``retries``: how many its task's policy grants (None when the task is not
    registered in this process)."""

    kind: str
    at: datetime | None
    retry: int
    retries: int | None


def timing(job: Job, now: datetime | None = None) -> Timing | None:
    """The :class:`Timing` of ``job``; None for a job that neither waits for a time nor retries."""
    retry = job.retries or 0
    due = job.enqueued_at if job.status == JobStatus.QUEUED.value else None
    if due is not None and due > (now or utcnow()):
        kind = "retry-wait" if retry else "scheduled"
    elif retry and job.status in (JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.STOPPING.value):
        kind = "retry"
    else:
        return None
    return Timing(kind, job.enqueued_at, retry, _retry_limit(job.task))


def _retry_limit(task_name: str) -> int | None:
    state = current_app.extensions.get(EXTENSION_KEY) if has_app_context() else None
    task = state.tasks.find(task_name) if state is not None else None
    return task.retry.max if task is not None and task.retry is not None else None


def overall_percent(job: Job) -> float | None:
    """Progress over all steps: finished steps plus the fraction of the current one.

    None when nothing is known (no steps, no totals) - the page then shows an indeterminate bar.
    """
    if job.status == JobStatus.COMPLETED.value:
        return 100.0
    fraction = (job.progress_done / job.progress_total) if job.progress_total else None
    if job.step_count:
        finished_steps = max(0, (job.current_step or 1) - 1)
        return round(100.0 * (finished_steps + min(1.0, fraction or 0.0)) / job.step_count, 1)
    return None if fraction is None else round(100.0 * min(1.0, fraction), 1)


def family_percent(job: Job, family: Any) -> float | None:
    """Progress of a parent and its children together: the parent's own work counts as one
    child's share, each child its own fraction (``family`` is a ``listing.Family``; None: the
    job has no children and this is :func:`overall_percent`)."""
    own = overall_percent(job)
    if not family or not family.total:
        return own
    if job.status == JobStatus.COMPLETED.value and family.done == family.total:
        return 100.0
    share = (own if own is not None else (100.0 if not is_active(job.status) else 0.0)) / 100.0
    return round(100.0 * (share + family.fraction) / (1 + family.total), 1)


def job_summary(job: Job, now: datetime, family: Any = None) -> dict[str, Any]:
    """What the list and detail pages refresh in place. ``family``: the job's children counts
    (a ``listing.Family``, None without children); its progress counts into ``percent``, as
    in the list row (:func:`family_percent`)."""
    status_look = look(job.status)
    when = timing(job, now)
    return {
        "id": job.id,
        "status": job.status,
        "status_label": status_look.label,
        "timing": when.kind if when is not None else None,
        "scheduled_for": iso(when.at) if when is not None and when.kind != "retry" else None,
        "retries": job.retries or 0,
        "retry_limit": _retry_limit(job.task) if job.retries else None,
        "status_icon": status_look.icon,
        "status_colour": status_look.colour,
        "active": job.status in _ACTIVE,
        "moving": job.status in _MOVING,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "percent": family_percent(job, family),
        "current_step": job.current_step,
        "step_count": job.step_count,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "ended_at": iso(job.ended_at),
        "failed_at": iso(job.ended_at) if job.status == JobStatus.FAILED.value else None,
        "waiting_seconds": job.waiting_seconds(now),
        "duration_seconds": job.duration_seconds(now),
        "error_count": job.error_count,
        "warning_count": job.warning_count,
        "error_message": job.error_message,
        "children_done": family.done if family else None,
        "children_total": family.total if family else None,
    }


# -- server-rendered fragments for the live refresh --------------------------------------------------


class PartContext(NamedTuple):
    """What the parts of one job are rendered with besides the job: the time of the answer, the
    job's children counts (a ``listing.Family`` or None), the actions the user may take on it
    now, and the page its buttons come back to."""

    now: datetime
    family: Any
    actions: Sequence[str]
    next: str


#: The parts of a job that ``/api/jobs`` renders (for the "My jobs" widget and host pages), by
#: the ``data-jm`` name of their element, with the macro call that renders each.
JOB_FRAGMENTS: Mapping[str, Callable[[Any, Job, PartContext], str]] = {
    "status": lambda jm, job, part: jm.job_status(job, part.now),
    "progress": lambda jm, job, part: jm.progress(job, part.family),
    "duration": lambda jm, job, part: jm.duration(job, part.now),
    "waiting": lambda jm, job, part: jm.waiting(job, part.now),
    "widget-item": lambda jm, job, part: jm.widget_item(job, part.family, part.actions, part.next),
}


def page_macros() -> Any:
    """The macros of ``jobmonitor/_macros.html`` bound to the current request's template context,
    as ``{% import 'jobmonitor/_macros.html' as jm with context %}`` binds them for a page.
    Made once per request; each macro call then costs what it costs in a page."""
    context: dict[str, Any] = {}
    current_app.update_template_context(context)
    return current_app.jinja_env.get_template("jobmonitor/_macros.html").make_module(context)


def job_fragments(
    macros: Any, job: Job, part: PartContext, names: Collection[str] = JOB_FRAGMENTS.keys()
) -> dict[str, str]:
    """The parts ``names`` of ``job`` (those of :data:`JOB_FRAGMENTS`), rendered by ``macros``
    (:func:`page_macros`)."""
    return {name: str(JOB_FRAGMENTS[name](macros, job, part)) for name in names}


def detail_fragments(
    macros: Any, job: Job, part: PartContext, time_left: str, attempts: Sequence[Any] = ()
) -> dict[str, str]:
    """Every live part of the job's detail page outside its step rows: those of
    :data:`JOB_FRAGMENTS` it shows, the start and end cells, the error and warning counts, the
    error message, the failed attempts (details.attempts_of), the time left and the hint shown
    while Stop is one of ``part.actions``."""
    fragments = job_fragments(macros, job, part, ("status", "progress", "duration", "waiting"))
    fragments.update(
        {
            "started": str(macros.detail_started(job)),
            "ended": str(macros.detail_ended(job)),
            "counts": str(macros.detail_counts(job)),
            "error-message": str(macros.detail_error(job)),
            "attempts": str(macros.detail_attempts(attempts)),
            "time-left-row": str(macros.detail_time_left(time_left)),
            "stop-hint": str(macros.detail_stop_hint(part.actions)),
        }
    )
    return fragments


def step_json(step: StepView) -> dict[str, Any]:
    """A step (records/estimates.py) as the detail JSON carries it, with its status's look."""
    look = step_look(step.status)
    return {
        "position": step.position,
        "name": step.name,
        "status": step.status,
        "status_label": look.label,
        "status_icon": look.icon,
        "status_colour": look.colour,
        "done": step.done,
        "total": step.total,
        "counters": dict(step.counters),
        "elapsed_seconds": step.elapsed_seconds,
        "remaining_seconds": step.remaining_seconds,
        "estimated_seconds": step.estimated_seconds,
    }


def step_fragment(macros: Any, step: StepView) -> str:
    """The detail page's row of ``step`` (records/estimates.py ``StepView``)."""
    return str(macros.step_row(step))
