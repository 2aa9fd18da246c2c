"""River (Go, riverqueue/river): migration line ``main``, versions 2-7 (River 0.0.x to 0.43).

Storage contract
- Table ``river_job`` in ``schema`` (None: the search_path, as River's default). Columns read:
  ``state`` (enum ``river_job_state``), ``queue``, ``priority`` (1-4, a CHECK since version 2),
  ``scheduled_at`` (timestamptz). Pauses: ``river_queue.paused_at`` (version 4+; pausing ``*``
  sets it on every row). Versions are told apart by ``river_migration`` (max ``version``, on line
  ``main`` once version 5 added ``line``); reading needs only the version-2 job columns.
- Ready: ``state = 'available' AND scheduled_at <= now()``, plus ``scheduled`` / ``retryable``
  rows whose ``scheduled_at`` has come: River inserts every job given a ``ScheduledAt`` (even a
  past one) as ``scheduled`` and only the elected leader promotes them, every 5 s, so a sick
  leader must not hide a backlog. A queue whose ``river_queue.paused_at`` is set has no ready jobs.
- Running: ``state = 'running'``; a job whose worker died stays there until the leader's rescuer
  moves it (after ``RescueStuckJobsAfter``, 1 h by default).
- Excluded: ``completed``, ``cancelled``, ``discarded``, ``pending`` (waiting on a dependency),
  and ``scheduled`` / ``retryable`` rows not yet due.
- Eligible time: ``scheduled_at``: the insert time, or the scheduled, retry or snooze time.
- Without ``river_queue`` (versions 2-3) pauses do not exist. Each statement also says whether
  the table is there; the reader starts with the query that does not need it and switches (and
  reads again) the first time it sees the table, so one read per Reader costs two statements.
  (Migrating *down* below version 4 under a running daemon makes reads fail until a restart.)

Cost
River's ``river_job_prioritized_fetching_index (state, queue, priority, scheduled_at, id)``
serves every part: per queue and per (state, priority) "lane" - 3 ready states x priorities 1-4 -
the ready rows are one index range ending at now, so the bounded count walks at most ``cap``
index entries over the 12 lanes and the oldest is one ``ORDER BY scheduled_at LIMIT 1`` probe per
lane; the running count is an index range on (state, queue). Queue discovery is a skip scan over
the (state, queue) prefix, one walk per live state. Nothing reads the heap beyond the visibility
map, and ``completed`` rows (the bulk of a busy table) sit in a range no part of it touches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field

from dynomatic_daemon.adapters.base import (
    IDENTIFIER,
    AdapterOptions,
    fetch,
    qualified,
    reading,
    selection,
)
from dynomatic_daemon.models import QueueReading, QueueSelector

# {job}, {queue_table}: tables; {state}: the enum type (a state literal of another type would not
# use the index). {paused} is PAUSED_BY_QUEUE_TABLE or NO_PAUSES.
READ_SQL = """
WITH RECURSIVE
clock AS (
    SELECT now() AS db_now,
           to_regclass(CASE WHEN %(schema)s::text IS NULL THEN 'river_queue'
                            ELSE quote_ident(%(schema)s::text) || '.river_queue' END)
             IS NOT NULL AS has_queue_table
),
-- queue names by skip scan over the index's (state, queue) prefix, one walk per live state
-- (not base.skip_scan, which walks one column: the index leads with state, not queue)
found(state, queue) AS (
    SELECT first.state, first.queue
    FROM unnest('{{available,scheduled,retryable,running}}'::{state}[]) AS live(state)
    CROSS JOIN LATERAL (
        SELECT j.state, j.queue FROM {job} j
        WHERE %(discover)s AND j.state = live.state ORDER BY j.queue LIMIT 1) first
    UNION ALL
    SELECT nxt.state, nxt.queue
    FROM found f CROSS JOIN LATERAL (
        SELECT j.state, j.queue FROM {job} j
        WHERE j.state = f.state AND j.queue > f.queue ORDER BY j.queue LIMIT 1) nxt
),
names(name) AS (SELECT unnest(%(names)s::text[]) UNION SELECT queue FROM found),
-- every (state, priority) a ready job can have: River's CHECK keeps priority in 1..4
lanes(state, priority) AS (
    SELECT s, p
    FROM unnest('{{available,scheduled,retryable}}'::{state}[]) AS s
    CROSS JOIN generate_series(1, 4) AS p
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age,
       x.running, c.has_queue_table
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, r.ready, o.oldest, run.running
  FROM names n
  CROSS JOIN LATERAL ({paused}) p
  CROSS JOIN LATERAL (
    SELECT count(*) AS ready FROM (
      SELECT 1 FROM lanes l CROSS JOIN LATERAL (
        -- equality on state, queue and priority makes scheduled_at <= now one index range
        SELECT 1 FROM {job} j
        WHERE j.state = l.state AND j.queue = n.name AND j.priority = l.priority
          AND j.scheduled_at <= c.db_now
        LIMIT %(cap)s) hit
      WHERE NOT p.paused
      LIMIT %(cap)s) bounded
  ) r
  CROSS JOIN LATERAL (
    SELECT min(head.scheduled_at) AS oldest
    FROM lanes l CROSS JOIN LATERAL (
        SELECT j.scheduled_at FROM {job} j
        WHERE j.state = l.state AND j.queue = n.name AND j.priority = l.priority
          AND j.scheduled_at <= c.db_now
        ORDER BY j.scheduled_at LIMIT 1) head
    WHERE NOT p.paused
  ) o
  CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {job} j WHERE j.state = 'running' AND j.queue = n.name
  ) run
) x ON true
ORDER BY x.name
"""

# river_queue's primary key is name; a queue without a row (no client started it) is not paused.
PAUSED_BY_QUEUE_TABLE = """
    SELECT EXISTS (SELECT 1 FROM {queue_table} q
                   WHERE q.name = n.name AND q.paused_at IS NOT NULL) AS paused
