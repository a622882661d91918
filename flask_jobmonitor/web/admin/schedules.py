"""The schedules page: every registered schedule (jobs/schedules.py) with its cron, its next run
(rq-scheduler's own next time), its last run linked to the job, and its on/off switch, for
people holding ``jobmonitor.view_all``; the switch (a POST with the CSRF token) needs
``jobmonitor.manage_schedules`` and is written to the audit trail."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from werkzeug.wrappers import Response

from ...errors import UnknownSchedule
from ...i18n import gettext
from ...jobs.schedules import overview, set_enabled
from ...records.models import job_table
from ...state import get_state
from ..requests import current_user, require_csrf
from .views import _JobViewBase


def _last_jobs(state: Any, job_ids: set[str]) -> dict[str, Any]:
    """The schedules' last jobs that still exist and the viewer may open, by id."""
    if not job_ids:
        return {}
    c = job_table.c
    with state.engine.connect() as connection:
        rows = connection.execute(
            sa.select(c.id, c.name, c.status, c.run_by_id, c.is_system, c.created_at).where(c.id.in_(job_ids))
        ).all()
    user = current_user()
    return {row.id: row for row in rows if state.permissions.can_view(user, row)}


class SchedulesView(_JobViewBase):
    """Recurring jobs: when each runs next, how its last run went, and a switch to pause it."""

    def is_accessible(self) -> bool:
        return get_state().permissions.can_view_schedules(current_user())

    @expose("/")
    def index(self) -> Any:
        state = get_state()
        seen = overview(state)
        last_jobs = _last_jobs(state, {view.last_job_id for view in seen.schedules if view.last_job_id})
        return self._render(
            "jobmonitor/schedules.html",
            overview=seen,
            last_jobs=last_jobs,
            can_switch=state.permissions.can_manage_schedules(current_user()),
        )

    @expose("/switch", methods=["POST"])
    def switch(self) -> Response:
        """Switch the schedule named by the form's ``name`` on (``enabled=1``) or off (``0``)."""
        require_csrf()
        state = get_state()
        if not state.permissions.can_manage_schedules(current_user()):
            abort(403, description=gettext("You may not switch schedules on or off."))
        names, switches = request.form.getlist("name"), request.form.getlist("enabled")
        if len(switches) != 1 or switches[0] not in ("0", "1"):
            abort(400, description=gettext("%(name)s must be 0 or 1.", name="enabled"))
        if len(names) != 1:
            abort(400, description=gettext("Send the name of one schedule."))
        name, enabled = names[0], switches[0]
        try:
            changed = set_enabled(state, name, enabled == "1", current_user())
        except UnknownSchedule:  # a 400 with words: the 404 page speaks of jobs
            abort(400, description=gettext("There is no schedule called %(name)s.", name=repr(name[:100])))
        if enabled == "1":
            message = gettext("Schedule “%(name)s” is on: it runs at its next time.", name=name)
        else:
            message = gettext("Schedule “%(name)s” is off: its runs are skipped until it is switched on.", name=name)
        flash(message if changed else gettext("Nothing changed: %(message)s", message=message), "success")
        return redirect(url_for(".index"))
