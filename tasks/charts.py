"""Server-made SVG charts for the quality page (Django-free: plain data in, an SVG string out).

Every chart has a title, a legend (when it has more than one series), axes with ticks and labels,
and a ``<title>`` on each bar or point, so hovering shows the exact figure. All text is escaped
here (names of domains, agents, reasons and queues come from users or synthesis), and the SVG uses
presentation attributes only (``fill=``, ``stroke=``): no ``style`` attribute, no script, so it
passes a ``'self'``-only Content-Security-Policy inline in a page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from typing import Callable, Sequence

# Okabe–Ito: told apart by people with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D1F", "#666666")
GOOD, MIDDLE, BAD, NEUTRAL = "#009E73", "#E69F00", "#D55E00", "#0072B2"

WIDTH = 640
MAX_COUNT_LABELS = 40  # a line chart writes each bucket's n under its axis up to this many buckets (beyond: tooltips)
FEW_ITEMS = 5  # a rate from fewer items is drawn as a hollow point
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
TEXT, MUTED, GRID, AXIS = "#1d2330", "#5b6375", "#e3e6ee", "#9aa1b2"


@dataclass(frozen=True)
class Series:
    """One named row of values, one per category (``None``: no value there, e.g. nothing was made).
    ``counts``: for a rate, how many items each value is a share of (its n); a line chart shows it
    beside each point, so a 100% made of one decision does not read like a 100% made of fifty."""

    name: str
    values: Sequence[float | None]
    color: str | None = None
    counts: Sequence[int | float | None] | None = None


@dataclass
class _Frame:
    """Where the plot area sits inside the SVG."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    parts: list[str] = field(default_factory=list)

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom


def _text(x: float, y: float, body: str, *, size: int = 12, anchor: str = "start", fill: str = TEXT,
          weight: str = "normal", transform: str = "") -> str:
    extra = f' transform="{escape(transform)}"' if transform else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}"{extra}>{escape(body)}</text>')


def _fmt_number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value * 100 == round(value * 100) else f"{value * 100:.1f}%"


