"""Benchmark data for the oban adapter: Oban migration version 14, ``oban_jobs``.

Rows are written the way Oban's Basic engine writes them, as naive UTC: ``available`` with
``scheduled_at`` = ``inserted_at``, ``scheduled`` for jobs given a schedule (some already due,
waiting for the Stager), ``retryable`` with a backoff ``scheduled_at`` and an error,
``executing`` with ``attempted_at``/``attempted_by``, ``completed`` / ``discarded`` with their
timestamps (the Pruner keeps completed jobs for 60 s by default; many apps keep days).
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "oban_14.sql"
OPTIONS: dict[str, object] = {"prefix": "public"}
CAP = 101

# Five skewed queues (50/25/15/8/2 %) and three priorities (80 % at Oban's default 0).
QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""
PRIORITY = "CASE WHEN c < 0.80 THEN 0 WHEN c < 0.95 THEN 1 ELSE 3 END"

# kind of row per uniform draw a (and g, the row number, for below_cap's fixed count); *_due
# rows are ready, as are all 'available' ones
STATES = {
    "backlog": """CASE WHEN a < 0.86 THEN 'available' WHEN a < 0.88 THEN 'scheduled_due'
                       WHEN a < 0.90 THEN 'retryable_due' WHEN a < 0.95 THEN 'scheduled'
                       WHEN a < 0.96 THEN 'executing' WHEN a < 0.98 THEN 'retryable'
                       ELSE 'discarded' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'available' WHEN a < 0.010 THEN 'retryable_due'
                      WHEN a < 0.012 THEN 'executing' WHEN a < 0.70 THEN 'completed'
                      WHEN a < 0.95 THEN 'scheduled' WHEN a < 0.97 THEN 'retryable'
                      ELSE 'discarded' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'available'
                         WHEN a < 0.002 THEN 'executing' WHEN a < 0.70 THEN 'completed'
                         WHEN a < 0.95 THEN 'scheduled' WHEN a < 0.97 THEN 'retryable'
                         ELSE 'discarded' END""",
}

INSERT = """
INSERT INTO oban_jobs (state, queue, worker, args, errors, attempt, inserted_at, scheduled_at,
                       attempted_at, completed_at, attempted_by, discarded_at, priority, meta)
SELECT split_part(kind, '_', 1)::oban_job_state, {queue}, 'MyApp.Workers.Mailer',
       '{{"customer_id": 42, "template": "welcome"}}',
       CASE WHEN kind LIKE 'retryable%%' OR kind = 'discarded'
            THEN ARRAY['{{"at": "2024-01-01T00:00:00Z", "attempt": 1, "error": "timeout"}}'::jsonb]
            ELSE ARRAY[]::jsonb[] END,
       CASE WHEN kind LIKE 'retryable%%' OR kind = 'discarded' THEN 3
            WHEN kind IN ('executing', 'completed') THEN 1 ELSE 0 END,
       inserted_at,
       CASE kind WHEN 'scheduled' THEN now_utc + d * interval '1 day'
                 WHEN 'retryable' THEN now_utc + d * interval '1 hour'
                 WHEN 'scheduled_due' THEN now_utc - d * interval '10 seconds'
                 WHEN 'retryable_due' THEN now_utc - d * interval '30 seconds'
                 ELSE inserted_at END,
       CASE WHEN kind IN ('executing', 'completed', 'discarded') OR kind LIKE 'retryable%%'
            THEN inserted_at + interval '1 second' END,
       CASE WHEN kind = 'completed' THEN inserted_at + interval '2 seconds' END,
       CASE WHEN kind NOT IN ('available', 'scheduled', 'scheduled_due')
            THEN ARRAY['worker@host-1', '9f1c5e3a-0b6e-4d1e-9a51-3f1d2c4b5a69'] END,
       CASE WHEN kind = 'discarded' THEN inserted_at + interval '2 seconds' END,
       {priority}, '{{}}'
FROM (SELECT g, {state} AS kind, b, c, d, now_utc,
             now_utc - (1 - e) * interval '3 hours' AS inserted_at
      FROM (SELECT g, random() AS a, random() AS b, random() AS c, random() AS d,
                   g::float8 / %(rows)s AS e, now() AT TIME ZONE 'UTC' AS now_utc
            FROM generate_series(1, %(rows)s) g) draws) jobs
"""

NAIVE_SQL = """
SELECT queue, count(*), min(GREATEST(inserted_at, scheduled_at))
FROM oban_jobs
WHERE state IN ('available', 'scheduled', 'retryable')
  AND scheduled_at <= now() AT TIME ZONE 'UTC'
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
    conn.execute("VACUUM ANALYZE oban_jobs")
