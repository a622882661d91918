"""Taking an action for the person making the request: what the job pages' forms
(``admin/views.py``) and the JSON endpoints (``api.py``) share, so the two cannot drift.

Both ask the same registry whether an action name is known (:func:`is_action`), take one action
with the same checks and the same words for a refusal (:func:`act`), and take one action on many
jobs with the same summary (:func:`act_on_many`). What differs stays with each caller: how the
request names the action and the jobs, and the answer (a flash and a redirect, or JSON). Both
callers check CSRF (``requests.require_csrf``) before calling here.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeGuard

from ..errors import ActionNotAllowed, EnqueueError, PermissionDenied, TransitionRefused, UnknownTask
from ..i18n import gettext
from ..jobs import control
from ..jobs.actions import ActionResult
from ..records.models import Job
from ..state import JobMonitorState
from .requests import visible_ids


class Refusal(NamedTuple):
    """An action that was not taken: the HTTP status that says why (403 not permitted, 409 it
    does not fit the job, 503 Redis unreachable) and the reason in plain words (no job id)."""

    status: int
    message: str


def is_action(name: object) -> TypeGuard[str]:
    """Whether ``name`` (anything a request sent) names an action of the registry."""
    return isinstance(name, str) and name in control.REGISTRY


def act(state: JobMonitorState, action: str, job: Job, user: Any) -> ActionResult | Refusal:
    """Take ``action`` on ``job`` for ``user`` (``control.perform``), or say why it was not:
    nothing changed then."""
    try:
        return control.perform(state, action, job, user)
    except PermissionDenied as denied:
        return Refusal(403, str(denied))
    except (TransitionRefused, ActionNotAllowed, UnknownTask) as refused:
        return Refusal(409, str(refused))
    except EnqueueError as error:
        return Refusal(503, str(error))


def act_on_many(state: JobMonitorState, action: str, ids: list[str], user: Any) -> control.BulkSummary:
    """Take ``action`` on each of the jobs ``ids`` that ``user`` may see ("3 stopped, 1 skipped:
    already completed"). An id that is unknown or not the user's to see is reported as "not
    found", not silently dropped (and the two are not told apart: whether someone else's job
    exists is not the user's business)."""
    jobs = visible_ids(state, ids)
    summary = control.perform_bulk(state, action, jobs, user)
    found = {job.id for job in jobs}
    # the ids the caller sent, in their order, once each: they know which of theirs were not found
    missing = [job_id for job_id in dict.fromkeys(ids) if job_id not in found]
    summary.skipped.extend((job_id, gettext("not found")) for job_id in missing)
    return summary


__all__ = ["Refusal", "act", "act_on_many", "is_action"]
