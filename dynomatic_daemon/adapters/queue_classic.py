"""queue_classic (Ruby) 4.x, and 3.1+ (the same table with ``args json``).

Storage contract
- Table ``queue_classic_jobs`` (name and schema configurable; ``QC.table_name`` can be changed,
  and qc creates the table unqualified, so the default schema is the search path's). Columns
  read: ``q_name``, ``scheduled_at``, ``locked_at``, ``locked_by`` - ``timestamptz`` in every
  version of qc's ``create_table.sql``, so ``now()`` compares right in any session TimeZone.
- qc locks a job with ``locked_at IS NULL AND q_name = $1 AND scheduled_at <= now()``, setting
  ``locked_at = now()`` and ``locked_by = pg_backend_pid()`` (the worker's connection). A job
  that succeeds is deleted; one that raises stays locked (the default ``handle_failure`` only
  logs it). Nothing unlocks a job while its worker lives; ``Worker#start`` runs
  ``QC.unlock_jobs_of_dead_workers``, which unlocks rows whose ``locked_by`` is not in
  ``pg_stat_activity``.
- Ready: ``locked_at IS NULL AND scheduled_at <= now()`` (qc's own lock predicate), plus due
  jobs locked by a backend that is gone (a crashed worker): qc runs those again as soon as a
  worker starts - a scale-up starts one - so they are work waiting for a worker, and leaving
  them out would hide a crashed dyno's jobs until some restart.
- Running: locked rows whose ``locked_by`` backend is still connected (or unknown: rows locked
  by qc < 3.0 have none). That includes failed jobs kept locked by a live worker, which also
  hold up the busy floor - qc has no failure marker; apps that delete or move failed jobs in
  ``handle_failure`` avoid it. Behind a
  transaction-pooling PgBouncer ``locked_by`` names a pooled server connection, which outlives
  the worker; qc's own unlock has the same blind spot.
- Excluded: future rows (``enqueue_in``/``enqueue_at``). Finished jobs are gone (deleted).
- Eligible time is ``scheduled_at``: ``now()`` at enqueue, or the time asked for.

Cost
qc's indexes are ``(q_name, id)`` and ``(scheduled_at, id)``, both ``WHERE locked_at IS NULL``
(spelled exactly below). Queues are discovered by a skip scan over the first. The bounded ready
count and the oldest job walk the second in ``scheduled_at`` order and stop at ``cap`` (or the
first) due row of the queue: cheap while the queue has its share of the due rows, but a small
queue with few due jobs behind a large due backlog of other queues is a walk of that backlog.
No qc index covers locked rows, so finding running and orphaned jobs reads the whole table
once per tick. On a big table add (each index holds only its own rows):

    CREATE INDEX CONCURRENTLY idx_qc_ready_for_dynomatic
        ON queue_classic_jobs (q_name, scheduled_at) WHERE locked_at IS NULL;
    CREATE INDEX CONCURRENTLY idx_qc_locked_for_dynomatic
        ON queue_classic_jobs (q_name, scheduled_at, locked_by) WHERE locked_at IS NOT NULL;

which make every part of the query an index-only range scan; the locked part then costs one
index entry per locked row (running jobs, and the failed ones qc keeps locked).
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
    skip_scan,
)
from dynomatic_daemon.models import QueueReading, QueueSelector

# {t} is the table identifier. "locked_at IS NULL" is the predicate of both qc indexes.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now),
-- every backend of the cluster, as in qc's own test (pids are cluster-wide)
alive AS MATERIALIZED (SELECT pid FROM pg_stat_activity),
-- locked rows, once: still held by a connected backend (running) or left by a dead one
held AS MATERIALIZED (
    SELECT h.q_name,
           count(*) FILTER (WHERE NOT h.dead) AS running,
           count(*) FILTER (WHERE h.dead AND h.scheduled_at <= now()) AS orphaned,
           min(h.scheduled_at) FILTER (WHERE h.dead AND h.scheduled_at <= now()) AS oldest_orphan
    -- qc's own dead-worker test: a locked_by not among pg_stat_activity's pids
    FROM (SELECT j.q_name, j.scheduled_at, j.locked_by IS NOT NULL AND a.pid IS NULL AS dead
          FROM {t} j LEFT JOIN alive a ON a.pid = j.locked_by
          WHERE j.locked_at IS NOT NULL) h
    GROUP BY h.q_name
),
-- queue names by skip scan over (q_name, id), only when a selector needs discovery
"""
    + skip_scan("{t}", "q_name", "locked_at IS NULL")
    + """,
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL
    UNION SELECT q_name FROM held WHERE %(discover)s
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name,
    -- in scheduled_at order: a walk of (scheduled_at, id) that stops at cap, where a plain
    -- limit lets the planner pick a seq scan that reads the whole table for a small queue
    (SELECT count(*) FROM (SELECT 1 FROM {t} j
      WHERE j.q_name = n.name AND j.locked_at IS NULL AND j.scheduled_at <= c.db_now
      ORDER BY j.scheduled_at LIMIT %(cap)s) s) + COALESCE(h.orphaned, 0) AS ready,
    LEAST((SELECT j.scheduled_at FROM {t} j
            WHERE j.q_name = n.name AND j.locked_at IS NULL AND j.scheduled_at <= c.db_now
            ORDER BY j.scheduled_at LIMIT 1),
          h.oldest_orphan) AS oldest,
    COALESCE(h.running, 0) AS running
  FROM names n LEFT JOIN held h ON h.q_name = n.name
) x ON true
ORDER BY x.name
"""
)


DETECT_SQL = """
SELECT count(*) FILTER (WHERE column_name IN ('q_name', 'method', 'args', 'locked_at',
                                             'locked_by', 'scheduled_at')),
       max(data_type) FILTER (WHERE column_name = 'args')
FROM information_schema.columns
WHERE table_name = %(table)s AND table_schema = COALESCE(%(schema)s, current_schema())
"""


class Options(AdapterOptions):
    table: IDENTIFIER = "queue_classic_jobs"
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    params = {"table": options.table, "schema": options.schema_name}
    row = conn.execute(DETECT_SQL, params).fetchone()
    if row is None or int(row[0]) < 6:
        return None
    layout = "4.x layout, args jsonb" if row[1] == "jsonb" else "3.1+ layout"
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} ({layout}: q_name, scheduled_at, locked_at, locked_by)"


class Reader:
    name = "queue_classic"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._query = sql.SQL(READ_SQL).format(t=qualified(options.schema_name, options.table))

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
