"""Frozen value objects that flow one way: database facts -> decision -> formation change."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property


@dataclass(frozen=True, slots=True)
class QueueStats:
    """What one queue looks like at one instant, measured on the database clock.

    ``ready`` is a bounded count: when ``ready_capped`` is true there are at least that many.
    ``running`` is None where the library gives no way to know it.
    """

    queue: str
    ready: int
    ready_capped: bool
    oldest_eligible_at: datetime | None
    oldest_ready_age_seconds: float | None
    running: int | None


@dataclass(frozen=True, slots=True)
class QueueReading:
    """One adapter's answer for one tick: every queue it was asked about (or found)."""

    adapter: str
    db_now: datetime
    queues: tuple[QueueStats, ...]


@dataclass(frozen=True)
class QueueSelector:
    """Which queues a process type works: exact names and ``*`` wildcards; None = every queue."""

    patterns: tuple[str, ...] | None = None

    @cached_property
    def _regex(self) -> re.Pattern[str] | None:
        if self.patterns is None:
            return None
        parts = (".*".join(re.escape(p) for p in pat.split("*")) for pat in self.patterns)
        return re.compile("|".join(f"(?:{p})" for p in parts), re.DOTALL)

    @property
    def exact_names(self) -> tuple[str, ...]:
        """The names without wildcards; a reader can probe these without discovering queues."""
        return tuple(p for p in self.patterns or () if "*" not in p)

    @property
    def needs_discovery(self) -> bool:
        """True when the reader must find queue names itself (every queue, or a wildcard)."""
        return self.patterns is None or any("*" in p for p in self.patterns)

    def matches(self, queue: str) -> bool:
        regex = self._regex
        return regex is None or regex.fullmatch(queue) is not None


@dataclass(frozen=True, slots=True)
class ProcessStats:
    """The queues of one process type, combined: the policy's input."""

    queues: tuple[QueueStats, ...]
    ready: int
    ready_capped: bool
    oldest_ready_age_seconds: float | None
    running: int | None

    @classmethod
    def combine(cls, queues: Iterable[QueueStats]) -> ProcessStats:
        qs = tuple(sorted(queues, key=lambda q: q.queue))
        ages = [q.oldest_ready_age_seconds for q in qs if q.oldest_ready_age_seconds is not None]
        running = [q.running for q in qs]
        return cls(
            queues=qs,
            ready=sum(q.ready for q in qs),
            ready_capped=any(q.ready_capped for q in qs),
            oldest_ready_age_seconds=max(ages) if ages else None,
            running=None if any(r is None for r in running) else sum(r or 0 for r in running),
        )


@dataclass(frozen=True, slots=True)
class FormationEntry:
    type: str
    quantity: int
    size: str | None = None


@dataclass(frozen=True)
class Formation:
    """The app's process types as Heroku last reported them."""

    entries: Mapping[str, FormationEntry] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[FormationEntry]) -> Formation:
        return cls({e.type: e for e in entries})

    def quantity(self, process_type: str) -> int | None:
        entry = self.entries.get(process_type)
        return None if entry is None else entry.quantity

    def with_updates(self, updates: Sequence[FormationUpdate]) -> Formation:
        merged = dict(self.entries)
        for u in updates:
            old = merged.get(u.type)
            merged[u.type] = FormationEntry(u.type, u.quantity, old.size if old else None)
        return Formation(merged)


@dataclass(frozen=True, slots=True)
class FormationUpdate:
    """One item of a Batch Update: an absolute, integer quantity for one process type."""

    type: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy wants for one process type, and why, in words a log reader understands."""

    process_type: str
    current: int
    desired: int
    updates: tuple[FormationUpdate, ...]
    rule: str | None
    reason: str

    @property
    def changes(self) -> bool:
        return bool(self.updates)
