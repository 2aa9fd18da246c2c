"""delayed_job (delayed_job_active_record 4.x; the table is unchanged since its 2012 ``queue``).

Storage contract
- Table ``delayed_jobs`` (name and schema configurable for ``table_name_prefix`` apps). Columns
  read: ``queue``, ``run_at``, ``locked_at``, ``failed_at``. Rails stores them as
  naive UTC ``timestamp``; we compare with ``now() AT TIME ZONE 'UTC'`` so the session TimeZone
  does not matter (our own connections also run in UTC, which keeps ``timestamptz`` tables right).
- Ready: not failed, ``run_at`` due, and not locked - or locked longer ago than ``max_run_time``
  (default 4 h, delayed_job's own), which means its worker died and the job will be picked again.
- Running: locked within ``max_run_time`` and not failed. Excluded: failed rows (kept only with
  ``destroy_failed_jobs = false``) and future rows (scheduled jobs, retries in backoff).
- A NULL ``queue`` is reported as ``default``, the name delayed_job's own docs use for it.
- Eligible time of a job is ``run_at``: delayed_job sets it at enqueue and moves it on retry.

Cost
delayed_job ships one index, ``(priority, run_at)``; nothing covers ``queue``, ``locked_at`` or
``failed_at``, so with stock indexes no plan can count running or stale-locked jobs without
reading the whole table. The read is then one pass that groups every queue (the cost of a
peer's naive query, not more). On a big table add the one index we recommend:

    CREATE INDEX CONCURRENTLY index_delayed_jobs_for_dynomatic
        ON delayed_jobs (queue, locked_at, run_at) WHERE failed_at IS NULL;

The reader notices it (any index leading with ``queue, locked_at``) in the same statement and
switches to per-queue probes that stop at ``cap``: counts, discovery and the oldest job become
ordered index ranges. Numbers in docs/benchmarks.md.
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
    table_columns,
)
from dynomatic_daemon.models import QueueReading, QueueSelector

# {t} is the table identifier; a queue named "default" also owns NULL-queue rows. Two plans in
# one statement, and a one-time filter runs only one: with an index leading (queue, locked_at),
# per-queue probes that stop at the cap; without it, a single pass over the table, since no plan
# the stock indexes allow can avoid reading every locked row, and one pass beats one per queue.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() AT TIME ZONE 'UTC' AS now_utc),
indexed AS (
    SELECT EXISTS (
        SELECT 1 FROM pg_index i
        JOIN pg_attribute q ON q.attrelid = i.indrelid AND q.attnum = i.indkey[0]
        JOIN pg_attribute l ON l.attrelid = i.indrelid AND l.attnum = i.indkey[1]
        WHERE i.indrelid = to_regclass(format('%%I.%%I',
                                              COALESCE(%(schema)s::text, current_schema()),
                                              %(table)s::text))
          AND q.attname = 'queue' AND l.attname = 'locked_at') AS yes
),
-- queue names by skip scan over the (queue, ...) index, when that index exists
"""
    + skip_scan("{t}", "queue", "failed_at IS NULL", first="(SELECT yes FROM indexed)")
    + """,
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL
    UNION SELECT 'default' WHERE %(discover)s AND (SELECT yes FROM indexed) AND EXISTS (
        SELECT 1 FROM {t} WHERE queue IS NULL AND failed_at IS NULL)
),
-- each name is probed as a queue value, and "default" once more as the NULL queue
keys(name, q) AS (
    SELECT name, name FROM names WHERE (SELECT yes FROM indexed)
    UNION ALL
    SELECT 'default', NULL WHERE (SELECT yes FROM indexed) AND 'default' IN (SELECT name FROM names)
),
probes AS (
  {probe_named}
  UNION ALL
  {probe_null}
),
probed AS (
  SELECT name, sum(ready) AS ready, min(oldest) AS oldest, sum(running) AS running
  FROM probes GROUP BY name
),
scanned AS (
  SELECT COALESCE(d.queue, 'default') AS name,
         count(*) FILTER (WHERE ready) AS ready,
         min(d.run_at) FILTER (WHERE ready) AS oldest,
         count(*) FILTER (WHERE d.locked_at >= c.now_utc - %(max_run_time)s::interval) AS running
  FROM {t} d CROSS JOIN clock c
  CROSS JOIN LATERAL (SELECT d.run_at <= c.now_utc AND (d.locked_at IS NULL
                             OR d.locked_at < c.now_utc - %(max_run_time)s::interval) AS ready) x
  WHERE NOT (SELECT yes FROM indexed) AND d.failed_at IS NULL
    AND (%(discover)s OR COALESCE(d.queue, 'default') = ANY(%(names)s::text[]))
  GROUP BY 1
),
found_rows AS (
  SELECT name, ready, oldest, running FROM probed
  UNION ALL
  SELECT name, ready, oldest, running FROM scanned
  UNION ALL  -- named queues the single pass found no row of
  SELECT n, 0, NULL, 0 FROM unnest(%(names)s::text[]) n
  WHERE NOT (SELECT yes FROM indexed) AND n NOT IN (SELECT name FROM scanned)
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.now_utc) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN found_rows x ON true
ORDER BY x.name
"""
)

