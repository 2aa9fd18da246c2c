"""One notification target: picks its events, rate-limits them, and posts from its own thread.

``on_tick``/``on_event`` run on the tick's thread and only do memory work and a non-blocking put:
a target that is slow or down never slows a tick. Per event kind and process type at most one
message per ``min_interval_seconds``; what is held back is counted and said in the next one. A
full queue drops (counted, logged). The URL holds the target's secret: it is never logged, and
failures are logged by the error's type and the HTTP status only.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from datetime import datetime
from typing import Any

import httpx

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.events import Event, Observation, TickReport
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.notify import messages
from dynomatic_daemon.observe_config import NotifySettings

LOG_EVERY_SECONDS = 60.0
_STOP = object()


class Notifier:
    def __init__(
        self,
        target: NotifySettings,
        name: str,
        clock: Clock,
        log: Logger,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if target.url is None:
            raise ValueError(f"{name}: no URL")
        self.name, self._target, self._clock, self._log = name, target, clock, log
        self._http = httpx.Client(
            timeout=target.timeout_seconds, transport=transport, follow_redirects=False
        )
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=target.queue_size)
        self._lock = threading.Lock()
        self._last_sent: dict[tuple[str, str | None], float] = {}
        self._held: dict[tuple[str, str | None], int] = {}
        self._at_max_since: dict[str, datetime] = {}
        self._at_max_told: set[str] = set()
        self._logged_at: dict[str, float] = {}
        self.counts = {"sent": 0, "suppressed": 0, "dropped": 0, "failed": 0}
        self._thread = threading.Thread(target=self._run, name=f"dynomatic-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._http.close()

    def on_tick(self, report: TickReport) -> None:
        for obs in report.observations:
            found = self._at_max(report, obs)
            if found is not None:
                self.on_event(found)

    def on_event(self, event: Event) -> None:
        if event.kind not in self._target.events:
            return
        key = (event.kind, event.process_type)
        now = self._clock.monotonic()
        with self._lock:
            last = self._last_sent.get(key)
            if last is not None and now - last < self._target.min_interval_seconds:
                self._held[key] = self._held.get(key, 0) + 1
                self.counts["suppressed"] += 1
                return
            self._last_sent[key] = now
            held = self._held.pop(key, 0)
        try:
            self._queue.put_nowait((event, held))
        except queue.Full:
            self._count("dropped", "notify_dropped", reason="the notification queue is full")

    def _at_max(self, report: TickReport, obs: Observation) -> Event | None:
        """An ``at_max`` event once a type has run at its ceiling for ``at_max_minutes``."""
        ptype = obs.process_type
        if obs.ceiling is None or obs.current is None or obs.current < obs.ceiling:
            self._at_max_since.pop(ptype, None)
            self._at_max_told.discard(ptype)
            return None
        since = self._at_max_since.setdefault(ptype, report.at)
        minutes = (report.at - since).total_seconds() / 60
        if minutes < self._target.at_max_minutes or ptype in self._at_max_told:
            return None
        self._at_max_told.add(ptype)  # once per stretch at the ceiling
        fields = {"minutes": round(minutes), "ceiling": obs.ceiling}
        return Event(
            report.app, report.at, "at_max", ptype, obs.current, obs.desired, obs.reason, fields
        )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            event, held = item
            try:
                self._post(event, held)
            except Exception:  # noqa: BLE001 - one bad message must not end the worker
                with self._lock:
                    self.counts["failed"] += 1

    def _post(self, event: Event, held: int) -> None:
        payload = messages.body(self._target.kind, event, held)
        url = self._target.url.get_secret_value() if self._target.url else ""
        try:
            response = self._http.post(url, json=payload)
        except httpx.HTTPError as exc:
            self._count("failed", "notify_failed", kind=event.kind, error=type(exc).__name__)
            return
        if response.is_success:
            with self._lock:
                self.counts["sent"] += 1
        else:
            self._count("failed", "notify_failed", kind=event.kind, status=response.status_code)

    def _count(self, outcome: str, log_event: str, **fields: Any) -> None:
        with self._lock:
            self.counts[outcome] += 1
            total = self.counts[outcome]
        now = self._clock.monotonic()
        if now - self._logged_at.get(outcome, float("-inf")) >= LOG_EVERY_SECONDS:
            self._logged_at[outcome] = now
            self._log.warning(log_event, target=self.name, total=total, **fields)
