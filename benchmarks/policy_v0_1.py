"""The policy of dynomatic-daemon 0.1 (dynomatic_daemon/policy.py before issue 12), frozen.

Kept only so that ``python -m benchmarks.simulate`` can replay the "before" of the before/after
table; nothing in the package imports it. Do not change it: it is the baseline. The text below
this docstring is that module unchanged, except for this docstring.

Its steps: targets from step rules (ready count), latency rules (oldest age) and jobs_per_dyno
(``ceil(ready / N)``); wake from zero; bounds; up at once, down only to the highest target of the
last scale_down_delay_seconds; a busy floor ``ceil(running / worker_concurrency)`` checked at the
tick only; missing data holds, with an optional fallback.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dynomatic_daemon.models import Decision, Formation, FormationUpdate, ProcessStats
from dynomatic_daemon.process_config import LatencyRule, ProcessSettings, Rule


@dataclass(frozen=True)
class PolicyState:
    """What one process type's policy remembers between ticks."""

    history: tuple[tuple[datetime, int], ...] = ()  # (when, bounded target), newest last
    read_failures: int = 0


@dataclass(frozen=True)
class Bounds:
    low: int
    high: int | None
    source: str  # "process" or "schedules[i]"

    def clip(self, n: int) -> int:
        return max(self.low, n if self.high is None else min(n, self.high))


def step_target(rules: Sequence[Rule], ready: int) -> tuple[int, Rule | None]:
    """The dynos the step table asks for at ``ready`` jobs, and the rule that said so."""
    reached = [r for r in rules if r.at_least <= ready]
    chosen = max(reached, key=lambda r: r.at_least, default=None)
    return (chosen.dynos, chosen) if chosen else (0, None)


def latency_target(
    rules: Sequence[LatencyRule], age: float | None
) -> tuple[int, LatencyRule | None]:
    reached = [r for r in rules if age is not None and r.at_least_seconds <= age]
    chosen = max(reached, key=lambda r: r.at_least_seconds, default=None)
    return (chosen.dynos, chosen) if chosen else (0, None)


def target(proc: ProcessSettings, stats: ProcessStats) -> tuple[int, str | None]:
    """The largest target over every rule kind, and which rule gave it."""
    candidates: list[tuple[int, str]] = []
    dynos, rule = step_target(proc.rules, stats.ready)
    if rule:
        candidates.append((dynos, f"rules[at_least={rule.at_least}]"))
    dynos, lrule = latency_target(proc.latency_rules, stats.oldest_ready_age_seconds)
    if lrule:
        candidates.append((dynos, f"latency_rules[at_least_seconds={lrule.at_least_seconds:g}]"))
    if proc.jobs_per_dyno:
        candidates.append(
            (math.ceil(stats.ready / proc.jobs_per_dyno), f"jobs_per_dyno={proc.jobs_per_dyno}")
        )
    if not candidates:
        return 0, None
    return max(candidates, key=lambda c: c[0])


def active_bounds(proc: ProcessSettings, now: datetime) -> Bounds:
    low, high, source = proc.min_dynos, proc.ceiling, "process"
    for i, window in enumerate(proc.schedules):
        if window.is_open(now):
            low = window.min_dynos if window.min_dynos is not None else low
            high = window.max_dynos if window.max_dynos is not None else high
            source = f"schedules[{i}]"
            break
    hobby_cap = len(proc.worker_names) if proc.worker_names is not None else None
    if hobby_cap is not None:
        high = hobby_cap if high is None else min(high, hobby_cap)
    if high is not None and low > high:
        low = high
    return Bounds(low, high, source)


def current_dynos(proc: ProcessSettings, formation: Formation) -> int:
    """Running dynos of a process entry: its quantity, or in hobby mode the names switched on."""
    if proc.worker_names is None:
        return formation.quantity(proc.type) or 0
    return sum(1 for name in proc.worker_names if (formation.quantity(name) or 0) > 0)


def quantities_for(proc: ProcessSettings, desired: int, formation: Formation) -> dict[str, int]:
    """The formation that runs ``desired`` dynos, changing as few hobby types as possible:
    types already on stay on, the earliest types that are off start, the last ones on stop."""
    if proc.worker_names is None:
        return {proc.type: desired}
    on = [n for n in proc.worker_names if (formation.quantity(n) or 0) > 0]
    off = [n for n in proc.worker_names if n not in on]
    keep = on[:desired] if desired <= len(on) else on + off[: desired - len(on)]
    return {name: int(name in keep) for name in proc.worker_names}


