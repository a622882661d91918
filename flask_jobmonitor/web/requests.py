"""Request-side helpers shared by the admin views and the JSON endpoints: who is asking, which
job they may see, CSRF, and error answers.

Error answers keep two rules. The JSON endpoints (``<prefix>/api/...``) answer ``{"error": ...}``
(api.py). The job pages answer 400, 403, 404 and 413 inside the admin layout, with the menu and a
link back to the job list (:func:`error_page_context`); a 404 never says whether a job exists
or is only someone else's, and repeats no id.
"""

from __future__ import annotations

from typing import Any, NoReturn

import sqlalchemy as sa
from flask import abort, current_app, jsonify, request, url_for
from flask_wtf.csrf import CSRFError, validate_csrf
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response
from wtforms import ValidationError

from ..records.models import Job
from ..state import JobMonitorState, get_state

_ID_LENGTH = 36


def current_user() -> Any:
    """The user making the request (Flask-Login's current_user), or None without a login manager."""
    return get_state().permissions.current_user()


def is_valid_job_id(job_id: str) -> bool:
    """A job id is a 36-character UUID string; anything else cannot name a job."""
    return len(job_id) == _ID_LENGTH and all(ch in "0123456789abcdef-" for ch in job_id)


def visible_job_or_404(job_id: str, state: JobMonitorState | None = None) -> Job:
    """Load ``job_id`` if the current user may see it; otherwise 404.

    Someone else's job answers exactly like a job that does not exist, so ids cannot be probed.
    """
    state = state or get_state()
    if not is_valid_job_id(job_id):
        abort(404, description=f"no job with id {job_id!r}")
    with Session(state.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        if job is not None:
            session.expunge(job)
    if job is None or not state.permissions.can_view(current_user(), job):
        abort(404, description=f"no job with id {job_id!r}")
    return job


def require_csrf() -> None:
    """Refuse a state-changing request without a valid CSRF token (form field or X-CSRFToken).

    Honours Flask-WTF's ``WTF_CSRF_ENABLED = False``, the switch hosts use in their own tests.
    """
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return
    token = request.form.get("csrf_token") or request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
    try:
        validate_csrf(token)
    except (ValidationError, CSRFError) as error:
        abort(400, description=f"CSRF check failed: {error}")


def json_error(status: int, message: str) -> Response:
    """A JSON error answer: ``{"error": message}`` with ``status``."""
    response = jsonify({"error": message})
    response.status_code = status
    return response


def abort_json(status: int, message: str) -> NoReturn:
    """Stop the request with a JSON error."""
    abort(json_error(status, message))


#: The codes the job pages answer with their own page; others keep Flask's answer.
PAGE_ERROR_CODES = (400, 403, 404, 413)
_PAGE_ERRORS = {
    400: ("This request cannot be answered", None),
    403: ("You may not open this page", "Your account does not have the permission this page needs."),
    404: ("Job not found", "There is no job at this address, or it is not one you may see."),
    413: ("The file is too large", None),  # the limit, in the error's own words (FileTooLarge)
}


def error_page_context(error: HTTPException, home_url: str) -> dict[str, Any]:
    """What the error page (``jobmonitor/error.html``) shows for ``error``: a title, one
    sentence in plain words and the way back (the job list if the user may open it, else
    ``home_url``, the admin's start page)."""
    code = error.code or 500
    title, text = _PAGE_ERRORS.get(code, (error.name, None))
    if code == 403 and error.description != type(error).description:
        text = error.description  # a refusal of the package's own, in plain words (no id)
    if get_state().permissions.can_access(current_user()):
        back_url, back_label = url_for("jobmonitor_jobs.index"), "Back to the job list"
    else:
        back_url, back_label = home_url, "Back to the start page"
    return {
        "code": code,
        "title": title,
        # a 400 says what was wrong with the request (a filter, a form); a 404 never says more
        "text": text or error.description or error.name,
        "back_url": back_url,
        "back_label": back_label,
    }


def visible_ids(state: JobMonitorState, job_ids: list[str]) -> list[Job]:
    """The jobs among ``job_ids`` that the current user may see (unknown or foreign ones dropped)."""
    valid = [job_id for job_id in job_ids if is_valid_job_id(job_id)]
    if not valid:
        return []
    with Session(state.engine) as session:
        jobs = list(session.execute(sa.select(Job).where(Job.id.in_(valid))).scalars())
        session.expunge_all()
    user = current_user()
    return [job for job in jobs if state.permissions.can_view(user, job)]


def require_access() -> Any:
    """The current user, if they may see tracked jobs at all; else a JSON 401 or 403."""
    state = get_state()
    user = current_user()
    if not state.permissions.can_access(user):
        abort_json(401 if not state.permissions.is_authenticated(user) else 403, "you may not see tracked jobs")
    return user
