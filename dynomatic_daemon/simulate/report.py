"""What ``dynomatic simulate`` prints: a table, the day in sparklines, or one JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dynomatic_daemon.charts import text_chart
from dynomatic_daemon.simulate.compare import Entry, Options
from dynomatic_daemon.simulate.trace import Trace

COLUMNS = (
    ("policy", None),
    ("dyno-h", "dyno_hours"),
    ("cost $", "cost_usd"),
    ("wait p50 s", "wait_p50"),
    ("p95 s", "wait_p95"),
    ("p99 s", "wait_p99"),
    ("max backlog", "max_backlog"),
    ("writes", "formation_writes"),
    ("cold starts", "cold_starts"),
    ("busy downs", "busy_scale_downs"),
    ("killed", "jobs_killed"),
    ("lost h", "work_lost_hours"),
)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}"


def rows(entries: Sequence[Entry]) -> list[list[str]]:
    return [
        [e.label, *(cell(getattr(e.metrics, key)) for _, key in COLUMNS[1:] if key)]
        for e in entries
    ]


def text(trace: Trace, entries: Sequence[Entry], options: Options, size: str) -> str:
    price = (
        "unknown"
        if options.hourly_usd is None
        else f"${options.hourly_usd:.4f}/h, ${options.hourly_usd * 24:.2f}/day"
    )
    head = [
        f"{trace.name}: {len(trace):,} jobs over {trace.duration / 3600:g} h "
        f"from {trace.start:%Y-%m-%d %H:%M %Z}; dyno size {size} ({price}); seed {options.seed}",
        "",
    ]
    per_day = [
        f"  {e.label}: ${cost:,.2f}"
        for e in entries
        if (cost := cost_per_day(e, trace)) is not None
    ]
    table = [[h for h, _ in COLUMNS], *rows(entries)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    ]
    chart = text_chart([(e.label, [float(d) for d in e.timeline.dynos]) for e in entries], width=60)
    daily = ["", "cost per day at the replay's pace:", *per_day] if per_day else []
    return "\n".join([*head, *lines, *daily, "", "dynos over the replay:", *chart])


def cost_per_day(entry: Entry, trace: Trace) -> float | None:
    """The replay's cost scaled to 24 hours (a budget's max_dyno_hours_per_day is per day)."""
    cost = entry.metrics.cost_usd
    if cost is None or trace.duration <= 0:
        return None
    return cost * 86_400.0 / trace.duration


def document(trace: Trace, entries: Sequence[Entry], options: Options, size: str) -> dict[str, Any]:
    return {
        "trace": {
            "name": trace.name,
            "jobs": len(trace),
            "duration_seconds": trace.duration,
            "start": trace.start.isoformat(),
        },
        "model": {
            "seed": options.seed,
            "boot_seconds": options.boot_seconds,
            "worker_slots": options.worker_slots,
            "interval_seconds": options.interval,
            "grace_seconds": options.grace_seconds,
            "dyno_size": size,
            "hourly_usd": options.hourly_usd,
            "daily_usd": None if options.hourly_usd is None else options.hourly_usd * 24,
        },
        "results": [
            {
                "policy": e.label,
                "source": e.source,
                "process_type": e.process_type,
                "metrics": e.metrics.as_json(),
                "cost_per_day_usd": _rounded(cost_per_day(e, trace)),
            }
            for e in entries
        ],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
