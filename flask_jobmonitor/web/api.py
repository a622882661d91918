"""JSON endpoints for live refresh, actions and notifications (their URLs are in blueprint.py).

Every endpoint asks the permissions object about the current user, on the server. A job the
user may not see answers 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from ..errors import InvalidFilter
from ..i18n import gettext
from ..jobs import control
from ..links import same_site_path
from ..records.estimates import job_remaining_seconds, jobs_time_left, steps_with_estimates
from ..records.failures import visible_detail
from ..records.live import overlay_job, overlay_jobs, read_live
from ..records.models import Job, job_table, notification_table
from ..state import JobMonitorState, get_state
from ..timeutil import utcnow
from .actions import Refusal, act, act_on_many, is_action
from .details import Grid, attempts_of, files_of, level_name, log_grid, subtask_counts, subtask_grid, time_left_text
from .listing import family_progress, fetch_page, parse_filters
from .presenters import (
    JOB_FRAGMENTS,
    PartContext,
    detail_fragments,
    is_active,
    iso,
    job_fragments,
    job_summary,
    look,
    page_macros,
    step_fragment,
    step_json,
)
from .requests import (
    abort_json,
    current_user,
    is_valid_job_id,
    json_error,
    json_object,
    request_zone,
    require_access,
    require_csrf,
    visible_ids,
    visible_job_or_404,
)

MAX_IDS = 200
MAX_FRAGMENT_NAMES = 20
MAX_ROW_ID = 2**63 - 1  # BIGINT


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


def jobs_summary() -> Response:
    """``GET /api/jobs``. With ``ids=a,b,c``: those of the jobs the user may see (the pages'
    live refresh). Without ``ids``: the job list, with exactly the list page's filters, sorting
    and paging (``listing.parse_filters``: q, type, user, status, group, category, from, to,
    system, children, parent, sort, dir, per_page, page, after, before, last), and the links of
    its next, previous and last pages (keyset cursors in the newest-first order).

    Each job: status, progress, durations, time left, ``actions`` (what this user may do to it
    now) and in ``html`` the parts ``html=`` asks for
    (:data:`~flask_jobmonitor.web.presenters.JOB_FRAGMENTS`) as the page's macros render them:
    all of them by default for ``ids``, none by default for the list."""
    user = require_access()
    if "ids" not in request.args:
        return _job_list(user)
    raw = request.args.get("ids", "")
    ids = [part for part in raw.split(",") if part][: MAX_IDS + 1]
    if len(ids) > MAX_IDS:
        abort_json(400, f"at most {MAX_IDS} ids per request")
    names = _fragment_names()
    state = get_state()
    live = read_live(state.redis, [job_id for job_id in ids if is_valid_job_id(job_id)])  # before SQL: live.py
    jobs = visible_ids(state, ids)
    overlay_jobs(jobs, live)
    return jsonify({"jobs": _summaries(state, jobs, names, live, user), "now": utcnow().isoformat() + "Z"})


def _summaries(state: JobMonitorState, jobs: list[Job], names: list[str], live: Any, user: Any) -> list[dict[str, Any]]:
    """The JSON of ``jobs`` (live progress already laid over them) for ``user``."""
    now = utcnow()
    with state.engine.connect() as connection:
        families = family_progress(connection, [job.id for job in jobs])
        time_left = jobs_time_left(connection, jobs, now, live)
    macros = page_macros() if names and jobs else None
    next_url = same_site_path(request.args.get("next"), "/")
    summaries = []
    for job in jobs:
        family = families.get(job.id)
        summary = job_summary(job, now, family) | _identity(job)
        summary.update(
            remaining_seconds=time_left[job.id],
            remaining_text=time_left_text(time_left[job.id]),
        )
        summary["actions"] = actions = control.allowed_actions(state, job, user, family.active if family else 0)
        part = PartContext(now, family, actions, next_url)
        summary["html"] = job_fragments(macros, job, part, names) if macros else {}
        summaries.append(summary)
    return summaries


def _identity(job: Job) -> dict[str, Any]:
    """What a job is and whose (the JSON of the list and of one job)."""
    return {
        "name": job.name,
        "type": job.type,
        "category": job.category,
        "task": job.task,
        "run_by_id": job.run_by_id,
        "run_by_name": job.run_by_name,
        "parent_id": job.parent_id,
        "is_system": job.is_system,
        "low_priority": job.low_priority,
    }


def _job_list(user: Any) -> Response:
    """One page of the job list as JSON (see :func:`jobs_summary`); a filter that makes no sense
    answers 400 with the list page's words."""
    state = get_state()
    permissions = state.permissions
    try:
        filters = parse_filters(request.args, request_zone())
    except InvalidFilter as invalid:
        abort_json(400, str(invalid))
    names = _fragment_names() if "html" in request.args else []
    with state.engine.connect() as connection:
        page = fetch_page(
            connection,
            filters,
            visible_to=permissions.list_owner(user),
            allow_system=permissions.can_see_system(user),
        )
    live = read_live(state.redis, [job.id for job in page.jobs if is_active(job.status)])  # after SQL: live.py
    overlay_jobs(page.jobs, live)

    def link(args: dict[str, Any] | None) -> str | None:
        if args is None:
            return None
        if names:
            args = {**args, "html": request.args["html"]}
        return url_for("jobmonitor.jobs_summary", **args)

    return jsonify(
        {
            "jobs": _summaries(state, page.jobs, names, live, user),
            "now": utcnow().isoformat() + "Z",
            "next": link(page.next_args()),
            "previous": link(page.previous_args()),
            "last": link(page.last_args()),
            "sort_window": page.window,
            "search_window": page.searched,
        }
    )


