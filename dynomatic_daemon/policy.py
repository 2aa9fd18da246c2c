"""The pure decision engine: facts, the formation, remembered state and ``now`` in; a Decision out.

No I/O, no clock reads, no logging. ``decide(proc, stats, formation, state, now)`` is the entry
point the tick, ``dynomatic simulate`` and the tests drive. The steps, in order (docs/scaling.md
has the pictures and the measurements behind each):

1. Demand (``demand.measure``). The target is the largest of the step ``rules`` (on the ready
   count), the ``latency_rules`` (on the oldest ready job's age) and ``jobs_per_dyno`` (on ready
   + running jobs); with ready jobs and a target of 0, one dyno (``wake_from_zero``). The busy
   level, ``ceil(running / worker_concurrency)`` but never above the dynos running, is what the
   running jobs hold. A tick's demand level is the larger of the two, within the bounds.
2. Boot awareness. Age that accrued while dynos this policy started were still booting
   (``dyno_boot_seconds``) does not raise the target: that wait was already answered.
3. Bounds: min/max dynos, overridden by the first open schedule window; hobby mode caps at the
   number of worker names. Bounds are hard: they beat every step below, the busy level and the
   fallback.
4. Up fast: at once to the target (at most ``max_step_up``).
5. Down carefully: only to the highest demand level of the last ``scale_down_delay_seconds`` (at
   most ``max_step_down``), so neither a target that flaps nor a busy level that dips moves the
   formation; after a restart the formation found is that window's baseline. Then only on a
   quiet tick: Heroku stops the highest-numbered dynos whatever they run, so a scale-down waits
   until the running jobs fill at most half the slots of the dynos that stay.
6. The last dyno: a single dyno stops only after ``idle_before_zero_seconds`` without a ready or
   running job, so a trickle keeps it warm. Several dynos idle for the whole window stop
   together (never 10 -> 1 -> 0: unchanging input changes the formation at most once).
7. Missing data holds the formation; after enough failed reads ``fallback_dynos`` may raise it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dynomatic_daemon.demand import Bounds, active_bounds, busy_level, measure
from dynomatic_daemon.models import Decision, Formation, FormationUpdate, ProcessStats
from dynomatic_daemon.process_config import ProcessSettings

# active_bounds and Bounds moved to demand.py; other modules still reach them through here
__all__ = ["Bounds", "PolicyState", "active_bounds", "current_dynos", "decide", "quantities_for"]
History = tuple[tuple[datetime, int], ...]
QUIET_SHARE = 0.5  # a scale-down waits until the running jobs fill at most this share of what stays


@dataclass(frozen=True)
class PolicyState:
    """What one process type's policy remembers between ticks."""

    history: History = ()  # (when, demand level within the bounds), newest last
    read_failures: int = 0
    last_up: datetime | None = None  # when this policy last raised the formation
    idle_since: datetime | None = None  # since when no job was ready or running


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
    demand = measure(proc, stats, now=now, last_up=state.last_up, bounds=bounds, current=current)
    cutoff = now - timedelta(seconds=proc.scale_down_delay_seconds)
    history = _window(state.history, (now, demand.level), cutoff)
    idle = stats.ready == 0 and busy_level(proc, stats) == 0
    idle_since = (state.idle_since or now) if idle else None
    if demand.up_to > current:
        steps = [_up(proc, current, demand.up_to)]
    else:
        down = _down(proc, current, history, bounds, now=now)
        quiet = _quiet_tick(proc, stats, current, down.desired)
        steps = [down, quiet, _last_dyno(proc, current, quiet.desired, idle_since, now=now)]
    desired = steps[-1].desired
    notes = demand.notes + tuple(note for step in steps for note in step.notes)
    if bounds.clip(desired) != desired:  # bounds beat step limits when the formation is outside
        desired = bounds.clip(desired)
        notes += (f"moved inside the bounds ({bounds.source})",)
    new_state = PolicyState(
        history=history,
        last_up=now if desired > current else state.last_up,
        idle_since=idle_since,
    )
    return _decision(proc, formation, current, desired, rule=demand.rule, notes=notes), new_state


@dataclass(frozen=True)
class Step:
    """What one step of the scale-down (or the scale-up) leaves the count at, and why."""

    desired: int
    notes: tuple[str, ...] = ()


