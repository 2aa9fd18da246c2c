"""One tick, its branches one at a time: who may write, when nothing may go out, what is logged.

The Ticker runs with its real policy, formation keeper and Heroku client; the queue reader, the
database and the leader lock are small fakes, and the Platform API is an ``httpx.MockTransport``,
so each test can put the tick in the state it checks (a lock lost right before the PATCH, a
shutdown signal during the queue read) and see exactly which requests went out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.config import Settings
from dynomatic_daemon.errors import QueueReadError
from dynomatic_daemon.formation_keeper import FormationKeeper, LearntLimit
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.leader import Role
from dynomatic_daemon.models import QueueReading, QueueSelector, QueueStats
from dynomatic_daemon.tick import Outcome, Ticker

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RULES = [{"at_least": 0, "dynos": 1}, {"at_least": 10, "dynos": 5}, {"at_least": 50, "dynos": 8}]


class Api:
    """The formation endpoints: a formation, canned failures, and every request's method."""

    def __init__(self, **formation: int) -> None:
        self.formation = dict(formation)
        self.fail: list[httpx.Response] = []
        self.calls: list[str] = []
        self.on_request: Callable[[str], None] = lambda _method: None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.method)
        self.on_request(request.method)
        if self.fail:
            return self.fail.pop(0)
        if request.method == "PATCH":
            for item in json.loads(request.content)["updates"]:
                self.formation[item["type"]] = item["quantity"]
        items = [
            {"type": t, "quantity": q, "dyno_size": {"name": "Standard-1X"}}
            for t, q in self.formation.items()
        ]
        return httpx.Response(200, json=items, headers={"Request-Id": f"rid-{len(self.calls)}"})

    @property
    def patches(self) -> int:
        return self.calls.count("PATCH")


class Reader:
    """A queue reader with programmable queues (name -> ready, running, age) or a failure."""

    name = "delayed_job"

    def __init__(self) -> None:
        self.queues: dict[str, tuple[int, int | None, float | None]] = {"default": (0, 0, None)}
        self.fail: Exception | None = None
        self.caps: list[int] = []
        self.during_read: Callable[[], None] = lambda: None

    def read(self, conn: Any, selectors: Sequence[QueueSelector], cap: int) -> QueueReading:
        self.caps.append(cap)
        self.during_read()
        if self.fail is not None:
            raise self.fail
        stats = tuple(
            QueueStats(name, ready, False, None, age, running)
            for name, (ready, running, age) in self.queues.items()
        )
        return QueueReading(self.name, NOW, stats)


class Db:
    def run(self, fn: Callable[[Any], Any]) -> Any:
        return fn(None)


class Lock:
    """The leader lock as the tick sees it: a role per acquire, and what verify proves."""

    def __init__(self, role: Role = Role.LEADER) -> None:
        self.role = role
        self.tenure = 1
        self.held = True
        self.on_verify: Callable[[], None] = lambda: None

    def acquire(self) -> Role:
        return self.role

    def verify(self) -> bool:
        self.on_verify()
        return self.held


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def error(self, event: str, **fields: Any) -> None:
        self.lines.append(("error", event, fields))

    def events(self) -> list[str]:
        return [event for _, event, _ in self.lines]

    def decisions(self) -> list[tuple[str, dict[str, Any]]]:
        return [(level, f) for level, event, f in self.lines if event == "scale_decision"]


