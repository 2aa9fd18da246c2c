"""The history sink: rolls each tick into per-minute rows and hands finished rows and events to
the writer. Runs on the tick's thread, so it only ever does memory work and a non-blocking put."""

from __future__ import annotations

import threading
from typing import Protocol

from dynomatic_daemon.events import Event, TickReport
from dynomatic_daemon.history.rows import Batch, Rollup

STANDBY = "standby"  # a standby records nothing: the leader does


class Submit(Protocol):
    def submit(self, batch: Batch) -> None: ...


class Recorder:
    def __init__(self, writer: Submit, app: str, interval_seconds: float) -> None:
        self._writer = writer
        self._lock = threading.Lock()  # the watchdog's events arrive on another thread
        # Up to two intervals without a tick still count as dyno time (a late tick); more is a
        # stop of the daemon, when what ran is not known.
        self._rollup = Rollup(app, max_gap_seconds=max(2.0 * interval_seconds, 60.0))

    def on_tick(self, report: TickReport) -> None:
        if report.role == STANDBY or not report.observations:
            return
        with self._lock:
            closed = self._rollup.add(report.at, report.observations)
        self._writer.submit(Batch(samples=tuple(closed)))

    def on_event(self, event: Event) -> None:
        self._writer.submit(Batch(events=(event,)))

    def flush(self) -> None:
        """Hand over the minute still open (at shutdown)."""
        with self._lock:
            closed = self._rollup.close()
        self._writer.submit(Batch(samples=tuple(closed)))
