"""What every adapter module provides, and the option model they all share.

An adapter module ``dynomatic_daemon/adapters/<name>.py`` exports:

- ``Options``: a subclass of ``AdapterOptions`` (validated from ``[adapters.<name>]``);
- ``Reader``: ``Reader(options)`` with ``name`` and ``read(conn, selectors, cap) -> QueueReading``;
- ``detect(conn, options) -> str | None``: for ``adapter = "auto"``, a short description of the
  library's tables when they are present (``"table public.delayed_jobs"``), else None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from dynomatic_daemon.models import QueueReading, QueueSelector, QueueStats

IDENTIFIER = Annotated[str, Field(min_length=1, max_length=63)]


class AdapterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Name of an environment variable holding the URL of the database where this library's
    # tables live, when that is not [database]'s (solid_queue's own database, say).
    url_env: Annotated[str | None, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = None


class QueueReader(Protocol):
    name: str

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        """Per-queue facts for every queue the selectors name or match, in one round trip."""
        ...


class AdapterModule(Protocol):
    Options: type[AdapterOptions]
    Reader: Callable[[Any], QueueReader]
    detect: Callable[[psycopg.Connection[Any], Any], str | None]


def qualified(schema: str | None, name: str) -> sql.Identifier:
    """``schema.name``, or ``name`` alone to follow the search_path as the library does."""
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)


def reading(adapter: str, rows: Sequence[tuple[Any, ...]], cap: int) -> QueueReading:
    """The reading from rows shaped ``db_now, queue, ready, oldest, age, running[, ...]``.

    Every read statement returns one row even with nothing to report (``queue`` NULL), so that
    the database clock comes back; ``ready`` is cut to ``cap`` and flagged as capped there."""
    stats = tuple(_stats(row, cap) for row in rows if row[1] is not None)
    db_now: datetime = rows[0][0]  # now() is timestamptz, so aware
    return QueueReading(adapter, db_now.astimezone(UTC), stats)


def _stats(row: tuple[Any, ...], cap: int) -> QueueStats:
    _db_now, name, ready, oldest, age, running = row[:6]
    return QueueStats(
        queue=str(name),
        ready=min(int(ready), cap),
        ready_capped=int(ready) >= cap,
        oldest_eligible_at=aware_utc(oldest),
        oldest_ready_age_seconds=None if age is None else max(0.0, float(age)),
        running=None if running is None else int(running),
    )


def aware_utc(value: datetime | None) -> datetime | None:
    """Naive values hold UTC (the Rails and Oban convention); aware ones are converted."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
