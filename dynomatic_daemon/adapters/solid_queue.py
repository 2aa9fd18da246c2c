"""solid_queue 0.2.1-1.5 (Rails 7.1+/8 for 1.x): the tables read here are unchanged since 0.2.1.

Storage contract
- Tables ``solid_queue_jobs``, ``_ready_executions``, ``_scheduled_executions``,
  ``_claimed_executions`` and ``_pauses`` (prefix and schema configurable). solid_queue usually
  lives in its own database (``connects_to``); point ``url_env`` at that database's URL. A job's
  state is the table its execution row is in. Datetimes are Rails' naive UTC ``timestamp``; we
  compare with ``now() AT TIME ZONE 'UTC'`` so the session TimeZone does not matter. Layouts
  differ only where we do not read (``solid_queue_processes.name`` came with 0.6); ``detect``
  names them.
- Ready: every ready execution, plus every scheduled execution already due (a stalled dispatcher
  must not hide a backlog), in queues without a ``solid_queue_pauses`` row.
- Running: claimed executions, by their job's queue (a claim of a dead process counts until the
  supervisor prunes it).
- Excluded: future scheduled executions, failed executions, finished jobs, paused queues and
  blocked executions, even expired ones (hirefire counts those). A blocked job waits for its
  concurrency semaphore: the dispatcher's concurrency maintenance releases at most one job per key
  per pass, and only once the semaphore is free, so more workers cannot start them; counting
  them would scale up for work that cannot run. They count once released, as ready rows.
- Eligible time of a ready row is its ``created_at``: when it entered the ready table, which is
  what ``SolidQueue::Queue#latency`` reports. The job's own ``scheduled_at``/``created_at`` would
  be wrong for rows that entered it later: a retried failed job, a released claim of a dead
  worker and an unblocked job all keep their original job row, so their age would count from
  the first enqueue (days, for a retry). The cost is the dispatch delay of scheduled jobs, about
  the dispatcher's 1 s polling interval; while a dispatcher is down its due rows report their own
  ``scheduled_at``, so only rows it dispatched in a catch-up read younger than they are.
  For a due scheduled row, eligible is ``scheduled_at``.

Cost
Ready rows are counted index-only on ``index_solid_queue_poll_by_queue (queue_name, priority,
job_id)``, stopping at the cap. ``created_at`` is not indexed, so the oldest ready row is looked
for among the ``CANDIDATES`` lowest ``job_id`` of each priority (priorities by a skip scan over
the same index). Job ids are a sequence taken at enqueue, and a job enqueued ready gets its ready
row in the same transaction, so id order is ready-entry order for them; only rows that came in
later (dispatched, retried, released) break it, and the answer is exact unless more than
``CANDIDATES`` such rows of one priority sit ahead of the oldest. Due scheduled rows are a range
of ``index_solid_queue_dispatch_all (scheduled_at, ...)``, filtered by queue: normally a handful;
O(due rows) only while the dispatcher is behind. Running reads the claimed table (one row per job
in progress) and the jobs primary key. Queue names for discovery come from a skip scan over
``index_solid_queue_jobs_for_filtering (queue_name, finished_at)``.
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

READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() AT TIME ZONE 'UTC' AS now_utc),
-- every queue with a job row (ready, scheduled, claimed, failed, finished), by skip scan
"""
    + skip_scan("{jobs}", "queue_name")
    + """,
queues(name, paused) AS (
    SELECT n.name, EXISTS (SELECT 1 FROM {pauses} p WHERE p.queue_name = n.name)
    FROM (SELECT unnest(%(names)s::text[]) UNION SELECT q FROM found WHERE q IS NOT NULL) n(name)
),
-- distinct priorities of each unpaused queue's ready rows, by skip scan over poll_by_queue
prio(queue, p) AS (
    SELECT q.name, (SELECT r.priority FROM {ready} r WHERE r.queue_name = q.name
                     ORDER BY r.priority LIMIT 1)
    FROM queues q WHERE NOT q.paused
    UNION ALL
    SELECT prio.queue, (SELECT r.priority FROM {ready} r
                         WHERE r.queue_name = prio.queue AND r.priority > prio.p
                         ORDER BY r.priority LIMIT 1)
    FROM prio WHERE prio.p IS NOT NULL
),
-- one claimed row per job in progress: few, so counted for all queues at once
running(queue, n) AS (
    SELECT j.queue_name, count(*) FROM {claimed} c JOIN {jobs} j ON j.id = c.job_id
    GROUP BY j.queue_name
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.now_utc) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT q.name, rc.n + sc.n AS ready, LEAST(ro.oldest, so.oldest) AS oldest,
         COALESCE(run.n, 0) AS running
  FROM queues q
  CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM (SELECT 1 FROM {ready} r
      WHERE r.queue_name = q.name AND NOT q.paused LIMIT %(cap)s) s
  ) rc
  CROSS JOIN LATERAL (
    -- due but not yet dispatched: a range of dispatch_all (scheduled_at, priority, job_id)
    SELECT count(*) AS n FROM (SELECT 1 FROM {scheduled} s
      WHERE s.scheduled_at <= c.now_utc AND s.queue_name = q.name AND NOT q.paused
      LIMIT %(cap)s) s
  ) sc
  CROSS JOIN LATERAL (
    SELECT min(cand.created_at) AS oldest
    FROM prio CROSS JOIN LATERAL (
      SELECT r.created_at FROM {ready} r
      WHERE r.queue_name = prio.queue AND r.priority = prio.p
      ORDER BY r.job_id LIMIT %(candidates)s
    ) cand
    WHERE prio.queue = q.name AND prio.p IS NOT NULL
  ) ro
  CROSS JOIN LATERAL (
    SELECT (SELECT s.scheduled_at FROM {scheduled} s
             WHERE s.scheduled_at <= c.now_utc AND s.queue_name = q.name AND NOT q.paused
             ORDER BY s.scheduled_at LIMIT 1) AS oldest
  ) so
  LEFT JOIN running run ON run.queue = q.name
) x ON true
ORDER BY x.name
"""
)

