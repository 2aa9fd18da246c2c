"""What the scaler did, told to whoever listens: the tick's one hook and the events it implies.

The ``Ticker`` calls ``observer.tick_done`` once per tick, after its log lines, and
``observer.event`` where something happens outside the outcomes (a manual change of the
formation, a Heroku error); the scheduler's watchdog calls ``event(app, "stalled")``. The default
observer does nothing.

``Hub`` is the observer the daemon runs with: it turns each tick into a ``TickReport`` and into
events (scaled, held, refused, fallback, leader change, ...), and hands both to its sinks (the
history recorder, the notifiers, the live status). A sink must return at once: slow work goes
to its own thread through a bounded queue. A sink that raises is logged and skipped; nothing
here ever raises into a tick.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from dynomatic_daemon import policy
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuError,
    HerokuHeldBackError,
    HerokuInvalidRequestError,
    HerokuNotFoundError,
)
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.models import Formation

if TYPE_CHECKING:
    from dynomatic_daemon.tick import Outcome

# Every kind of event, in the order the docs list them.
KINDS = (
    "scaled",  # a formation change went out
    "held",  # a change was due but not sent (backing off, budget, lock lost, shutting down)
    "refused",  # Heroku refused a call: auth, payment, unknown app or type, a limit (4xx)
    "api_error",  # Heroku could not be reached or rate-limited us, after the retries
    "read_failed",  # a process type's queues could not be read (the formation is held)
    "fallback",  # reads kept failing and fallback_dynos raised the formation
    "at_max",  # a process type has run at its ceiling for a while (notifiers derive it)
    "external_change",  # someone else changed a managed type's quantity
    "leader_change",  # this copy became leader, standby, or cannot tell
    "stalled",  # no tick has completed for stalled_after_intervals intervals
    "resumed",  # a tick completed again after a stall
    "paused",  # a process type (or all) was paused by `dynomatic pause`
    "override",  # a person scaled a type; the daemon leaves it alone for a while
    "release_hold",  # a new release: scale-downs wait for release_hold_seconds
    "budget",  # a budget in alert mode would be broken by the desired count
)
_REFUSALS = (HerokuAuthError, HerokuInvalidRequestError, HerokuNotFoundError)


class Observer(Protocol):
    def tick_done(
        self,
        app: str,
        outcomes: Sequence[Outcome],
        *,
        role: str,
        formation: Formation | None,
        at: datetime,
    ) -> None: ...

    def event(self, app: str, kind: str, **fields: Any) -> None: ...


class NoObserver:
    def tick_done(
        self,
        app: str,
        outcomes: Sequence[Outcome],
        *,
        role: str,
        formation: Formation | None,
        at: datetime,
    ) -> None:
        pass

    def event(self, app: str, kind: str, **fields: Any) -> None:
        pass


NO_OBSERVER = NoObserver()


@dataclass(frozen=True, slots=True)
class Observation:
    """One process type in one tick, as plain values (what a sink needs of an ``Outcome``)."""

    process_type: str
    ready: int | None  # None: the queues could not be read
    ready_capped: bool
    latency: float | None  # the oldest ready job's age, seconds
    running: int | None
    current: int | None  # None: the formation could not be read
    desired: int | None
    dynos: int | None  # running after this tick: desired if it was scaled, else current
    action: str
    rule: str | None
    reason: str
    request_id: str | None
    size: str | None  # the dyno size of its formation type(s), for cost
    ceiling: int | None  # the most dynos allowed right now (max_dynos or an open window's)


@dataclass(frozen=True, slots=True)
class TickReport:
    app: str
    at: datetime
    role: str
    observations: tuple[Observation, ...]


@dataclass(frozen=True, slots=True)
class Event:
    app: str
    at: datetime
    kind: str
    process_type: str | None = None
    current: int | None = None
    desired: int | None = None
    reason: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)  # JSON-able extras


class Sink(Protocol):
    def on_tick(self, report: TickReport) -> None: ...

    def on_event(self, event: Event) -> None: ...


def observe(out: Outcome, formation: Formation | None, at: datetime) -> Observation:
    stats, decision, proc = out.stats, out.decision, out.process
    current = decision.current if decision else None
    dynos = decision.desired if decision and out.action == "scaled" else current
    entries = formation.entries if formation else {}
    sizes = [entries[t].size for t in proc.formation_types if t in entries]
    return Observation(
        process_type=proc.type,
        ready=stats.ready if stats else None,
        ready_capped=bool(stats and stats.ready_capped),
        latency=stats.oldest_ready_age_seconds if stats else None,
        running=stats.running if stats else None,
        current=current,
        desired=decision.desired if decision else None,
        dynos=dynos,
        action=out.action,
        rule=decision.rule if decision else None,
        reason=out.reason,
        request_id=out.request_id,
        size=next((s for s in sizes if s), None),
        ceiling=policy.active_bounds(proc, at).high,
    )


def _raising_without_data(obs: Observation) -> bool:
    """Missing data only ever raises the formation, and only through ``fallback_dynos``."""
    if obs.ready is not None or obs.desired is None or obs.current is None:
        return False
    return obs.desired > obs.current


class Hub:
    """The daemon's observer: derives events from ticks and fans both out to the sinks."""

    def __init__(self, sinks: Sequence[Sink], clock: Clock, log: Logger) -> None:
        self._sinks = tuple(sinks)
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._role: str | None = None
        self._stalled = False
        self._last: dict[str, Observation] = {}
        self._api_error: tuple[Any, ...] | None = None

    def tick_done(
        self,
        app: str,
        outcomes: Sequence[Outcome],
        *,
        role: str,
        formation: Formation | None,
        at: datetime,
    ) -> None:
        try:
            report = TickReport(app, at, role, tuple(observe(o, formation, at) for o in outcomes))
            with self._lock:
                events = self._derive(report)
            self._fan_out(report, events)
        except Exception as exc:  # noqa: BLE001 - an observer bug must never break a tick
            self._log.error("observer_failed", error=f"{type(exc).__name__}: {exc}")

    def event(self, app: str, kind: str, **fields: Any) -> None:
        try:
            with self._lock:
                found = self._translate(app, kind, fields)
            self._fan_out(None, [found] if found else [])
        except Exception as exc:  # noqa: BLE001 - as above
            self._log.error("observer_failed", error=f"{type(exc).__name__}: {exc}")

    def _fan_out(self, report: TickReport | None, events: Sequence[Event]) -> None:
        for sink in self._sinks:
            try:
                if report is not None:
                    sink.on_tick(report)
                for ev in events:
                    sink.on_event(ev)
            except Exception as exc:  # noqa: BLE001 - one sink's bug must not starve the others
                self._log.error(
                    "observer_failed",
                    sink=type(sink).__name__,
                    error=f"{type(exc).__name__}: {exc}",
                )

    def _derive(self, report: TickReport) -> list[Event]:
        app, at = report.app, report.at
        events = []
        if report.role != self._role:
            reason = f"{self._role or 'started'} -> {report.role}"
            fields = {"role": report.role, "previous": self._role}
            events.append(Event(app, at, "leader_change", reason=reason, fields=fields))
            self._role = report.role
        if self._stalled:
            events.append(Event(app, at, "resumed", reason="a tick completed again"))
            self._stalled = False
        for obs in report.observations:
            events.extend(self._type_events(app, at, obs, self._last.get(obs.process_type)))
            self._last[obs.process_type] = obs
        if report.observations and all(o.action != "error" for o in report.observations):
            self._api_error = None  # the next Heroku failure is news again
        return events

    def _type_events(
        self, app: str, at: datetime, obs: Observation, last: Observation | None
    ) -> list[Event]:
        def make(kind: str, **fields: Any) -> Event:
            return Event(
                app, at, kind, obs.process_type, obs.current, obs.desired, obs.reason, fields
            )

        found = []
        if obs.action == "scaled":
            found.append(make("scaled", rule=obs.rule, request_id=obs.request_id))
        if obs.action == "held" and (last is None or last.action != "held"):
            found.append(make("held"))
        no_data = obs.ready is None and obs.action == "error" and obs.current is not None
        had_data = last is None or last.ready is not None
        if no_data and had_data:
            found.append(make("read_failed"))
        if _raising_without_data(obs) and not (last and _raising_without_data(last)):
            found.append(make("fallback"))
        return found

    def _translate(self, app: str, kind: str, fields: dict[str, Any]) -> Event | None:
        at = self._clock.now()
        if kind == "stalled":
            if self._stalled:
                return None  # one event per stall; the log line repeats every interval
            self._stalled = True
            return Event(app, at, "stalled", reason="no tick has completed", fields=fields)
        if kind == "heroku_error":
            return self._heroku_error(app, at, fields)
        process_type = fields.pop("process_type", None)
        reason = str(fields.pop("reason", ""))
        return Event(app, at, kind, process_type, reason=reason, fields=fields)

    def _heroku_error(self, app: str, at: datetime, fields: dict[str, Any]) -> Event | None:
        exc = fields.pop("error")
        if not isinstance(exc, HerokuError) or isinstance(exc, HerokuHeldBackError):
            return None
        refused = isinstance(exc, _REFUSALS) or exc.status == 402
        details = {
            **fields,
            "status": exc.status,
            "error_id": exc.error_id,
            "request_id": exc.request_id,
        }
        if not refused:
            signature = (fields.get("call"), exc.status, exc.error_id)
            if signature == self._api_error:
                return None  # Heroku is down: once, not every tick
            self._api_error = signature
        return Event(
            app, at, "refused" if refused else "api_error", reason=str(exc), fields=details
        )
