"""JSON endpoints for live refresh and notifications, and file downloads.

Every endpoint asks the permissions object about the current user, on the server. A job the
user may not see answers 404 like one that does not exist. Downloads are served by file id,
after checking that the file's own job is visible; nothing in the request names a path.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request, send_file
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from . import control
from .details import job_remaining_seconds, jobs_time_left, steps_with_estimates, subtask_counts, time_left_text
from .errors import EnqueueError, TransitionRefused, UnknownTask
from .extension import get_state
from .failures import visible_detail
from .headers import add_security_headers
from .links import same_site_path
from .listing import family_progress
from .live import overlay_job, overlay_jobs, read_live
from .models import file_table, job_table, notification_table
from .presenters import (
    JOB_FRAGMENTS,
    PartContext,
    detail_fragments,
    job_fragments,
    job_summary,
    look,
    page_macros,
    step_fragment,
)
from .timeutil import utcnow
from .web import (
    abort_json,
    current_user,
    is_valid_job_id,
    json_error,
    require_csrf,
    visible_ids,
    visible_job_or_404,
)

bp = Blueprint("jobmonitor", __name__, template_folder="templates", static_folder="static", static_url_path="/static")
MAX_IDS = 200
MAX_FRAGMENT_NAMES = 20
MAX_ROW_ID = 2**63 - 1  # BIGINT
MAX_FILE_ID = 2**31 - 1  # INTEGER
bp.after_request(add_security_headers)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    """JSON endpoints answer errors (404, 400 ...) as ``{"error": ...}``; downloads as usual."""
    if error.response is not None:
        return error.response
    if request.path.startswith(f"{get_state().settings.url_prefix}/api/"):
        return json_error(error.code or 500, error.description or error.name)
    return error


def _require_access() -> Any:
    state = get_state()
    user = current_user()
    if not state.permissions.can_access(user):
        abort_json(401 if not state.permissions.is_authenticated(user) else 403, "you may not see tracked jobs")
    return user


def _fragment_names() -> list[str]:
    """``html=status,progress``: the parts to render of each job; names /api/jobs renders no
    part for are left out (a page marks elements of its own with ``data-jm`` too). Without the
    parameter every part is rendered; ``html=`` (empty) none. ``next=<path>``: the page the
    rendered buttons come back to."""
    raw = request.args.get("html")
    if raw is None:
        return list(JOB_FRAGMENTS)
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if len(names) > MAX_FRAGMENT_NAMES or any(len(name) > 40 for name in names):
        abort_json(400, f"html names at most {MAX_FRAGMENT_NAMES} parts, e.g. html={','.join(JOB_FRAGMENTS)}")
    return [name for name in JOB_FRAGMENTS if name in names]


@bp.get("/api/jobs")
def jobs_summary() -> Response:
    """``?ids=a,b,c``: status, progress, durations, time left and ``actions`` (what this user
    may do to each now) of those jobs the user may see, and in ``html`` the parts ``html=``
    asks for (:data:`~flask_jobmonitor.presenters.JOB_FRAGMENTS`) as the page's macros render them."""
    user = _require_access()
    raw = request.args.get("ids", "")
    ids = [part for part in raw.split(",") if part][: MAX_IDS + 1]
    if len(ids) > MAX_IDS:
        abort_json(400, f"at most {MAX_IDS} ids per request")
    names = _fragment_names()
    state = get_state()
    live = read_live(state.redis, [job_id for job_id in ids if is_valid_job_id(job_id)])  # before SQL: live.py
    jobs = visible_ids(state, ids)
    overlay_jobs(jobs, live)
    now = utcnow()
    with state.engine.connect() as connection:
        families = family_progress(connection, [job.id for job in jobs])
        time_left = jobs_time_left(connection, jobs, now, live)
    macros = page_macros() if names and jobs else None
    next_url = same_site_path(request.args.get("next"), "/")
    summaries = []
    for job in jobs:
        family = families.get(job.id)
        summary = job_summary(job, now, family)
        summary.update(remaining_seconds=time_left[job.id], remaining_text=time_left_text(time_left[job.id]))
        summary["actions"] = actions = control.allowed_actions(state, job, user, family.active if family else 0)
        part = PartContext(now, family, actions, next_url)
        summary["html"] = job_fragments(macros, job, part, names) if macros else {}
        summaries.append(summary)
    return jsonify({"jobs": summaries, "now": now.isoformat() + "Z"})


