"""procrastinate 3.x (read against 3.10's ``sql/schema.sql``; the ``_v1``/``_v2`` object names).

Storage contract
- Tables ``procrastinate_jobs`` and ``procrastinate_events``, which procrastinate creates
  unqualified, i.e. in the first schema of ``search_path``; ``schema`` names that schema when it
  is not the reader's. Columns read: ``id``, ``queue_name``, ``priority`` (higher runs first),
  ``lock``, ``status``, ``scheduled_at`` (``timestamptz``); events' ``job_id``, ``type``, ``at``.
- Ready: what ``procrastinate_fetch_job_v2`` would take now: ``status = 'todo'``,
  ``scheduled_at`` NULL or due, and not lock-blocked - no job with the same ``lock`` is
  ``doing``, and no ``todo`` job with it (due or not) comes first in fetch order (higher priority,
  or same priority and lower id). That is the 3.3+ rule; 3.0-3.2 blocked on any lower id, which
  agrees whenever jobs sharing a lock share a priority. A retry is ``todo`` again with
  ``scheduled_at`` = retry time, so due retries count and backing-off ones do not.
- Running: ``doing``, including jobs of dead workers (they stay ``doing`` until the app runs
  ``retry_stalled_jobs``). ``aborting`` is unused since 3.0, whose migration made such rows
  ``doing``. Excluded: ``succeeded``, ``failed``, ``cancelled``, ``aborted``.
- Eligible time: the jobs table has no enqueue time. It is the job's latest ``deferred`` /
  ``deferred_for_retry`` / ``retried`` event, or ``scheduled_at`` when that is later (scheduled
  jobs, retries). It is looked up for the ``ELIGIBLE_CANDIDATES`` lowest-id ready jobs of each
  priority only. Ids come from a sequence, so enqueue times grow with ids, and no job is eligible
  before it was enqueued: if one candidate of a priority was deferred to run at once (its
  eligible time is its enqueue time), no later job of that priority can be older, and the answer
  is exact. Only when all of them are scheduled jobs or retries can a later job have come due
  earlier; the age reported is then at most the true one, which is itself at most the time
  since that priority's youngest candidate was deferred.
- Versions: 3.0 added ``abort_requested``, 3.1 ``worker_id``, 3.4 the ``retried`` event type.

Cost
procrastinate ships ``(priority DESC, id) WHERE status = 'todo'`` and a plain ``(queue_name)``.
Per queue and per distinct todo priority (found by a skip scan of the first index), one walk
over that priority's range of the first index in id order collects up to ``cap`` ready jobs:
their number is the bounded count, the first few are the oldest-job candidates (one ``(job_id)``
lookup in the events table each). The walk reads todo rows only, never the finished jobs
procrastinate keeps by default, and stops at ``cap``; but with no queue in that index it passes
other queues' todo rows, so a queue with fewer than ``cap`` ready jobs costs a pass over all todo
rows. With many todo rows (scheduled for later, or in other queues) add:

    CREATE INDEX CONCURRENTLY procrastinate_jobs_queue_todo_for_dynomatic
        ON procrastinate_jobs (queue_name, priority DESC, id) WHERE status = 'todo';

which turns each walk into a range of one queue (see docs/benchmarks.md). Running jobs are
counted once for all queues from the unique ``(lock) WHERE status = 'doing'`` index, which holds
every ``doing`` row. Queue names come from a skip scan over ``(queue_name)``, which also finds
queues that only have finished jobs. A job with a lock costs a hashed probe of the ``doing``
locks and a search for a todo job ahead of it with the same lock, which no index of
procrastinate's serves well (its own fetch pays the same). The planner prices that search for
every row, so the plan's estimated cost is high: with ``jit = on`` the server would JIT-compile
this statement on every read (~0.3 s); the daemon's connections should run with ``jit = off``.
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

# {jobs} and {events} are table identifiers. Lock-free jobs skip the lock subqueries through the
# OR; the two NOT EXISTS are the two arms of procrastinate_fetch_job_v2's, split so that the cheap
# one - the unique (lock) WHERE status = 'doing' index - is probed first.
UNBLOCKED = """(j.lock IS NULL OR (
          NOT EXISTS (SELECT 1 FROM {jobs} other
                      WHERE other.lock = j.lock AND other.status = 'doing')
          AND NOT EXISTS (SELECT 1 FROM {jobs} other
                          WHERE other.lock = j.lock AND other.status = 'todo'
                            AND (other.priority > j.priority
                                 OR (other.priority = j.priority AND other.id < j.id)))))"""

READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now),
-- distinct priorities of todo jobs, by skip scan over (priority DESC, id) WHERE status = 'todo'
prio(p) AS (
    (SELECT priority FROM {jobs} WHERE status = 'todo' ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM {jobs}
             WHERE status = 'todo' AND priority < prio.p ORDER BY priority DESC LIMIT 1)
    FROM prio WHERE prio.p IS NOT NULL
),
-- queue names by skip scan over (queue_name), only when a selector needs discovery
"""
    + skip_scan("{jobs}", "queue_name")
    + """,
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL
),
-- once for all queues: status = 'doing' is the predicate of the unique (lock) index
running(name, jobs) AS MATERIALIZED (
    SELECT queue_name::text, count(*) FROM {jobs} WHERE status = 'doing' GROUP BY queue_name
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, r.ready, r.oldest,
         COALESCE((SELECT run.jobs FROM running run WHERE run.name = n.name), 0) AS running
  FROM names n
  CROSS JOIN LATERAL (
    -- the first ready jobs of each priority in id order (fetch order within a priority):
    -- their number is the bounded count, the first few of them the oldest-job candidates
    SELECT count(*) AS ready,
           min(CASE WHEN w.rank <= %(candidates)s THEN GREATEST(w.scheduled_at, (
               -- text comparison: 'retried' is not a label of the enum before 3.4
               SELECT max(e.at) FROM {events} e
               WHERE e.job_id = w.id
                 AND e.type::text IN ('deferred', 'deferred_for_retry', 'retried'))) END
           ) AS oldest
    FROM prio
    CROSS JOIN LATERAL (
      SELECT j.id, j.scheduled_at, row_number() OVER (ORDER BY j.id) AS rank
      FROM (
        SELECT j.id, j.scheduled_at FROM {jobs} j
        -- status = 'todo' and priority = p: a range of (priority DESC, id) WHERE status = 'todo'
        WHERE j.status = 'todo' AND j.priority = prio.p AND j.queue_name = n.name
          AND (j.scheduled_at IS NULL OR j.scheduled_at <= c.db_now)
          AND {unblocked}
        ORDER BY j.id
        LIMIT %(cap)s
      ) j
    ) w
    WHERE prio.p IS NOT NULL
  ) r
) x ON true
ORDER BY x.name
"""
)

