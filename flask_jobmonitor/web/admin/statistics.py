"""The statistics page (charts, tables, CSV) and the queue health page, for people holding
``jobmonitor.view_statistics``. The queue health page also pauses and resumes all jobs for
people holding ``jobmonitor.pause_all`` as well (pause_all.py), and shows the pause to everyone."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_admin import expose
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict

from ... import csvsafe
from ...errors import InvalidFilter, PauseAllUnavailable
from ...i18n import gettext
from ...jobs import pause_all
from ...state import get_state
from ...stats.charts import PALETTE, Series, bar_chart, line_chart
from ...stats.figures import RANGE_PARAMS, compute, format_duration, parse_range, queue_health
from ...timeutil import to_local, utcnow
from ..presenters import iso, local_time
from ..requests import current_user, request_zone, require_csrf
from ..templating import gettext_markup
from .views import _back, _JobViewBase


class _StatisticsBase(_JobViewBase):
    def is_accessible(self) -> bool:
        return get_state().permissions.can_view_statistics(current_user())


class StatisticsView(_StatisticsBase):
    """Jobs created, waits, durations, failures and stops per hour or day, by type."""

    @expose("/")
    def index(self) -> Any:
        state = get_state()
        try:
            stats_range = parse_range(request.args, utcnow(), request_zone())
        except InvalidFilter as invalid:
            return self._render(
                "jobmonitor/statistics.html",
                status=400,
                error=str(invalid),
                stats=None,
                charts={},
                types=sorted({t.type for t in state.tasks}),
                args=_range_args(),
            )
        with state.engine.connect() as connection:
            stats = compute(connection, stats_range, cache=state.settings.stats_cache)
        if request.args.get("format") == "csv":
            first, last = stats_range.first_day, stats_range.last_day
            return _csv(stats.csv_rows(), f"job-statistics-{first:%Y%m%d}-{last:%Y%m%d}.csv")
        # local bucket starts; an hour clocks repeat shows its two offsets' abbreviations
        fmt = "%m-%d %Hh" if stats_range.granularity == "hour" else "%m-%d"
        labels = [stats.local_start(b).strftime(fmt) for b in stats.buckets]
        charts = {
            "created": bar_chart(
                gettext("Jobs created"),
                labels,
                [
                    Series(
                        gettext("completed or running"),
                        [b.created - b.failed - b.stopped for b in stats.buckets],
                        PALETTE[0],
                    ),
                    Series(gettext("failed"), [b.failed for b in stats.buckets], PALETTE[1]),
                    Series(gettext("stopped"), [b.stopped for b in stats.buckets], PALETTE[2]),
                ],
            ),
            "waiting": line_chart(
                gettext("Waiting time before a worker started the job"),
                labels,
                [
                    Series(gettext("average"), [b.wait_avg for b in stats.buckets], PALETTE[0]),
                    Series(gettext("minimum"), [b.wait_min for b in stats.buckets], PALETTE[3]),
                    Series(gettext("maximum"), [b.wait_max for b in stats.buckets], PALETTE[1]),
                ],
                fmt=format_duration,
            ),
            "duration": line_chart(
                gettext("Duration"),
                labels,
                [
                    Series(gettext("average"), [b.duration_avg for b in stats.buckets], PALETTE[0]),
                    Series(gettext("95th percentile"), [b.duration_p95 for b in stats.buckets], PALETTE[4]),
                ],
                fmt=format_duration,
            ),
        }
        return self._render(
            "jobmonitor/statistics.html",
            stats=stats,
            charts=charts,
            duration=format_duration,
            error=None,
            types=sorted({t.type for t in state.tasks} | ({stats_range.type} - {""})),
            args=_range_args(),
        )


class QueueHealthView(_StatisticsBase):
    """Queued jobs per queue, oldest wait, workers online and busy, jobs per minute, warnings."""

    @expose("/")
    def index(self) -> Any:
        state = get_state()
        now = utcnow()
        with state.engine.connect() as connection:
            health = queue_health(
                connection,
                state.redis,
                state.settings.queues_in_priority_order,
                now,
                state.settings.wait_warning_seconds,
            )
        chart = bar_chart(
            gettext("Jobs finished per minute, last hour"),
            [to_local(m, request_zone()).strftime("%H:%M") for m, _ in health.per_minute],
            [Series(gettext("jobs"), [n for _, n in health.per_minute], PALETTE[3])],
        )
        paused = pause_all.current(state)
        running = pause_all.progress(state) if paused else None
        return self._render(
            "jobmonitor/queues.html",
            health=health,
            chart=chart,
            now=now,
            may_pause_all=state.permissions.can_pause_all(current_user()),
            paused=paused,
            running=running,
            running_summary=_summary_html(running) if running else "",
        )

    @expose("/pause", methods=["POST"])
    def pause(self) -> Any:
        """Pause all jobs for maintenance (does not wait: the page then shows what still runs)."""
        user = self._may_pause_all()
        try:
            running = pause_all.pause_all(get_state(), user)
        except PauseAllUnavailable as error:
            flash(str(error), "error")
        else:
            flash(
                gettext_markup(
                    "Jobs are paused: workers take no new job; %(summary)s.", summary=_summary_html(running)
                ),
                "success",
            )
        return redirect(_back(url_for(".index")))

    @expose("/resume", methods=["POST"])
    def resume(self) -> Any:
        """Resume all jobs: workers take jobs again, the jobs the pause paused continue."""
        user = self._may_pause_all()
        try:
            report = pause_all.resume_all(get_state(), user)
        except PauseAllUnavailable as error:
            flash(str(error), "error")
        else:
            flash(report.message, "success" if report.was_paused else "info")
        return redirect(_back(url_for(".index")))

    def _may_pause_all(self) -> Any:
        """The CSRF token and the permission, checked here on the server; returns the user."""
        require_csrf()
        user = current_user()
        if not get_state().permissions.can_pause_all(user):
            abort(403, description=gettext("You may not pause or resume all jobs."))
        return user


def _range_args() -> MultiDict[str, str]:
    """The range's parameters only, for the page's form and its CSV link: other parameters of
    the request are not carried into ``url_for`` (``?format=x&endpoint=y`` would clash)."""
    return MultiDict([(name, request.args[name]) for name in RANGE_PARAMS if name in request.args])


def _summary_html(running: pause_all.Progress) -> Markup:
    """ "2 running: 1 pausing, ..." with its time in the viewer's zone (counts, fixed words and
    times only: no text of a job or a person)."""
    return Markup(running.summary(_time_html))


def _time_html(value: Any) -> Markup:
    """A time in the viewer's zone, the instant in ``data-utc``."""
    return Markup(f'<time data-utc="{escape(iso(value))}">{escape(local_time(value, "%H:%M"))}</time>')


def _csv(rows: list[list[Any]], filename: str) -> Response:
    out = io.StringIO()
    csv.writer(out).writerows(csvsafe.row(row) for row in rows)
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response