def job_detail(job_id: str) -> Response:
    """One job with its steps (elapsed, remaining and estimated times), its time left, its
    subtask counts and its files (inputs, outputs, error reports: each downloaded by its ``url``)."""
    require_access()
    state = get_state()
    live = read_live(state.redis, [job_id] if is_valid_job_id(job_id) else []).get(job_id)  # before SQL: live.py
    job = visible_job_or_404(job_id, state)
    overlay_job(job, live)
    now = utcnow()
    with state.engine.connect() as connection:
        steps = steps_with_estimates(connection, job, now, live)
        counts = subtask_counts(connection, job.id)
        family = family_progress(connection, [job.id]).get(job.id)
        files = files_of(connection, job.id)
        tracebacks = state.permissions.can_view_tracebacks(current_user(), job)
        attempts = attempts_of(connection, job, state.tasks, tracebacks)
    summary = job_summary(job, now, family) | _identity(job)
    remaining = job_remaining_seconds(job.status, steps)
    actions = control.allowed_actions(state, job, current_user(), family.active if family else 0)
    macros = page_macros()
    summary.update(
        description=job.description,
        params=job.params,
        run_at_url=job.run_at_url,
        steps=[dict(step_json(step), html=step_fragment(macros, step)) for step in steps],
        subtask_counts=counts,
        files=[
            {
                "id": row.id,
                "kind": row.kind,
                "name": row.original_name or row.filename,
                "content_type": row.content_type,
                "size": row.size,
                "url": url_for("jobmonitor.download", file_id=row.id),
            }
            for row in files
        ],
        actions=actions,
        remaining_seconds=remaining,
        remaining_text=time_left_text(remaining),
        attempts=[_attempt_json(attempt, tracebacks) for attempt in attempts],
        html=detail_fragments(macros, job, PartContext(now, family, actions, ""), time_left_text(remaining), attempts),
    )
    detail = visible_detail(state, current_user(), job)
    if detail is not None:  # only for jobmonitor.view_tracebacks (failures.py)
        summary["error_detail"] = detail
    return jsonify(summary)


def _attempt_json(attempt: Any, tracebacks: bool) -> dict[str, Any]:
    shown = {
        "number": attempt.number,
        "started_at": iso(attempt.started_at),
        "ended_at": iso(attempt.ended_at),
        "worker_name": attempt.worker_name,
        "error_message": attempt.error_message,
        "retry_at": iso(attempt.retry_at),
    }
    if tracebacks:  # only for jobmonitor.view_tracebacks (failures.py)
        shown["error_detail"] = attempt.error_detail
    return shown


def job_subtasks(job_id: str) -> Response:
    """``GET /api/jobs/<id>/subtasks?status=&page=``: the job's subtasks, oldest first, 50 a page
    (as its page's grid: ``details.subtask_grid``)."""
    require_access()
    state = get_state()
    job = visible_job_or_404(job_id, state)
    try:
        with state.engine.connect() as connection:
            grid = subtask_grid(
                connection, job.id, request.args.get("status", ""), request.args.get("page"), ("status", "page")
            )
    except InvalidFilter as invalid:
        abort_json(400, str(invalid))
    rows = [
        {
            "id": row.id,
            "name": row.name,
            "status": row.status,
            "message": row.message,
            "created_at": iso(row.created_at),
        }
        for row in grid.rows
    ]
    return jsonify({"subtasks": rows, "page": grid.page, "next": _next_page(grid)})


def job_logs(job_id: str) -> Response:
    """``GET /api/jobs/<id>/logs?level=&q=&page=``: the job's log, oldest first, 50 lines a page,
    at or above ``level`` (debug, info, warning, error) and holding ``q`` (``details.log_grid``)."""
    require_access()
    state = get_state()
    job = visible_job_or_404(job_id, state)
    try:
        with state.engine.connect() as connection:
            args = request.args
            grid = log_grid(
                connection, job.id, args.get("level", ""), args.get("q", ""), args.get("page"), ("level", "q", "page")
            )
    except InvalidFilter as invalid:
        abort_json(400, str(invalid))
    rows = [
        {
            "id": row.id,
            "created_at": iso(row.created_at),
            "level": row.level,
            "level_name": level_name(row.level),
            "logger": row.logger,
            "message": row.message,
        }
        for row in grid.rows
    ]
    return jsonify({"logs": rows, "page": grid.page, "next": _next_page(grid)})


