"""One self-contained HTML document of a history window: ``dynomatic report`` and the status page.

No scripts, no external assets: inline CSS and inline SVG charts (``charts.svg_chart``, whose
paths carry the numbers they draw). Per process type: backlog and latency against dynos over
time; then dyno-hours and their cost per day, what running the peak all the time would have
cost, the biggest waits, and the events with their reasons.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from dynomatic_daemon.charts import Series, svg_chart
from dynomatic_daemon.history import summary
from dynomatic_daemon.history.queries import Window
from dynomatic_daemon.history.rows import Sample

MAX_POINTS = 1500  # per series: a day of minutes is drawn whole, longer windows are thinned
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#111827;max-width:1100px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563;margin:0 0 16px}table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f9fafb}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:8px 0}.empty{color:#6b7280;font-style:italic}
.kind-refused,.kind-api_error,.kind-stalled,.kind-read_failed,.kind-fallback{color:#b91c1c}
"""


def e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _per_hour(cost: float | None, hours: float) -> str:
    """What the type cost per hour recorded, to the cent's hundredth (a dyno is cents an hour)."""
    return "-" if cost is None or not hours else f"${cost / hours:,.4f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def charts(process_type: str, rows: Sequence[Sample], origin: datetime) -> str:
    """x is minutes since ``origin`` (the figure's ``data-origin``), shown as UTC times."""

    def axis_time(x: float) -> str:
        return (origin + timedelta(minutes=x)).astimezone(UTC).strftime("%m-%d %H:%M")

    dynos_points = summary.series(rows, lambda s: s.dynos_max, origin)
    dynos = Series("dynos", dynos_points, step=True, axis="right")
    out = []
    for key, name, label, value in (
        ("backlog", "jobs", "ready", lambda s: s.ready_max),
        ("latency", "s", "latency", lambda s: s.latency_max),
    ):
        chart = svg_chart(
            [Series(label, summary.series(rows, value, origin)), dynos],
            title=f"{process_type}: {key} against dynos (UTC)"
            + (": oldest ready job, seconds" if key == "latency" else ": ready jobs"),
            left_label=name,
            right_label="dynos",
            x_format=axis_time,
            max_points=MAX_POINTS,
        )
        out.append(
            f'<figure data-type="{e(process_type)}" data-chart="{key}" '
            f'data-origin="{origin.isoformat()}">{chart}</figure>'
        )
    return "".join(out)


def usage(window: Window, overrides: Mapping[str, float] | None) -> str:
    days = summary.usage_by_day(window.samples, overrides)
    rows = [
        [e(d.day), e(d.process_type), e(d.size or "?"), str(d.peak_dynos), f"{d.dyno_hours:.2f}",
         _money(d.cost_usd)]
        for d in days
    ]  # fmt: skip
    saved = [
        [e(s.process_type), f"{s.hours:.1f}", f"{s.dyno_hours:.2f}", _money(s.cost_usd),
         _per_hour(s.cost_usd, s.hours),
         str(s.peak_dynos), f"{s.peak_dynos * s.hours:.2f}", _money(s.peak_cost_usd)]
        for s in summary.savings(window.samples, overrides)
    ]  # fmt: skip
    return (
        "<h2>Dyno-hours and cost per day</h2>"
        + table(["day (UTC)", "type", "size", "peak dynos", "dyno-hours", "cost"], rows, {3, 4, 5})
        + "<h2>Against running the peak all the time</h2>"
        + table(
            [
                "type",
                "hours recorded",
                "dyno-hours",
                "cost",
                "cost per hour",
                "peak",
                "peak x hours",
                "cost at peak",
            ],
            saved,
            {1, 2, 3, 4, 5, 6, 7},
        )
    )


def waits(window: Window) -> str:
    rows = [
        [e(when(s.minute)), e(s.process_type), f"{s.latency_max:.1f}", e(s.ready_max),
         e(s.dynos_max), e(s.desired_max)]
        for s in summary.biggest_waits(window.samples)
    ]  # fmt: skip
    headers = ["minute (UTC)", "type", "oldest wait, s", "ready", "dynos", "desired"]
    return "<h2>Biggest waits</h2>" + table(headers, rows, {2, 3, 4, 5})


def _dynos(current: int | None, desired: int | None) -> str:
    return "" if current is None and desired is None else f"{e(current)} &rarr; {e(desired)}"


def event_list(window: Window) -> str:
    rows = [
        [e(ev.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")), e(ev.process_type or ""),
         f'<span class="kind-{e(ev.kind)}">{e(ev.kind)}</span>',
         _dynos(ev.current, ev.desired),
         e(ev.reason)]
        for ev in reversed(window.events)
    ]  # fmt: skip
    more = " (the newest shown; more in this window)" if window.events_truncated else ""
    heading = f"<h2>Events, newest first: {len(rows)}{more}</h2>"
    return heading + table(["time (UTC)", "type", "kind", "dynos", "reason"], rows, set())


def render(
    window: Window,
    *,
    title: str,
    live: str = "",
    refresh_seconds: int | None = None,
    overrides: Mapping[str, float] | None = None,
) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request
        refresh,
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">app {e(window.app)}, {e(when(window.since))} to '
        f"{e(when(window.until))} UTC</p>",
        live,
    ]
    types = window.types()
    origin = window.since.replace(second=0, microsecond=0)  # whole minutes: exact x values
    if not types:
        parts.append('<p class="empty">Nothing recorded in this window.</p>')
    for ptype in types:
        parts.append(f"<h2>{e(ptype)}</h2>{charts(ptype, window.of(ptype), origin)}")
    parts += [usage(window, overrides), waits(window), event_list(window), "</body></html>"]
    return "\n".join(parts)