"""
NO_PAUSES = "SELECT false AS paused"


DETECT_SQL = """
SELECT table_name, array_agg(column_name::text)
FROM information_schema.columns
WHERE table_schema = COALESCE(%(schema)s, current_schema())
  AND table_name IN ('river_job', 'river_queue', 'river_migration')
GROUP BY table_name
"""
JOB_COLUMNS = frozenset({"state", "queue", "kind", "priority", "scheduled_at", "finalized_at"})
# river_migration gained ``line`` in version 5; before it, every row was the main line.
VERSION_SQL = {
    True: "SELECT max(version) FROM {migration} WHERE line = 'main'",
    False: "SELECT max(version) FROM {migration}",
}


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None


def _name(options: Options, table: str) -> sql.Identifier:
    return qualified(options.schema_name, table)


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    params = {"schema": options.schema_name}
    tables = {str(t): set(cols) for t, cols in conn.execute(DETECT_SQL, params).fetchall()}
    if not tables.get("river_job", set()) >= JOB_COLUMNS:
        return None
    where = f"{options.schema_name or 'current schema'}.river_job"
    pauses = "river_queue" if "river_queue" in tables else "no river_queue"
    migration = tables.get("river_migration", set())
    if "version" not in migration:
        return f"table {where} (no river_migration; {pauses})"
    query = sql.SQL(VERSION_SQL["line" in migration]).format(
        migration=_name(options, "river_migration")
    )
    row = conn.execute(query).fetchone()
    version = None if row is None or row[0] is None else int(row[0])
    return f"table {where} (migration line main, version {version}; {pauses})"


class Reader:
    name = "river"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._queries = {
            has_queue_table: sql.SQL(READ_SQL).format(
                job=_name(options, "river_job"),
                state=_name(options, "river_job_state"),
                paused=sql.SQL(PAUSED_BY_QUEUE_TABLE if has_queue_table else NO_PAUSES).format(
                    queue_table=_name(options, "river_queue")
                ),
            )
            for has_queue_table in (False, True)
        }
        # Start with the query that works on every version; the first answer says which to use.
        self._has_queue_table = False

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            "schema": self.options.schema_name,
            **selection(selectors),
            "cap": cap,
        }
        rows = self._execute(conn, params)
        if rows[0][6] and not self._has_queue_table:
            # river_queue is there (migration 4 ran, maybe since the last read): honour pauses.
            self._has_queue_table = True
            rows = self._execute(conn, params)
        return reading(self.name, rows, cap)

    def _execute(
        self, conn: psycopg.Connection[Any], params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        return fetch(conn, self._queries[self._has_queue_table], params)
