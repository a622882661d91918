"""Small server-side SVG charts: readable at a glance, no JavaScript library, nothing from a CDN.

Each chart is an ``<svg>`` with a ``<title>`` and the figures in ``<title>`` tooltips of its bars
and points; the page prints the same figures in a table under it. A chart given ``fmt`` (e.g.
``stats.format_duration``) writes its tooltips and axis with it, so they read as the table does;
axis ticks get as many decimals as their step needs, so no two read alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 14, 34
PALETTE = ("#007bff", "#dc3545", "#ffc107", "#28a745", "#6f42c1", "#17a2b8", "#fd7e14", "#6c757d")


#: Writes a value: ``fmt(value, decimals)``; decimals None for a figure, a count for axis ticks.
Formatter = Callable[[float, int | None], str]


@dataclass(frozen=True)
class Series:
    """One named line or bar series; ``None`` values are gaps."""

    name: str
    values: Sequence[float | None]
    colour: str = PALETTE[0]


def _nice_max(value: float) -> float:
    """The top of the y axis: four equal steps of 1, 2, 2.5 or 5 times a power of ten, so the
    gridline labels are round numbers (0, 1, 2, 3, 4 rather than 0, 1.2, 2.5, 3.8, 5)."""
    if value <= 0:
        return 4.0
    magnitude = 10 ** math.floor(math.log10(value / 4))
    for step in (1, 2, 2.5, 5, 10):
        if 4 * step * magnitude >= value:
            return 4 * step * magnitude
    return 40 * magnitude


def _tick_decimals(step: float) -> int:
    """The fewest decimals that write ``step`` (and so every multiple of it) exactly."""
    for places in range(7):
        if abs(round(step, places) - step) <= 1e-9 * max(1.0, step):
            return places
    return 6


def _number(unit: str) -> Formatter:
    def write(value: float, decimals: int | None) -> str:
        return (_format(value) if decimals is None else f"{value:.{decimals}f}") + unit

    return write


def _frame(title: str, labels: Sequence[str], top: float, fmt: Formatter) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="jm-chart" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#dee2e6"/>',
    ]
    places = _tick_decimals(top / 4)
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#6c757d">'
            f"{escape(fmt(value, places))}</text>"
        )
    every = max(1, len(labels) // 10)
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = LEFT + plot_w * (i + 0.5) / max(1, len(labels))
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 12}" text-anchor="middle" font-size="11" fill="#6c757d">'
            f"{escape(label)}</text>"
        )
    return parts


def _format(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], LEFT
    for s in series:
        parts.append(f'<rect x="{x}" y="2" width="10" height="10" fill="{s.colour}"/>')
        parts.append(f'<text x="{x + 14}" y="11" font-size="11" fill="#343a40">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return parts


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "", fmt: Formatter | None = None
) -> Markup:
    """Stacked bars, one column per label; values written by ``fmt`` (default: numbers + ``unit``)."""
    fmt = fmt or _number(unit)
    totals = [sum(v or 0 for v in column) for column in zip(*(s.values for s in series), strict=True)] or [0]
    top = _nice_max(max(totals))
    if all(float(total).is_integer() for total in totals):
        top = max(top, 4.0)  # counts: whole-number gridlines
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    parts = _frame(title, labels, top, fmt)
    for i, label in enumerate(labels):
        base = 0.0
        for s in series:
            value = s.values[i] or 0
            if not value:
                continue
            h = plot_h * value / top
            y = TOP + plot_h - plot_h * (base + value) / top
            parts.append(
                f'<rect x="{LEFT + i * slot + slot * 0.15:.1f}" y="{y:.1f}" width="{max(1.0, slot * 0.7):.1f}" '
                f'height="{h:.1f}" fill="{s.colour}"><title>{escape(label)} · {escape(s.name)}: '
                f"{escape(fmt(value, None))}</title></rect>"
            )
            base += value
    parts.extend(_legend(series))
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "", fmt: Formatter | None = None
) -> Markup:
    """Lines with a dot per known value; gaps where a value is missing; values written by ``fmt``
    (default: numbers + ``unit``)."""
    fmt = fmt or _number(unit)
    known = [v for s in series for v in s.values if v is not None]
    top = _nice_max(max(known) if known else 0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = _frame(title, labels, top, fmt)
    for s in series:
        points: list[str] = []
        for i, value in enumerate(s.values):
            if value is None:
                if len(points) > 1:
                    parts.append(
                        f'<polyline fill="none" stroke="{s.colour}" stroke-width="2" points="{" ".join(points)}"/>'
                    )
                points = []
                continue
            x = LEFT + plot_w * (i + 0.5) / max(1, len(labels))
            y = TOP + plot_h - plot_h * value / top
            points.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{s.colour}"><title>{escape(labels[i])} · '
                f"{escape(s.name)}: {escape(fmt(value, None))}</title></circle>"
            )
        parts.append(_polyline(points, s.colour))
    parts.extend(_legend(series))
    parts.append("</svg>")
    return Markup("".join(parts))


def _polyline(points: Sequence[str], colour: str) -> str:
    if len(points) < 2:
        return ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>'
