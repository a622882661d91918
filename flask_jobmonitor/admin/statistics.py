"""The statistics page (charts, tables, CSV) and the queue health page, for people holding
``jobmonitor.view_statistics``."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from flask import Response, request
from flask_admin import expose

from ..charts import PALETTE, Series, bar_chart, line_chart
from ..extension import get_state
from ..listing import InvalidFilter
from ..stats import compute, format_duration, parse_range, queue_health
from ..timeutil import utcnow
from ..web import current_user
from .views import _JobViewBase


class _StatisticsBase(_JobViewBase):
    def is_accessible(self) -> bool:
        return get_state().permissions.can_view_statistics(current_user())


class StatisticsView(_StatisticsBase):
    """Jobs created, waits, durations, failures and stops per hour or day, by type."""

    @expose("/")
    def index(self) -> Any:
        state = get_state()
        try:
            stats_range = parse_range(request.args, utcnow())
        except InvalidFilter as invalid:
            return self._render(
                "jobmonitor/statistics.html",
                status=400,
                error=str(invalid),
                stats=None,
                charts={},
                types=sorted({t.type for t in state.tasks}),
                args=request.args,
            )
        with state.engine.connect() as connection:
            stats = compute(connection, stats_range, cache=state.settings.stats_cache)
        if request.args.get("format") == "csv":
            last_day = stats_range.end - timedelta(microseconds=1)  # the range's end is exclusive
            return _csv(stats.csv_rows(), f"job-statistics-{stats_range.start:%Y%m%d}-{last_day:%Y%m%d}.csv")
        fmt = "%m-%d %Hh" if stats_range.granularity == "hour" else "%m-%d"
        labels = [b.start.strftime(fmt) for b in stats.buckets]
        charts = {
            "created": bar_chart(
                "Jobs created",
                labels,
                [
                    Series(
                        "completed or running", [b.created - b.failed - b.stopped for b in stats.buckets], PALETTE[0]
                    ),
                    Series("failed", [b.failed for b in stats.buckets], PALETTE[1]),
                    Series("stopped", [b.stopped for b in stats.buckets], PALETTE[2]),
                ],
            ),
            "waiting": line_chart(
                "Waiting time before a worker started the job",
                labels,
                [
                    Series("average", [b.wait_avg for b in stats.buckets], PALETTE[0]),
                    Series("minimum", [b.wait_min for b in stats.buckets], PALETTE[3]),
                    Series("maximum", [b.wait_max for b in stats.buckets], PALETTE[1]),
                ],
                fmt=format_duration,
            ),
            "duration": line_chart(
                "Duration",
                labels,
                [
                    Series("average", [b.duration_avg for b in stats.buckets], PALETTE[0]),
                    Series("95th percentile", [b.duration_p95 for b in stats.buckets], PALETTE[4]),
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
            args=request.args,
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
            "Jobs finished per minute, last hour",
            [m.strftime("%H:%M") for m, _ in health.per_minute],
            [Series("jobs", [n for _, n in health.per_minute], PALETTE[3])],
        )
        return self._render("jobmonitor/queues.html", health=health, chart=chart, now=now)


def _csv(rows: list[list[Any]], filename: str) -> Response:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response