ELIGIBLE_CANDIDATES = 10

REQUIRED_COLUMNS = ("queue_name", "priority", "lock", "status", "scheduled_at")
DETECT_SQL = """
WITH jobs AS (
    SELECT c.oid, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN 'procrastinate_jobs'
                                   ELSE format('%%I.procrastinate_jobs', %(schema)s) END)
)
SELECT jobs.nspname,
       array_agg(a.attname::text),
       bool_or(a.attname = 'abort_requested'),
       bool_or(a.attname = 'worker_id'),
       to_regclass(format('%%I.procrastinate_events', jobs.nspname)) IS NOT NULL,
       EXISTS (SELECT 1 FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
               JOIN pg_namespace tn ON tn.oid = t.typnamespace
               WHERE t.typname = 'procrastinate_job_event_type' AND tn.nspname = jobs.nspname
                 AND e.enumlabel = 'retried')
FROM jobs JOIN pg_attribute a ON a.attrelid = jobs.oid AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY jobs.nspname
"""


class Options(AdapterOptions):
    # procrastinate has no schema setting: its tables live where search_path points.
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    row = conn.execute(DETECT_SQL, {"schema": options.schema_name}).fetchone()
    if row is None:
        return None
    schema, columns, has_abort_flag, has_workers, has_events, has_retried = row
    if not set(REQUIRED_COLUMNS) <= set(columns) or not has_events:
        return None
    if has_retried:
        layout = "3.4+ layout"
    elif has_workers:
        layout = "3.1-3.3 layout"
    elif has_abort_flag:
        layout = "3.0 layout"
    else:
        layout = "pre-3.0 layout, unsupported"
    return f"tables {schema}.procrastinate_jobs and procrastinate_events ({layout})"


class Reader:
    name = "procrastinate"

    def __init__(self, options: Options) -> None:
        self.options = options
        schema = options.schema_name
        jobs = qualified(schema, "procrastinate_jobs")
        events = qualified(schema, "procrastinate_events")
        unblocked = sql.SQL(UNBLOCKED).format(jobs=jobs)
        self._query = sql.SQL(READ_SQL).format(jobs=jobs, events=events, unblocked=unblocked)

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
            "candidates": ELIGIBLE_CANDIDATES,
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
