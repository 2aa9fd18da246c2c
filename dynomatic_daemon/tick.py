"""One cycle for every configured process type: read queues, decide, write once, log once each.

Failures are isolated: a failed queue read holds the process types that depend on it, a failed
formation read or write holds every type, and nothing here ever raises to the scheduler.
A daemon that does not hold the leader lock only logs ``standby``. When its role changes it
forgets the formation and what its policy remembered, and lists the formation before deciding.
Each request it sends is guarded: none after ``stopping`` is set, and no write unless the
leader lock of this very tenure is proven held right before it (retries included).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from dynomatic_daemon import l2met, policy
from dynomatic_daemon.adapters.base import QueueReader
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.config import ProcessSettings, Settings
from dynomatic_daemon.db import Database
from dynomatic_daemon.errors import DynomaticError, HerokuError, HerokuHeldBackError
from dynomatic_daemon.events import NO_OBSERVER, Observer
from dynomatic_daemon.formation_keeper import FormationKeeper
from dynomatic_daemon.leader import Leadership, Role
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.models import (
    Decision,
    Formation,
    FormationUpdate,
    ProcessStats,
    QueueReading,
    QueueSelector,
)
from dynomatic_daemon.state.guardian import Guardian

# scaled, unchanged, dry_run, held (a change was due but not sent: backing off, saving budget,
# shutting down, the leader lock lost), error, or a guardrail that sends nothing for the type:
# paused (dynomatic pause) or override (a person scaled it; see guardrails.py)
Action = Literal["scaled", "unchanged", "dry_run", "held", "error", "paused", "override"]


@dataclass
class Outcome:
    """What happened to one process type in one tick; rendered as its scale_decision line."""

    process: ProcessSettings
    stats: ProcessStats | None = None
    decision: Decision | None = None
    action: Action = "unchanged"
    reason: str = ""
    request_id: str | None = None
    guardrails: tuple[str, ...] = ()  # in force for this type: pause, override, budget, ...
    hourly_usd: float | None = None  # what its dynos cost an hour now; None: size not priced


@dataclass
class Ticker:
    settings: Settings
    databases: Mapping[str, Database]  # by adapter name; adapters may share one
    keeper: FormationKeeper
    adapters: Mapping[str, QueueReader]
    clock: Clock
    log: Logger
    leadership: Leadership | None = None  # None: a one-off command that needs no lock
    observer: Observer = NO_OBSERVER  # history, notifications, status page; told after logging
    stopping: threading.Event = field(default_factory=threading.Event)
    states: dict[str, policy.PolicyState] = field(default_factory=dict)
    role: Role | None = None  # the role of the last tick; None without leader election
    guardian: Guardian | None = None  # pauses, overrides, release holds, budgets
    _tenure: int = 0

    def tick(self, dry_run: bool | None = None) -> list[Outcome]:
        role = self._elect()
        if role == Role.STANDBY:
            self.log.info(
                "standby", app=self.settings.heroku.app, reason="another copy holds the lock"
            )
            self._observe([], role, None)
            return []
        dry = self.settings.daemon.dry_run if dry_run is None else dry_run
        outcomes = [Outcome(p) for p in self.settings.process]
        self._read_queues(outcomes)
        formation = self._formation(outcomes)
        if formation is not None:
            if self.guardian is not None:
                self.guardian.begin(self._may_read, self.keeper.calls_paused)
            for out in outcomes:
                self._decide(out, formation)
            self._guard(outcomes, formation)
            self._apply(outcomes, formation, dry)
        for out in outcomes:
            self._log(out)
        self._observe(outcomes, role, formation)
        return outcomes

    def _guard(self, outcomes: Sequence[Outcome], formation: Formation) -> None:
        if self.guardian is None:
            return
        for held in self.guardian.adjust(outcomes, formation):
            # resume from the formation found then, not from what the policy saw before
            self.states.pop(held, None)
        self.guardian.accrue(formation)

    def _observe(
        self, outcomes: list[Outcome], role: Role | None, formation: Formation | None
    ) -> None:
        app, now = self.settings.heroku.app, self.clock.now()
        named = (role or Role.LEADER).value  # no election: this copy acts as the leader
        self.observer.tick_done(app, outcomes, role=named, formation=formation, at=now)

    def read_adapter(self, name: str) -> QueueReading:
        """One round trip for every process type that uses this adapter."""
        adapter = self.adapters[name]
        procs = [p for p in self.settings.process if p.adapter == name]
        selectors = [QueueSelector(p.queues) for p in procs]
        cap = max(p.count_cap for p in procs)
        return self.databases[name].run(lambda conn: adapter.read(conn, selectors, cap))

    def _read_queues(self, outcomes: Sequence[Outcome]) -> None:
        by_adapter: dict[str, list[Outcome]] = defaultdict(list)
        for out in outcomes:
            by_adapter[out.process.adapter].append(out)
        for name, group in by_adapter.items():
            try:
                reading = self.read_adapter(name)
            except Exception as exc:  # noqa: BLE001 - a reader bug must not stop other types
                for out in group:
                    _fail(out, f"queue read failed: {_describe(exc)}")
                continue
            for out in group:
                selector = QueueSelector(out.process.queues)
                mine = (q for q in reading.queues if selector.matches(q.queue))
                out.stats = ProcessStats.combine(mine)

    def _elect(self) -> Role | None:
        if self.leadership is None:
            return None
        role, tenure = self.leadership.acquire(), self.leadership.tenure
        if role != self.role or tenure != self._tenure:
            self._role_changed(role, tenure)
        return role

    def _role_changed(self, role: Role, tenure: int) -> None:
        # While this copy did not lead, another may have written: what it knew is stale.
        self.keeper.forget()
        self.states.clear()
        if role == Role.LEADER:
            self.log.info("leader_elected", app=self.settings.heroku.app, tenure=tenure)
        elif self.role == Role.LEADER:
            self.log.warning("leadership_lost", app=self.settings.heroku.app, now=role.value)
        self.role, self._tenure = role, tenure

    def _may_read(self) -> str | None:
        return "shutting down" if self.stopping.is_set() else None

    def _may_write(self) -> str | None:
        """Asked right before each PATCH attempt: why it must not go out, or None."""
        if self.stopping.is_set():
            return "shutting down"
        lead = self.leadership if self.role == Role.LEADER else None
        if lead is not None and not (lead.verify() and lead.tenure == self._tenure):
            return "the leader lock was lost"
        return None

    def _formation(self, outcomes: Sequence[Outcome]) -> Formation | None:
        try:
            formation, changes = self.keeper.formation(self._may_read)
        except HerokuError as exc:
            for out in outcomes:
                _fail(out, f"holding: formation read failed: {_describe(exc)}")
                out.request_id = exc.request_id
            self.observer.event(self.settings.heroku.app, "heroku_error", error=exc, call="list")
            return None
        for change in changes:
            self.observer.event(
                self.settings.heroku.app,
                "external_change",
                process_type=change.type,
                expected=change.expected,
                actual=change.actual,
            )
            self.log.warning(
                "external_change",
                process_type=change.type,
                expected=change.expected,
                actual=change.actual,
                reason="the formation was changed outside the daemon; continuing from it",
            )
            if self.guardian is not None:
                self.guardian.external_change(change)
        return formation

    def _decide(self, out: Outcome, formation: Formation) -> None:
        missing = missing_types(out.process, formation)
        if missing:
            _fail(out, not_in_formation(missing[0]))
            return
        proc = out.process
        out.decision, self.states[proc.type] = policy.decide(
            proc, out.stats, formation, self.states.get(proc.type), self.clock.now()
        )
        out.reason = f"{out.reason}; {out.decision.reason}" if out.reason else out.decision.reason

    def _apply(self, outcomes: Sequence[Outcome], formation: Formation, dry_run: bool) -> None:
        sendable = [(o, u) for o in outcomes if (u := self._sendable(o, formation))]
        changing = [o for o, _ in sendable]
        updates = [u for _, mine in sendable for u in mine]
        if not updates:
            return
        if dry_run:
            _mark(changing, "dry_run", None)
        else:
            self._write(changing, updates)

    def _sendable(self, out: Outcome, formation: Formation) -> list[FormationUpdate]:
        """The part of this type's change that may go out this tick."""
        if out.decision is None or not out.decision.changes:
            return []
        if self.role == Role.UNKNOWN and out.stats is not None:
            # Without the lock only a change every copy would make alike may go out: a
            # fallback on missing data, which only raises.
            out.reason += "; held: the leader lock cannot be checked (database unreachable)"
            return []
        mine = [
            u
            for u in self.keeper.clamp(out.decision.updates, formation)
            if formation.quantity(u.type) != u.quantity
        ]
        if not mine:
            out.reason += "; held at the dyno limit Heroku stated"
        return mine

    def _write(self, changing: Sequence[Outcome], updates: Sequence[FormationUpdate]) -> None:
        try:
            result = self.keeper.write(updates, self._may_write)
        except HerokuHeldBackError as exc:
            _mark(changing, "held", f"not sent: {exc}")
        except HerokuError as exc:
            _mark(changing, "error", f"scale failed: {_describe(exc)}")
            for out in changing:
                out.request_id = exc.request_id
            types = [u.type for u in updates]
            self.observer.event(
                self.settings.heroku.app, "heroku_error", error=exc, call="write", types=types
            )
        else:
            _mark(changing, "scaled", None)
            for out in changing:
                out.request_id = result.request_id

    def _log(self, out: Outcome) -> None:
        stats, decision = out.stats, out.decision
        method = self.log.error if out.action == "error" else self.log.info
        method(
            "scale_decision",
            process_type=out.process.type,
            queues=",".join(out.process.queues) if out.process.queues else "*",
            ready=stats.ready if stats else None,
            ready_capped=stats.ready_capped if stats else None,
            oldest_age=_round(stats.oldest_ready_age_seconds) if stats else None,
            running=stats.running if stats else None,
            current=decision.current if decision else None,
            desired=decision.desired if decision else None,
            action=out.action,
            rule=decision.rule if decision else None,
            reason=out.reason,
            request_id=out.request_id,
            rate_limit_remaining=self.keeper.heroku.rate_limit_remaining,
            **_guard_fields(out),
            **l2met.fields(out.process.type, stats, decision, out.action),
        )


def _guard_fields(out: Outcome) -> dict[str, object]:
    """Only when something is known: a daemon without guardrails logs what it always did."""
    found: dict[str, object] = {}
    if out.guardrails:
        found["guardrails"] = ",".join(out.guardrails)
    if out.hourly_usd is not None:
        found["cost_per_hour_usd"] = round(out.hourly_usd, 4)
    return found


def missing_types(proc: ProcessSettings, formation: Formation) -> list[str]:
    return [t for t in proc.formation_types if t not in formation.entries]


def not_in_formation(process_type: str) -> str:
    return (
        f"process type {process_type!r} is not in the app's formation; "
        "add it to the Procfile and deploy"
    )


def _fail(out: Outcome, reason: str) -> None:
    out.action = "error"
    out.reason = f"{out.reason}; {reason}" if out.reason else reason


def _mark(outcomes: Sequence[Outcome], action: Action, note: str | None) -> None:
    for out in outcomes:
        out.action = action
        if note:
            out.reason = f"{out.reason}; {note}"


def _describe(exc: Exception) -> str:
    if isinstance(exc, DynomaticError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
