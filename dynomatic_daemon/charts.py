"""Charts without dependencies: inline SVG for HTML pages, block characters for terminals.

Used by every view of numbers over time (``simulate``, ``report``, the status page, ``history``).
An SVG chart is one self-contained ``<svg>`` element with no scripts and no external assets. Each
series is drawn as one ``<path>`` that also carries the numbers it draws in ``data-series`` and
``data-points`` attributes (``x,y;x,y``; a gap is ``x,``), so a test, or a person with the browser's
inspector, can read exactly what was charted.

Long series are thinned to ``max_points`` per series by keeping each bucket's lowest and highest
value in time order, so a short spike survives where an average would hide it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

Point = tuple[float, float | None]  # (x, y); y None is a gap (no data)
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
BLOCKS = " ▁▂▃▄▅▆▇█"
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52.0, 52.0, 28.0, 30.0


@dataclass(frozen=True)
class Series:
    """One line on a chart. ``step``: hold each value until the next point (dyno counts)."""

    name: str
    points: Sequence[Point]
    step: bool = False
    axis: Literal["left", "right"] = "left"
    color: str | None = None


def thin(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most about ``max_points`` points, keeping each bucket's extremes and every gap."""
    if len(points) <= max_points or max_points < 4:
        return list(points)
    size = math.ceil(len(points) / (max_points // 2))
    kept: list[Point] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        valued = [p for p in bucket if p[1] is not None]
        if len(valued) < len(bucket):  # a gap in the bucket stays a gap
            kept.extend(p for p in bucket if p[1] is None)
        if valued:
            low = min(valued, key=lambda p: (p[1], p[0]))
            high = max(valued, key=lambda p: (p[1], -p[0]))
            kept.extend(sorted({low, high}, key=lambda p: p[0]))
    return sorted(kept, key=lambda p: p[0])


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value`` (an axis top a reader likes)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= value)


def svg_chart(
    series: Sequence[Series],
    *,
    title: str,
    width: int = 760,
    height: int = 220,
    left_label: str = "",
    right_label: str = "",
    x_format: Callable[[float], str] = lambda x: f"{x:g}",
    max_points: int = 600,
) -> str:
    """One chart as an ``<svg>`` element; every series shares the x axis."""
    drawn = [(s, thin(s.points, max_points)) for s in series]
    xs = [p[0] for _, pts in drawn for p in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x1 = x1 if x1 > x0 else x0 + 1.0
    tops = {axis: _axis_top(drawn, axis) for axis in ("left", "right")}
    plot_w = width - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = height - MARGIN_TOP - MARGIN_BOTTOM

    def sx(x: float) -> float:
        return MARGIN_LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float, axis: str) -> float:
        return MARGIN_TOP + plot_h - y / tops[axis] * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(title)}" '
        'font-family="system-ui, sans-serif" font-size="11">',
        f'<text x="{MARGIN_LEFT}" y="16" font-size="13" font-weight="600">{_e(title)}</text>',
        *_grid(
            tops,
            plot_w=plot_w,
            plot_h=plot_h,
            left_label=left_label,
            right_label=right_label,
            series=series,
        ),
        *_x_ticks(x0, x1, sx, height, x_format),
    ]
    for i, (s, pts) in enumerate(drawn):
        color = s.color or PALETTE[i % len(PALETTE)]
        path = _path(pts, s.step, sx, partial(sy, axis=s.axis))
        data = ";".join(f"{x:g},{'' if y is None else f'{y:g}'}" for x, y in pts)
        parts.append(
            f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6" '
            f'data-series="{_e(s.name)}" data-axis="{s.axis}" data-points="{data}"/>'
        )
    parts.append(_legend(drawn, width))
    parts.append("</svg>")
    return "\n".join(parts)


def _axis_top(drawn: Sequence[tuple[Series, list[Point]]], axis: str) -> float:
    values = [y for s, pts in drawn if s.axis == axis for _, y in pts if y is not None]
    return nice_ceiling(max(values, default=1.0))