@bp.get("/api/jobs/<job_id>")
def job_detail(job_id: str) -> Response:
    """One job with its steps (elapsed, remaining and estimated times), its time left and its
    subtask counts."""
    _require_access()
    state = get_state()
    live = read_live(state.redis, [job_id] if is_valid_job_id(job_id) else []).get(job_id)  # before SQL: live.py
    job = visible_job_or_404(job_id, state)
    overlay_job(job, live)
    now = utcnow()
    with state.engine.connect() as connection:
        steps = steps_with_estimates(connection, job, now, live)
        counts = subtask_counts(connection, job.id)
        family = family_progress(connection, [job.id]).get(job.id)
    summary = job_summary(job, now, family)
    remaining = job_remaining_seconds(job.status, steps)
    actions = control.allowed_actions(state, job, current_user(), family.active if family else 0)
    macros = page_macros()
    summary.update(
        steps=[dict(step.as_json(), html=step_fragment(macros, step)) for step in steps],
        subtask_counts=counts,
        name=job.name,
        actions=actions,
        remaining_seconds=remaining,
        remaining_text=time_left_text(remaining),
        html=detail_fragments(macros, job, PartContext(now, family, actions, ""), time_left_text(remaining)),
    )
    detail = visible_detail(state, current_user(), job)
    if detail is not None:  # only for jobmonitor.view_tracebacks (failures.py)
        summary["error_detail"] = detail
    return jsonify(summary)


@bp.post("/api/jobs/<job_id>/<action>")
def job_action(job_id: str, action: str) -> Response:
    """Do ``action`` (stop, force_stop, resume, cancel, restart, delete, set_low_priority,
    set_normal_priority) to one job. JSON answer: ``{"message", "status", "new_job_id"}``;
    403 not permitted, 404 not visible, 409 the job's status does not allow it."""
    user = _require_access()
    require_csrf()
    state = get_state()
    if action not in control.ACTIONS:
        abort_json(404, f"unknown action {action!r}; known: {', '.join(control.ACTIONS)}")
    job = visible_job_or_404(job_id, state)
    try:
        result = control.perform(state, action, job, user)
    except control.PermissionDenied as denied:
        abort_json(403, str(denied))
    except (TransitionRefused, control.ActionNotAllowed, UnknownTask) as refused:
        abort_json(409, str(refused))
    except EnqueueError as error:
        abort_json(503, str(error))
    status = None if action == "delete" else _status_of(job_id)
    return jsonify({"message": result.message, "status": status, "new_job_id": result.new_job_id})


# GET is routed here only to be refused: otherwise ``/api/jobs/<job_id>`` takes it for a job
# called "bulk" and answers 404
@bp.route("/api/jobs/bulk", methods=["GET", "POST"])
def bulk_action() -> ResponseReturnValue:
    """``{"action": ..., "ids": [...]}``: apply one action to several jobs; returns the summary
    ("3 stopped, 1 skipped: already completed"). Jobs the user may not see count as skipped."""
    if request.method != "POST":
        refused = json_error(405, 'bulk actions are POSTed: {"action": "stop", "ids": ["..."]}')
        refused.headers["Allow"] = "POST"
        return refused
    user = _require_access()
    require_csrf()
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        abort_json(400, 'send JSON: {"action": "stop", "ids": ["..."]}')
    action, ids = payload.get("action"), payload.get("ids")
    if action not in control.ACTIONS:
        abort_json(400, f"action must be one of {', '.join(control.ACTIONS)}")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > control.BULK_LIMIT:
        abort_json(400, f"ids must be a list of at most {control.BULK_LIMIT} job ids")
    state = get_state()
    jobs = visible_ids(state, ids)
    summary = control.perform_bulk(state, action, jobs, user)
    missing = len(set(ids)) - len(jobs)
    for _ in range(missing):
        summary.skipped.append(("", "not found"))
    return jsonify(
        {
            "message": summary.message,
            "done": [r.job_id for r in summary.done],
            "skipped": [{"id": job_id, "reason": reason} for job_id, reason in summary.skipped],
        }
    )


