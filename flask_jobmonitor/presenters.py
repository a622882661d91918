"""How a job looks to a person: status icons and colours, and the JSON the pages refresh from.

One place for both, so the server-rendered page and its live refresh can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from .models import Job
from .status import ACTIVE_STATUSES, JobStatus


class StatusLook(NamedTuple):
    """Font Awesome 4 icon classes, Bootstrap 4 colour name, and label of a status."""

    icon: str
    colour: str
    label: str


STATUS_LOOKS: Mapping[str, StatusLook] = {
    JobStatus.QUEUED.value: StatusLook("fa-clock-o", "secondary", "Queued"),
    JobStatus.RUNNING.value: StatusLook("fa-spinner fa-spin", "primary", "Running"),
    JobStatus.STOPPING.value: StatusLook("fa-hourglass-half", "warning", "Stopping"),
    JobStatus.PAUSED.value: StatusLook("fa-pause", "info", "Paused"),
    JobStatus.WAITING.value: StatusLook("fa-sitemap", "info", "Waiting for children"),
    JobStatus.COMPLETED.value: StatusLook("fa-check", "success", "Completed"),
    JobStatus.FAILED.value: StatusLook("fa-times", "danger", "Failed"),
    JobStatus.STOPPED.value: StatusLook("fa-stop", "warning", "Stopped"),
    JobStatus.CANCELLED.value: StatusLook("fa-ban", "secondary", "Cancelled"),
}
#: Button text, Bootstrap colour and confirmation question of each action.
ACTION_LOOKS: Mapping[str, tuple[str, str, str]] = {
    "stop": ("Stop", "warning", "Stop this job at its next checkpoint? Work already done is kept, not reverted."),
    "force_stop": ("Force stop", "danger", "Kill this job's work now? Work already done is kept, not reverted."),
    "resume": ("Resume", "primary", ""),
    "cancel": ("Cancel", "secondary", "Cancel this job for good?"),
    "restart": ("Submit again", "primary", ""),
    "delete": ("Delete", "danger", "Delete this job with its logs and files? This cannot be undone."),
    "set_low_priority": ("Low priority", "light", ""),
    "set_normal_priority": ("Normal priority", "light", ""),
}
_ACTIVE = frozenset(s.value for s in ACTIVE_STATUSES)


def look(status: str) -> StatusLook:
    """The look of ``status`` (an unknown value, from a newer release, looks neutral)."""
    return STATUS_LOOKS.get(status, StatusLook("fa-question", "secondary", status))


def iso(value: datetime | None) -> str | None:
    """UTC timestamp as ISO 8601 with a ``Z``, for the browser to show in the viewer's zone."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


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


def job_summary(job: Job, now: datetime, children: tuple[int, int] | None = None) -> dict[str, Any]:
    """What the list and detail pages refresh in place."""
    status_look = look(job.status)
    return {
        "id": job.id,
        "status": job.status,
        "status_label": status_look.label,
        "status_icon": status_look.icon,
        "status_colour": status_look.colour,
        "active": job.status in _ACTIVE,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "percent": overall_percent(job),
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
        "children_done": children[0] if children else None,
        "children_total": children[1] if children else None,
    }
