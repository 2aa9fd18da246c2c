"""``dynomatic history`` output: terminal charts per process type and a table of events, or JSON."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from typing import Any

from dynomatic_daemon.charts import text_chart
from dynomatic_daemon.history.queries import Window

CHART_WIDTH = 60
REASON_WIDTH = 90


def lines(window: Window) -> list[str]:
    out = [
        f"dynomatic history: app {window.app}, {window.since:%Y-%m-%d %H:%M} to "
        f"{window.until:%Y-%m-%d %H:%M} UTC"
    ]
    if not window.samples:
        out.append("  nothing recorded in this window")
    for ptype in window.types():
        rows = window.of(ptype)
        out.append(f"\n{ptype} ({len(rows)} minutes recorded)")
        chart = text_chart(
            [
                ("backlog", [r.ready_max for r in rows]),
                ("latency s", [r.latency_max for r in rows]),
                ("dynos", [r.dynos_max for r in rows]),
            ],
            CHART_WIDTH,
        )
        out += [f"  {line}" for line in chart]
    out.append(
        f"\nevents ({len(window.events)}{', more not shown' if window.events_truncated else ''})"
    )
    if window.events:
        out.append(f"  {'time (UTC)':<19}  {'type':<12} {'kind':<15} {'dynos':<8} reason")
    for ev in window.events:
        dynos = "" if ev.current is None and ev.desired is None else f"{ev.current}->{ev.desired}"
        reason = (
            ev.reason if len(ev.reason) <= REASON_WIDTH else ev.reason[: REASON_WIDTH - 1] + "…"
        )
        out.append(
            f"  {ev.at.astimezone(UTC):%Y-%m-%d %H:%M:%S}  {ev.process_type or '-':<12} "
            f"{ev.kind:<15} {dynos:<8} {reason}"
        )
    return out


def as_json(window: Window) -> dict[str, Any]:
    def row(obj: Any) -> dict[str, Any]:
        data = dataclasses.asdict(obj)
        return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in data.items()}

    return {
        "app": window.app,
        "since": window.since.isoformat(),
        "until": window.until.isoformat(),
        "samples": [row(s) for s in window.samples],
        "events": [row(ev) for ev in window.events],
        "events_truncated": window.events_truncated,
    }