def _next_page(grid: Grid) -> str | None:
    """The next page of a grid, with the request's filters (its own, no stray parameter)."""
    if not grid.has_next:
        return None
    filters = {name: request.args[name] for name in ("status", "level", "q") if request.args.get(name)}
    args: dict[str, Any] = {**filters, **(request.view_args or {}), "page": grid.page + 1}
    return url_for(str(request.endpoint), **args)


def job_action(job_id: str, action: str) -> Response:
    """Do ``action`` (stop, force_stop, resume, cancel, restart, delete, set_low_priority,
    set_normal_priority) to one job. JSON answer: ``{"message", "status", "new_job_id"}``;
    403 not permitted, 404 not visible, 409 the job's status does not allow it."""
    user = require_access()
    require_csrf()
    state = get_state()
    if not is_action(action):
        abort_json(404, f"unknown action {action!r}; known: {', '.join(control.ACTIONS)}")
    job = visible_job_or_404(job_id, state)
    result = act(state, action, job, user)
    if isinstance(result, Refusal):
        abort_json(result.status, result.message)
    status = None if action == "delete" else _status_of(job_id)
    return jsonify({"message": result.message, "status": status, "new_job_id": result.new_job_id})


def method_not_allowed(allowed: list[str], **_path: Any) -> ResponseReturnValue:
    """Another method on an API path (blueprint.py routes them here): a JSON 405 with ``Allow``."""
    refused = json_error(405, gettext("this address takes %(methods)s", methods=", ".join(allowed)))
    refused.headers["Allow"] = ", ".join(allowed)
    return refused


def allowed_methods(allowed: list[str], **_path: Any) -> ResponseReturnValue:
    """OPTIONS on an API path: 204 with the methods it takes in ``Allow`` (no CORS: the API
    serves its own site and machine clients)."""
    answer = Response(status=204)
    answer.headers["Allow"] = ", ".join([*allowed, "OPTIONS"])
    return answer


def no_such_endpoint(unknown: str) -> ResponseReturnValue:
    """A path under ``/api/`` that names no endpoint: a JSON 404."""
    return json_error(404, gettext("no API endpoint at this address; see %(url)s", url=url_for("jobmonitor.document")))


def bulk_action() -> ResponseReturnValue:
    """``{"action": ..., "ids": [...]}``: apply one action to several jobs; returns the summary
    ("3 stopped, 1 skipped: already completed"). Jobs the user may not see count as skipped."""
    user = require_access()
    require_csrf()
    payload = json_object(("action", "ids"), '{"action": "stop", "ids": ["..."]}')
    assert payload is not None  # forms=False
    action, ids = payload.get("action"), payload.get("ids")
    if not is_action(action):
        abort_json(400, f"action must be one of {', '.join(control.ACTIONS)}")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > control.BULK_LIMIT:
        abort_json(400, f"ids must be a list of at most {control.BULK_LIMIT} job ids")
    summary = act_on_many(get_state(), action, ids, user)
    return jsonify(
        {
            "message": summary.message,
            "done": [r.job_id for r in summary.done],
            # a restart makes new jobs: old id -> the new job's, to follow them
            "new_jobs": {r.job_id: r.new_job_id for r in summary.done if r.new_job_id},
            "skipped": [{"id": job_id, "reason": reason} for job_id, reason in summary.skipped],
        }
    )


def _status_of(job_id: str) -> str | None:
    with get_state().engine.connect() as connection:
        return connection.execute(sa.select(job_table.c.status).where(job_table.c.id == job_id)).scalar()


def notifications() -> Response:
    """The current user's unread notifications (newest first, at most 20) and their count; each
    with the word and colour the pages use for its event (the status it reports)."""
    require_access()
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


def mark_notifications_read() -> Response:
    """Mark notifications read: ``ids`` (JSON list, or a comma list in a form), or all of the
    user's when ``ids`` is not sent at all (an empty list marks none)."""
    require_access()
    require_csrf()
    user_id = get_state().permissions.user_id(current_user())
    payload = json_object(("ids",), '{"ids": [1, 2]}, or {} for all', forms=True)
    fields = request.form if payload is None else payload
    raw_ids = fields.get("ids")
    if isinstance(raw_ids, str):
        raw_ids = [part.strip() for part in raw_ids.split(",") if part.strip()]
    if raw_ids is not None and (
        not isinstance(raw_ids, list)
        or not all(isinstance(value, int | str) and not isinstance(value, bool) for value in raw_ids)
    ):
        abort_json(400, "ids must be a list of notification ids (whole numbers)")
    try:
        ids = None if raw_ids is None else [int(value) for value in raw_ids]
    except ValueError:
        abort_json(400, "ids must be notification ids (whole numbers)")
    if ids is not None and any(not 1 <= value <= MAX_ROW_ID for value in ids):
        abort_json(400, f"notification ids are between 1 and {MAX_ROW_ID}")
    if ids == []:
        return jsonify({"marked_read": 0})
    n = notification_table.c
    condition = sa.and_(n.user_id == user_id, n.read_at.is_(None))
    if ids is not None:
        condition = sa.and_(condition, n.id.in_(ids))
    with get_state().engine.begin() as connection:
        changed = connection.execute(sa.update(notification_table).where(condition).values(read_at=utcnow())).rowcount
    return jsonify({"marked_read": changed})