def decide(
    proc: ProcessSettings,
    stats: ProcessStats | None,
    formation: Formation,
    state: PolicyState | None,
    now: datetime,
) -> tuple[Decision, PolicyState]:
    current = current_dynos(proc, formation)
    state = state or PolicyState(history=((now, current),))  # a restart starts from what runs
    bounds = active_bounds(proc, now)
    if stats is None:
        return _without_data(proc, formation, state, bounds, current)
    goal, rule = target(proc, stats)
    notes = [
        f"target {goal} from {rule}" if rule else f"target 0: ready {stats.ready} below every rule"
    ]
    if goal == 0 and stats.ready > 0 and proc.wake_from_zero:
        goal = 1
        notes.append("woken from zero by ready jobs")
    bounded = bounds.clip(goal)
    if bounded != goal:
        which = "min_dynos" if bounded > goal else "max_dynos"
        notes.append(f"clipped by {which}={bounded} ({bounds.source})")
    history = _window(
        state.history, (now, bounded), now - timedelta(seconds=proc.scale_down_delay_seconds)
    )
    desired = _move(proc, current, bounded, history=history, bounds=bounds, notes=notes, now=now)
    desired = _protect_busy(proc, stats, current, desired, bounds=bounds, notes=notes)
    if bounds.clip(desired) != desired:  # bounds beat step limits when the formation is outside
        desired = bounds.clip(desired)
        notes.append(f"moved inside the bounds ({bounds.source})")
    new_state = PolicyState(history=history, read_failures=0)
    return _decision(proc, formation, current, desired, rule=rule, notes=notes), new_state


def _window(
    history: tuple[tuple[datetime, int], ...], newest: tuple[datetime, int], cutoff: datetime
) -> tuple[tuple[datetime, int], ...]:
    """The targets in force during (cutoff, now]: each one holds until the next observation,
    so the one observed last at or before the cutoff still counts."""
    entries = (*history, newest)
    before = [h for h in entries if h[0] <= cutoff]
    return (*before[-1:], *(h for h in entries if h[0] > cutoff))


def _move(
    proc: ProcessSettings,
    current: int,
    bounded: int,
    *,
    history: tuple[tuple[datetime, int], ...],
    bounds: Bounds,
    notes: list[str],
    now: datetime,
) -> int:
    if bounded > current:
        step = proc.max_step_up
        desired = bounded if step is None else min(bounded, current + step)
        if desired < bounded:
            notes.append(f"limited by max_step_up={step}")
        return desired
    if bounded == current:
        return current
    highest = bounds.clip(max(t for _, t in history))
    if highest >= current:
        # the last target that still holds the count up stops counting a delay after its successor
        last = max(i for i, (_, t) in enumerate(history) if bounds.clip(t) >= current)
        ends = history[last + 1][0]
        left = (ends - now).total_seconds() + proc.scale_down_delay_seconds
        notes.append(f"holding: scale-down delay {left:.0f}s left")
        return current
    desired = highest
    if highest > bounded:
        notes.append(f"down only to the window's highest target {highest}")
    step = proc.max_step_down
    if step is not None and current - desired > step:
        desired = current - step
        notes.append(f"limited by max_step_down={step}")
    return desired


def _protect_busy(
    proc: ProcessSettings,
    stats: ProcessStats,
    current: int,
    desired: int,
    *,
    bounds: Bounds,
    notes: list[str],
) -> int:
    if not proc.protect_running or stats.running is None or desired >= current:
        return desired
    floor = bounds.clip(math.ceil(stats.running / proc.worker_concurrency))
    if desired < floor:
        notes.append(f"held at the busy floor {min(floor, current)} ({stats.running} running)")
        return min(floor, current)
    return desired


def _without_data(
    proc: ProcessSettings, formation: Formation, state: PolicyState, bounds: Bounds, current: int
) -> tuple[Decision, PolicyState]:
    failures = state.read_failures + 1
    desired, notes = current, [f"holding: no queue data ({failures} failed read(s) in a row)"]
    fallback = proc.fallback_dynos
    if fallback is not None and failures >= proc.read_failures_before_fallback:
        raised = min(fallback, bounds.high) if bounds.high is not None else fallback
        if raised > current:
            desired = raised
            notes.append(f"fallback_dynos={fallback} raises it to {raised}")
    return (
        _decision(proc, formation, current, desired, rule=None, notes=notes),
        replace(state, read_failures=failures),
    )


def _decision(
    proc: ProcessSettings,
    formation: Formation,
    current: int,
    desired: int,
    *,
    rule: str | None,
    notes: list[str],
) -> Decision:
    wanted = quantities_for(proc, desired, formation)
    updates = tuple(
        FormationUpdate(ftype, qty)
        for ftype, qty in wanted.items()
        if formation.quantity(ftype) != qty
    )
    verb = "up" if desired > current else "down" if desired < current else "stay"
    notes.append(f"{verb} {current} -> {desired}" if verb != "stay" else f"stay at {current}")
    return Decision(proc.type, current, desired, updates, rule, "; ".join(notes))
