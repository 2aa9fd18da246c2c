"""Result rows to a QueueReading, for adapters of state-enum job tables (river, oban).

Their read statements return the same row shape: ``db_now, queue, ready, oldest, age, running``
(and possibly trailing columns of their own), with one row where ``queue`` is NULL when there is
nothing to report, so that ``db_now`` still comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dynomatic_daemon.models import QueueReading, QueueStats


def reading(adapter: str, rows: Sequence[tuple[Any, ...]], cap: int) -> QueueReading:
    stats = tuple(_stats(row, cap) for row in rows if row[1] is not None)
    db_now: datetime = rows[0][0]  # now(): timestamptz, so aware
    return QueueReading(adapter, db_now.astimezone(UTC), stats)


def _stats(row: tuple[Any, ...], cap: int) -> QueueStats:
    _db_now, name, ready, oldest, age, running = row[:6]
    return QueueStats(
        queue=str(name),
        ready=min(int(ready), cap),
        ready_capped=int(ready) >= cap,
        oldest_eligible_at=aware_utc(oldest),
        oldest_ready_age_seconds=None if age is None else max(0.0, float(age)),
        running=int(running),
    )


def aware_utc(value: datetime | None) -> datetime | None:
    """Naive values are UTC by the libraries' own convention; aware ones are converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
