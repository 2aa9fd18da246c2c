"""Benchmark data for the graphile_worker adapter: graphile-worker 0.17 (migration 19).

Rows are written the way graphile-worker writes them: ``add_jobs`` leaves an available job with
``run_at`` = ``created_at`` (or a later ``runAt``), getJobs locks it (``locked_at``, ``attempts``
+ 1), a failure unlocks it with ``last_error`` and an exponential backoff ``run_at``, and a job
that used its last attempt stays unlocked with ``attempts = max_attempts``. Finished jobs are
deleted, so a quiet table is scheduled jobs and permanent failures. Four of the five queues are
task identifiers; ``reports`` is a named (serial) queue, unlocked.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "graphile_worker_0_17.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
TASKS = ("default", "mailers", "low", "critical", "send_report")

# Five skewed queues (50/25/15/8/2 %) and three priorities (80 % at the default 0; lower first).
QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""
PRIORITY = "CASE WHEN c < 0.80 THEN 0 WHEN c < 0.95 THEN -5 ELSE 10 END"

# kind of row per uniform draw a (and g, the row number, for below_cap's fixed count);
# 'available' and 'retry_due' rows are ready
STATES = {
    "backlog": """CASE WHEN a < 0.86 THEN 'available' WHEN a < 0.90 THEN 'retry_due'
                       WHEN a < 0.94 THEN 'scheduled' WHEN a < 0.96 THEN 'retry'
                       WHEN a < 0.97 THEN 'locked' ELSE 'failed' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'available' WHEN a < 0.010 THEN 'retry_due'
                      WHEN a < 0.012 THEN 'locked' WHEN a < 0.80 THEN 'scheduled'
                      WHEN a < 0.85 THEN 'retry' ELSE 'failed' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'available'
                         WHEN a < 0.002 THEN 'locked' WHEN a < 0.80 THEN 'scheduled'
                         WHEN a < 0.85 THEN 'retry' ELSE 'failed' END""",
}

# What add_jobs creates on first use of a task identifier or queue name.
TASKS_SQL = "INSERT INTO graphile_worker._private_tasks (identifier) SELECT unnest(%s::text[])"
QUEUES_SQL = "INSERT INTO graphile_worker._private_job_queues (queue_name) VALUES ('reports')"

INSERT = """
INSERT INTO graphile_worker._private_jobs (job_queue_id, task_id, payload, priority, run_at,
                                           attempts, max_attempts, last_error, created_at,
                                           updated_at, locked_at, locked_by)
SELECT q.id, t.id, '{{"customer_id": 42, "template": "welcome"}}', {priority},
       CASE kind WHEN 'scheduled' THEN now() + d * interval '1 day'
                 WHEN 'retry' THEN now() + d * interval '10 minutes'
                 WHEN 'retry_due' THEN now() - d * interval '30 seconds'
                 ELSE created_at END,
       CASE kind WHEN 'failed' THEN 25 WHEN 'locked' THEN 1
                 WHEN 'retry' THEN 3 WHEN 'retry_due' THEN 3 ELSE 0 END,
       25,
       CASE WHEN kind IN ('failed', 'retry', 'retry_due') THEN 'Error: timeout' END,
       created_at, created_at,
       CASE WHEN kind = 'locked' THEN now() - d * interval '1 minute' END,
       CASE WHEN kind = 'locked' THEN 'worker-pool-1' END
FROM (SELECT g, {state} AS kind, {queue} AS queue, c, d,
             CASE WHEN {state} = 'failed' THEN now() - interval '3 hours' - d * interval '6 days'
                  ELSE now() - (1 - e) * interval '3 hours' END AS created_at
      FROM (SELECT g, random() AS a, random() AS b, random() AS c, random() AS d,
                   g::float8 / %(rows)s AS e
            FROM generate_series(1, %(rows)s) g) draws) jobs
JOIN graphile_worker._private_tasks t
  ON t.identifier = CASE jobs.queue WHEN 'reports' THEN 'send_report' ELSE jobs.queue END
LEFT JOIN graphile_worker._private_job_queues q ON q.queue_name = jobs.queue
"""

NAIVE_SQL = """
SELECT COALESCE(q.queue_name, t.identifier), count(*), min(GREATEST(j.created_at, j.run_at))
FROM graphile_worker._private_jobs j
JOIN graphile_worker._private_tasks t ON t.id = j.task_id
LEFT JOIN graphile_worker._private_job_queues q ON q.id = j.job_queue_id
WHERE (j.is_available
       OR (j.locked_at < now() - interval '4 hours' AND j.attempts < j.max_attempts))
  AND j.run_at <= now()
  AND (q.id IS NULL OR q.locked_at IS NULL OR q.locked_at < now() - interval '4 hours')
GROUP BY 1
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    conn.execute(TASKS_SQL, [list(TASKS)])
    conn.execute(QUEUES_SQL)
    query = INSERT.format(queue=QUEUE, priority=PRIORITY, state=STATES[mix])
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(query, {"rows": rows, "every": max(1, rows // 50)})
    conn.execute("VACUUM ANALYZE graphile_worker._private_jobs")
