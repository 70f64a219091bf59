"""Charts drawn on the server as SVG: no JavaScript, no library, nothing fetched from outside.

The Content-Security-Policy forbids inline scripts and `style` attributes; SVG presentation
attributes (fill, stroke, font-size…) are not styles, so the drawings carry their colours
themselves and look the same printed. Every chart sits beside a table with its numbers: the
drawing is for the eye, the table (and its CSV) is the record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

PALETTE = ("#1d4e89", "#b54708", "#027a48", "#b42318", "#6941c6", "#0e7490")
INK = "#1f2933"
MUTED = "#52606d"
GRID = "#d9e2ec"

Number = int | float | Decimal | None


def _fmt(value: Number, percent: bool) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{Decimal(value):.1f}%"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value}"


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above `value` (at least 1), for a round axis."""
    if value <= 1:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return candidate
    return 10 ** (exponent + 1)  # pragma: no cover - the loop ends at 10 × 10ⁿ


def _svg(width: int, height: int, title: str, body: list[str]) -> SafeString:
    t = escape(title)
    return mark_safe(  # noqa: S308 - every text put into the drawing went through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{t}" class="chart-svg">'
        f"<title>{t}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11,
          fill: str = INK) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{fill}">{escape(text)}</text>'
    )


def _empty(width: int, height: int, title: str) -> SafeString:
    return _svg(width, height, title, [_text(width / 2, height / 2, _("No data"), anchor="middle",
                                              fill=MUTED)])


def bar_chart(labels: Sequence[str], values: Sequence[Number], *, title: str,
              percent: bool = False) -> SafeString:
    """Horizontal bars, one per row, with the value written after each bar."""
    label_w, bar_w, value_w, row_h, pad = 150, 280, 70, 22, 8
    width = label_w + bar_w + value_w
    height = max(1, len(labels)) * row_h + 2 * pad
    numbers = [float(v) for v in values if v is not None]
    if not labels or not numbers or (not percent and max(numbers) == 0):
        return _empty(width, max(height, 60), title)
    top = 100.0 if percent else nice_max(max(numbers))
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = pad + i * row_h
        short = label if len(label) <= 12 else label[:11] + "…"
        body.append(_text(label_w - 6, y + 15, short, anchor="end"))
        length = 0.0 if value is None else bar_w * float(value) / top
        if length > 0:
            body.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" '
                f'fill="{PALETTE[0]}"><title>{escape(label)}: {_fmt(value, percent)}</title></rect>'
            )
        body.append(_text(label_w + length + 4, y + 15, _fmt(value, percent), fill=MUTED))
    return _svg(width, height, title, body)


def line_chart(x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[Number]]], *,
               title: str, percent: bool = False, top: float | None = None) -> SafeString:
    """One line per series over the months; a missing value (None) breaks the line. The axis
    runs to `top` if given, to 100 for percentages, else to a round number above the data."""
    width, height = 560, 280
    left, right, top_pad, plot_h = 52, 30, 12, 180
    plot_w = width - left - right
    numbers = [float(v) for _name, values in series for v in values if v is not None]
    if not x_labels or not numbers or (not (percent or top) and max(numbers) == 0):
        return _empty(width, height, title)
    top = float(top) if top else (100.0 if percent else nice_max(max(numbers)))
    n = len(x_labels)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(v: float) -> float:
        return top_pad + plot_h - plot_h * v / top

    body = []
    for k in range(5):
        tick = top * k / 4
        body.append(
            f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" y2="{y(tick):.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        label = f"{tick:.0f}%" if percent else (f"{tick:,.0f}" if tick == int(tick) else f"{tick:g}")
        body.append(_text(left - 6, y(tick) + 4, label, anchor="end", size=10, fill=MUTED))
    every = max(1, math.ceil(n / 12))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            body.append(_text(x(i), top_pad + plot_h + 16, label, anchor="middle", size=10,
                              fill=MUTED))
    for s, (name, values) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        segment: list[str] = []
        segments = [segment]
        for i, value in enumerate(values):
            if value is None:
                segment = []
                segments.append(segment)
                continue
            segment.append(f"{x(i):.1f},{y(float(value)):.1f}")
            body.append(
                f'<circle cx="{x(i):.1f}" cy="{y(float(value)):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(name)} {escape(x_labels[i])}: {_fmt(value, percent)}</title></circle>"
            )
        for points in segments:
            if len(points) > 1:
                body.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"/>'
                )
        lx = left + (s % 4) * 126
        ly = top_pad + plot_h + 40 + (s // 4) * 18
        body.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="10" fill="{colour}"/>')
        body.append(_text(lx + 16, ly, name if len(name) <= 14 else name[:13] + "…", size=11))
    return _svg(width, height, title, body)


def draw(table) -> SafeString:
    """The chart of a dashboard.Table (or anything with the same attributes)."""
    if table.chart == "bar":
        column = table.chart_columns[0]
        return bar_chart(table.labels, table.series(column), title=table.title,
                         percent=table.percent_scale)
    return line_chart(
        table.labels,
        [(str(table.columns[c]), table.series(c)) for c in table.chart_columns],
        title=table.title,
        percent=table.percent_scale,
    )
