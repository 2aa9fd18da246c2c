"""The live page: the report of the last ``page_hours`` (from the history store when it is on,
else from the minutes kept in memory) under a header of what the scaler sees right now."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from dynomatic_daemon.clock import Clock
from dynomatic_daemon.history import report
from dynomatic_daemon.history.queries import StoredEvent, Window, read_window
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.observe_config import HistorySettings, HttpSettings
from dynomatic_daemon.store import connection
from dynomatic_daemon.web.live import LiveStatus, Snapshot

CACHE_SECONDS = 5.0  # a page reloaded by many tabs costs one read
READ_TIMEOUT_MS = 10_000
Counters = Callable[[], Mapping[str, Mapping[str, int]]]
e = report.e


def live_section(snap: Snapshot, counters: Mapping[str, Mapping[str, int]], note: str) -> str:
    ago = f"{snap.seconds_since_tick:.0f} s ago" if snap.last_tick_at else "none yet"
    head = (
        f'<p class="meta" id="live">role <b>{e(snap.role or "starting")}</b>; last tick {e(ago)}; '
        f"{snap.ticks} ticks since start"
    )
    for source, outcomes in sorted(counters.items()):
        head += f"; {e(source)}: " + ", ".join(f"{e(k)} {n}" for k, n in sorted(outcomes.items()))
    head += "</p>" + (f'<p class="meta">{e(note)}</p>' if note else "")
    rows = [
        [e(o.process_type), e(o.ready), e(None if o.latency is None else f"{o.latency:.1f}"),
         e(o.running), e(o.dynos), e(o.desired), e(o.action), e(o.reason)]
        for o in snap.observations
    ]  # fmt: skip
    headers = ["type", "ready", "oldest s", "running", "dynos", "desired", "action", "reason"]
    return "<h2>Now</h2>" + head + report.table(headers, rows, {1, 2, 3, 4, 5})


def memory_window(snap: Snapshot, since: Any, until: Any) -> Window:
    events = tuple(
        StoredEvent(
            i, ev.at, ev.process_type, ev.kind, ev.current, ev.desired, ev.reason, dict(ev.fields)
        )
        for i, ev in enumerate(snap.recent_events)
    )
    samples = tuple(s for s in snap.recent if since <= s.minute < until)
    return Window(snap.app, since, until, samples, events, False)


class Page:
    def __init__(
        self,
        app: str,
        live: LiveStatus,
        clock: Clock,
        *,
        http: HttpSettings,
        history: HistorySettings,
        counters: Counters,
        log: Logger,
    ) -> None:
        self._app, self._live, self._clock, self._log = app, live, clock, log
        self._http, self._history, self._counters = http, history, counters
        self._lock = threading.Lock()
        self._cached: tuple[float, str] | None = None

    def html(self) -> str:
        with self._lock:  # one render at a time; the others get its result
            now = self._clock.monotonic()
            if self._cached is None or now - self._cached[0] >= CACHE_SECONDS:
                self._cached = (now, self._render())
            return self._cached[1]

    def _render(self) -> str:
        snap = self._live.snapshot()
        until = self._clock.now() + timedelta(minutes=1)
        since = until - timedelta(hours=self._http.page_hours)
        window, note = self._stored(since, until)
        if window is None:
            window = memory_window(snap, since, until)
        return report.render(
            window,
            title=f"dynomatic: {self._app}",
            live=live_section(snap, self._counters(), note),
            refresh_seconds=self._http.refresh_seconds,
        )

    def _stored(self, since: Any, until: Any) -> tuple[Window | None, str]:
        h = self._history
        if not h.enabled or h.url is None:
            return None, "history is off: the charts show the minutes since this process started"
        try:
            with connection.connect(
                h.url,
                statement_timeout_ms=READ_TIMEOUT_MS,
                connect_timeout_seconds=h.connect_timeout_seconds,
                application_name="dynomatic-page",
            ) as conn:
                found = read_window(conn, h.schema_name, self._app, since=since, until=until)
                return found, ""
        except Exception as exc:  # noqa: BLE001 - the page falls back to memory, never fails
            why = connection.describe(exc, h.url)
            self._log.warning("status_page_history_unavailable", error=why)
            return None, f"history unavailable ({why}): showing the minutes kept in memory"
