"""The hub turns ticks into events once each, and no sink can break a tick."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.errors import (
    HerokuAuthError,
    HerokuHeldBackError,
    HerokuInvalidRequestError,
    HerokuUnavailableError,
)
from dynomatic_daemon.events import Event, Hub, TickReport
from dynomatic_daemon.models import Decision, Formation, FormationEntry, ProcessStats, QueueStats
from dynomatic_daemon.process_config import ProcessSettings
from dynomatic_daemon.tick import Outcome

AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PROC = ProcessSettings(type="worker", rules=[{"at_least": 0, "dynos": 1}], max_dynos=8)
FORMATION = Formation.of([FormationEntry("worker", 2, "Standard-1X")])


class Collect:
    def __init__(self) -> None:
        self.reports: list[TickReport] = []
        self.events: list[Event] = []

    def on_tick(self, report: TickReport) -> None:
        self.reports.append(report)

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class Broken:
    def on_tick(self, report: TickReport) -> None:
        raise RuntimeError("sink bug")

    def on_event(self, event: Event) -> None:
        raise RuntimeError("sink bug")


def outcome(
    action: str = "unchanged", ready: int | None = 3, current: int = 2, desired: int = 2
) -> Outcome:
    stats = None
    if ready is not None:
        q = QueueStats("default", ready, False, None, 12.5, 1)
        stats = ProcessStats.combine([q])
    decision = Decision("worker", current, desired, (), "rules[at_least=0]", "why")
    return Outcome(PROC, stats, decision, action, "because", "req-1")


def hub() -> tuple[Hub, Collect]:
    sink = Collect()
    return Hub([sink], SteppableClock(AT), log=_NullLog()), sink


class _NullLog:
    def error(self, *args: Any, **kwargs: Any) -> None:
        pass


def tick(h: Hub, *outs: Outcome, role: str = "leader") -> None:
    h.tick_done("my-app", list(outs), role=role, formation=FORMATION, at=AT)


def test_a_tick_becomes_one_report_with_plain_values() -> None:
    h, sink = hub()
    tick(h, outcome("scaled", ready=40, current=2, desired=8))
    (report,) = sink.reports
    (obs,) = report.observations
    assert (obs.ready, obs.latency, obs.running, obs.current, obs.desired) == (40, 12.5, 1, 2, 8)
    assert (obs.dynos, obs.size, obs.ceiling) == (8, "Standard-1X", 8)
    assert sink.kinds() == ["leader_change", "scaled"]
    assert sink.events[1].reason == "because" and sink.events[1].fields["request_id"] == "req-1"


def test_leadership_is_an_event_only_when_it_changes() -> None:
    h, sink = hub()
    for role in ("leader", "leader", "standby", "standby", "leader"):
        tick(h, role=role)
    changes = [(e.fields["previous"], e.fields["role"]) for e in sink.events]
    assert changes == [(None, "leader"), ("leader", "standby"), ("standby", "leader")]


def test_held_and_read_failures_are_events_on_the_transition_only() -> None:
    h, sink = hub()
    tick(h, outcome())
    for _ in range(3):
        tick(h, outcome("held"))
    for _ in range(3):
        tick(h, outcome("error", ready=None))
    tick(h, outcome())
    tick(h, outcome("error", ready=None))
    assert sink.kinds() == ["leader_change", "held", "read_failed", "read_failed"]


def test_fallback_is_one_event_when_missing_data_raises_the_formation() -> None:
    h, sink = hub()
    tick(h, outcome("error", ready=None, current=2, desired=2))
    tick(h, outcome("error", ready=None, current=2, desired=5))  # the raise fails to go out
    tick(h, outcome("error", ready=None, current=2, desired=5))
    assert sink.kinds().count("fallback") == 1


def test_a_stall_is_one_event_until_a_tick_completes_again() -> None:
    h, sink = hub()
    for _ in range(4):
        h.event("my-app", "stalled", seconds_since_last_tick=30.0)
    tick(h)
    h.event("my-app", "stalled", seconds_since_last_tick=30.0)
    assert sink.kinds() == ["stalled", "leader_change", "resumed", "stalled"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (HerokuAuthError("401", status=401, error_id="unauthorized"), "refused"),
        (HerokuInvalidRequestError("422 more than 1", status=422), "refused"),
        (HerokuUnavailableError("503", status=503), "api_error"),
        (HerokuHeldBackError("paused"), None),  # not an answer from Heroku: the tick says held
    ],
)
def test_heroku_errors_are_told_apart_by_class(error: Exception, kind: str | None) -> None:
    h, sink = hub()
    h.event("my-app", "heroku_error", error=error, call="write", types=["worker"])
    assert sink.kinds() == ([kind] if kind else [])
    if kind:
        assert sink.events[0].fields["call"] == "write"
        assert sink.events[0].fields["status"] == error.status  # type: ignore[attr-defined]


def test_heroku_being_down_is_one_event_until_a_tick_succeeds() -> None:
    h, sink = hub()
    down = HerokuUnavailableError("503", status=503)
    for _ in range(3):
        h.event("my-app", "heroku_error", error=down, call="list")
    tick(h, outcome())
    h.event("my-app", "heroku_error", error=down, call="list")
    assert sink.kinds() == ["api_error", "leader_change", "api_error"]


def test_a_broken_sink_is_logged_and_the_others_still_hear() -> None:
    sink = Collect()
    with capture_logs() as logs:
        h = Hub([Broken(), sink], SteppableClock(AT), structlog.get_logger())
        tick(h, outcome("scaled", current=1, desired=3))
        h.event("my-app", "external_change", process_type="worker", expected=1, actual=4)
    assert sink.kinds() == ["leader_change", "scaled", "external_change"]
    assert sink.events[-1].process_type == "worker" and sink.events[-1].fields["actual"] == 4
    assert [e["event"] for e in logs] == ["observer_failed", "observer_failed"]