# Lowest job ids looked at per priority when searching for the oldest ready row (see above).
CANDIDATES = 100
TABLES = ("jobs", "ready_executions", "scheduled_executions", "claimed_executions", "pauses")

DETECT_SQL = """
SELECT
  (SELECT count(*) FROM information_schema.tables
    WHERE table_schema = COALESCE(%(schema)s, current_schema()) AND table_name = ANY(%(tables)s)),
  EXISTS (SELECT 1 FROM information_schema.columns
    WHERE table_schema = COALESCE(%(schema)s, current_schema())
      AND table_name = %(processes)s AND column_name = 'name')
"""


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    # the engine's namespace, behind any app-wide table_name_prefix
    table_prefix: Annotated[str, Field(max_length=40)] = "solid_queue_"


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    prefix = options.table_prefix
    params = {
        "schema": options.schema_name,
        "tables": [prefix + t for t in TABLES],
        "processes": prefix + "processes",
    }
    row = conn.execute(DETECT_SQL, params).fetchone()
    if row is None or int(row[0]) < len(TABLES):
        return None
    # processes.name came with 0.6; nothing this adapter reads changed
    layout = "0.6+ layout" if row[1] else "0.2-0.5 layout"
    where = options.schema_name or "current schema"
    return f"tables {where}.{prefix}* (jobs, ready/scheduled/claimed executions, pauses; {layout})"


class Reader:
    name = "solid_queue"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._query = sql.SQL(READ_SQL).format(
            **{key: _table(options, suffix) for key, suffix in _TABLE_KEYS.items()}
        )

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
            "candidates": CANDIDATES,
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)


_TABLE_KEYS = {
    "jobs": "jobs",
    "ready": "ready_executions",
    "scheduled": "scheduled_executions",
    "claimed": "claimed_executions",
    "pauses": "pauses",
}


def _table(options: Options, suffix: str) -> sql.Identifier:
    return qualified(options.schema_name, options.table_prefix + suffix)
