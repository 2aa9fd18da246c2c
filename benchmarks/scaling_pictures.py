"""The pictures of docs/scaling.md: excerpts of the benchmark's replays, as SVG in docs/img/.

Redrawn by ``python -m benchmarks.simulate`` (``make bench``) from the same replays as its tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from dynomatic_daemon.charts import Series, svg_chart
from dynomatic_daemon.simulate.records import Timeline

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
HOUR = 3600.0


class HasTimelines(Protocol):
    timelines: dict[str, Timeline]


def clock(seconds: float) -> str:
    return f"{int(seconds // HOUR) % 24:02d}:{int(seconds % HOUR // 60):02d}"


def excerpt(line: Timeline, field: str, start: float, end: float) -> list[tuple[float, Any]]:
    values = getattr(line, field)
    return [(t, v) for t, v in zip(line.t, values, strict=True) if start <= t <= end]


def picture(
    name: str, title: str, day: HasTimelines, window: tuple[float, float], extra: Sequence[str]
) -> None:
    """Dynos of both policies as steps (left axis) and ``extra`` fields (right axis)."""
    series = [
        Series(
            f"{label} dynos",
            excerpt(day.timelines[label], "dynos", *window),
            step=True,
            color=color,
        )
        for label, color in (("v0.1", "#dc2626"), ("new", "#2563eb"))
    ]
    for field in extra:
        for label, color in (("v0.1", "#fca5a5"), ("new", "#93c5fd")):
            points = excerpt(day.timelines[label], field, *window)
            series.append(Series(f"{label} {field}", points, axis="right", color=color))
    right = {"ready": "ready jobs", "running": "running jobs"}.get(extra[0], "") if extra else ""
    svg = svg_chart(
        series, title=title, left_label="dynos", right_label=right, x_format=clock, width=860
    )
    IMG.mkdir(parents=True, exist_ok=True)
    (IMG / f"scaling-{name}.svg").write_text(svg + "\n", encoding="utf-8")


def busiest(line: Timeline) -> float:
    return line.t[max(range(len(line.ready)), key=line.ready.__getitem__)]


def draw(days: Mapping[str, HasTimelines], latency: Mapping[str, HasTimelines]) -> None:
    picture(
        "steady",
        "steady, 10:00-11:00",
        days["steady"],
        (10 * HOUR, 11 * HOUR),
        ["ready"],
    )
    peak = busiest(days["bursty"].timelines["v0.1"])
    picture(
        "bursty",
        "bursty: the largest burst",
        days["bursty"],
        (peak - 1200, peak + 2400),
        ["ready"],
    )
    picture(
        "hourly-cron",
        "hourly-cron, 00:55-03:05",
        days["hourly-cron"],
        (0.92 * HOUR, 3.08 * HOUR),
        ["ready"],
    )
    picture(
        "heavy-tailed",
        "heavy-tailed, 14:00-16:00",
        days["heavy-tailed"],
        (14 * HOUR, 16 * HOUR),
        ["running"],
    )
    picture("day-night", "day-night, 24 hours", days["day-night"], (0, 24 * HOUR), [])
    picture(
        "latency",
        "30 s latency rule, bursty 03:00-04:00",
        latency["bursty"],
        (3 * HOUR, 4 * HOUR),
        ["ready"],
    )
