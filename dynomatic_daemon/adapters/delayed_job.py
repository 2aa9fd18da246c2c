"""delayed_job (delayed_job_active_record 4.x; the table is unchanged since its 2012 ``queue``).

Storage contract
- Table ``delayed_jobs`` (name and schema configurable for ``table_name_prefix`` apps). Columns
  read: ``queue``, ``priority``, ``run_at``, ``locked_at``, ``failed_at``. Rails stores them as
  naive UTC ``timestamp``; we compare with ``now() AT TIME ZONE 'UTC'`` so the session TimeZone
  does not matter (our own connections also run in UTC, which keeps ``timestamptz`` tables right).
- Ready: not failed, ``run_at`` due, and not locked - or locked longer ago than ``max_run_time``
  (default 4 h, delayed_job's own), which means its worker died and the job will be picked again.
- Running: locked within ``max_run_time`` and not failed. Excluded: failed rows (kept only with
  ``destroy_failed_jobs = false``) and future rows (scheduled jobs, retries in backoff).
- A NULL ``queue`` is reported as ``default``, the name delayed_job's own docs use for it.
- Eligible time of a job is ``run_at``: delayed_job sets it at enqueue and moves it on retry.

Cost
The stock index is ``(priority, run_at)``. The oldest ready job is found by one probe per distinct
priority (a loose index scan), which that index serves. Counting ready and running jobs per queue
cannot be served by stock indexes; each count stops at ``cap`` rows. On a big table add:

    CREATE INDEX CONCURRENTLY index_delayed_jobs_for_dynomatic
        ON delayed_jobs (queue, locked_at, run_at) WHERE failed_at IS NULL;

which makes every part of the query below an index range scan (see docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field

from dynomatic_daemon.adapters.base import IDENTIFIER, AdapterOptions
from dynomatic_daemon.models import DEFAULT_QUEUE, QueueReading, QueueSelector, QueueStats

# {t} is the table identifier. The two lock branches are written apart (rather than as one OR)
# so that each can use the recommended index; a queue named "default" also owns NULL-queue rows.
READ_SQL = """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() AT TIME ZONE 'UTC' AS now_utc),
-- distinct priorities by skip scan over the stock (priority, run_at) index
prio(p) AS (
    (SELECT priority FROM {t} ORDER BY priority LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM {t} WHERE priority > prio.p ORDER BY priority LIMIT 1)
    FROM prio WHERE prio.p IS NOT NULL
),
-- queue names by skip scan, only when a selector needs discovery; bounded in depth
found(q, depth) AS (
    (SELECT queue, 1 FROM {t}
      WHERE %(discover)s AND failed_at IS NULL AND queue IS NOT NULL ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM {t}
             WHERE failed_at IS NULL AND queue > found.q ORDER BY queue LIMIT 1), depth + 1
    FROM found WHERE found.q IS NOT NULL AND depth < %(max_queues)s
),
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL
    UNION SELECT 'default' WHERE %(discover)s AND EXISTS (
        SELECT 1 FROM {t} WHERE queue IS NULL AND failed_at IS NULL)
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       EXTRACT(EPOCH FROM (c.now_utc - x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, r.unlocked + r.stale AS ready, o.oldest, run.running
  FROM names n
  CROSS JOIN LATERAL (
    SELECT
      (SELECT count(*) FROM (SELECT 1 FROM {t} d
        WHERE (d.queue = n.name OR (n.name = 'default' AND d.queue IS NULL))
          AND d.failed_at IS NULL AND d.locked_at IS NULL AND d.run_at <= c.now_utc
        LIMIT %(cap)s) s) AS unlocked,
      (SELECT count(*) FROM (SELECT 1 FROM {t} d
        WHERE (d.queue = n.name OR (n.name = 'default' AND d.queue IS NULL))
          AND d.failed_at IS NULL AND d.locked_at < c.now_utc - %(max_run_time)s::interval
          AND d.run_at <= c.now_utc
        LIMIT %(cap)s) s) AS stale
  ) r
  CROSS JOIN LATERAL (
    SELECT LEAST(
      (SELECT min(first.run_at) FROM prio CROSS JOIN LATERAL (
          SELECT d.run_at FROM {t} d
          WHERE d.priority = prio.p
            AND (d.queue = n.name OR (n.name = 'default' AND d.queue IS NULL))
            AND d.failed_at IS NULL AND d.locked_at IS NULL AND d.run_at <= c.now_utc
          ORDER BY d.run_at LIMIT 1) first
        WHERE prio.p IS NOT NULL),
      (SELECT min(d.run_at) FROM {t} d
        WHERE (d.queue = n.name OR (n.name = 'default' AND d.queue IS NULL))
          AND d.failed_at IS NULL AND d.locked_at < c.now_utc - %(max_run_time)s::interval
          AND d.run_at <= c.now_utc)
    ) AS oldest
  ) o
  CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {t} d
    WHERE (d.queue = n.name OR (n.name = 'default' AND d.queue IS NULL))
      AND d.failed_at IS NULL AND d.locked_at >= c.now_utc - %(max_run_time)s::interval
  ) run
) x ON true
ORDER BY x.name
"""

MAX_DISCOVERED_QUEUES = 500

DETECT_SQL = """
SELECT count(*) FILTER (WHERE column_name IN ('run_at', 'locked_at', 'failed_at', 'handler'))
FROM information_schema.columns
WHERE table_name = %(table)s AND table_schema = COALESCE(%(schema)s, current_schema())
"""


class Options(AdapterOptions):
    table: IDENTIFIER = "delayed_jobs"
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    max_run_time_seconds: Annotated[int, Field(ge=1, le=7 * 86400)] = 4 * 3600


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    params = {"table": options.table, "schema": options.schema_name}
    row = conn.execute(DETECT_SQL, params).fetchone()
    if row is None or row[0] < 4:
        return None
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} with run_at, locked_at, failed_at, handler"


class Reader:
    name = "delayed_job"

    def __init__(self, options: Options) -> None:
        self.options = options
        table = (
            sql.Identifier(options.schema_name, options.table)
            if options.schema_name
            else sql.Identifier(options.table)
        )
        self._query = sql.SQL(READ_SQL).format(t=table)

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        names = sorted({n for s in selectors for n in s.exact_names})
        params = {
            "names": names,
            "discover": any(s.needs_discovery for s in selectors),
            "max_queues": MAX_DISCOVERED_QUEUES,
            "cap": cap,
            "max_run_time": f"{self.options.max_run_time_seconds} seconds",
        }
        with conn.cursor() as cur:
            cur.execute(self._query, params)
            rows = cur.fetchall()
        stats = tuple(_stats(row, cap) for row in rows if row[1] is not None)
        return QueueReading(self.name, rows[0][0], stats)


def _stats(row: tuple[Any, ...], cap: int) -> QueueStats:
    _db_now, name, ready, oldest, age, running = row
    return QueueStats(
        queue=name or DEFAULT_QUEUE,
        ready=min(int(ready), cap),
        ready_capped=int(ready) >= cap,
        oldest_eligible_at=_aware_utc(oldest),
        oldest_ready_age_seconds=None if age is None else max(0.0, float(age)),
        running=int(running),
    )


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
