"""The guardrails' moving parts, for the tick: what is in force (pauses and overrides from the
state store, synced on a thread of its own by sync.py), the app's newest release (releases.py)
and the spend that budgets count (spend.py). ``guardrails.guard`` applies them to each decision.

Nothing here raises into the tick or waits long: a state store that is slow or down costs a
tick at most ``SYNC_WAIT_SECONDS`` (nothing while it keeps failing), and the last guardrails
known stay in force, each still expiring on time. Without a store, overrides and spend live in
memory: a restart forgets them (docs/guardrails.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from dynomatic_daemon import budget, prices
from dynomatic_daemon.clock import Clock
from dynomatic_daemon.config import ProcessSettings, Settings
from dynomatic_daemon.demand import active_bounds
from dynomatic_daemon.formation_keeper import ExternalChange
from dynomatic_daemon.guardrails import NOTHING, OVERRIDE, PAUSED, InForce, guard
from dynomatic_daemon.heroku import HerokuClient, MaySend
from dynomatic_daemon.logs import Logger
from dynomatic_daemon.models import Formation
from dynomatic_daemon.policy import current_dynos
from dynomatic_daemon.state.releases import ReleaseWatcher
from dynomatic_daemon.state.spend import SpendMeter
from dynomatic_daemon.state.store import Guard, Spent, StateStore
from dynomatic_daemon.state.sync import StateSync

if TYPE_CHECKING:
    from dynomatic_daemon.tick import Outcome

SYNC_WAIT_SECONDS = 0.25  # a tick waits this long at most for the state store's answer
FIRST_SYNC_WAIT_SECONDS = 3.0  # the first tick: connect (2 s) and one read (1 s)
SYNC_CLOSE_SECONDS = 1.0
SOMEONE = "someone outside the daemon (the formation API does not say who)"


@dataclass(frozen=True)
class TypeReport:
    process_type: str
    in_force: InForce
    dynos: int
    hourly_usd: float | None  # what its dynos cost an hour now
    spent: Spent


@dataclass
class Guardian:
    settings: Settings
    heroku: HerokuClient
    clock: Clock
    log: Logger
    store: StateStore | None = None
    event: Callable[..., None] = lambda *a, **k: None  # the observer's event(app, kind, ...)
    _guards: list[Guard] = field(default_factory=list)  # in force this tick
    _stored: list[Guard] = field(default_factory=list)  # as the store last answered
    _unsaved: list[tuple[int, Guard]] = field(default_factory=list)  # (put number, guard)
    _seen: set[tuple[str, str]] = field(default_factory=set)  # (kind, type) logged as begun
    releases: ReleaseWatcher = field(init=False)
    meter: SpendMeter = field(init=False)
    sync: StateSync | None = field(init=False, default=None)
    _alerted: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.releases = ReleaseWatcher(self.settings, self.heroku, self.clock, self.log, self.event)
        gap = max(2.0 * self.settings.daemon.interval_seconds, 60.0)
        self.meter = SpendMeter(max_gap_seconds=gap)
        if self.store is not None:
            self.sync = StateSync(self.store, self.clock, self.log)
            self.sync.start()

    @property
    def app(self) -> str:
        return self.settings.heroku.app

    # -- once per tick, before deciding -----------------------------------------------------

    def begin(
        self, may_send: MaySend, calls_paused: bool = False, wait: float | None = None
    ) -> None:
        """Before deciding: the state store's answer (waited for briefly), and a release poll.
        ``wait``: how long to wait for the store (default: a short bound, see sync.py)."""
        now = self.clock.now()
        self.meter.roll(now)
        if self.sync is not None:
            spend_seq = self.sync.submit_spend(self.meter.take_pending())
            short = min(SYNC_WAIT_SECONDS, self.settings.daemon.interval_seconds / 4)
            snapshot = self.sync.refresh(
                short if wait is None else wait, FIRST_SYNC_WAIT_SECONDS if wait is None else wait
            )
            if snapshot is not None:
                self._stored = list(snapshot.guards)
                # an override is kept here until the store has it (then `resume` can end it)
                self._unsaved = [
                    (seq, g) for seq, g in self._unsaved if seq > snapshot.puts_through
                ]
                if snapshot.spend_through == spend_seq:
                    self.meter.spent = dict(snapshot.spent)
        if not calls_paused:
            self.releases.poll(may_send)
        stored = {(g.kind, g.process_type) for g in self._stored}
        extra = [g for _, g in self._unsaved if (g.kind, g.process_type) not in stored]
        self._guards = [g for g in [*self._stored, *extra] if g.until > now]

    # -- manual changes ----------------------------------------------------------------------

    def external_change(self, change: ExternalChange) -> None:
        proc = self._owner(change.type)
        if proc is None or not proc.manual_override_seconds:
            return
        seconds = proc.manual_override_seconds
        reason = f"{change.type} set to {change.actual} (the daemon had {change.expected})"
        guard_row = self._put("override", proc.type, seconds, change.actual, reason, SOMEONE)
        self.log.warning(
            "override",
            process_type=proc.type,
            formation_type=change.type,
            expected=change.expected,
            actual=change.actual,
            by=SOMEONE,
            resume_at=guard_row.until.isoformat(),
            seconds=seconds,
            stored=self.sync is not None,
            reason="a person changed the formation: left alone until resume_at",
        )
        self._seen.add(("override", proc.type))
        self.event(self.app, "override", process_type=proc.type, reason=reason, seconds=seconds)

    def _put(  # noqa: PLR0917 - one row's columns, in the table's order
        self, kind: str, ptype: str, seconds: float, quantity: int, reason: str, by: str
    ) -> Guard:
        """Keep a guardrail in force from now, and hand it to the store (on its thread)."""
        now = self.clock.now()
        until = now + timedelta(seconds=seconds)
        guard_row = Guard(kind, ptype, now, until, seconds, quantity, reason, by)
        seq = 0
        if self.sync is not None:
            seq = self.sync.submit_put(
                kind=kind,
                process_type=ptype,
                seconds=seconds,
                quantity=quantity,
                reason=reason,
                by=by,
            )
        key = (kind, ptype)
        self._unsaved = [(s, g) for s, g in self._unsaved if (g.kind, g.process_type) != key]
        self._unsaved.append((seq, guard_row))
        self._guards = [g for g in self._guards if (g.kind, g.process_type) != key]
        self._guards.append(guard_row)
        return guard_row

    def _owner(self, ftype: str) -> ProcessSettings | None:
        return next((p for p in self.settings.process if ftype in p.formation_types), None)

    # -- after deciding ----------------------------------------------------------------------

    def adjust(self, outcomes: Sequence[Outcome], formation: Formation) -> set[str]:
        """Apply what is in force to each decision; return the types held (pause, override),
        whose policy memory the tick drops so they resume from the formation they find."""
        now, held = self.clock.now(), set[str]()
        running = {p.type: current_dynos(p, formation) for p in self.settings.process}
        price = {p.type: self._hourly(p, formation) for p in self.settings.process}
        for out in outcomes:
            ptype = out.process.type
            unit = price[ptype]
            out.hourly_usd = None if unit is None else running[ptype] * unit
            if out.decision is None:
                continue
            in_force = self._in_force(out.process, now, running, price)
            if in_force.cap is not None and self.settings.budget.mode == "alert":
                if out.decision.desired > in_force.cap:
                    self._alert(ptype, in_force, now)
                in_force = replace(in_force, cap=None, cap_reason="")
            self._log_transitions(ptype, in_force)
            out.guardrails = in_force.names
            floor = active_bounds(out.process, now).low
            result = guard(
                out.process,
                out.decision,
                formation,
                in_force,
                has_data=out.stats is not None,
                floor=floor,
            )
            out.reason = _replace_tail(out.reason, out.decision.reason, result.decision.reason)
            out.decision = result.decision
            if result.hold == PAUSED:
                out.action = "paused"
            elif result.hold == OVERRIDE:
                out.action = "override"
            if result.hold is not None:
                held.add(ptype)
        return held

    def _in_force(
        self,
        proc: ProcessSettings,
        now: datetime,
        running: dict[str, int],
        price: dict[str, float | None],
    ) -> InForce:
        pause = self._active("pause", proc.type, now)
        override = self._active("override", proc.type, now)
        hold = self.releases.hold(proc)
        capped = self._cap(proc, now, running, price)
        if not (pause or override or hold or capped):
            return NOTHING
        return InForce(
            pause=_describe(pause, now) if pause else None,
            override=_describe(override, now) if override else None,
            release_hold=hold,
            cap=capped.dynos if capped else None,
            cap_reason=capped.reason if capped else "",
        )

    def _active(self, kind: str, ptype: str, now: datetime) -> Guard | None:
        found = [g for g in self._guards if g.kind == kind and g.covers(ptype) and g.until > now]
        return max(found, key=lambda g: g.until) if found else None

    def _cap(
        self,
        proc: ProcessSettings,
        now: datetime,
        running: dict[str, int],
        price: dict[str, float | None],
    ) -> budget.Cap | None:
        settings, found = self.settings.budget, []
        mine = self.meter.of(proc.type)
        limit = settings.process.get(proc.type)
        if limit is not None:
            usage = budget.Usage(mine.day_dyno_hours, mine.month_usd, price[proc.type])
            found.append(budget.cap(limit, usage, now, f"budget.process.{proc.type}"))
        if settings.any:
            others = [p for p in running if p != proc.type]
            usage = budget.Usage(
                sum(s.day_dyno_hours for s in self.meter.spent.values()),
                sum(s.month_usd for s in self.meter.spent.values()),
                price[proc.type],
                others_dynos=sum(running[p] for p in others),
                others_usd_per_hour=sum(running[p] * (price[p] or 0.0) for p in others),
            )
            found.append(budget.cap(settings, usage, now, "budget"))
        caps = [c for c in found if c is not None]
        if not caps:
            return None
        return min(caps, key=lambda c: c.dynos)

    def _alert(self, ptype: str, in_force: InForce, now: datetime) -> None:
        key = (ptype, now.date().isoformat())
        if key in self._alerted:
            return  # one alert per type per day; the log line says it each tick it holds
        self._alerted.add(key)
        self.log.warning(
            "budget_alert",
            process_type=ptype,
            affordable_dynos=in_force.cap,
            reason=in_force.cap_reason,
        )
        self.event(
            self.app,
            "budget",
            process_type=ptype,
            reason=in_force.cap_reason,
            affordable_dynos=in_force.cap,
        )

    def _log_transitions(self, ptype: str, in_force: InForce) -> None:
        for kind, value in (("pause", in_force.pause), ("override", in_force.override)):
            key = (kind, ptype)
            if value is not None and key not in self._seen:
                self._seen.add(key)
                self.log.warning(
                    "paused" if kind == "pause" else "override", process_type=ptype, reason=value
                )
                self.event(
                    self.app,
                    "paused" if kind == "pause" else "override",
                    process_type=ptype,
                    reason=value,
                )
            elif value is None and key in self._seen:
                self._seen.discard(key)
                name = "resumed_after_pause" if kind == "pause" else "override_ended"
                self.log.info(
                    name, process_type=ptype, reason="deciding again from the formation as it is"
                )

    def _hourly(self, proc: ProcessSettings, formation: Formation) -> float | None:
        sizes = {formation.entries[t].size for t in proc.formation_types if t in formation.entries}
        known = [prices.hourly_usd(s, self.settings.budget.prices) for s in sizes]
        if not known or any(k is None for k in known):
            return None
        return max(k for k in known if k is not None)

    # -- spend --------------------------------------------------------------------------------

    def accrue(self, formation: Formation) -> None:
        """Count what ran since the last tick, for the budgets."""
        self.meter.accrue(
            self.settings.process, formation, self.clock.now(), lambda p: self._hourly(p, formation)
        )

    def report(self, formation: Formation) -> list[TypeReport]:
        """Per process type: what is in force now, what its dynos cost, what it has spent
        (for `dynomatic check` and `once --json`; it sends no alert)."""
        now = self.clock.now()
        running = {p.type: current_dynos(p, formation) for p in self.settings.process}
        price = {p.type: self._hourly(p, formation) for p in self.settings.process}
        found = []
        for proc in self.settings.process:
            unit = price[proc.type]
            found.append(
                TypeReport(
                    proc.type,
                    self._in_force(proc, now, running, price),
                    running[proc.type],
                    None if unit is None else unit * running[proc.type],
                    self.meter.of(proc.type),
                )
            )
        return found

    def close(self) -> None:
        if self.sync is not None:
            self.sync.close(SYNC_CLOSE_SECONDS)


def _describe(g: Guard, now: datetime) -> str:
    left = max(0.0, (g.until - now).total_seconds())
    who = f" by {g.created_by}" if g.created_by else ""
    why = f" ({g.reason})" if g.reason else ""
    return f"{g.kind}{who}{why}, {left:.0f}s left, until {g.until.isoformat(timespec='seconds')}"


def _replace_tail(reason: str, old: str, new: str) -> str:
    """The outcome's reason ends with the decision's; swap in the guarded one."""
    return reason[: len(reason) - len(old)] + new if reason.endswith(old) else f"{reason}; {new}"
