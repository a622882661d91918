"""The statistics page's tables and charts write durations alike (``stats.format_duration``):
short waits read "0.2s" in the table as on the chart, not "0s"; a chart axis never repeats a label."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from flask_jobmonitor.stats.charts import Series, bar_chart, line_chart
from flask_jobmonitor.stats.figures import format_duration

from ..support.rows import add_job
from ..support.web import at

_TICK = re.compile(r'<text x="[\d.]+" y="[\d.]+" text-anchor="end" font-size="11" fill="#6c757d">([^<]*)</text>')


def _chart(body: str, title: str) -> str:
    start = body.index(f"<title>{title}</title>")
    return body[start : body.index("</svg>", start)]


def _ticks(svg: str) -> list[str]:
    return [html.unescape(tick) for tick in _TICK.findall(svg)]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0s"),
        (0.04, "0.04s"),
        (0.18, "0.2s"),
        (0.25, "0.2s"),
        (4.5, "4.5s"),
        (5.0, "5s"),
        (35, "35s"),
        (120, "2m 00s"),
        (3725, "1h 02m 05s"),
    ],
)
def test_format_duration_keeps_tenths_under_ten_seconds(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("top", [0.1, 0.25, 0.4, 1, 2.5, 7, 33, 100, 250, 4000])
def test_axis_ticks_never_repeat_a_label(top):
    for chart in (
        line_chart("waits", ["a", "b"], [Series("x", [top / 3, top])], fmt=format_duration),
        line_chart("plain", ["a", "b"], [Series("x", [top / 3, top])], unit="s"),
        bar_chart("bars", ["a", "b"], [Series("x", [top / 3, top])]),
    ):
        ticks = _ticks(str(chart))
        assert len(ticks) == 5 and len(set(ticks)) == 5, ticks


def test_short_waits_read_the_same_in_the_table_and_on_the_chart(client_for, engine):
    for n, wait in enumerate((0.1, 0.15, 0.25)):
        created = at(60 * n)
        add_job(
            engine,
            status="completed",
            created_at=created,
            started_at=created + timedelta(seconds=wait),
            ended_at=created + timedelta(seconds=wait + 1.5),
        )
    response = client_for("admin").get("/admin/job-statistics/?from=2026-03-02&to=2026-03-02")
    assert response.status_code == 200
    body = html.unescape(response.get_data(as_text=True))

    table = re.search(r"<td>2026-03-02</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", body)
    assert table, "the waiting-time table has a row for the day"
    average, minimum, maximum = table.groups()
    assert (average, minimum, maximum) != ("0s", "0s", "0s")
    chart = _chart(body, "Waiting time before a worker started the job")
    for name, text in (("average", average), ("minimum", minimum), ("maximum", maximum)):
        assert f"03-02 · {name}: {text}</title>" in chart, (name, text)
    assert minimum == "0.1s"
    ticks = _ticks(chart)
    assert len(set(ticks)) == len(ticks) == 5, ticks
    assert ticks[0] == "0s" and all(tick.endswith("s") for tick in ticks)
    duration_chart = _chart(body, "Duration")
    assert "03-02 · average: 1.5s</title>" in duration_chart
