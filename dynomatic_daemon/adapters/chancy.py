"""chancy (Python): schema versions 4-8 of its migrator (chancy 0.26.0 ships v1-v8).

Storage contract
- Tables ``chancy_jobs`` and ``chancy_queues`` (prefix and schema configurable; chancy itself
  finds them on the search_path). Times are ``timestamptz``. Versions are told apart by the
  migrator's ``chancy_schema_version`` row; v4 added ``chancy_queues.resume_at``, which we read,
  and nothing we read changed after it.
- Ready: what chancy's worker would fetch now - ``state`` pending or retrying, ``attempts <
  max_attempts`` and ``scheduled_at <= now()`` (NOT NULL since v1, so chancy's ``IS NULL`` branch
  is dropped) - unless the queue is paused. A pause whose ``resume_at`` has passed is over: the
  next worker to poll that queue resumes it, and with no worker running nobody would, so counting
  it as paused would keep the queue at zero dynos forever.
- Running: ``state = 'running'`` (a job of a dead worker counts until the Recovery plugin puts it
  back to pending). Excluded: succeeded and failed (also cancelled) jobs, future jobs, paused
  queues. Jobs of queues that are not declared in ``chancy_queues`` still count; rate limits and
  tags are worker-side and ignored.
- Eligible time: ``GREATEST(created_at, scheduled_at, started_at)``. ``scheduled_at`` is the
  Job object's creation time unless set, so for a job pushed from an ``@job`` template it is the
  pushing process's import time and ``created_at`` (the INSERT) wins; a retry has the backoff
  time in ``scheduled_at`` (Retry plugin) or, without it, only the last attempt's ``started_at``
  to show for when it failed. A job put back by the Recovery plugin counts from its enqueue.

Cost
All of ready is served by ``chancy_idx_jobs_fetch_prune (queue, state, attempts, scheduled_at,
priority DESC, id DESC) WHERE state IN ('pending', 'retrying')``; every probe repeats that
predicate so the partial index applies. ``scheduled_at`` sits behind ``attempts``, so the queue's
(state, attempts) pairs are found first by a skip scan; within a pair "due" is an index range.
The count reads at most ``cap`` due rows (a heap visit each, for ``max_attempts``). The eligible
time is not indexed: within a pair the due rows are walked in index order as groups of equal
(``scheduled_at``, ``priority``), at most ``MAX_GROUPS`` of them, and in each group the lowest
``id`` (chancy's ids are time-ordered UUIDs taken at push) is the oldest job. A template's jobs
share one ``scheduled_at``, so they form one group per pushing process, and jobs with their own
``scheduled_at`` become eligible at it, so the first groups hold the oldest; the answer is exact
unless the oldest job sits behind more than ``MAX_GROUPS`` groups. Running jobs are few and
counted through ``chancy_idx_jobs_queue_state (queue, state)``; discovery is a skip scan over
the same index (every queue with a row, finished ones included) plus the declared queues.
The recursive skip scans' row estimates put the plan far above the default ``jit_above_cost``;
with JIT on, compiling it costs ~25 ms a tick against ~1-5 ms of execution.
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

# {jobs} and {queues} are table identifiers. "state IN ('pending', 'retrying')" is the fetch
# index's predicate, spelled out in every probe (next to an equality on state where there is
# one) so that PostgreSQL can prove the partial index applies.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now),
-- every queue with a job row in any state, by skip scan over the (queue, state) index
"""
    + skip_scan("{jobs}", "queue")
    + """,
queues(name, paused) AS (
    -- chancy's worker resumes a queue once resume_at < now: at resume_at itself it is paused
    SELECT n.name, EXISTS (SELECT 1 FROM {queues} d
        WHERE d.name = n.name AND d.state = 'paused'
          AND (d.resume_at IS NULL OR d.resume_at >= now()))
    FROM (
        SELECT unnest(%(names)s::text[])
        UNION SELECT q FROM found WHERE q IS NOT NULL
        UNION (SELECT name FROM {queues} WHERE %(discover)s ORDER BY name)
    ) n(name)
),
-- (state, attempts) pairs of each unpaused queue's waiting jobs, by skip scan; rows with a NULL
-- attempts are never fetched by chancy and would end the walk, so they are stepped over
pairs(queue, st, a) AS (
    SELECT q.name, f.state, f.attempts FROM queues q CROSS JOIN LATERAL (
        SELECT j.state, j.attempts FROM {jobs} j
        WHERE j.queue = q.name AND j.state IN ('pending', 'retrying') AND j.attempts IS NOT NULL
        ORDER BY j.state, j.attempts LIMIT 1) f
    WHERE NOT q.paused
    UNION ALL
    SELECT pr.queue, f.state, f.attempts FROM pairs pr CROSS JOIN LATERAL (
        SELECT j.state, j.attempts FROM {jobs} j
        WHERE j.queue = pr.queue AND j.state IN ('pending', 'retrying') AND j.attempts IS NOT NULL
          AND (j.state, j.attempts) > (pr.st, pr.a)
        ORDER BY j.state, j.attempts LIMIT 1) f
),
-- the first groups of equal (scheduled_at, priority) among each pair's due rows, in index order:
-- the next priority within the same scheduled_at, else the next scheduled_at
groups(queue, st, a, s, p, depth) AS (
    SELECT pr.queue, pr.st, pr.a, f.scheduled_at, f.priority, 1 FROM pairs pr CROSS JOIN LATERAL (
        SELECT j.scheduled_at, j.priority FROM {jobs} j
        WHERE j.queue = pr.queue AND j.state = pr.st AND j.state IN ('pending', 'retrying')
          AND j.attempts = pr.a AND j.scheduled_at <= now()
        ORDER BY j.scheduled_at, j.priority DESC LIMIT 1) f
    UNION ALL
    SELECT g.queue, g.st, g.a, f.scheduled_at, f.priority, g.depth + 1
    FROM groups g CROSS JOIN LATERAL (
        (SELECT j.scheduled_at, j.priority FROM {jobs} j
          WHERE j.queue = g.queue AND j.state = g.st AND j.state IN ('pending', 'retrying')
            AND j.attempts = g.a AND j.scheduled_at = g.s AND j.priority < g.p
          ORDER BY j.priority DESC LIMIT 1)
        UNION ALL
        (SELECT j.scheduled_at, j.priority FROM {jobs} j
          WHERE j.queue = g.queue AND j.state = g.st AND j.state IN ('pending', 'retrying')
            AND j.attempts = g.a AND j.scheduled_at > g.s AND j.scheduled_at <= now()
          ORDER BY j.scheduled_at, j.priority DESC LIMIT 1)
        LIMIT 1) f
    WHERE g.depth < %(max_groups)s
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT q.name, rc.n AS ready, o.oldest, run.n AS running
  FROM queues q
  CROSS JOIN LATERAL (
    -- ORDER BY and the inner LIMIT make each pair an ordered range scan of the fetch index,
    -- rather than a bitmap of every waiting row of the queue
    SELECT count(*) AS n FROM (
      SELECT 1 FROM pairs pr CROSS JOIN LATERAL (
        SELECT 1 FROM {jobs} j
        WHERE j.queue = pr.queue AND j.state = pr.st AND j.state IN ('pending', 'retrying')
          AND j.attempts = pr.a AND j.scheduled_at <= c.db_now
          AND j.attempts < j.max_attempts
        ORDER BY j.scheduled_at LIMIT %(cap)s) due
      WHERE pr.queue = q.name
      LIMIT %(cap)s) s
  ) rc
  CROSS JOIN LATERAL (
    SELECT min(t.eligible) AS oldest FROM groups g CROSS JOIN LATERAL (
      SELECT GREATEST(j.created_at, j.scheduled_at, j.started_at) AS eligible FROM {jobs} j
      WHERE j.queue = g.queue AND j.state = g.st AND j.state IN ('pending', 'retrying')
        AND j.attempts = g.a AND j.scheduled_at = g.s AND j.priority = g.p
        AND j.attempts < j.max_attempts
      ORDER BY j.id LIMIT 1) t
    WHERE g.queue = q.name
  ) o
  CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM {jobs} j WHERE j.queue = q.name AND j.state = 'running'
  ) run
) x ON true
ORDER BY x.name
"""
)