def _status_of(job_id: str) -> str | None:
    with get_state().engine.connect() as connection:
        return connection.execute(sa.select(job_table.c.status).where(job_table.c.id == job_id)).scalar()


@bp.get("/api/notifications")
def notifications() -> Response:
    """The current user's unread notifications (newest first, at most 20) and their count; each
    with the word and colour the pages use for its event (the status it reports)."""
    _require_access()
    user_id = get_state().permissions.user_id(current_user())
    n, j = notification_table.c, job_table.c
    with get_state().engine.connect() as connection:
        unread = sa.and_(n.user_id == user_id, n.read_at.is_(None))
        count = connection.execute(sa.select(sa.func.count()).select_from(notification_table).where(unread)).scalar()
        rows = connection.execute(
            sa.select(n.id, n.job_id, n.event, n.created_at, j.name)
            .join(job_table, j.id == n.job_id)
            .where(unread)
            .order_by(n.id.desc())
            .limit(20)
        ).all()
    return jsonify(
        {
            "unread": int(count or 0),
            "items": [
                {
                    "id": r.id,
                    "job_id": r.job_id,
                    "event": r.event,
                    "status_label": event_look.label,
                    "status_colour": event_look.colour,
                    "job_name": r.name,
                    "created_at": r.created_at.isoformat() + "Z",
                }
                for r in rows
                for event_look in [look(r.event)]
            ],
        }
    )


@bp.post("/api/notifications/read")
def mark_notifications_read() -> Response:
    """Mark notifications read: ``ids`` (JSON list or comma list), or all of the user's."""
    _require_access()
    require_csrf()
    user_id = get_state().permissions.user_id(current_user())
    payload = request.get_json(silent=True)
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        abort_json(400, 'send a JSON object: {"ids": [1, 2]}, or {} for all')
    raw_ids = payload.get("ids", request.form.get("ids", ""))
    if isinstance(raw_ids, str):
        raw_ids = [part for part in raw_ids.split(",") if part]
    try:
        ids = [int(value) for value in raw_ids]
    except (TypeError, ValueError):
        abort_json(400, "ids must be notification ids (whole numbers)")
    if any(not 1 <= value <= MAX_ROW_ID for value in ids):
        abort_json(400, f"notification ids are between 1 and {MAX_ROW_ID}")
    n = notification_table.c
    condition = sa.and_(n.user_id == user_id, n.read_at.is_(None))
    if ids:
        condition = sa.and_(condition, n.id.in_(ids))
    with get_state().engine.begin() as connection:
        changed = connection.execute(sa.update(notification_table).where(condition).values(read_at=utcnow())).rowcount
    return jsonify({"marked_read": changed})


@bp.get("/files/<int:file_id>")
def download(file_id: int) -> Response:
    """Send a job file by id, as an attachment, if the user may see its job."""
    _require_access()
    if file_id > MAX_FILE_ID:
        abort_json(404, f"no file with id {file_id}")
    state = get_state()
    with state.engine.connect() as connection:
        row = connection.execute(sa.select(file_table).where(file_table.c.id == file_id)).first()
    if row is None:
        abort_json(404, f"no file with id {file_id}")
    visible_job_or_404(row.job_id, state)
    try:
        handle = state.storage.open(row.storage_key)
    except FileNotFoundError:
        abort_json(410, f"file {row.filename!r} is no longer stored")

    # send_file writes an ASCII filename= and a UTF-8 filename*= for names like "März €.csv"
    response = send_file(
        handle,
        mimetype=row.content_type,
        as_attachment=True,
        download_name=row.original_name or row.filename,  # the name it was uploaded under
        conditional=False,
    )
    response.content_length = row.size  # a stream has no size of its own; the record has it
    # always, also with JOBMONITOR_SECURITY_HEADERS off (headers.py): the type is the uploader's
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
