"""pgqueuer 1.x (read against 1.6.0's ``qb.py`` dequeue query and ``domain/schema/queue.py``).

Storage contract
- Table ``pgqueuer`` (pgqueuer's ``PGQUEUER_PREFIX`` + ``pgqueuer``, or ``PGQUEUER_QUEUE_TABLE``;
  schema ``PGQUEUER_SCHEMA``, else ``search_path``). Columns read: ``entrypoint`` (the queue),
  ``status`` (enum ``queued, picked, successful, exception, canceled, deleted, failed``),
  ``created``, ``execute_after``, ``heartbeat`` (all ``timestamptz``).
- Ready: what the dequeue query would take now: ``status = 'queued' AND execute_after < now()``
  (pgqueuer's own strict ``<``), plus ``picked`` jobs whose heartbeat is older than the worker's
  ``heartbeat_timeout`` (pgqueuer's default 30 s; set ``heartbeat_timeout_seconds`` to the
  value the workers run with), which it takes again. Per-entrypoint concurrency limits live in
  the workers, not the database, and are not applied.
- Running: ``picked`` with a heartbeat within the timeout. Excluded: ``queued`` jobs whose
  ``execute_after`` is ahead (scheduled jobs, retries in backoff) and held ``failed`` jobs;
  finished jobs are deleted (and logged in ``pgqueuer_log``, which is not read).
- Eligible time: ``GREATEST(created, execute_after)`` for queued jobs (a retry moves
  ``execute_after``); for a stale picked job, the moment its heartbeat expired.
- Versions: 1.0 made the stale rule a global heartbeat timeout and added ``failed``; 1.1 added the
  ``(entrypoint, execute_after)`` index. Before 1.0, stale jobs were re-taken only with a
  per-entrypoint ``retry_timer``, which this reader does not know.

Cost
Since 1.1 pgqueuer ships ``(entrypoint, execute_after) WHERE status = 'queued'``: per queue the
count is an index-only range scan stopping at ``cap``, and the oldest queued job is the range's
first entry (``execute_after`` is never before ``created`` unless a job was enqueued with a
negative delay; then the entries up to that job's eligible time are read too). The same index
gives the queue names by skip scan. Picked jobs - one per job in flight, plus a dead worker's -
are read once for all queues through the partial indexes on ``status = 'picked'``. On 1.0,
without the entrypoint index, each count and probe scans the queued jobs.
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

# {t} is the table identifier. "status = 'queued'" matches the partial indexes' predicate.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (
    SELECT now() AS db_now, now() - %(heartbeat_timeout)s::interval AS stale_before
),
-- entrypoints of queued jobs by skip scan, only when a selector needs discovery
"""
    + skip_scan("{t}", "entrypoint", "status = 'queued'")
    + """,
-- every picked job once: running, and stale (taken again by the next dequeue)
picked AS MATERIALIZED (
    SELECT p.entrypoint,
           count(*) FILTER (WHERE p.heartbeat >= c.stale_before) AS running,
           count(*) FILTER (WHERE p.heartbeat < c.stale_before
                              AND p.execute_after < c.db_now) AS stale,
           min(p.heartbeat) FILTER (WHERE p.heartbeat < c.stale_before
                                      AND p.execute_after < c.db_now)
             + %(heartbeat_timeout)s::interval AS stale_since
    FROM {t} p CROSS JOIN clock c
    WHERE p.status = 'picked'
    GROUP BY p.entrypoint
),
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL
    UNION SELECT entrypoint FROM picked WHERE %(discover)s
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, q.queued + COALESCE(pk.stale, 0) AS ready,
         LEAST(q.oldest, pk.stale_since) AS oldest, COALESCE(pk.running, 0) AS running
  FROM names n
  LEFT JOIN picked pk ON pk.entrypoint = n.name
  CROSS JOIN LATERAL (
    SELECT
      (SELECT count(*) FROM (
          SELECT 1 FROM {t} j
          WHERE j.entrypoint = n.name AND j.status = 'queued' AND j.execute_after < c.db_now
          LIMIT %(cap)s) s) AS queued,
      -- the first job by execute_after, and any job due before that one's eligible time
      (SELECT LEAST(f.eligible, (
          SELECT min(GREATEST(j.created, j.execute_after)) FROM {t} j
          WHERE j.entrypoint = n.name AND j.status = 'queued'
            AND j.execute_after >= f.execute_after AND j.execute_after < f.eligible))
       FROM (
          SELECT j.execute_after, GREATEST(j.created, j.execute_after) AS eligible FROM {t} j
          WHERE j.entrypoint = n.name AND j.status = 'queued' AND j.execute_after < c.db_now
          ORDER BY j.execute_after LIMIT 1) f) AS oldest
  ) q
) x ON true
ORDER BY x.name
"""
)


REQUIRED_COLUMNS = ("entrypoint", "status", "created", "execute_after", "heartbeat", "priority")
DETECT_SQL = """
WITH t AS (
    SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(table)s)
                                   ELSE format('%%I.%%I', %(schema)s, %(table)s) END)
)
SELECT t.nspname,
       array_agg(a.attname::text),
       bool_or(a.attname = 'status' AND EXISTS (
           SELECT 1 FROM pg_enum e WHERE e.enumtypid = a.atttypid AND e.enumlabel = 'failed')),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid
               AND pg_get_indexdef(i.indexrelid) LIKE '%%(entrypoint, execute_after)%%')
FROM t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY t.nspname, t.oid
"""


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    prefix: Annotated[str, Field(max_length=55)] = ""
    # pgqueuer's queue_table, when it is not the prefix + "pgqueuer"
    table: IDENTIFIER | None = None
    heartbeat_timeout_seconds: Annotated[float, Field(gt=0, le=86400)] = 30.0

    @property
    def queue_table(self) -> str:
        return self.table or f"{self.prefix}pgqueuer"


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    params = {"schema": options.schema_name, "table": options.queue_table}
    row = conn.execute(DETECT_SQL, params).fetchone()
    if row is None or not set(REQUIRED_COLUMNS) <= set(row[1]):
        return None
    schema, _columns, has_failed, has_entrypoint_index = row
    if not has_failed:
        layout = "pre-1.0 layout, unsupported"
    elif has_entrypoint_index:
        layout = "1.1+ layout: (entrypoint, execute_after) index"
    else:
        layout = "1.0 layout: no (entrypoint, execute_after) index"
    return f"table {schema}.{options.queue_table} ({layout})"


class Reader:
    name = "pgqueuer"

    def __init__(self, options: Options) -> None:
        self.options = options
        table = qualified(options.schema_name, options.queue_table)
        self._query = sql.SQL(READ_SQL).format(t=table)

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
            "heartbeat_timeout": f"{self.options.heartbeat_timeout_seconds} seconds",
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
