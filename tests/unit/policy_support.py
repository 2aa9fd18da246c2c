"""Builders shared by the policy tests: settings, observations, formations, a ticking process."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from dynomatic_daemon import policy
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.models import Formation, FormationEntry, ProcessStats, QueueStats
from dynomatic_daemon.process_config import ProcessSettings

GEM_RULES = [(0, 1), (10, 5), (20, 10), (30, 15)]
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday


def proc(**kw: Any) -> ProcessSettings:
    rules = kw.pop(
        "rules", GEM_RULES if "latency_rules" not in kw and "jobs_per_dyno" not in kw else []
    )
    return ProcessSettings.model_validate(
        {
            "type": "worker" if "worker_names" not in kw else "urgent",
            "adapter": "delayed_job",
            "rules": [{"at_least": a, "dynos": d} for a, d in rules],
            "scale_down_delay_seconds": kw.pop("delay", 0),
            **kw,
        }
    )


def stats(ready: int = 0, age: float | None = None, running: int | None = 0) -> ProcessStats:
    return ProcessStats.combine([QueueStats("default", ready, False, None, age, running)])


def formation(**quantities: int) -> Formation:
    return Formation.of(FormationEntry(t, q) for t, q in quantities.items())


def desired(p: ProcessSettings, s: ProcessStats | None, current: int) -> int:
    decision, _ = policy.decide(p, s, formation(worker=current), None, NOW)
    return decision.desired


class Sim:
    """One process type ticking every ``interval`` seconds, with the formation it changes."""

    def __init__(self, p: ProcessSettings, current: int = 1, start: datetime = NOW) -> None:
        self.p, self.clock = p, SteppableClock(start)
        self.formation = (
            formation(**dict.fromkeys(p.formation_types, 0))
            if p.hobby
            else formation(worker=current)
        )
        self.state: policy.PolicyState | None = None
        self.history: list[int] = []
        self.reasons: list[str] = []

    def tick(self, observed: ProcessStats | None, interval: float = 10) -> int:
        d, self.state = policy.decide(
            self.p, observed, self.formation, self.state, self.clock.now()
        )
        self.formation = self.formation.with_updates(d.updates)
        self.history.append(d.desired)
        self.reasons.append(d.reason)
        self.clock.advance(interval)
        return d.desired

    def changes(self, start: int) -> int:
        """How often the formation changed, counting from ``start`` dynos."""
        counts = [start, *self.history]
        return sum(1 for a, b in pairwise(counts) if a != b)

    def restart(self) -> None:
        self.state = None
