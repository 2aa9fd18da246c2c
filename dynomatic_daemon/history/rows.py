"""The rows history keeps, and the per-minute rollup of ticks into them (pure, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dynomatic_daemon.events import Event, Observation


@dataclass(frozen=True, slots=True)
class Sample:
    """One process type over one minute."""

    app: str
    minute: datetime
    process_type: str
    ticks: int
    ready_max: int | None  # None: no read succeeded in this minute
    ready_capped: bool
    latency_max: float | None
    running_max: int | None
    dynos_max: int | None
    desired_max: int | None
    dyno_seconds: float  # dynos x seconds they ran, as the ticks saw them
    errors: int
    size: str | None

    def key(self) -> tuple[str, datetime, str]:
        return (self.app, self.minute, self.process_type)


@dataclass(frozen=True, slots=True)
class Batch:
    samples: tuple[Sample, ...] = ()
    events: tuple[Event, ...] = ()

    def __len__(self) -> int:
        return len(self.samples) + len(self.events)


def _peak(old: Any, new: Any) -> Any:
    if old is None:
        return new
    return old if new is None else max(old, new)


def merge(a: Sample, b: Sample) -> Sample:
    """Two rows of the same key as one (a restart within a minute writes the minute twice)."""
    return Sample(
        a.app,
        a.minute,
        a.process_type,
        a.ticks + b.ticks,
        _peak(a.ready_max, b.ready_max),
        a.ready_capped or b.ready_capped,
        _peak(a.latency_max, b.latency_max),
        _peak(a.running_max, b.running_max),
        _peak(a.dynos_max, b.dynos_max),
        _peak(a.desired_max, b.desired_max),
        a.dyno_seconds + b.dyno_seconds,
        a.errors + b.errors,
        b.size or a.size,
    )


def add_tick(
    row: Sample | None, app: str, minute: datetime, obs: Observation, seconds: float
) -> Sample:
    """The minute's row with one more tick of ``obs``; ``seconds``: dyno-time since the last."""
    one = Sample(
        app,
        minute,
        obs.process_type,
        1,
        obs.ready,
        obs.ready_capped,
        obs.latency,
        obs.running,
        obs.dynos,
        obs.desired,
        seconds,
        int(obs.action == "error"),
        obs.size,
    )
    return one if row is None else merge(row, one)


@dataclass
class Rollup:
    """Open minutes per process type; a tick in a later minute closes the earlier ones."""

    app: str
    max_gap_seconds: float  # longer without a tick: the dynos in between are not known
    open: dict[str, Sample] = field(default_factory=dict)
    last: dict[str, tuple[datetime, int | None]] = field(default_factory=dict)

    def add(self, at: datetime, observations: tuple[Observation, ...]) -> list[Sample]:
        minute = at.replace(second=0, microsecond=0)
        closed = [r for r in self.open.values() if r.minute < minute]
        self.open = {t: r for t, r in self.open.items() if r.minute >= minute}
        for obs in observations:
            seconds = self._dyno_seconds(obs, at)
            self.open[obs.process_type] = add_tick(
                self.open.get(obs.process_type), self.app, minute, obs, seconds
            )
        return closed

    def close(self) -> list[Sample]:
        closed, self.open = list(self.open.values()), {}
        return closed

    def _dyno_seconds(self, obs: Observation, at: datetime) -> float:
        previous = self.last.get(obs.process_type)
        dynos = obs.dynos if obs.dynos is not None else (previous[1] if previous else None)
        self.last[obs.process_type] = (at, dynos)
        if previous is None or previous[1] is None:
            return 0.0
        elapsed = (at - previous[0]).total_seconds()
        return previous[1] * elapsed if 0 < elapsed <= self.max_gap_seconds else 0.0


def event_json(fields: Mapping[str, Any]) -> str:
    return json.dumps(dict(fields), default=str, sort_keys=True)
