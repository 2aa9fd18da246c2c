"""One cycle for every configured process type: read queues, decide, write once, log once each.

Failures are isolated: a failed queue read holds the process types that depend on it, a failed
formation read or write holds every type, and nothing here ever raises to the scheduler.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dynomatic_daemon import policy
from dynomatic_daemon.adapters.base import QueueReader
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.config import ProcessSettings, Settings
from dynomatic_daemon.db import Database
from dynomatic_daemon.errors import DynomaticError, HerokuError
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.models import Decision, Formation, ProcessStats, QueueReading, QueueSelector


@dataclass
class Outcome:
    """What happened to one process type in one tick; rendered as its scale_decision line."""

    process: ProcessSettings
    stats: ProcessStats | None = None
    decision: Decision | None = None
    action: str = "unchanged"
    reason: str = ""
    request_id: str | None = None


@dataclass
class FormationCache:
    """The last formation Heroku reported, re-listed every ``resync_seconds`` or after a write."""

    heroku: HerokuClient
    clock: Clock
    resync_seconds: float
    _formation: Formation | None = None
    _fetched_at: float = 0.0

    def get(self) -> Formation:
        age = self.clock.monotonic() - self._fetched_at
        if self._formation is None or age >= self.resync_seconds:
            self._formation = self.heroku.list_formation().formation
            self._fetched_at = self.clock.monotonic()
        return self._formation

    def invalidate(self) -> None:
        self._formation = None


@dataclass
class Ticker:
    settings: Settings
    databases: Mapping[str, Database]  # by adapter name; adapters may share one
    heroku: HerokuClient
    adapters: Mapping[str, QueueReader]
    clock: Clock
    log: Any
    formations: FormationCache = field(init=False)
    states: dict[str, policy.PolicyState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.formations = FormationCache(
            self.heroku, self.clock, self.settings.heroku.resync_seconds
        )

    def tick(self, dry_run: bool | None = None) -> list[Outcome]:
        dry = self.settings.daemon.dry_run if dry_run is None else dry_run
        outcomes = [Outcome(p) for p in self.settings.process]
        self._read_queues(outcomes)
        formation = self._formation(outcomes)
        if formation is not None:
            for out in outcomes:
                self._decide(out, formation)
            self._apply(outcomes, dry)
        for out in outcomes:
            self._log(out)
        return outcomes

    def _read_queues(self, outcomes: Sequence[Outcome]) -> None:
        by_adapter: dict[str, list[Outcome]] = defaultdict(list)
        for out in outcomes:
            by_adapter[out.process.adapter].append(out)
        for name, group in by_adapter.items():
            try:
                reading = self.read_adapter(name)
            except Exception as exc:  # noqa: BLE001 - a reader bug must not stop other types
                for out in group:
                    _fail(out, f"holding: queue read failed: {_describe(exc)}")
                continue
            for out in group:
                selector = QueueSelector(out.process.queues)
                mine = (q for q in reading.queues if selector.matches(q.queue))
                out.stats = ProcessStats.combine(mine)

    def read_adapter(self, name: str) -> QueueReading:
        """One round trip for every process type that uses this adapter."""
        adapter = self.adapters[name]
        procs = [p for p in self.settings.process if p.adapter == name]
        selectors = [QueueSelector(p.queues) for p in procs]
        cap = max(self.settings.cap_for(p) for p in procs)
        return self.databases[name].run(lambda conn: adapter.read(conn, selectors, cap))

    def _formation(self, outcomes: Sequence[Outcome]) -> Formation | None:
        try:
            return self.formations.get()
        except HerokuError as exc:
            for out in outcomes:
                if out.action != "error":
                    _fail(out, f"holding: formation read failed: {_describe(exc)}")
                out.request_id = exc.request_id
            return None

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

    def _apply(self, outcomes: Sequence[Outcome], dry_run: bool) -> None:
        changing = [o for o in outcomes if o.decision is not None and o.decision.changes]
        if not changing:
            return
        if dry_run:
            for out in changing:
                out.action = "dry_run"
            return
        updates = [u for o in changing for u in o.decision.updates]  # type: ignore[union-attr]
        try:
            result = self.heroku.batch_update(updates)
        except HerokuError as exc:
            self.formations.invalidate()
            for out in changing:
                _fail(out, f"{out.reason}; scale failed: {_describe(exc)}")
                out.request_id = exc.request_id
            return
        self.formations.invalidate()
        for out in changing:
            out.action = "scaled"
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
            rate_limit_remaining=self.heroku.rate_limit_remaining,
        )


def missing_types(proc: ProcessSettings, formation: Formation) -> list[str]:
    return [t for t in proc.formation_types if t not in formation.entries]


def not_in_formation(process_type: str) -> str:
    return (
        f"process type {process_type!r} is not in the app's formation; "
        "add it to the Procfile and deploy"
    )


def _fail(out: Outcome, reason: str) -> None:
    out.action = "error"
    out.reason = reason


def _describe(exc: Exception) -> str:
    if isinstance(exc, DynomaticError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
