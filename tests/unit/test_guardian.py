"""The Guardian in one process, with a steppable clock and a MockTransport Heroku: alerts,
overrides kept in memory without a store, release polls within the budget, spend per day."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_support import wait_until

from dynomatic_daemon import config
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.formation_keeper import ExternalChange
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.models import Decision, Formation, FormationEntry, FormationUpdate
from dynomatic_daemon.state.guardian import Guardian
from dynomatic_daemon.tick import Outcome

ENV = {"HEROKU_API_KEY": "hk-unit-0000", "DATABASE_URL": "postgres://app@localhost/app"}
BASE = """
[heroku]
app = "my-app"
releases_poll_seconds = 60
[[process]]
type = "worker"
adapter = "delayed_job"
manual_override_seconds = 300
release_hold_seconds = 120
rules = [ { at_least = 0, dynos = 1 } ]
"""


class Log:
    """Records each line as (event, fields), from any thread."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.lines.append({"event": event, **fields})

    def named(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == event]


class Api:
    """Answers the releases endpoint; counts the calls."""

    def __init__(self, clock: SteppableClock) -> None:
        self.clock, self.calls, self.releases = clock, 0, [(1, timedelta(days=1))]
        self.remaining = 4000

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = [
            {"version": v, "created_at": (self.clock.now() - age).isoformat(), "description": "d"}
            for v, age in self.releases
        ]
        return httpx.Response(200, json=body, headers={"RateLimit-Remaining": str(self.remaining)})


def guardian(
    tmp_path: Path, extra: str = "", store: Any = None
) -> tuple[Guardian, SteppableClock, Api, list[Any]]:
    path = tmp_path / "dynomatic.toml"
    path.write_text(BASE + extra)
    settings = config.load(path, ENV)
    clock = SteppableClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    api = Api(clock)
    http = httpx.Client(base_url="https://api.example.test", transport=httpx.MockTransport(api))
    heroku = HerokuClient(http, app="my-app", api_key="hk-unit-0000")
    events: list[Any] = []
    found = Guardian(settings, heroku, clock, Log(), store, lambda *a, **k: events.append((a, k)))
    return found, clock, api, events


def formation(n: int) -> Formation:
    return Formation.of([FormationEntry("worker", n, "Standard-1X")])


def outcome(g: Guardian, current: int, desired: int) -> Outcome:
    (proc,) = g.settings.process
    updates = (FormationUpdate("worker", desired),) if desired != current else ()
    decision = Decision("worker", current, desired, updates, "rules[at_least=0]", "target")
    return Outcome(proc, stats=object(), decision=decision, reason="target")  # type: ignore[arg-type]


def test_an_override_without_a_store_is_kept_in_memory_and_ends_on_time(tmp_path: Path) -> None:
    g, clock, _, events = guardian(tmp_path)
    g.external_change(ExternalChange("worker", 1, 4))
    (line,) = g.log.named("override")
    assert line["stored"] is False and line["actual"] == 4
    out = outcome(g, 4, 1)
    assert g.adjust([out], formation(4)) == {"worker"}
    assert out.action == "override" and not out.decision.changes  # type: ignore[union-attr]
    clock.advance(301)
    g.begin(lambda: None)
    out = outcome(g, 4, 1)
    assert g.adjust([out], formation(4)) == set() and out.decision.changes  # type: ignore[union-attr]
    assert [a[1] for a, _ in events] == ["override"]


