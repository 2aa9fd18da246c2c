"""What the status page and ``/metrics`` show of the running daemon: a sink that keeps the latest
tick, counters, and a bounded window of recent minutes and events in memory."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.events import Event, Observation, TickReport
from dynomatic_daemon.history.rows import Rollup, Sample

MAX_TYPES = 20  # bounds the in-memory window whatever the config says
RECENT_EVENTS = 200


@dataclass(frozen=True)
class Snapshot:
    app: str
    role: str | None
    ticks: int
    last_tick_at: datetime | None
    seconds_since_tick: float  # since the last tick, or since the start before the first
    observations: tuple[Observation, ...]
    writes: dict[str, int]
    errors: dict[str, int]
    events: dict[str, int]
    recent: tuple[Sample, ...] = ()
    recent_events: tuple[Event, ...] = field(default=())


class LiveStatus:
    def __init__(self, app: str, clock: Clock, interval_seconds: float, minutes: int) -> None:
        self._app, self._clock = app, clock
        self._lock = threading.Lock()
        self._started = clock.monotonic()
        self._last_mono: float | None = None
        self._report: TickReport | None = None
        self._ticks = 0
        self._writes: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._events: Counter[str] = Counter()
        self._rollup = Rollup(app, max_gap_seconds=max(2.0 * interval_seconds, 60.0))
        self._recent: deque[Sample] = deque(maxlen=max(1, minutes) * MAX_TYPES)
        self._recent_events: deque[Event] = deque(maxlen=RECENT_EVENTS)

    def on_tick(self, report: TickReport) -> None:
        with self._lock:
            self._report, self._ticks = report, self._ticks + 1
            self._last_mono = self._clock.monotonic()
            for obs in report.observations:
                self._writes[obs.process_type] += obs.action == "scaled"
                self._errors[obs.process_type] += obs.action == "error"
            if report.observations:
                self._recent.extend(self._rollup.add(report.at, report.observations))

    def on_event(self, event: Event) -> None:
        with self._lock:
            self._events[event.kind] += 1
            self._recent_events.append(event)

    def snapshot(self) -> Snapshot:
        with self._lock:
            report = self._report
            since = self._last_mono if self._last_mono is not None else self._started
            recent = (*self._recent, *self._rollup.open.values())
            return Snapshot(
                app=self._app,
                role=report.role if report else None,
                ticks=self._ticks,
                last_tick_at=report.at if report else None,
                seconds_since_tick=self._clock.monotonic() - since,
                observations=report.observations if report else (),
                writes=dict(self._writes),
                errors=dict(self._errors),
                events=dict(self._events),
                recent=tuple(sorted(recent, key=lambda s: (s.process_type, s.minute))),
                recent_events=tuple(self._recent_events),
            )
