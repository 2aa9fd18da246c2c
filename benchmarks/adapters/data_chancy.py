"""Benchmark data for the chancy adapter: ``chancy_jobs`` filled set-based, as chancy writes it.

Five declared queues of skewed sizes, priorities 0 (80 %), 10 (15 %) and -5 (5 %); ids are
time-ordered UUIDs like ``chancy.utils.chancy_uuid``. Most waiting jobs carry the stale
``scheduled_at`` of an ``@job`` template (one per pushing process, three processes here), the
rest their own; a few are retries waiting out a backoff. Finished jobs stay as ``succeeded`` rows
until chancy's Pruner deletes them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

FIXTURE = SCHEMAS / "chancy.sql"
OPTIONS: dict[str, object] = {}
CAP = 101

# Shares of each state per mix; "ready" for below_cap is an absolute 50 rows.
MIXES: dict[str, dict[str, float]] = {
    "backlog": {"ready": 0.89, "retry_due": 0.01, "future": 0.05, "running": 0.01, "failed": 0.04},
    "sparse": {"ready": 0.01, "future": 0.15, "running": 0.002, "failed": 0.02, "succeeded": 0.818},
    "below_cap": {"future": 0.15, "running": 0.002, "failed": 0.02, "succeeded": 0.828},
}

NAIVE_SQL = """
SELECT queue, count(*) AS ready, min(GREATEST(created_at, scheduled_at, started_at)) AS oldest
FROM chancy_jobs j
WHERE state IN ('pending', 'retrying') AND attempts < max_attempts AND scheduled_at <= now()
  AND NOT EXISTS (SELECT 1 FROM chancy_queues q
                  WHERE q.name = j.queue AND q.state = 'paused'
                    AND (q.resume_at IS NULL OR q.resume_at > now()))
GROUP BY queue
"""

DECLARE = """
INSERT INTO chancy_queues (name, concurrency)
VALUES ('default', 4), ('mailers', 2), ('low', 1), ('critical', 2), ('reports', 1)
ON CONFLICT (name) DO NOTHING
"""

# One row per job over about 3 h of pushes, oldest first.
LOAD = """
INSERT INTO chancy_jobs (id, queue, func, kwargs, state, priority, attempts, max_attempts,
                         taken_by, created_at, started_at, completed_at, scheduled_at)
SELECT ('0' || lpad(to_hex((extract(epoch FROM created_at) * 1e7)::bigint), 14, '0') || '78'
        || substr(md5(g::text), 1, 15))::uuid,
       queue, 'app.jobs.work', jsonb_build_object('n', g),
       CASE kind WHEN 'ready' THEN 'pending' WHEN 'future' THEN 'pending'
                 WHEN 'retry_due' THEN 'retrying' ELSE kind END,
       priority,
       CASE kind WHEN 'retry_due' THEN 1 WHEN 'failed' THEN 1 WHEN 'succeeded' THEN 1 ELSE 0 END,
       CASE kind WHEN 'retry_due' THEN 3 ELSE 1 END,
       CASE kind WHEN 'running' THEN 'worker-1' END,
       created_at,
       CASE WHEN kind IN ('running', 'failed', 'succeeded', 'retry_due')
            THEN created_at + interval '1 second' END,
       CASE WHEN kind IN ('failed', 'succeeded') THEN created_at + interval '2 seconds' END,
       CASE WHEN kind = 'future' THEN now() + interval '1 hour'
            WHEN kind = 'retry_due' THEN created_at + interval '30 seconds'
            -- an @job template's import time, one per pushing process
            WHEN t < 0.7 THEN now() - interval '4 hours' + floor(t * 3 / 0.7) * interval '5 minutes'
            ELSE created_at - interval '1 millisecond' END
FROM (
    SELECT g,
           CASE WHEN g = ANY(%(ready_ids)s::bigint[]) THEN 'ready'
                ELSE (SELECT k FROM unnest(%(kinds)s::text[], %(bounds)s::float8[]) b(k, upto)
                       WHERE u < upto ORDER BY upto LIMIT 1) END AS kind,
           CASE WHEN q < 0.50 THEN 'default' WHEN q < 0.75 THEN 'mailers'
                WHEN q < 0.90 THEN 'low' WHEN q < 0.98 THEN 'critical' ELSE 'reports' END AS queue,
           CASE WHEN p < 0.80 THEN 0 WHEN p < 0.95 THEN 10 ELSE -5 END AS priority,
           t,
           now() - make_interval(secs => (%(rows)s - g) * 10800.0 / %(rows)s + 1) AS created_at
    FROM (SELECT g, random() AS u, random() AS q, random() AS p, random() AS t
          FROM generate_series(1, %(rows)s) g) r
) s
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(FIXTURE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    kinds, bounds, total = [], [], 0.0
    for kind, share in MIXES[mix].items():
        total += share
        kinds.append(kind)
        bounds.append(total)
    bounds[-1] = 1.0
    # below_cap: exactly 50 ready jobs, spread evenly through the table
    ready_ids = list(range(rows // 50, rows + 1, rows // 50))[:50] if mix == "below_cap" else []
    params = {"rows": rows, "kinds": kinds, "bounds": bounds, "ready_ids": ready_ids}
    with conn.transaction():
        conn.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        conn.execute(DECLARE)
        conn.execute(LOAD, params)
    # VACUUM sets the visibility map that index-only scans rely on, as in a steady state
    conn.execute("VACUUM ANALYZE" if conn.autocommit else "ANALYZE")
