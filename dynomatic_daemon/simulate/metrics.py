"""The numbers a replay reports, per controller: cost, waits, churn and harm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dynomatic_daemon.simulate.records import Run


@dataclass(frozen=True)
class Metrics:
    name: str
    jobs: int
    dyno_hours: float
    cost_usd: float | None  # None when the dyno size has no known price
    wait_p50: float
    wait_p95: float
    wait_p99: float
    max_backlog: int
    formation_writes: int
    cold_starts: int  # up from 0 dynos within 60 s of reaching 0
    wakes: int  # every up from 0 dynos
    flaps: int  # an up within 5 minutes of a down
    busy_scale_downs: int  # scale-downs that sent SIGTERM to a dyno running jobs
    jobs_killed: int
    work_lost_hours: float
    unfinished: int  # jobs that never started within the replay

    def as_json(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, interpolating between neighbours."""
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(run: Run, hourly_usd: float | None, name: str | None = None) -> Metrics:
    waits = sorted(run.waits)
    hours = run.dyno_seconds / 3600.0
    return Metrics(
        name=name or run.controller,
        jobs=len(run.waits),
        dyno_hours=hours,
        cost_usd=None if hourly_usd is None else hours * hourly_usd,
        wait_p50=percentile(waits, 50),
        wait_p95=percentile(waits, 95),
        wait_p99=percentile(waits, 99),
        max_backlog=run.max_backlog,
        formation_writes=run.writes,
        cold_starts=run.cold_starts,
        wakes=run.wakes,
        flaps=run.flaps,
        busy_scale_downs=run.busy_scale_downs,
        jobs_killed=run.killed,
        work_lost_hours=run.work_lost_seconds / 3600.0,
        unfinished=run.unfinished,
    )