def test_releases_are_polled_at_most_once_a_poll_interval_and_not_on_a_low_budget(
    tmp_path: Path,
) -> None:
    g, clock, api, _ = guardian(tmp_path)
    for _ in range(5):
        g.begin(lambda: None)
        clock.advance(10)
    assert api.calls == 1  # 50 s: one poll
    api.releases.append((2, timedelta(seconds=5)))
    api.remaining = 100  # below the reserve of 450, told with this answer
    clock.advance(20)
    g.begin(lambda: None)
    assert api.calls == 2 and g.releases.newest is not None and g.releases.newest.version == 2
    out = outcome(g, 5, 1)
    g.adjust([out], formation(5))
    assert out.decision is not None and out.decision.desired == 5
    assert "scale-down held: release v2" in out.reason
    clock.advance(120)  # a poll is due, but the budget is low: optional calls wait
    g.begin(lambda: None)
    assert api.calls == 2
    api.remaining = 4000
    g.heroku._rate_limit_remaining = 4000  # as if a formation call had said so
    g.begin(lambda: None, calls_paused=True)  # the API is paused after an error: no call
    assert api.calls == 2
    g.begin(lambda: None)
    assert api.calls == 3


def test_an_alert_budget_caps_nothing_and_alerts_once_a_day(tmp_path: Path) -> None:
    g, clock, _, events = guardian(
        tmp_path, '[budget]\nmode = "alert"\nmax_dyno_hours_per_day = 12\n'
    )
    # at noon with nothing spent, 12 dyno-hours over 12 hours afford 1 dyno
    for _ in range(3):
        out = outcome(g, 1, 5)
        g.adjust([out], formation(1))
        assert out.decision is not None and out.decision.desired == 5
        clock.advance(10)
    alerts = g.log.named("budget_alert")
    assert len(alerts) == 1 and alerts[0]["affordable_dynos"] == 1
    assert [a[1] for a, _ in events if a[1] == "budget"] == ["budget"]


def test_spend_counts_dynos_times_time_and_the_day_rolls_over(tmp_path: Path) -> None:
    g, clock, _, _ = guardian(tmp_path, "[budget]\nmax_dyno_hours_per_day = 1000\n")
    g.accrue(formation(3))
    for _ in range(6):
        clock.advance(10)
        g.accrue(formation(3))
    spent = g.meter.of("worker")
    assert spent.day_dyno_hours == pytest.approx(3 * 60 / 3600)
    assert spent.month_usd == pytest.approx(3 * 60 / 3600 * 25 / 720)
    clock.advance(3600)  # a stop of the daemon: not counted
    g.accrue(formation(3))
    assert g.meter.of("worker").day_dyno_hours == pytest.approx(3 * 60 / 3600)
    clock.advance(12 * 3600)  # the next UTC day
    g.begin(lambda: None)
    assert g.meter.of("worker").day_dyno_hours == 0
    assert g.meter.of("worker").month_usd == pytest.approx(spent.month_usd)


class FailingStore:
    """A state store whose database is down: every call fails, and each is counted."""

    schema = "dynomatic"

    def __init__(self) -> None:
        self.calls = 0

    def _fail(self, *_: Any, **__: Any) -> Any:
        self.calls += 1
        raise OSError("connection refused")

    add_spend = spent = active = put = _fail

    def describe(self, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        pass


def test_a_dead_store_is_logged_backed_off_and_never_holds_up_the_tick(tmp_path: Path) -> None:
    store = FailingStore()
    g, clock, _, _ = guardian(tmp_path, store=store)
    started = time.monotonic()
    g.begin(lambda: None)  # the first answer is awaited, but a failure ends the wait
    g.begin(lambda: None)  # failing: not waited for, and within the backoff not asked again
    assert time.monotonic() - started < 1.0
    assert store.calls == 1
    clock.advance(1.5)
    g.begin(lambda: None)
    assert wait_until(lambda: store.calls == 2, timeout=5)
    g.external_change(ExternalChange("worker", 1, 4))  # in force at once, stored when it can be
    out = outcome(g, 4, 1)
    assert g.adjust([out], formation(4)) == {"worker"}
    assert wait_until(lambda: len(g.log.named("state_store_failed")) == 2, timeout=5)
    failed = g.log.named("state_store_failed")
    assert [f["retry_in_seconds"] for f in failed] == [1.0, 2.0]
    assert "connection refused" in failed[0]["error"]
    g.close()
