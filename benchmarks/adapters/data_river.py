"""Benchmark data for the river adapter: River migration line ``main`` version 7, ``river_job``.

Rows are written the way River writes them: ``available`` with ``scheduled_at`` = insert time,
``scheduled`` for jobs given a ``ScheduledAt`` (some already due, waiting for the leader's
scheduler), ``retryable`` with a backoff ``scheduled_at`` and an error, ``running`` with
``attempted_at``, and ``completed`` / ``discarded`` with ``finalized_at`` (River keeps completed
jobs for a day by default, so they dominate a quiet table). Every queue has its ``river_queue``
row, none paused, as running clients leave them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "river_7.sql"
OPTIONS: dict[str, object] = {}
CAP = 101

# Five skewed queues (50/25/15/8/2 %) and three of River's priorities (80 % at the default 1).
QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""
PRIORITY = "CASE WHEN c < 0.80 THEN 1 WHEN c < 0.95 THEN 2 ELSE 4 END"

# kind of row per uniform draw a (and g, the row number, for below_cap's fixed count); *_due
# rows are ready, as are all 'available' ones
STATES = {
    "backlog": """CASE WHEN a < 0.86 THEN 'available' WHEN a < 0.88 THEN 'scheduled_due'
                       WHEN a < 0.90 THEN 'retryable_due' WHEN a < 0.95 THEN 'scheduled'
                       WHEN a < 0.96 THEN 'running' WHEN a < 0.98 THEN 'retryable'
                       ELSE 'discarded' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'available' WHEN a < 0.010 THEN 'retryable_due'
                      WHEN a < 0.012 THEN 'running' WHEN a < 0.70 THEN 'completed'
                      WHEN a < 0.95 THEN 'scheduled' WHEN a < 0.97 THEN 'retryable'
                      ELSE 'discarded' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'available'
                         WHEN a < 0.002 THEN 'running' WHEN a < 0.70 THEN 'completed'
                         WHEN a < 0.95 THEN 'scheduled' WHEN a < 0.97 THEN 'retryable'
                         ELSE 'discarded' END""",
}

INSERT = """
INSERT INTO river_job (state, attempt, max_attempts, attempted_at, created_at, finalized_at,
                       scheduled_at, priority, args, attempted_by, errors, kind, queue)
SELECT split_part(kind, '_', 1)::river_job_state,
       CASE WHEN kind LIKE 'retryable%%' OR kind = 'discarded' THEN 3
            WHEN kind IN ('running', 'completed') THEN 1 ELSE 0 END,
       25,
       CASE WHEN kind IN ('running', 'completed', 'discarded') OR kind LIKE 'retryable%%'
            THEN created_at + interval '1 second' END,
       created_at,
       CASE WHEN kind IN ('completed', 'discarded') THEN created_at + interval '2 seconds' END,
       CASE kind WHEN 'scheduled' THEN now() + d * interval '1 day'
                 WHEN 'retryable' THEN now() + d * interval '1 hour'
                 WHEN 'scheduled_due' THEN now() - d * interval '10 seconds'
                 WHEN 'retryable_due' THEN now() - d * interval '30 seconds'
                 ELSE created_at END,
       {priority},
       '{{"customer_id": 42, "template": "welcome"}}',
       CASE WHEN kind NOT IN ('available', 'scheduled', 'scheduled_due')
            THEN ARRAY['worker-host-1'] END,
       CASE WHEN kind LIKE 'retryable%%' OR kind = 'discarded'
            THEN ARRAY['{{"attempt": 1, "error": "timeout"}}'::jsonb] END,
       'send_email', {queue}
FROM (SELECT g, {state} AS kind, b, c, d, now() - (1 - e) * interval '3 hours' AS created_at
      FROM (SELECT g, random() AS a, random() AS b, random() AS c, random() AS d,
                   g::float8 / %(rows)s AS e
            FROM generate_series(1, %(rows)s) g) draws) jobs
"""

QUEUES = """
INSERT INTO river_queue (name, updated_at)
SELECT DISTINCT queue, now() FROM river_job ON CONFLICT DO NOTHING
"""

NAIVE_SQL = """
SELECT queue, count(*), min(scheduled_at)
FROM river_job
WHERE state IN ('available', 'scheduled', 'retryable') AND scheduled_at <= now()
  AND queue NOT IN (SELECT name FROM river_queue WHERE paused_at IS NOT NULL)
GROUP BY queue
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    query = INSERT.format(queue=QUEUE, priority=PRIORITY, state=STATES[mix])
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(query, {"rows": rows, "every": max(1, rows // 50)})
    conn.execute(QUEUES)
    conn.execute("VACUUM ANALYZE river_job")
