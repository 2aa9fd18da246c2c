"""Oban (Elixir, oban-bg/oban) with the Basic engine: migration versions 8-14 (Oban 2.0 to 2.23).

Storage contract
- Table ``oban_jobs`` in the ``prefix`` schema. Columns read: ``state`` (enum
  ``oban_job_state``), ``queue``, ``priority``, ``inserted_at``, ``scheduled_at``; the times are
  naive UTC ``timestamp`` (Ecto ``utc_datetime_usec``), so we compare with
  ``now() AT TIME ZONE 'UTC'``. The migration version is Oban's own ``COMMENT ON TABLE
  <prefix>.oban_jobs``; ``detect`` reports it.
- Ready: ``state = 'available'`` (its ``scheduled_at`` is always past; checked anyway), plus
  ``scheduled`` / ``retryable`` rows whose ``scheduled_at`` has come: only the leader's Stager
  makes them ``available`` (every second), so a stalled Stager must not hide a backlog. Jobs
  inserted with any explicit ``scheduled_at``, even a past one, start as ``scheduled``.
- Running: ``state = 'executing'``; a job whose node died stays there until the Lifeline plugin
  rescues it, if the app runs it.
- Excluded: ``completed``, ``discarded``, ``cancelled``, ``suspended`` (v14: held on purpose) and
  not-yet-due ``scheduled`` / ``retryable`` rows.
- Not visible: queue pauses. Oban keeps them in each node's producer memory (Oban Pro's Smart
  engine persists them in its own ``oban_producers`` table, which we do not read), so the jobs of
  a paused queue are counted as ready.
- Eligible time: ``GREATEST(inserted_at, scheduled_at)``, taken from the job at the head of each
  (state, priority) lane in Oban's own fetch order (``scheduled_at``): exact unless a job
  inserted with a past ``scheduled_at`` sits ahead of older ones, in which case the age is that
  head job's, i.e. it errs young, never old.
- Versions: v8 (Oban 2.0) added ``priority`` and the fetch index below; v12 (2.17) opened
  ``priority`` to any value >= 0. Before v8 the read fails (no ``priority`` column: "column
  j.priority does not exist") and ``detect`` says the version is unsupported. On v8-v9
  ``priority`` is nullable; rows enqueued before the v8 migration (NULL priority) are not seen.

Cost
Oban's ``oban_jobs_state_queue_priority_scheduled_at_id_index (state, queue, priority,
scheduled_at, id)`` serves every part. Per queue, the priorities present in each ready state are
found by a skip scan over (state, queue, priority); within each such lane the ready rows are one
index range ending at now, so the bounded count walks at most ``cap`` index entries and the
oldest is one ``ORDER BY scheduled_at LIMIT 1`` probe (plus one heap fetch for ``inserted_at``).
The running count is an index range on (state, queue); queue discovery is a skip scan over the
(state, queue) prefix, one walk per live state. ``completed`` rows are never touched.
Every lane is probed: Oban's changesets kept priority in 0..9 (at most 30 lanes per queue) until
v12 opened it upward. The recursive walk's row estimate can put the plan over
``jit_above_cost``, where JIT compilation would cost ~20 ms against ~1 ms for the query (100 k
rows); the daemon's sessions run with ``jit = off`` (``db.connection_kwargs``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from dynomatic_daemon.adapters.base import IDENTIFIER, AdapterOptions, fetch, reading, selection
from dynomatic_daemon.models import QueueReading, QueueSelector

# {job}: the table; {state}: the enum type (a literal of another type would not use the index).
READ_SQL = """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() AT TIME ZONE 'UTC' AS now_utc),
-- queue names by skip scan over the index's (state, queue) prefix, one walk per live state
-- (not base.skip_scan, which walks one column: the index leads with state, not queue)
found(state, queue) AS (
    SELECT first.state, first.queue
    FROM unnest('{{available,scheduled,retryable,executing}}'::{state}[]) AS live(state)
    CROSS JOIN LATERAL (
        SELECT j.state, j.queue FROM {job} j
        WHERE %(discover)s AND j.state = live.state ORDER BY j.queue LIMIT 1) first
    UNION ALL
    SELECT nxt.state, nxt.queue
    FROM found f CROSS JOIN LATERAL (
        SELECT j.state, j.queue FROM {job} j
        WHERE j.state = f.state AND j.queue > f.queue ORDER BY j.queue LIMIT 1) nxt
),
names(name) AS (SELECT unnest(%(names)s::text[]) UNION SELECT queue FROM found)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.now_utc) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, r.ready, r.oldest, run.running
  FROM names n
  CROSS JOIN LATERAL (
    -- this queue's (state, priority) lanes among ready states: a skip scan over priority,
    -- which is open-ended since v12, so every lane is walked (a cut hid the ready work past it)
    WITH RECURSIVE lanes(state, priority) AS (
        SELECT s.state, first.priority
        FROM unnest('{{available,scheduled,retryable}}'::{state}[]) AS s(state)
        CROSS JOIN LATERAL (
            SELECT j.priority FROM {job} j
            WHERE j.state = s.state AND j.queue = n.name ORDER BY j.priority LIMIT 1) first
        UNION ALL
        SELECT l.state, nxt.priority
        FROM lanes l CROSS JOIN LATERAL (
            SELECT j.priority FROM {job} j
            WHERE j.state = l.state AND j.queue = n.name AND j.priority > l.priority
            ORDER BY j.priority LIMIT 1) nxt
    )
    SELECT
      (SELECT count(*) FROM (
        SELECT 1 FROM lanes l CROSS JOIN LATERAL (
          -- equality on state, queue and priority makes scheduled_at <= now one index range
          SELECT 1 FROM {job} j
          WHERE j.state = l.state AND j.queue = n.name AND j.priority = l.priority
            AND j.scheduled_at <= c.now_utc
          LIMIT %(cap)s) hit
        LIMIT %(cap)s) bounded) AS ready,
      (SELECT min(GREATEST(head.inserted_at, head.scheduled_at))
       FROM lanes l CROSS JOIN LATERAL (
         SELECT j.inserted_at, j.scheduled_at FROM {job} j
         WHERE j.state = l.state AND j.queue = n.name AND j.priority = l.priority
           AND j.scheduled_at <= c.now_utc
         ORDER BY j.scheduled_at LIMIT 1) head) AS oldest
  ) r
  CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {job} j WHERE j.state = 'executing' AND j.queue = n.name
  ) run
) x ON true
ORDER BY x.name
"""

FIRST_SUPPORTED_VERSION = 8

# The version comment is read as Oban's own migrator reads it (pg_class in the prefix schema).
DETECT_SQL = """
SELECT array_agg(a.attname::text), obj_description(c.oid, 'pg_class')
FROM pg_class c
JOIN pg_namespace ns ON ns.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relname = 'oban_jobs' AND c.relkind IN ('r', 'p') AND ns.nspname = %(prefix)s
GROUP BY c.oid
"""
JOB_COLUMNS = frozenset({"state", "queue", "worker", "args", "inserted_at", "scheduled_at"})


class Options(AdapterOptions):
    prefix: IDENTIFIER = "public"


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    row = conn.execute(DETECT_SQL, {"prefix": options.prefix}).fetchone()
    if row is None or not set(row[0]) >= JOB_COLUMNS:
        return None
    where = f"table {options.prefix}.oban_jobs"
    comment = str(row[1] or "").strip()
    if not re.fullmatch(r"[0-9]+", comment):
        seen = f"migration version comment {comment!r}" if comment else "no version comment"
        layout = "priority column" if "priority" in row[0] else "no priority column: unsupported"
        return f"{where} ({seen}; {layout})"
    version = int(comment)
    if version < FIRST_SUPPORTED_VERSION or "priority" not in row[0]:
        return f"{where} (migration version {version}: unsupported, needs v8+ from Oban 2.0)"
    return f"{where} (migration version {version})"


class Reader:
    name = "oban"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._query = sql.SQL(READ_SQL).format(
            job=sql.Identifier(options.prefix, "oban_jobs"),
            state=sql.Identifier(options.prefix, "oban_job_state"),
        )

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