def _window(history: History, newest: tuple[datetime, int], cutoff: datetime) -> History:
    """The levels in force during (cutoff, now]: each one holds until the next observation,
    so the one observed last at or before the cutoff still counts."""
    entries = (*history, newest)
    before = [h for h in entries if h[0] <= cutoff]
    return (*before[-1:], *(h for h in entries if h[0] > cutoff))


def _up(proc: ProcessSettings, current: int, goal: int) -> Step:
    step = proc.max_step_up
    desired = goal if step is None else min(goal, current + step)
    if desired < goal:
        return Step(desired, (f"limited by max_step_up={step}",))
    return Step(desired)


def _down(
    proc: ProcessSettings,
    current: int,
    history: History,
    bounds: Bounds,
    *,
    now: datetime,
) -> Step:
    highest = bounds.clip(max(level for _, level in history))
    if highest >= current:
        if history[-1][1] < current:
            # the last level holding the count up stops counting a delay after its successor
            last = max(i for i, (_, level) in enumerate(history) if bounds.clip(level) >= current)
            left = (history[last + 1][0] - now).total_seconds() + proc.scale_down_delay_seconds
            return Step(current, (f"holding: scale-down delay {left:.0f}s left",))
        return Step(current)
    desired = highest
    notes: tuple[str, ...] = ()
    if highest > history[-1][1]:
        notes += (f"down only to the window's highest level {highest}",)
    step = proc.max_step_down
    if step is not None and current - desired > step:
        desired = current - step
        notes += (f"limited by max_step_down={step}",)
    return Step(desired, notes)


def _quiet_tick(proc: ProcessSettings, stats: ProcessStats, current: int, desired: int) -> Step:
    """Stop dynos only while the running jobs fill at most half the slots that remain.

    Heroku stops the highest-numbered dynos and running jobs are spread over all of them, so any
    scale-down with jobs running may cut some off. Waiting for a quiet tick (a lull, not merely a
    lower average) is what keeps that rare: fewer scale-downs, each with fewer jobs in flight."""
    running = stats.running or 0
    if desired >= current or running == 0 or not proc.protect_running:
        return Step(desired)
    quiet = min(current, math.ceil(running / (proc.worker_concurrency * QUIET_SHARE)))
    if quiet > desired:
        why = f"held at {quiet}: {running} running would fill over half of {desired} dyno(s)"
        return Step(quiet, (why,))
    return Step(desired)


def _last_dyno(
    proc: ProcessSettings,
    current: int,
    desired: int,
    idle_since: datetime | None,
    *,
    now: datetime,
) -> Step:
    """One dyno left stops only after ``idle_before_zero_seconds`` idle: a trickle of jobs keeps
    it warm instead of waking it for each job. Several dynos whose whole scale-down window was
    idle stop together: stepping to one and later to zero would change the formation twice on
    unchanging input, and holding them all through the wait would pay for idle dynos."""
    if desired > 0 or current != 1:
        return Step(desired)
    idle = 0.0 if idle_since is None else (now - idle_since).total_seconds()
    if idle_since is not None and idle >= proc.idle_before_zero_seconds:
        return Step(desired)
    why = (
        f"holding the last dyno: idle {idle:.0f}s of "
        f"idle_before_zero_seconds={proc.idle_before_zero_seconds:g}"
    )
    return Step(current, (why,))


def _without_data(
    proc: ProcessSettings, formation: Formation, state: PolicyState, bounds: Bounds, current: int
) -> tuple[Decision, PolicyState]:
    failures = state.read_failures + 1
    desired = current
    notes: tuple[str, ...] = (f"holding: no queue data ({failures} failed read(s) in a row)",)
    fallback = proc.fallback_dynos
    if fallback is not None and failures >= proc.read_failures_before_fallback:
        raised = min(fallback, bounds.high) if bounds.high is not None else fallback
        if raised > current:
            desired = raised
            notes += (f"fallback_dynos={fallback} raises it to {raised}",)
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
    notes: tuple[str, ...],
) -> Decision:
    wanted = quantities_for(proc, desired, formation)
    updates = tuple(
        FormationUpdate(ftype, qty)
        for ftype, qty in wanted.items()
        if formation.quantity(ftype) != qty
    )
    verb = "up" if desired > current else "down" if desired < current else "stay"
    said = f"{verb} {current} -> {desired}" if verb != "stay" else f"stay at {current}"
    return Decision(proc.type, current, desired, updates, rule, "; ".join((*notes, said)))