def _grid(
    tops: dict[str, float],
    *,
    plot_w: float,
    plot_h: float,
    left_label: str,
    right_label: str,
    series: Sequence[Series],
) -> list[str]:
    out = []
    right_used = any(s.axis == "right" for s in series)
    for k in range(5):
        y = MARGIN_TOP + plot_h - k / 4 * plot_h
        out.append(
            f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e5e7eb"/>'
        )
        out.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#374151">'
            f"{_num(tops['left'] * k / 4)}</text>"
        )
        if right_used:
            out.append(
                f'<text x="{MARGIN_LEFT + plot_w + 6}" y="{y + 4:.1f}" fill="#374151">'
                f"{_num(tops['right'] * k / 4)}</text>"
            )
    if left_label:
        out.append(f'<text x="4" y="{MARGIN_TOP - 8}" fill="#374151">{_e(left_label)}</text>')
    if right_label and right_used:
        out.append(
            f'<text x="{MARGIN_LEFT + plot_w + 48}" y="{MARGIN_TOP - 8}" text-anchor="end" '
            f'fill="#374151">{_e(right_label)}</text>'
        )
    return out


def _x_ticks(
    x0: float, x1: float, sx: Callable[[float], float], height: int, fmt: Callable[[float], str]
) -> list[str]:
    out = []
    for k in range(6):
        x = x0 + (x1 - x0) * k / 5
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"
        out.append(
            f'<text x="{sx(x):.1f}" y="{height - 10}" text-anchor="{anchor}" fill="#374151">'
            f"{_e(fmt(x))}</text>"
        )
    return out


def _path(
    pts: Sequence[Point], step: bool, sx: Callable[[float], float], sy: Callable[[float], float]
) -> str:
    commands: list[str] = []
    pen_down = False
    for x, y in pts:
        if y is None:
            pen_down = False
            continue
        if not pen_down:
            commands.append(f"M{sx(x):.1f},{sy(y):.1f}")
        elif step:
            commands.append(f"H{sx(x):.1f}V{sy(y):.1f}")
        else:
            commands.append(f"L{sx(x):.1f},{sy(y):.1f}")
        pen_down = True
    return " ".join(commands) or "M0,0"


def _legend(drawn: Sequence[tuple[Series, list[Point]]], width: int) -> str:
    items, x = [], float(width - MARGIN_RIGHT)
    for i, (s, _) in reversed(list(enumerate(drawn))):
        color = s.color or PALETTE[i % len(PALETTE)]
        label = s.name + (" (right)" if s.axis == "right" else "")
        x -= 14 + 6.2 * len(label)
        items.append(
            f'<rect x="{x:.1f}" y="8" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 13:.1f}" y="17" fill="#111827">{_e(label)}</text>'
        )
    return "".join(items)


def sparkline(values: Sequence[float | None], width: int = 60) -> str:
    """One line of block characters; each cell shows the highest value of its slice."""
    if not values:
        return ""
    cells = _bucket_max(values, width)
    top = max((v for v in cells if v is not None), default=0.0)
    out = []
    for v in cells:
        if v is None:
            out.append("·")
        elif top <= 0:
            out.append(BLOCKS[1] if v == 0 else BLOCKS[-1])
        else:
            out.append(BLOCKS[max(1, math.ceil(v / top * (len(BLOCKS) - 1)))])
    return "".join(out)


def text_chart(rows: Sequence[tuple[str, Sequence[float | None]]], width: int = 60) -> list[str]:
    """A labelled sparkline per series with its peak: a terminal chart in a few lines."""
    label_w = max((len(name) for name, _ in rows), default=0)
    lines = []
    for name, values in rows:
        peak = max((v for v in values if v is not None), default=None)
        peak_text = "-" if peak is None else _num(peak)
        lines.append(f"{name.ljust(label_w)} {sparkline(values, width)} peak {peak_text}")
    return lines


def _bucket_max(values: Sequence[float | None], width: int) -> list[float | None]:
    if len(values) <= width:
        return list(values)
    out: list[float | None] = []
    for i in range(width):
        chunk = values[i * len(values) // width : (i + 1) * len(values) // width]
        present = [v for v in chunk if v is not None]
        out.append(max(present) if present else None)
    return out


def _num(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
