"""Reading history back: one window of samples and events for one app (and maybe one type)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from dynomatic_daemon.history.rows import Sample

EVENT_LIMIT = 2000  # the newest ones; a window with more says so

SAMPLES: LiteralString = """
SELECT app, minute, process_type, ticks, ready_max, ready_capped, latency_max, running_max,
       dynos_max, desired_max, dyno_seconds, errors, size
FROM {schema}.samples
WHERE app = %(app)s AND minute >= %(since)s AND minute < %(until)s
  AND (%(type)s::text IS NULL OR process_type = %(type)s)
ORDER BY process_type, minute
"""
EVENTS: LiteralString = """
SELECT id, at, process_type, kind, current_dynos, desired_dynos, reason, fields
FROM {schema}.events
WHERE app = %(app)s AND at >= %(since)s AND at < %(until)s
  AND (%(type)s::text IS NULL OR process_type = %(type)s OR process_type IS NULL)
ORDER BY at DESC, id DESC
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    at: datetime
    process_type: str | None
    kind: str
    current: int | None
    desired: int | None
    reason: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Window:
    app: str
    since: datetime
    until: datetime
    samples: tuple[Sample, ...]  # by process type, then minute
    events: tuple[StoredEvent, ...]  # oldest first
    events_truncated: bool

    def types(self) -> list[str]:
        return sorted({s.process_type for s in self.samples})

    def of(self, process_type: str) -> list[Sample]:
        return [s for s in self.samples if s.process_type == process_type]


def read_window(
    conn: psycopg.Connection[Any],
    schema: str,
    app: str,
    *,
    since: datetime,
    until: datetime,
    process_type: str | None = None,
    event_limit: int = EVENT_LIMIT,
) -> Window:
    params = {"app": app, "since": since, "until": until, "type": process_type}
    name = sql.Identifier(schema)
    with conn.cursor() as cur:
        cur.execute(sql.SQL(SAMPLES).format(schema=name), params)
        samples = tuple(Sample(*row) for row in cur.fetchall())
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL(EVENTS).format(schema=name), {**params, "limit": event_limit + 1})
        rows = cur.fetchall()
    events = tuple(
        StoredEvent(
            r["id"], r["at"], r["process_type"], r["kind"], r["current_dynos"],
            r["desired_dynos"], r["reason"], r["fields"],
        )
        for r in reversed(rows[:event_limit])
    )  # fmt: skip
    return Window(app, since, until, samples, events, len(rows) > event_limit)
