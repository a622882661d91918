"""The job list, the job detail page and the "My jobs" dashboard as Flask-Admin views.

Views are thin: they parse the request, ask the permissions object, call ``listing`` /
``details`` and render. Access is checked in ``is_accessible`` (whole view) and again per
job (``visible_job_or_404``), so a URL with someone else's job id answers 404.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_admin import BaseView, expose
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response

from ...errors import InvalidFilter
from ...i18n import gettext
from ...jobs import control
from ...links import same_site_path
from ...records.estimates import job_remaining_seconds, jobs_time_left, steps_with_estimates
from ...records.failures import visible_detail
from ...records.live import overlay_job, overlay_jobs, read_live
from ...records.models import Job
from ...records.status import JobStatus
from ...state import get_state
from ...timeutil import utcnow
from ..actions import Refusal, act, act_on_many, is_action
from ..details import (
    DETAIL_PARAMS,
    LOG_LEVELS,
    attempts_of,
    children_grid,
    files_of,
    log_grid,
    restarts_of,
    subtask_counts,
    subtask_grid,
    time_left_text,
)
from ..headers import add_security_headers
from ..listing import (
    PAGE_SIZES,
    STATUS_GROUPS,
    USER_CHOICES,
    Cursor,
    ListFilters,
    family_progress,
    fetch_page,
    late_ids,
    load_jobs,
    matching_ids,
    newer_ids,
    parse_filters,
    quick_days,
    results_of,
    user_choices,
    user_has_jobs,
    users_with_jobs,
)
from ..presenters import is_active
from ..requests import (
    PAGE_ERROR_CODES,
    current_user,
    error_page_context,
    is_valid_job_id,
    json_error,
    request_zone,
    require_csrf,
    visible_ids,
    visible_job_or_404,
)

#: At most this many rows are refreshed, or children shown under a parent, per request.
MAX_ROWS = 200


class _JobViewBase(BaseView):
    """Access control shared by the job pages."""

    extra_css: list[str] = []
    extra_js: list[str] = []

    def is_accessible(self) -> bool:
        return get_state().permissions.can_access(current_user())

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        user = current_user()
        login_manager = getattr(self.admin.app, "login_manager", None) if self.admin else None
        if not get_state().permissions.is_authenticated(user) and login_manager and login_manager.login_view:
            return redirect(url_for(login_manager.login_view, next=request.full_path))
        abort(403)

    def create_blueprint(self, admin: Any) -> Any:
        """Flask-Admin's blueprint, plus the job pages' own 400/403/404 page (in the layout)
        and their security headers (headers.py)."""
        blueprint = super().create_blueprint(admin)
        blueprint.after_request(add_security_headers)
        for code in PAGE_ERROR_CODES:
            blueprint.register_error_handler(code, self._error_page)
        return blueprint

    def _error_page(self, error: HTTPException) -> Any:
        if error.response is not None:  # an answer already made (e.g. a redirect) stands
            return error.response
        home_url = url_for(f"{self.admin.index_view.endpoint}.index") if self.admin else "/"
        return self._render("jobmonitor/error.html", status=error.code or 500, **error_page_context(error, home_url))

    def _render(self, template: str, status: int = 200, **context: Any) -> Response | tuple[str, int]:
        settings = get_state().settings
        prefix = settings.url_prefix
        self.extra_css = [f"{prefix}/static/jobmonitor.css"]
        self.extra_js = [f"{prefix}/static/jobmonitor.js"]
        return self.render(template, **context), status


class JobListView(_JobViewBase):
    """ "Process tracker": every job the user may see, filtered, sorted, refreshed live."""

    @expose("/")
    def index(self) -> Any:
        state = get_state()
        permissions = state.permissions
        user = current_user()
        error = None
        try:
            filters = parse_filters(request.args, request_zone())
        except InvalidFilter as invalid:
            error, filters = str(invalid), ListFilters()
        view_all = permissions.can_view_all(user)
        allow_system = permissions.can_see_system(user)
        time_left: dict[str, float | None] = {}
        if error is None and view_all and filters.user:
            with state.engine.connect() as connection:
                if not user_has_jobs(connection, filters.user):
                    # said on the page, not shown as an empty list: a typed name sent as an id,
                    # or a link to a user who has no job (any more)
                    error = gettext(
                        "No user with id “%(user)s” has run a job: choose a user from the list.", user=filters.user
                    )
        if error is None:
            with state.engine.connect() as connection:
                page = fetch_page(
                    connection,
                    filters,
                    visible_to=permissions.list_owner(user),
                    allow_system=allow_system,
                )
                # the page's ids are known only now: read after SQL, the live progress can only
                # be older than a write that deleted it, never ahead of the truth (live.py)
                live = read_live(state.redis, [job.id for job in page.jobs if is_active(job.status)])
                overlay_jobs(page.jobs, live)
                time_left = jobs_time_left(connection, page.jobs, utcnow(), live)
        else:
            page = None
        users: list[tuple[str, str]] = []
        if view_all:
            with state.engine.connect() as connection:
                users = user_choices(users_with_jobs(connection))
        return self._render(
            "jobmonitor/list.html",
            status=400 if error else 200,
            user_choices_limit=USER_CHOICES,
            page=page,
            filters=filters,
            error=error,
            view_all=view_all,
            allow_system=allow_system,
            statuses=[s.value for s in JobStatus],
            status_groups=list(STATUS_GROUPS),
            page_sizes=PAGE_SIZES,
            types=sorted({task.type for task in state.tasks} | ({filters.type} - {""})),
            categories=state.settings.categories,
            quick_days=quick_days(utcnow(), request_zone()),
            now=utcnow(),
            bulk_actions=control.ACTIONS,
            users=users,
            user_names=dict(users),
            time_left=time_left,
        )

    @expose("/rows")
    def rows(self) -> Any:
        """The live refresh of the list: its rows rendered by the page's own row macro.

        ``ids=a,b``: those rows again (ids the user may not see, or that no longer exist, are
        listed in ``gone``); ``since=<cursor>``: the jobs matching the list's filters (the
        other query parameters) created after that position, newest first, at most a page;
        ``parent=<id>&family=1``: the children of that parent, as rows shown under it.
        ``next``: the list page the rows' buttons come back to."""
        state = get_state()
        permissions = state.permissions
        user = current_user()
        try:
            filters = parse_filters(request.args, request_zone())
            since = Cursor.parse("since", request.args["since"]) if request.args.get("since") else None
        except InvalidFilter as invalid:
            return json_error(400, str(invalid))
        ids = [part for part in request.args.get("ids", "").split(",") if part]
        if len(ids) > MAX_ROWS:
            return json_error(400, f"at most {MAX_ROWS} ids per request")
        if not all(is_valid_job_id(part) for part in ids):
            return json_error(400, "ids must be job ids, separated by commas")
        family = request.args.get("family") == "1"
        if family and not filters.parent:
            return json_error(400, "family=1 needs parent=<job id>")
        next_url = same_site_path(request.args.get("next"), url_for(".index"))
        view_all = permissions.can_view_all(user)
        visible_to = permissions.list_owner(user)
        allow_system = permissions.can_see_system(user)
        live = read_live(state.redis, ids)  # before SQL (live.py)
        jobs = visible_ids(state, ids)
        overlay_jobs(jobs, live)
        new: list[Job] = []
        found: list[str] = []
        children: list[Job] = []
        more = False
        with state.engine.connect() as connection:
            if since is not None:
                found = newer_ids(connection, filters, since, visible_to=visible_to, allow_system=allow_system)
                # and the ones that committed after a newer job was announced (the page leaves
                # out those it shows)
                late = late_ids(connection, filters, since, visible_to=visible_to, allow_system=allow_system)
                new = load_jobs(connection, [*found, *(job_id for job_id in late if job_id not in found)])
            if family:
                if not visible_ids(state, [filters.parent]):
                    return json_error(404, "no such job")
                page = fetch_page(
                    connection, replace(filters, per_page=MAX_ROWS), visible_to=visible_to, allow_system=allow_system
                )
                children, more = page.jobs, page.has_next
            shown = [*jobs, *new, *children]
            families = family_progress(connection, [job.id for job in shown])
            results = results_of(connection, [job.id for job in shown])
            now = utcnow()
            time_left = jobs_time_left(connection, shown, now, live)

        def html(batch: list[Job]) -> str:
            return render_template(
                "jobmonitor/_rows.html",
                jobs=batch,
                families=families,
                results=results,
                view_all=view_all,
                filters=filters,
                now=now,
                next_url=next_url,
                time_left=time_left,
            )

        found_ids = {job.id for job in jobs}
        return jsonify(
            {
                "html": html(jobs) if jobs else "",
                "jobs": [{"id": job.id, "status": job.status, "active": is_active(job.status)} for job in jobs],
                "gone": [job_id for job_id in dict.fromkeys(ids) if job_id not in found_ids],
                "new_ids": [job.id for job in new if job.id in found],
                "late_ids": [job.id for job in new if job.id not in found],
                "newest": Cursor.of(new[0]).token if new and new[0].id in found else None,
                "new_html": html(new) if new else "",
                "children_html": html(children) if children else "",
                "children_more": more,
                "now": now.isoformat() + "Z",
            }
        )

    @expose("/<job_id>/")
    def detail(self, job_id: str) -> Any:
        state = get_state()
        live = read_live(state.redis, [job_id] if is_valid_job_id(job_id) else []).get(job_id)  # before SQL
        job = visible_job_or_404(job_id, state)
        overlay_job(job, live)
        args = request.args
        now = utcnow()
        error = None
        subtasks = logs = children = None
        with state.engine.connect() as connection:
            steps = steps_with_estimates(connection, job, now, live)
            counts = subtask_counts(connection, job.id)
            files = files_of(connection, job.id)
            restarts = restarts_of(connection, job.id)
            family = family_progress(connection, [job.id]).get(job.id)
            attempts = attempts_of(
                connection, job, state.tasks, state.permissions.can_view_tracebacks(current_user(), job)
            )
            try:
                subtasks = subtask_grid(connection, job.id, args.get("subtask_status", ""), args.get("subtask_page"))
                logs = log_grid(
                    connection, job.id, args.get("log_level", ""), args.get("log_q", ""), args.get("log_page")
                )
                children = children_grid(connection, job.id, args.get("children_page"))
            except InvalidFilter as invalid:
                error = str(invalid)
        relatives = _relatives(state, job)
        return self._render(
            "jobmonitor/detail.html",
            status=400 if error else 200,
            job=job,
            steps=steps,
            subtask_counts=counts,
            subtasks=subtasks,
            logs=logs,
            log_levels=list(LOG_LEVELS),
            files=files,
            attempts=attempts,
            children=children,
            family=family,
            restarts=(shown_restarts := [r for r in restarts if state.permissions.can_view(current_user(), r)]),
            hidden_restarts=len(restarts) - len(shown_restarts),  # counted, never named (nor their status)
            parent=relatives.get("parent"),
            restarted_from=relatives.get("restarted_from"),
            qs={name: args[name] for name in DETAIL_PARAMS if name in args},  # carried into the page's links
            error=error,
            now=now,
            actions=control.allowed_actions(state, job, current_user(), family.active if family else 0),
            time_left=time_left_text(job_remaining_seconds(job.status, steps)),
            error_detail=visible_detail(state, current_user(), job),
        )

    @expose("/<job_id>/action", methods=["POST"])
    def action(self, job_id: str) -> Response:
        """One action from a button (list row, detail page, widget); flashes the outcome."""
        require_csrf()
        state = get_state()
        job = visible_job_or_404(job_id, state)
        name = request.form.get("action", "")
        if not is_action(name):
            abort(400, description=f"unknown action {name!r}")
        result = act(state, name, job, current_user())
        if isinstance(result, Refusal):
            if result.status == 403:
                abort(403, description=result.message)
            flash(result.message, "error")
            return redirect(_back(url_for(".detail", job_id=job_id)))
        flash(result.message, "success")
        if result.new_job_id:
            return redirect(url_for(".detail", job_id=result.new_job_id))
        if name == "delete":
            return redirect(_back(url_for(".index"), avoid=job_id))
        return redirect(_back(url_for(".detail", job_id=job_id)))

    # GET is routed here only to be refused: otherwise "/<job_id>/" takes it for a job called "bulk"
    @expose("/bulk", methods=["GET", "POST"])
    def bulk(self) -> Response:
        """One action on the selected rows, or on every job matching the list's current filters."""
        if request.method != "POST":
            raise MethodNotAllowed(["POST"], gettext("Bulk actions are sent from the job list's form."))
        require_csrf()
        state = get_state()
        user = current_user()
        name = request.form.get("action", "")
        if not is_action(name):
            flash(gettext("Choose an action."), "error")
            return redirect(_back(url_for(".index")))
        if request.form.get("scope") == "matching":
            try:
                filters = parse_filters(request.form, request_zone())
            except InvalidFilter as invalid:
                abort(400, description=str(invalid))
            permissions = state.permissions
            with state.engine.connect() as connection:
                ids = matching_ids(
                    connection,
                    filters,
                    visible_to=permissions.list_owner(user),
                    allow_system=permissions.can_see_system(user),
                    limit=control.BULK_LIMIT,
                )
        else:
            ids = request.form.getlist("ids")[: control.BULK_LIMIT]
        if not ids:
            flash(gettext("Select at least one job."), "error")
            return redirect(_back(url_for(".index")))
        summary = act_on_many(state, name, ids, user)
        flash(summary.message, "success" if summary.done else "warning")
        return redirect(_back(url_for(".index")))


def _back(default: str, avoid: str | None = None) -> str:
    """The page the form came from (a path of this site only: ``links.same_site_path``), else
    ``default``; also ``default`` when that page names ``avoid`` (a job just deleted)."""
    target = same_site_path(request.form.get("next"), default)
    return default if avoid is not None and avoid in target else target


def _relatives(state: Any, job: Job) -> dict[str, Job | None]:
    """Parent and original job, if the user may see them (else the page names neither their id
    nor their status: "a job you may not open")."""
    found: dict[str, Job | None] = {}
    user = current_user()
    with Session(state.engine) as session:
        for key, other_id in (("parent", job.parent_id), ("restarted_from", job.restarted_from_id)):
            other = session.get(Job, other_id) if other_id else None
            if other is not None and state.permissions.can_view(user, other):
                session.expunge(other)
                found[key] = other
    return found


class JobDashboardView(_JobViewBase):
    """ "My jobs": the user's running jobs and latest results, refreshed live."""

    @expose("/")
    def index(self) -> Any:
        return self._render("jobmonitor/dashboard.html")
