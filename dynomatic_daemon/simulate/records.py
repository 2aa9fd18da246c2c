"""What goes into a replay and what comes out of it: the platform, the controller's view, the
counts. ``engine`` does the replaying."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Platform:
    boot_seconds: float = 45.0
    worker_slots: int = 5
    grace_seconds: float = 30.0
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Observation:
    """What an adapter reads at a tick."""

    ready: int
    oldest_age: float | None
    running: int


class Controller(Protocol):
    name: str
    interval: float

    def decide(self, now: float, seen: Observation, current: int) -> int:
        """The quantity wanted at ``now`` (seconds from the start of the trace)."""
        ...


@dataclass
class Timeline:
    """One entry per tick: time, ready, running, oldest age, and the formation after the tick."""

    t: list[float] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)
    oldest_age: list[float | None] = field(default_factory=list)
    dynos: list[int] = field(default_factory=list)


@dataclass
class Run:
    """Everything a replay counted; ``metrics.summarise`` turns it into the reported numbers."""

    controller: str
    duration: float
    waits: list[float]  # per job, in arrival order: start of the run that counted - arrival
    unfinished: int = 0  # never started within the duration (their wait runs to the end)
    dyno_seconds: float = 0.0
    max_backlog: int = 0
    writes: int = 0
    wakes: int = 0
    cold_starts: int = 0
    flaps: int = 0
    busy_scale_downs: int = 0
    killed: int = 0
    work_lost_seconds: float = 0.0
    timeline: Timeline = field(default_factory=Timeline)
