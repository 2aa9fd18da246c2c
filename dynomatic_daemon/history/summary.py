"""Numbers the views share: chart series with gaps, dyno-hours and cost per day, biggest waits."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from dynomatic_daemon import prices
from dynomatic_daemon.charts import Point
from dynomatic_daemon.history.rows import Sample

MIN_GAP_SECONDS = 180.0


@dataclass(frozen=True)
class DayUsage:
    day: date
    process_type: str
    dyno_hours: float
    cost_usd: float | None  # None: the dyno size has no known price
    size: str | None
    peak_dynos: int


@dataclass(frozen=True)
class Saving:
    process_type: str
    hours: float  # the time history covers
    dyno_hours: float
    peak_dynos: int
    cost_usd: float | None
    peak_cost_usd: float | None  # had the peak run all the time


def gap_after(samples: Sequence[Sample]) -> float:
    """A pause between two rows longer than this is a gap in the chart (the daemon was down)."""
    steps = [(b.minute - a.minute).total_seconds() for a, b in itertools.pairwise(samples)]
    return max(MIN_GAP_SECONDS, 3 * statistics.median(steps)) if steps else MIN_GAP_SECONDS


def series(
    samples: Sequence[Sample], value: Callable[[Sample], float | None], origin: datetime
) -> list[Point]:
    """(minutes since ``origin``, value) per row, small numbers a chart's attributes keep
    exactly; a gap point where the daemon recorded nothing."""
    points: list[Point] = []
    limit = gap_after(samples)

    def x(at: datetime) -> float:
        return (at - origin).total_seconds() / 60

    for prev, cur in zip([None, *samples], samples, strict=False):
        if prev is not None and (cur.minute - prev.minute).total_seconds() > limit:
            points.append((x(prev.minute) + 1, None))
        y = value(cur)
        points.append((x(cur.minute), None if y is None else float(y)))
    return points


def usage_by_day(
    samples: Sequence[Sample], overrides: Mapping[str, float] | None = None
) -> list[DayUsage]:
    seconds: dict[tuple[date, str], float] = defaultdict(float)
    sizes: dict[tuple[date, str], str | None] = {}
    peaks: dict[tuple[date, str], int] = defaultdict(int)
    for s in samples:
        key = (s.minute.date(), s.process_type)
        seconds[key] += s.dyno_seconds
        sizes[key] = s.size or sizes.get(key)
        peaks[key] = max(peaks[key], s.dynos_max or 0)
    out = []
    for (day, ptype), secs in sorted(seconds.items()):
        hours = secs / 3600
        price = prices.hourly_usd(sizes[(day, ptype)], overrides)
        cost = None if price is None else hours * price
        out.append(DayUsage(day, ptype, hours, cost, sizes[(day, ptype)], peaks[(day, ptype)]))
    return out


def savings(
    samples: Sequence[Sample], overrides: Mapping[str, float] | None = None
) -> list[Saving]:
    by_type: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_type[s.process_type].append(s)
    out = []
    for ptype, rows in sorted(by_type.items()):
        hours = len(rows) / 60  # one row per minute recorded
        dyno_hours = sum(r.dyno_seconds for r in rows) / 3600
        peak = max((r.dynos_max or 0 for r in rows), default=0)
        size = next((r.size for r in reversed(rows) if r.size), None)
        price = prices.hourly_usd(size, overrides)
        cost = None if price is None else dyno_hours * price
        peak_cost = None if price is None else peak * hours * price
        out.append(Saving(ptype, hours, dyno_hours, peak, cost, peak_cost))
    return out


def biggest_waits(samples: Sequence[Sample], count: int = 10) -> list[Sample]:
    waited = [s for s in samples if s.latency_max is not None and s.latency_max > 0]
    return sorted(waited, key=lambda s: (-(s.latency_max or 0), s.minute))[:count]