def nice_ticks(top: float, count: int = 5, whole: bool = True) -> list[float]:
    """Round tick values from 0 to at least ``top`` (steps of 1, 2, 2.5 or 5 times a power of ten;
    ``whole``: counts, so no step below 1)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    # Counts get whole-number steps: 2.5 only from 25 up, and nothing below 1.
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw and (not whole or m * power >= 25 or m != 2.5))
    if whole and step < 1 and top >= 1:
        step = 1.0
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _start(ident: str, title: str, subtitle: str, width: int, height: int) -> list[str]:
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-labelledby="{escape(ident)}-title" '
            f'font-family="{escape(FONT)}">',
            f'<title id="{escape(ident)}-title">{escape(title)}</title>',
            '<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>',
            _text(12, 22, title, size=15, weight="600")]
    if subtitle:
        head.append(_text(12, 40, subtitle, size=12, fill=MUTED))
    return head


def _legend(series: Sequence[Series], colors: list[str], x: float, y: float, max_width: float) -> tuple[list[str], float]:
    """Coloured squares with the series' names, wrapped to ``max_width``; returns the parts and
    the height used."""
    parts: list[str] = []
    cx, cy = x, y
    for s, color in zip(series, colors):
        label = s.name if len(s.name) <= 40 else s.name[:39] + "…"
        width = 18 + 7.2 * len(label) + 16
        if cx + width > x + max_width and cx > x:
            cx, cy = x, cy + 18
        parts.append(f'<rect x="{cx:.1f}" y="{cy - 10:.1f}" width="11" height="11" rx="2" fill="{color}"/>')
        parts.append(_text(cx + 16, cy, label, size=12))
        cx += width
    return parts, (cy - y) + 18


def _colors(series: Sequence[Series]) -> list[str]:
    return [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]


def _label_every(count: int, room: float, per_label: float = 64.0) -> int:
    return max(1, math.ceil(count * per_label / room)) if room > 0 else 1


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _empty(frame: _Frame, message: str) -> None:
    frame.parts.append(_text(frame.left + frame.plot_width / 2, frame.top + frame.plot_height / 2, message,
                             size=13, anchor="middle", fill=MUTED))


def _y_axis(frame: _Frame, ticks: list[float], fmt: Callable[[float], str], label: str) -> None:
    top = ticks[-1] or 1.0
    for tick in ticks:
        y = frame.top + frame.plot_height - tick / top * frame.plot_height
        frame.parts.append(f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.left + frame.plot_width}" y2="{y:.1f}" '
                           f'stroke="{GRID}" stroke-width="1"/>')
        frame.parts.append(_text(frame.left - 6, y + 4, fmt(tick), size=11, anchor="end", fill=MUTED))
    frame.parts.append(f'<line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" '
                       f'y2="{frame.top + frame.plot_height}" stroke="{AXIS}" stroke-width="1"/>')
    if label:
        cy = frame.top + frame.plot_height / 2
        frame.parts.append(_text(14, cy, label, size=12, anchor="middle", fill=MUTED, transform=f"rotate(-90 14 {cy:.1f})"))


def _x_axis(frame: _Frame, categories: Sequence[str], label: str, label_gap: int = 0) -> None:
    base = frame.top + frame.plot_height
    frame.parts.append(f'<line x1="{frame.left}" y1="{base}" x2="{frame.left + frame.plot_width}" y2="{base}" '
                       f'stroke="{AXIS}" stroke-width="1"/>')
    n = len(categories)
    if not n:
        return
    slot = frame.plot_width / n
    every = _label_every(n, frame.plot_width)
    limit = max(6, int(slot * every / 7))
    for i, category in enumerate(categories):
        if i % every:
            continue
        x = frame.left + slot * (i + 0.5)
        frame.parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="{AXIS}"/>')
        frame.parts.append(_text(x, base + 17, _short(category, limit), size=11, anchor="middle", fill=MUTED))
    if label:
        frame.parts.append(_text(frame.left + frame.plot_width / 2, base + 36 + label_gap, label, size=12,
                                 anchor="middle", fill=MUTED))


def _frame_with_legend(ident: str, title: str, subtitle: str, series: Sequence[Series], colors: list[str],
                       height: int, width: int, *, left: int = 64, show_legend: bool = True) -> _Frame:
    parts = _start(ident, title, subtitle, width, height)
    top = 52 if subtitle else 36
    if show_legend and len(series) > 1:
        legend, used = _legend(series, colors, 12, top + 6, width - 24)
        parts.extend(legend)
        top += int(used) + 4
    return _Frame(width=width, height=height, left=left, right=16, top=top + 12, bottom=48, parts=parts)


def _finish(frame: _Frame) -> str:
    return "".join(frame.parts) + "</svg>"


def bar_chart(*, ident: str, title: str, categories: Sequence[str], series: Sequence[Series], subtitle: str = "",
              stacked: bool = False, y_label: str = "", x_label: str = "", value_format: Callable[[float], str] = _fmt_number,
              y_max: float | None = None, height: int = 320, width: int = WIDTH, empty: str = "Nothing in this range") -> str:
    """Vertical bars, one group (or stack) per category."""
    colors = _colors(series)
    frame = _frame_with_legend(ident, title, subtitle, series, colors, height, width)
    values = [[v for v in s.values] for s in series]
    if stacked:
        totals = [sum(v or 0 for v in column) for column in zip(*values)] if values else []
        top = max(totals, default=0)
    else:
        top = max((v or 0 for row in values for v in row), default=0)
    has_data = bool(categories) and any(v is not None and v != 0 for row in values for v in row)
    ticks = nice_ticks(y_max if y_max is not None else top, whole=value_format is not percent)
    _y_axis(frame, ticks, value_format, y_label)
    _x_axis(frame, categories, x_label)
    if not has_data:
        _empty(frame, empty)
        return _finish(frame)
    scale = frame.plot_height / (ticks[-1] or 1)
    slot = frame.plot_width / len(categories)
    group = min(slot * 0.72, 26.0 * (1 if stacked else len(series)) + 8)
    bar = group if stacked else group / max(1, len(series))
    base = frame.top + frame.plot_height
    labelled = bar >= 22  # room for a figure above each bar (or each stack)
    for i, category in enumerate(categories):
        x0 = frame.left + slot * (i + 0.5) - group / 2
        stack = 0.0
        total = 0.0
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else None
            if value is None:
                continue
            h = value * scale
            if stacked:
                x, y = x0, base - stack - h
                stack += h
                total += value
            else:
                x, y = x0 + j * bar, base - h
                if labelled and (value or value_format is percent):  # a zero count is just a gap; a 0% rate is news
                    frame.parts.append(_text(x + bar / 2, y - 4, value_format(value), size=10, anchor="middle",
                                             fill=MUTED))
            if value == 0:
                continue
            tip = f"{s.name} · {category}: {value_format(value)}"
            frame.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" height="{max(h, 0.5):.1f}" '
                               f'fill="{colors[j]}"><title>{escape(tip)}</title></rect>')
        if stacked and labelled and total:
            frame.parts.append(_text(x0 + bar / 2, base - stack - 4, value_format(total), size=10, anchor="middle",
                                     fill=MUTED))
    return _finish(frame)


def line_chart(*, ident: str, title: str, categories: Sequence[str], series: Sequence[Series], subtitle: str = "",
               y_label: str = "", x_label: str = "", value_format: Callable[[float], str] = _fmt_number,
               y_max: float | None = None, height: int = 320, width: int = WIDTH,
               empty: str = "Nothing in this range") -> str:
    """Lines over categories, broken where a value is None; every point is a dot with its figure
    (and its n, when the series has counts) in a ``<title>``."""
    colors = _colors(series)
    frame = _frame_with_legend(ident, title, subtitle, series, colors, height, width)
    # The n of each bucket (from the first series that has counts) goes in a row under the
    # category labels, once per bucket even when several series share it.
    counted = next((list(s.counts) for s in series if s.counts is not None), None)
    n_row = counted is not None and len(categories) <= MAX_COUNT_LABELS
    if n_row:
        frame.bottom += 14
    top = max((v for s in series for v in s.values if v is not None), default=0)
    ticks = nice_ticks(y_max if y_max is not None else top, whole=value_format is not percent)
    _y_axis(frame, ticks, value_format, y_label)
    _x_axis(frame, categories, x_label, label_gap=14 if n_row else 0)
    if n_row:
        slot = frame.plot_width / max(1, len(categories))
        every = _label_every(len(categories), frame.plot_width)
        for i, n in enumerate(counted[: len(categories)]):
            if n is not None and not i % every:
                frame.parts.append(_text(frame.left + slot * (i + 0.5), frame.top + frame.plot_height + 30,
                                         f"n={_fmt_number(n)}", size=10, anchor="middle", fill=MUTED))
    if not categories or all(v is None for s in series for v in s.values):
        _empty(frame, empty)
        return _finish(frame)
    scale = frame.plot_height / (ticks[-1] or 1)
    slot = frame.plot_width / len(categories)
    base = frame.top + frame.plot_height
    hollow = False
    for j, s in enumerate(series):
        counts = list(s.counts or [])
        # A bucket without a value (nothing decided or made then) breaks the line: joining its
        # neighbours would draw a trend through days that have no data.
        runs: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values[: len(categories)]):
            if v is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((frame.left + slot * (i + 0.5), base - v * scale))
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                frame.parts.append(f'<polyline points="{path}" fill="none" stroke="{colors[j]}" stroke-width="2.2" '
                                   f'stroke-linejoin="round"/>')
        for i, v in enumerate(s.values[: len(categories)]):
            if v is None:
                continue
            x, y = frame.left + slot * (i + 0.5), base - v * scale
            n = counts[i] if i < len(counts) else None
            tip = f"{s.name} · {categories[i]}: {value_format(v)}" + (f" (n = {_fmt_number(n)})" if n is not None else "")
            # A rate from few items is drawn hollow: it can only be 0%, 50% or 100%, and says little.
            few = n is not None and n < FEW_ITEMS
            hollow = hollow or few
            fill = "#ffffff" if few else colors[j]
            frame.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.6" fill="{fill}" stroke="{colors[j] if few else "#ffffff"}" '
                               f'stroke-width="{1.6 if few else 1}"><title>{escape(tip)}</title></circle>')
    if hollow:
        frame.parts.append(_text(width - 12, 22, f"hollow point: fewer than {FEW_ITEMS} items", size=11, anchor="end",
                                 fill=MUTED))
    return _finish(frame)


def hbar_chart(*, ident: str, title: str, labels: Sequence[str], series: Sequence[Series], subtitle: str = "",
               x_label: str = "", value_format: Callable[[float], str] = _fmt_number, width: int = WIDTH,
               row_height: int = 24, empty: str = "Nothing in this range", max_rows: int = 20) -> str:
    """Horizontal bars, one row per label (stacked when there are several series), the total at the
    end of each row. Rows beyond ``max_rows`` are summed into "other"."""
    labels = list(labels)
    values = [list(s.values) for s in series]
    if not any(v for row in values for v in row):
        frame = _Frame(width=width, height=120 + (18 if subtitle else 0), left=16, right=16,
                       top=(52 if subtitle else 36) + 8, bottom=16,
                       parts=_start(ident, title, subtitle, width, 120 + (18 if subtitle else 0)))
        _empty(frame, empty)
        return _finish(frame)
    if len(labels) > max_rows:
        keep = max_rows - 1
        labels = labels[:keep] + [f"{len(labels) - keep} other"]
        values = [row[:keep] + [sum(v or 0 for v in row[keep:])] for row in values]
    series = [Series(s.name, v, s.color) for s, v in zip(series, values)]
    colors = _colors(series)
    rows = max(1, len(labels))
    longest = max((len(_short(label, 30)) for label in labels), default=8)
    left = int(min(230, max(90, 7 * longest + 16)))
    legend_rows = 1 if len(series) > 1 else 0
    height = (52 if subtitle else 36) + legend_rows * 22 + 12 + rows * row_height + 48
    frame = _frame_with_legend(ident, title, subtitle, series, colors, height, width, left=left)
    totals = [sum((row[i] or 0) for row in values) for i in range(len(labels))]
    ticks = nice_ticks(max(totals, default=0))
    top = ticks[-1] or 1
    base = frame.top + frame.plot_height
    for tick in ticks:
        x = frame.left + tick / top * (frame.plot_width - 48)
        frame.parts.append(f'<line x1="{x:.1f}" y1="{frame.top}" x2="{x:.1f}" y2="{base}" stroke="{GRID}"/>')
        frame.parts.append(_text(x, base + 16, value_format(tick), size=11, anchor="middle", fill=MUTED))
    frame.parts.append(f'<line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" y2="{base}" stroke="{AXIS}"/>')
    if x_label:
        frame.parts.append(_text(frame.left + (frame.plot_width - 48) / 2, base + 36, x_label, size=12,
                                 anchor="middle", fill=MUTED))
    if not labels or not any(totals):
        _empty(frame, empty)
        return _finish(frame)
    scale = (frame.plot_width - 48) / top
    for i, label in enumerate(labels):
        y = frame.top + i * row_height + 4
        frame.parts.append(_text(frame.left - 8, y + row_height / 2 + 1, _short(label, 30), size=12, anchor="end"))
        x = float(frame.left)
        for j, s in enumerate(series):
            value = s.values[i] or 0
            if not value:
                continue
            w = value * scale
            tip = f"{label} · {s.name}: {value_format(value)}" if len(series) > 1 else f"{label}: {value_format(value)}"
            frame.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{row_height - 8}" '
                               f'fill="{colors[j]}"><title>{escape(tip)}</title></rect>')
            x += w
        frame.parts.append(_text(x + 6, y + row_height / 2 + 1, value_format(totals[i]), size=11, fill=MUTED))
    return _finish(frame)