# One queue's probes, each an ordered range of the recommended index. {match} is written out
# twice (a queue value, the NULL queue) rather than as one OR, which would force bitmap scans.
PROBE = """
  SELECT k.name, r.unlocked + r.stale AS ready, LEAST(o.unlocked, o.stale) AS oldest,
         run.running
  FROM keys k CROSS JOIN clock c
  CROSS JOIN LATERAL (
    SELECT
      (SELECT count(*) FROM (SELECT 1 FROM {{t}} d
        WHERE {match} AND d.failed_at IS NULL AND d.locked_at IS NULL AND d.run_at <= c.now_utc
        LIMIT %(cap)s) s) AS unlocked,
      (SELECT count(*) FROM (SELECT 1 FROM {{t}} d
        WHERE {match} AND d.failed_at IS NULL
          AND d.locked_at < c.now_utc - %(max_run_time)s::interval AND d.run_at <= c.now_utc
        LIMIT %(cap)s) s) AS stale
  ) r
  CROSS JOIN LATERAL (
    SELECT
      (SELECT d.run_at FROM {{t}} d
        WHERE {match} AND d.failed_at IS NULL AND d.locked_at IS NULL AND d.run_at <= c.now_utc
        -- locked_at is NULL throughout, but naming it lets the index order serve the sort
        ORDER BY d.locked_at, d.run_at LIMIT 1) AS unlocked,
      (SELECT min(d.run_at) FROM {{t}} d
        WHERE {match} AND d.failed_at IS NULL
          AND d.locked_at < c.now_utc - %(max_run_time)s::interval
          AND d.run_at <= c.now_utc) AS stale
  ) o
  CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {{t}} d
    WHERE {match} AND d.failed_at IS NULL
      AND d.locked_at >= c.now_utc - %(max_run_time)s::interval
  ) run
  WHERE {key}
"""
QUERY = READ_SQL.replace(
    "{probe_named}", PROBE.format(match="d.queue = k.q", key="k.q IS NOT NULL")
).replace("{probe_null}", PROBE.format(match="d.queue IS NULL", key="k.q IS NULL"))


# the columns every delayed_job table has and the reads use (handler: what tells it from others)
REQUIRED_COLUMNS = ("queue", "run_at", "locked_at", "failed_at", "handler")


class Options(AdapterOptions):
    table: IDENTIFIER = "delayed_jobs"
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    max_run_time_seconds: Annotated[int, Field(ge=1, le=7 * 86400)] = 4 * 3600


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    if not table_columns(conn, options.schema_name, options.table, REQUIRED_COLUMNS):
        return None
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} with run_at, locked_at, failed_at, handler"


class Reader:
    name = "delayed_job"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._query = sql.SQL(QUERY).format(t=qualified(options.schema_name, options.table))

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            "schema": self.options.schema_name,
            "table": self.options.table,
            **selection(selectors),
            "cap": cap,
            "max_run_time": f"{self.options.max_run_time_seconds} seconds",
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
