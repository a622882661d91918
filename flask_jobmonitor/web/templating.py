"""Helpers the templates use, including the two a host puts on its own pages:
``{{ jobmonitor_widget() }}`` (the "My jobs" box) and ``{{ jobmonitor_notifications() }}``
(the navbar bell with its toasts)."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, render_template, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from .. import i18n
from ..jobs.control import allowed_actions
from ..jobs.pause_all import PauseState
from ..jobs.pause_all import current as current_pause
from ..links import shown_run_at_link
from ..records.models import Job, job_table
from ..records.status import ACTIVE_STATUSES
from ..state import get_state
from ..timeutil import utcnow
from .details import level_name, time_left_text
from .listing import GROUP_LABELS, family_progress
from .presenters import (
    ACTION_LOOKS,
    STATUS_LOOKS,
    ago,
    family_percent,
    is_active,
    is_moving,
    iso,
    local_time,
    look,
    overall_percent,
    short_time,
    step_look,
    timing,
)
from .requests import current_user

WIDGET_RECENT = 5


def gettext_markup(text: str, **variables: Any) -> Markup:
    """``_jm`` of the templates: :func:`i18n.gettext` as safe markup. The translation is text
    (escaped); each variable is escaped unless it is markup itself (a macro's output), as the
    autoescaping of Jinja's own i18n extension does."""
    translated = escape(i18n.translate(text))
    return i18n.fill(translated, escape(text), variables) if variables else translated


def ngettext_markup(singular: str, plural: str, num: int, **variables: Any) -> Markup:
    """``_jmn`` of the templates: :func:`i18n.ngettext` as :func:`gettext_markup` does it."""
    variables.setdefault("num", i18n.format_number(num))
    source = escape(singular if num == 1 else plural)
    return i18n.fill(escape(i18n.translate_plural(singular, plural, num)), source, variables)


#: The most new jobs the list's bar counts one by one ("50 or more new jobs" beyond).
NEW_JOBS_COUNTED = 50


def script_texts() -> dict[str, Any]:
    """The words the page script writes itself, in the request's language, for the JSON block
    of ``jobmonitor/_script.html``. Counted texts come as one text per count (the bar of new
    jobs counts up to ``NEW_JOBS_COUNTED``), so every language's plural forms are right without
    plural rules in the script. Relative times ("2 min. ago") come from the browser's
    Intl.RelativeTimeFormat in ``lang``, the same CLDR words as the server's. Made once per
    language of an app (the same for every page: a few milliseconds saved on each)."""
    return _script_texts_of(current_app.extensions.get(i18n.I18N_KEY), i18n.locale_name())


@functools.lru_cache(maxsize=64)
def _script_texts_of(catalogues: Any, language: str) -> dict[str, Any]:
    """:func:`script_texts` for one app's catalogues (its i18n domain) and one language."""
    new_jobs = [""] + [
        i18n.ngettext("%(num)s new job: show it", "%(num)s new jobs: show them", count)
        for count in range(1, NEW_JOBS_COUNTED)
    ]
    new_jobs.append(i18n.gettext("%(count)s or more new jobs: show them", count=NEW_JOBS_COUNTED))
    return {
        "lang": language,
        "justNow": i18n.gettext("just now"),
        "updated": i18n.translate("updated %(time)s"),
        "refreshFailed": i18n.gettext("refresh failed, retrying"),
        "pauseAuto": i18n.gettext("Pause auto-refresh"),
        "resumeAuto": i18n.gettext("Resume auto-refresh"),
        "close": i18n.gettext("Close"),
        "noNotifications": i18n.gettext("No new notifications."),
        "allChildren": i18n.gettext("All the child jobs"),
        "jobEnded": i18n.translate("%(name)s: %(status)s"),
        "noSuchUser": i18n.translate("No user called “%(name)s” has run a job: choose one from the list."),
        "newJobs": new_jobs,
    }


def script_first_time() -> bool:
    """True the first time a template of this request asks: the page script and its words go
    into a page once, whether the widget, the bell or both are on it."""
    if g.get("_jobmonitor_script"):
        return False
    g._jobmonitor_script = True
    return True


def format_seconds(seconds: float | None) -> str:
    """``3725`` -> ``1h 02m 05s``; None -> an em dash."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def my_jobs(limit: int = WIDGET_RECENT) -> tuple[list[Job], list[Job]]:
    """The current user's running jobs and most recent finished ones."""
    state = get_state()
    user = current_user()
    user_id = state.permissions.user_id(user) if state.permissions.can_access(user) else None
    if user_id is None:
        return [], []
    c = job_table.c
    active = [s.value for s in ACTIVE_STATUSES]
    with Session(state.engine) as session:
        running = list(
            session.execute(
                sa.select(Job)
                .where(c.run_by_id == user_id, c.status.in_(active))
                .order_by(c.created_at.desc())
                .limit(20)
            ).scalars()
        )
        recent = list(
            session.execute(
                sa.select(Job)
                .where(c.run_by_id == user_id, c.status.not_in(active))
                .order_by(c.created_at.desc())
                .limit(limit)
            ).scalars()
        )
        session.expunge_all()
    return running, recent


def jobmonitor_widget(limit: int = WIDGET_RECENT) -> Markup:
    """The "My jobs" box (running and recent jobs, live) for a host's admin index page. A parent's
    bar counts its children in, as in the list and in the live refresh (``/api/jobs``)."""
    running, recent = my_jobs(limit)
    families: dict[str, Any] = {}
    if running:
        with get_state().engine.connect() as connection:
            families = dict(family_progress(connection, [job.id for job in running]))
    return Markup(render_template("jobmonitor/_widget.html", running=running, recent=recent, families=families))


def jobmonitor_notifications() -> Markup:
    """The navbar bell (unread count) and the toasts for ended jobs, for any page of the host.

    Once per page: a host's own layout may put the bell in its menu bar for every page while
    the job pages add it too; the first call renders it, the others nothing."""
    state = get_state()
    if g.get("_jobmonitor_bell_rendered") or not state.permissions.can_access(current_user()):
        return Markup("")
    g._jobmonitor_bell_rendered = True
    return Markup(render_template("jobmonitor/_notifications.html"))


def pause_state() -> PauseState | None:
    """Whether jobs are paused for maintenance, for the banner of the job pages."""
    return current_pause(get_state())


def _actions_for_current_user(job: Job, active_children: int | None = None) -> list[str]:
    return allowed_actions(get_state(), job, current_user(), active_children)


def job_url(job_id: str) -> str | None:
    """The detail page of a job, or None when the app has no Flask-Admin job pages."""
    try:
        return url_for("jobmonitor_jobs.detail", job_id=job_id)
    except BuildError:
        return None


def run_at_link_of(job: Job) -> str | None:
    """The job's "page where it was run" if a page may link to it (``links.shown_run_at_link``):
    rows stored before links were checked may hold a ``javascript:`` or another site's URL."""
    return shown_run_at_link(job.run_at_url, get_state().settings.run_at_hosts)


def register_template_helpers(app: Flask) -> None:
    """Make the helpers available in every template of ``app``."""

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        return {
            "jobmonitor_widget": jobmonitor_widget,
            "jobmonitor_notifications": jobmonitor_notifications,
            "jobmonitor_csrf_token": generate_csrf,
            "jobmonitor_look": look,
            "jobmonitor_step_look": step_look,
            "jobmonitor_status_looks": STATUS_LOOKS,
            "jobmonitor_percent": overall_percent,
            "jobmonitor_family_percent": family_percent,
            "jobmonitor_is_active": is_active,
            "jobmonitor_time_left": time_left_text,
            "jobmonitor_is_moving": is_moving,
            "jobmonitor_ago": ago,
            "jobmonitor_iso": iso,
            "jobmonitor_local_time": local_time,
            "jobmonitor_short_time": short_time,
            "jobmonitor_timing": timing,
            "jobmonitor_now": utcnow,
            "jobmonitor_settings": get_state(app).settings,
            "jobmonitor_actions": _actions_for_current_user,
            "jobmonitor_action_looks": ACTION_LOOKS,
            "jobmonitor_job_url": job_url,
            "jobmonitor_pause_state": pause_state,
            "jobmonitor_run_at_link": run_at_link_of,
            "jobmonitor_lang": i18n.locale_name,
            "jobmonitor_script_texts": script_texts,
            "jobmonitor_script_first_time": script_first_time,
            "jobmonitor_group_label": lambda group: i18n.gettext(GROUP_LABELS[group]),
            "jobmonitor_number": i18n.format_number,
            "jobmonitor_file_size": i18n.format_file_size,
            "jobmonitor_level_name": level_name,
            "_jm": gettext_markup,
            "_jmn": ngettext_markup,
        }

    app.add_template_filter(format_seconds, "jm_seconds")
    app.add_template_filter(i18n.gettext, "jm_gettext")