# Groups of equal (scheduled_at, priority) looked at per (state, attempts) pair (see above).
MAX_GROUPS = 20

DETECT_SQL = """
SELECT
  ARRAY(SELECT column_name::text FROM information_schema.columns
    WHERE table_schema = COALESCE(%(schema)s, current_schema()) AND table_name = %(jobs)s),
  EXISTS (SELECT 1 FROM information_schema.columns
    WHERE table_schema = COALESCE(%(schema)s, current_schema()) AND table_name = %(queues)s
      AND column_name = 'resume_at'),
  EXISTS (SELECT 1 FROM information_schema.tables
    WHERE table_schema = COALESCE(%(schema)s, current_schema()) AND table_name = %(versions)s)
"""
JOBS_COLUMNS = ("queue", "func", "state", "attempts", "max_attempts", "scheduled_at")
VERSION_SQL = "SELECT max(version) FROM {} WHERE version_of = 'chancy'"


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    prefix: Annotated[str, Field(max_length=40)] = "chancy_"


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    names = {
        "jobs": options.prefix + "jobs",
        "queues": options.prefix + "queues",
        "versions": options.prefix + "schema_version",
    }
    row = conn.execute(DETECT_SQL, {"schema": options.schema_name, **names}).fetchone()
    if row is None or not set(JOBS_COLUMNS) <= set(row[0]) or not row[1]:
        return None  # not chancy, or older than schema v4 (no queues.resume_at)
    version = "version unknown"
    if row[2]:
        query = sql.SQL(VERSION_SQL).format(_table(options, "schema_version"))
        found = conn.execute(query).fetchone()
        if found is not None and found[0] is not None:
            version = f"schema v{int(found[0])}"
    where = options.schema_name or "current schema"
    return f"tables {where}.{names['jobs']} and {names['queues']} ({version})"


class Reader:
    name = "chancy"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._query = sql.SQL(READ_SQL).format(
            jobs=_table(options, "jobs"), queues=_table(options, "queues")
        )

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "max_groups": MAX_GROUPS,
            "cap": cap,
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)


def _table(options: Options, suffix: str) -> sql.Identifier:
    return qualified(options.schema_name, options.prefix + suffix)
