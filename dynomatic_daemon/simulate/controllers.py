"""The daemon's own policy as a replay controller: ``policy.decide`` fed as the tick feeds it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from dynomatic_daemon import policy
from dynomatic_daemon.models import Decision, Formation, FormationEntry, ProcessStats
from dynomatic_daemon.process_config import ProcessSettings
from dynomatic_daemon.simulate.records import Observation

Decide = Callable[
    [ProcessSettings, ProcessStats | None, Formation, "policy.PolicyState | None", datetime],
    tuple[Decision, "policy.PolicyState"],
]


class PolicyController:
    """One ``[[process]]`` entry, its remembered state and its formation (hobby names included).

    The counts are capped where an adapter caps them (``ProcessSettings.count_cap``), so the
    policy sees exactly what it would see in production."""

    def __init__(
        self,
        proc: ProcessSettings,
        interval: float,
        *,
        start: datetime,
        initial: int = 0,
        name: str | None = None,
        decide: Decide = policy.decide,
    ) -> None:
        self.proc, self.interval, self.start = proc, interval, start
        self.name = name or proc.type
        self._decide = decide
        self._cap = proc.count_cap
        empty = Formation.of(FormationEntry(t, 0) for t in proc.formation_types)
        updates = policy.quantities_for(proc, initial, empty)
        self.formation = Formation.of(FormationEntry(t, q) for t, q in updates.items())
        self.state: policy.PolicyState | None = None
        self.last: Decision | None = None

    def decide(self, now: float, seen: Observation, current: int) -> int:
        stats = ProcessStats(
            queues=(),
            ready=min(seen.ready, self._cap),
            ready_capped=seen.ready >= self._cap,
            oldest_ready_age_seconds=seen.oldest_age,
            running=seen.running,
        )
        when = self.start + timedelta(seconds=now)
        self.last, self.state = self._decide(self.proc, stats, self.formation, self.state, when)
        self.formation = self.formation.with_updates(self.last.updates)
        return self.last.desired