class Observer:
    def __init__(self) -> None:
        self.ticks: list[tuple[str, list[Outcome], Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def tick_done(
        self, app: str, outcomes: Sequence[Outcome], *, role: str, formation: Any, at: datetime
    ) -> None:
        self.ticks.append((role, list(outcomes), formation))

    def event(self, app: str, kind: str, **fields: Any) -> None:
        self.events.append((kind, fields))


def settings(*processes: dict[str, Any], dry_run: bool = False) -> Settings:
    procs = processes or ({"type": "worker", "adapter": "delayed_job", "rules": RULES},)
    return Settings.model_validate(
        {
            "heroku": {"app": "my-app", "api_key": "k" * 20, "api_url": "https://api.test"},
            "database": {"url": "postgres://u@db.test/app"},
            "daemon": {"dry_run": dry_run},
            "process": [{"scale_down_delay_seconds": 0, **p} for p in procs],
        }
    )


class Rig:
    """A Ticker over the fakes above; ``lock=None`` runs without leader election."""

    def __init__(
        self,
        api: Api,
        config: Settings | None = None,
        lock: Lock | None = None,
        max_retries: int = 0,
    ) -> None:
        self.api, self.reader, self.log, self.observer = api, Reader(), Log(), Observer()
        self.lock, self.clock = lock, SteppableClock(NOW)
        self.settings = config or settings()
        http = httpx.Client(base_url="https://api.test", transport=httpx.MockTransport(api))
        client = HerokuClient(
            http, app="my-app", api_key="k" * 20, max_retries=max_retries, sleep=lambda _: None
        )
        managed = frozenset(t for p in self.settings.process for t in p.formation_types)
        self.keeper = FormationKeeper(client, self.clock, 3600.0, managed)
        self.ticker = Ticker(
            settings=self.settings,
            databases={"delayed_job": Db()},  # type: ignore[dict-item]
            keeper=self.keeper,
            adapters={"delayed_job": self.reader},
            clock=self.clock,
            log=self.log,
            leadership=lock,  # type: ignore[arg-type]
            observer=self.observer,
        )

    def ready(self, count: int, running: int | None = 0, age: float | None = None) -> None:
        self.reader.queues = {"default": (count, running, age)}

    def tick(self, dry_run: bool | None = None) -> list[Outcome]:
        self.clock.advance(10)
        return self.ticker.tick(dry_run)

    def line(self) -> dict[str, Any]:
        return self.log.decisions()[-1][1]


def test_a_leader_scales_once_and_logs_one_line_per_type() -> None:
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(12)
    (out,) = rig.tick()
    assert (out.action, out.decision and out.decision.desired) == ("scaled", 5)
    assert rig.api.calls == ["GET", "PATCH"] and rig.api.formation["worker"] == 5
    level, line = rig.log.decisions()[-1]
    assert level == "info"
    assert (line["ready"], line["current"], line["desired"], line["action"]) == (12, 1, 5, "scaled")
    assert line["request_id"] == "rid-2" and "None" not in line["reason"]
    assert rig.log.events() == ["leader_elected", "scale_decision"]
    assert rig.observer.ticks[-1][0] == "leader"


def test_without_election_the_copy_acts_as_the_leader() -> None:
    rig = Rig(Api(worker=1), lock=None)
    rig.ready(12)
    assert rig.tick()[0].action == "scaled"
    assert rig.observer.ticks[-1][0] == "leader"
    assert "leader_elected" not in rig.log.events()


def test_a_standby_reads_nothing_sends_nothing_and_says_so() -> None:
    rig = Rig(Api(worker=1), lock=Lock(Role.STANDBY))
    rig.ready(60)
    assert rig.tick() == []
    assert rig.api.calls == [] and rig.reader.caps == []
    assert rig.log.events() == ["standby"]
    role, outcomes, formation = rig.observer.ticks[-1]
    assert (role, outcomes, formation) == ("standby", [], None)


def test_a_leader_that_becomes_standby_logs_it_and_forgets_what_it_knew() -> None:
    lock = Lock()
    rig = Rig(Api(worker=1), lock=lock)
    rig.ready(12)
    rig.tick()
    lock.role = Role.STANDBY
    rig.tick()
    assert ("warning", "leadership_lost", {"app": "my-app", "now": "standby"}) in rig.log.lines
    assert rig.ticker.states == {}
    lock.role, lock.tenure = Role.LEADER, 2
    rig.api.formation["worker"] = 3  # another copy scaled while this one stood by
    rig.tick()
    assert rig.api.calls == ["GET", "PATCH", "GET", "PATCH"]  # listed afresh, no stale view
    assert "external_change" not in rig.log.events()  # another copy's change is not "manual"
    assert ("info", "leader_elected", {"app": "my-app", "tenure": 2}) in rig.log.lines


def test_a_new_tenure_of_the_same_role_also_forgets_the_formation() -> None:
    lock = Lock()
    rig = Rig(Api(worker=1), lock=lock)
    rig.ready(12)
    rig.tick()
    rig.tick()  # same tenure: the remembered formation stands (resync is an hour)
    assert rig.api.calls == ["GET", "PATCH", "GET"]  # (the tick after a write re-lists once)
    rig.tick()
    assert rig.api.calls == ["GET", "PATCH", "GET"]
    lock.tenure = 2  # lost and re-taken between two ticks: another copy may have written
    rig.tick()
    assert rig.api.calls == ["GET", "PATCH", "GET", "GET"]
    assert rig.log.events().count("leader_elected") == 2


def test_a_shutdown_during_the_tick_stops_the_write() -> None:
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(12)
    rig.tick()
    rig.tick()  # the formation is now remembered: the next tick needs no GET before its PATCH
    rig.ready(60)
    rig.reader.during_read = rig.ticker.stopping.set  # the signal lands mid-tick
    (out,) = rig.tick()
    assert out.decision is not None and out.decision.desired == 8
    assert out.action == "held" and "not sent: shutting down" in out.reason
    assert rig.api.patches == 1 and rig.api.formation["worker"] == 5


def test_after_a_shutdown_signal_not_even_the_formation_is_listed() -> None:
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(12)
    rig.ticker.stopping.set()
    (out,) = rig.tick()
    assert rig.api.calls == []
    assert out.action == "error" and "formation read failed: shutting down" in out.reason


def test_a_lock_lost_before_the_write_stops_it() -> None:
    lock = Lock()
    rig = Rig(Api(worker=1), lock=lock)
    rig.ready(12)
    lock.held = False  # acquire() still said leader; the proof right before the PATCH fails
    (out,) = rig.tick()
    assert out.action == "held" and "the leader lock was lost" in out.reason
    assert rig.api.calls == ["GET"]


def test_a_lock_lost_and_retaken_within_the_tick_is_not_this_tenure() -> None:
    lock = Lock()
    rig = Rig(Api(worker=1), lock=lock)
    rig.ready(12)
    lock.on_verify = lambda: setattr(lock, "tenure", 2)  # held again, but a new tenure
    (out,) = rig.tick()
    assert out.action == "held" and "the leader lock was lost" in out.reason
    assert rig.api.patches == 0


def test_a_lock_lost_between_retries_stops_the_retry() -> None:
    lock = Lock()
    rig = Rig(Api(worker=1), lock=lock, max_retries=2)
    rig.ready(12)
    rig.tick()  # lists and scales to 5
    rig.tick()  # re-lists after the write; from here the formation is remembered
    rig.ready(60)
    rig.api.fail = [httpx.Response(503, json={"id": "unavailable", "message": "try again"})]
    rig.api.on_request = lambda method: setattr(lock, "held", method != "PATCH")
    (out,) = rig.tick()
    assert rig.api.calls.count("PATCH") == 2  # the first scale, then one attempt: no retry
    assert out.action == "held" and "the leader lock was lost; no retry of" in out.reason


def test_without_a_verifiable_lock_only_a_fallback_may_go_out() -> None:
    config = settings(
        {
            "type": "worker",
            "adapter": "delayed_job",
            "rules": RULES,
            "fallback_dynos": 3,
            "read_failures_before_fallback": 1,
        }
    )
    rig = Rig(Api(worker=1), config=config, lock=Lock(Role.UNKNOWN))
    rig.ready(60)
    (out,) = rig.tick()
    assert out.action == "unchanged" and rig.api.patches == 0
    assert "held: the leader lock cannot be checked (database unreachable)" in out.reason
    assert rig.observer.ticks[-1][0] == "unknown"
    rig.reader.fail = QueueReadError("connection refused")
    (out,) = rig.tick()
    assert (out.action, rig.api.formation["worker"]) == ("scaled", 3)  # only raises, alike


def test_dry_run_decides_but_sends_nothing_from_the_settings_or_the_call() -> None:
    rig = Rig(Api(worker=1), config=settings(dry_run=True), lock=Lock())
    rig.ready(12)
    (out,) = rig.tick()
    assert out.action == "dry_run" and rig.api.patches == 0
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(12)
    assert rig.tick(dry_run=True)[0].action == "dry_run" and rig.api.patches == 0
    assert rig.tick(dry_run=False)[0].action == "scaled"


def test_a_failed_queue_read_holds_its_types_and_names_the_error() -> None:
    rig = Rig(Api(worker=4), lock=Lock())
    rig.reader.fail = RuntimeError("boom")
    (out,) = rig.tick()
    assert out.action == "error" and rig.api.patches == 0
    assert out.reason.startswith("queue read failed: RuntimeError: boom; holding: no queue data")
    level, line = rig.log.decisions()[-1]
    assert level == "error" and line["ready"] is None and line["desired"] == 4
    rig.reader.fail = QueueReadError("statement timeout")
    (out,) = rig.tick()
    assert out.reason.startswith("queue read failed: statement timeout;")


def test_a_failed_formation_read_holds_every_type() -> None:
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(60)
    rig.api.fail = [httpx.Response(401, json={"id": "unauthorized", "message": "bad key"})]
    (out,) = rig.tick()
    assert (out.action, out.decision) == ("error", None)
    assert out.reason.startswith("holding: formation read failed:") and "401" in out.reason
    assert out.request_id is None  # the canned response carries none
    assert [kind for kind, _ in rig.observer.events] == ["heroku_error"]
    assert rig.observer.events[0][1]["call"] == "list"
    assert rig.observer.ticks[-1][2] is None


def test_a_refused_write_is_an_error_told_to_the_observer() -> None:
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(12)
    rig.tick()
    rig.tick()  # re-lists after the write; from here the formation is remembered
    rig.ready(60)
    rig.api.fail = [httpx.Response(422, json={"id": "invalid_params", "message": "no"})]
    (out,) = rig.tick()
    assert out.action == "error" and "scale failed:" in out.reason
    kind, fields = rig.observer.events[-1]
    assert (kind, fields["call"], fields["types"]) == ("heroku_error", "write", ["worker"])
    (out,) = rig.tick()  # the same change is not resent at once
    assert out.action == "held" and "not sent: Heroku refused this exact change" in out.reason


def test_a_type_missing_from_the_formation_is_named_and_others_still_scale() -> None:
    config = settings(
        {"type": "worker", "adapter": "delayed_job", "rules": RULES},
        {
            "type": "urgent",
            "adapter": "delayed_job",
            "worker_names": ["urgent1", "urgent2"],
            "rules": [{"at_least": 0, "dynos": 2}],
        },
    )
    rig = Rig(Api(worker=1), config=config, lock=Lock())
    rig.ready(12)
    worker, urgent = rig.tick()
    assert worker.action == "scaled" and rig.api.formation == {"worker": 5}
    assert (urgent.action, urgent.decision) == ("error", None)
    assert urgent.reason.startswith("process type 'urgent1' is not in the app's formation")


def test_types_sharing_an_adapter_are_read_once_with_the_largest_cap() -> None:
    config = settings(
        {"type": "worker", "adapter": "delayed_job", "queues": ["default"], "rules": RULES},
        {
            "type": "mailer",
            "adapter": "delayed_job",
            "queues": ["mail*"],
            "rules": [{"at_least": 0, "dynos": 1}, {"at_least": 200, "dynos": 2}],
        },
    )
    rig = Rig(Api(worker=1, mailer=1), config=config, lock=Lock())
    rig.reader.queues = {"default": (12, 0, 7.25), "mailers": (3, 1, None)}
    worker, mailer = rig.tick()
    assert rig.reader.caps == [201]
    assert worker.stats is not None and worker.stats.ready == 12
    assert mailer.stats is not None and (mailer.stats.ready, mailer.stats.running) == (3, 1)
    lines = {f["process_type"]: f for _, f in rig.log.decisions()}
    assert lines["worker"]["oldest_age"] == 7.2 and lines["mailer"]["oldest_age"] is None
    assert lines["worker"]["queues"] == "default" and lines["mailer"]["queues"] == "mail*"


def test_a_stated_dyno_limit_holds_a_change_that_would_only_repeat_it() -> None:
    rig = Rig(Api(worker=2), lock=Lock())
    rig.keeper.limits["worker"] = LearntLimit(2, None, rig.clock.monotonic())
    rig.ready(60)
    (out,) = rig.tick()
    assert out.decision is not None and out.decision.desired == 8
    assert out.action == "unchanged" and rig.api.patches == 0
    assert out.reason.endswith("; held at the dyno limit Heroku stated")
    rig.keeper.limits["worker"] = LearntLimit(4, None, rig.clock.monotonic())
    assert rig.tick()[0].action == "scaled" and rig.api.formation["worker"] == 4


def test_a_manual_change_is_reported_and_followed() -> None:
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(12)
    rig.tick()
    rig.api.formation["worker"] = 7  # someone ran `heroku ps:scale worker=7`
    rig.tick()  # the tick after a write re-lists
    kind, fields = rig.observer.events[-1]
    assert (kind, fields["expected"], fields["actual"]) == ("external_change", 5, 7)
    assert "external_change" in rig.log.events()


@pytest.mark.parametrize("age", [12.345, None])
def test_the_logged_age_is_rounded_to_a_tenth(age: float | None) -> None:
    rig = Rig(Api(worker=1), lock=None)
    rig.ready(0, age=age)
    rig.tick()
    assert rig.line()["oldest_age"] == (12.3 if age else None)


class Guardian:
    """The guardrails' hooks as the tick calls them: each call recorded, one type held."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def begin(self, may_send: Callable[[], str | None], calls_paused: bool = False) -> None:
        self.calls.append(f"begin paused={calls_paused} may_send={may_send()}")

    def adjust(self, outcomes: Sequence[Outcome], formation: Any) -> set[str]:
        self.calls.append("adjust")
        for out in outcomes:
            out.guardrails, out.hourly_usd = ("pause",), 0.123456
            out.action = "paused"
            out.decision = None
        return {"worker"}

    def accrue(self, formation: Any) -> None:
        self.calls.append(f"accrue {formation.quantity('worker')}")

    def external_change(self, change: Any) -> None:
        self.calls.append(f"external {change.type} {change.expected}->{change.actual}")


def test_the_guardrails_are_asked_in_order_and_a_held_type_forgets_its_policy_memory() -> None:
    rig = Rig(Api(worker=1), lock=Lock())
    rig.ready(12)
    rig.tick()  # scaled to 5 with no guardian
    assert "worker" in rig.ticker.states
    assert "guardrails" not in rig.line() and "cost_per_hour_usd" not in rig.line()
    guardian = Guardian()
    rig.ticker.guardian = guardian  # type: ignore[assignment]
    rig.api.formation["worker"] = 7  # and a person scales by hand
    (out,) = rig.tick()
    assert guardian.calls == [
        "external worker 5->7",
        "begin paused=False may_send=None",
        "adjust",
        "accrue 7",
    ]
    assert "worker" not in rig.ticker.states
    assert out.action == "paused" and rig.api.patches == 1
    assert (rig.line()["guardrails"], rig.line()["cost_per_hour_usd"]) == ("pause", 0.1235)
