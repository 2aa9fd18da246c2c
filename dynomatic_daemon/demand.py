"""What one tick asks for: the rules' target (boot-aware), the busy level, and the bounds.

- Step ``rules`` read the ready count; the rule with the largest ``at_least`` reached wins.
- ``latency_rules`` read the oldest ready job's age, minus the part of it that accrued while
  dynos the policy had already started were still booting: that wait was already answered, so it
  must not start more (``boot_overlap``).
- ``jobs_per_dyno`` counts the work in the system, ready and running: ``ceil((ready + running) /
  N)``, so dynos that keep up are still counted as needed.
- The busy level, ``ceil(running / worker_concurrency)``, is the capacity the running jobs hold;
  it holds the formation up but never raises it.
- Bounds: min/max dynos, overridden by the first open schedule window; hobby mode caps at the
  number of worker names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dynomatic_daemon.models import ProcessStats
from dynomatic_daemon.process_config import LatencyRule, ProcessSettings, Rule, tighter


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


def boot_overlap(age: float, now: datetime, last_up: datetime | None, boot_seconds: float) -> float:
    """Seconds of ``age`` (a wait ending now) that fell while the last scale-up was booting."""
    if last_up is None:
        return 0.0
    waited_from = now - timedelta(seconds=age)
    booted_at = last_up + timedelta(seconds=boot_seconds)
    overlap = (min(now, booted_at) - max(waited_from, last_up)).total_seconds()
    return max(0.0, overlap)


def in_system(stats: ProcessStats) -> int:
    """Ready and running jobs; running counts as 0 where the library cannot tell."""
    return stats.ready + (stats.running or 0)


def target(
    proc: ProcessSettings, stats: ProcessStats, *, age: float | None
) -> tuple[int, str | None]:
    """The largest target over every rule kind, and which rule gave it; ``age`` is the oldest
    ready job's age as the latency rules should see it."""
    candidates: list[tuple[int, str]] = []
    dynos, rule = step_target(proc.rules, stats.ready)
    if rule:
        candidates.append((dynos, f"rules[at_least={rule.at_least}]"))
    dynos, lrule = latency_target(proc.latency_rules, age)
    if lrule:
        candidates.append((dynos, f"latency_rules[at_least_seconds={lrule.at_least_seconds:g}]"))
    if proc.jobs_per_dyno:
        jobs = in_system(stats)
        candidates.append(
            (math.ceil(jobs / proc.jobs_per_dyno), f"jobs_per_dyno={proc.jobs_per_dyno}")
        )
    if not candidates:
        return 0, None
    return max(candidates, key=lambda c: c[0])


def busy_level(proc: ProcessSettings, stats: ProcessStats) -> int:
    """Dynos the running jobs fill when packed; 0 when unknown or protection is off."""
    if not proc.protect_running or stats.running is None:
        return 0
    return math.ceil(stats.running / proc.worker_concurrency)


@dataclass(frozen=True)
class Bounds:
    low: int
    high: int | None
    source: str  # "process" or "schedules[i]"

    def clip(self, n: int) -> int:
        return max(self.low, n if self.high is None else min(n, self.high))


def active_bounds(proc: ProcessSettings, now: datetime) -> Bounds:
    low, high, source = proc.min_dynos, proc.ceiling, "process"
    for i, window in enumerate(proc.schedules):
        if window.is_open(now):
            low = window.min_dynos if window.min_dynos is not None else low
            high = window.max_dynos if window.max_dynos is not None else high
            source = f"schedules[{i}]"
            break
    high = tighter(high, proc.hobby_cap)
    if high is not None and low > high:
        low = high
    return Bounds(low, high, source)


@dataclass(frozen=True)
class Demand:
    """One tick's demand: what to rise to, what to hold, and the words that explain it."""

    up_to: int  # the bounded target a scale-up may reach
    level: int  # the bounded level this tick holds the formation at (target or busy level)
    rule: str | None
    notes: tuple[str, ...]


def measure(
    proc: ProcessSettings,
    stats: ProcessStats,
    *,
    now: datetime,
    last_up: datetime | None,
    bounds: Bounds,
    current: int,
) -> Demand:
    """The tick's demand. Raising uses the boot-aware age; holding uses the age as read, so the
    discount can only prevent a scale-up, never cause a scale-down."""
    age = stats.oldest_ready_age_seconds
    booting = 0.0 if age is None else boot_overlap(age, now, last_up, proc.dyno_boot_seconds)
    held, rule = target(proc, stats, age=age)
    goal, up_rule = target(proc, stats, age=None if age is None else age - booting)
    notes = [_target_note(goal, up_rule, stats)]
    if goal < held:
        notes.append(f"{booting:.0f}s of the {age:.0f}s wait fell while dynos booted")
    if held == 0 and stats.ready > 0 and proc.wake_from_zero:
        goal = held = 1
        notes.append("woken from zero by ready jobs")
    up_to = bounds.clip(goal)
    if up_to != goal:
        which = "min_dynos" if up_to > goal else "max_dynos"
        notes.append(f"clipped by {which}={up_to} ({bounds.source})")
    busy = min(bounds.clip(busy_level(proc, stats)), current)
    level = max(bounds.clip(held), busy)
    return Demand(up_to, level, up_rule if goal < held else rule, tuple(notes))


def _target_note(goal: int, rule: str | None, stats: ProcessStats) -> str:
    if rule is None:
        return f"target 0: ready {stats.ready} below every rule"
    return f"target {goal} from {rule}"
