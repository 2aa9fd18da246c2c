"""A self-contained HTML page: the summary table and the day as charts, inline SVG only."""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import partial

from dynomatic_daemon.charts import Series, svg_chart
from dynomatic_daemon.simulate.compare import Entry
from dynomatic_daemon.simulate.report import COLUMNS, rows
from dynomatic_daemon.simulate.trace import Trace

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#111827}"
    "table{border-collapse:collapse;font-size:13px}"
    "td,th{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:right}"
    "td:first-child,th:first-child{text-align:left}"
)


def hours(x: float) -> str:
    return f"{x / 3600:.0f}h"


def charts(entries: Sequence[Entry], *, width: int = 900) -> list[str]:
    """Three charts over the same time axis: dynos, ready jobs, and the oldest job's wait."""

    def lines(field: str, step: bool) -> list[Series]:
        return [
            Series(
                e.label, list(zip(e.timeline.t, getattr(e.timeline, field), strict=True)), step=step
            )
            for e in entries
        ]

    draw = partial(svg_chart, width=width, x_format=hours)
    return [
        draw(lines("dynos", True), title="Dynos in the formation", left_label="dynos"),
        draw(lines("ready", False), title="Backlog: ready jobs", left_label="jobs"),
        draw(lines("oldest_age", False), title="Wait: age of the oldest ready job", left_label="s"),
    ]


def page(trace: Trace, entries: Sequence[Entry], summary: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in rows(entries)
    )
    title = f"dynomatic simulate: {trace.name}"
    return "\n".join(
        [
            "<!doctype html>",
            f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
            f"<style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{html.escape(summary)}</p>",
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
            *(f"<div>{svg}</div>" for svg in charts(entries)),
            "</body></html>",
        ]
    )
