"""Benchmark data for the solid_queue adapter: the library's tables filled set-based.

Every job gets a row in ``solid_queue_jobs`` and, by its state, an execution row: ready, due or
future scheduled, claimed (running) or failed; finished jobs keep only their job row, as with
solid_queue's default ``preserve_finished_jobs``. Five queues of skewed sizes, priorities 0 (80 %),
10 (15 %) and -5 (5 %); times are naive UTC as Rails writes them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

FIXTURE = SCHEMAS / "solid_queue.sql"
OPTIONS: dict[str, object] = {}
CAP = 101

# Shares of each state per mix; "ready" for below_cap is an absolute 50 rows.
MIXES: dict[str, dict[str, float]] = {
    "backlog": {"ready": 0.90, "due": 0.002, "future": 0.057, "running": 0.001, "failed": 0.04},
    "sparse": {"ready": 0.01, "future": 0.15, "running": 0.001, "failed": 0.02, "finished": 0.819},
    "below_cap": {"future": 0.15, "running": 0.001, "failed": 0.02, "finished": 0.829},
}

NAIVE_SQL = """
SELECT queue_name, count(*) AS ready, min(eligible) AS oldest
FROM (
    SELECT r.queue_name, r.created_at AS eligible FROM solid_queue_ready_executions r
    WHERE NOT EXISTS (SELECT 1 FROM solid_queue_pauses p WHERE p.queue_name = r.queue_name)
    UNION ALL
    SELECT s.queue_name, s.scheduled_at FROM solid_queue_scheduled_executions s
    WHERE s.scheduled_at <= now() AT TIME ZONE 'UTC'
      AND NOT EXISTS (SELECT 1 FROM solid_queue_pauses p WHERE p.queue_name = s.queue_name)
) t
GROUP BY queue_name
"""

# One row per job: its state drawn from the mix, queue and priority from skewed weights.
GENERATE = """
CREATE TEMP TABLE sq_gen ON COMMIT DROP AS
SELECT g AS id,
       CASE WHEN g = ANY(%(ready_ids)s::bigint[]) THEN 'ready'
            ELSE (SELECT k FROM unnest(%(kinds)s::text[], %(bounds)s::float8[]) b(k, upto)
                   WHERE u < upto ORDER BY upto LIMIT 1) END AS kind,
       CASE WHEN q < 0.50 THEN 'default' WHEN q < 0.75 THEN 'mailers' WHEN q < 0.90 THEN 'low'
            WHEN q < 0.98 THEN 'critical' ELSE 'reports' END AS queue_name,
       CASE WHEN p < 0.80 THEN 0 WHEN p < 0.95 THEN 10 ELSE -5 END AS priority,
       (now() AT TIME ZONE 'UTC') - make_interval(secs => (%(rows)s - g) * 0.5) AS created_at
FROM (SELECT g, random() AS u, random() AS q, random() AS p
      FROM generate_series(1, %(rows)s) g) r
"""

LOAD = (
    """
INSERT INTO solid_queue_jobs (id, queue_name, class_name, arguments, priority, active_job_id,
                              scheduled_at, finished_at, created_at, updated_at)
SELECT id, queue_name, 'BenchmarkJob', repeat('x', 200), priority, md5(id::text),
       CASE WHEN kind = 'future' THEN now() AT TIME ZONE 'UTC' + interval '1 hour'
            WHEN kind = 'due' THEN now() AT TIME ZONE 'UTC' - interval '30 seconds'
            ELSE created_at END,
       CASE WHEN kind = 'finished' THEN created_at + interval '2 seconds' END,
       created_at, created_at
FROM sq_gen
""",
    """
SELECT setval(pg_get_serial_sequence('solid_queue_jobs', 'id'), (SELECT max(id) FROM sq_gen))
""",
    """
INSERT INTO solid_queue_ready_executions (job_id, queue_name, priority, created_at)
SELECT id, queue_name, priority, created_at FROM sq_gen WHERE kind = 'ready'
""",
    """
INSERT INTO solid_queue_scheduled_executions (job_id, queue_name, priority, scheduled_at,
                                              created_at)
SELECT id, queue_name, priority,
       CASE WHEN kind = 'due' THEN now() AT TIME ZONE 'UTC' - interval '30 seconds'
            ELSE now() AT TIME ZONE 'UTC' + interval '1 hour' END, created_at
FROM sq_gen WHERE kind IN ('due', 'future')
""",
    """
INSERT INTO solid_queue_claimed_executions (job_id, process_id, created_at)
SELECT id, 1, now() AT TIME ZONE 'UTC' FROM sq_gen WHERE kind = 'running'
""",
    """
INSERT INTO solid_queue_failed_executions (job_id, error, created_at)
SELECT id, '{"exception_class":"RuntimeError"}', created_at FROM sq_gen WHERE kind = 'failed'
""",
)


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(FIXTURE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    shares = MIXES[mix]
    kinds, bounds, total = [], [], 0.0
    for kind, share in shares.items():
        total += share
        kinds.append(kind)
        bounds.append(total)
    bounds[-1] = 1.0
    # below_cap: exactly 50 ready jobs, spread evenly through the table
    ready_ids = list(range(rows // 50, rows + 1, rows // 50))[:50] if mix == "below_cap" else []
    params = {"rows": rows, "kinds": kinds, "bounds": bounds, "ready_ids": ready_ids}
    with conn.transaction():
        conn.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        conn.execute(GENERATE, params)
        for statement in LOAD:
            conn.execute(statement)
    # VACUUM sets the visibility map that index-only scans rely on, as in a steady state
    conn.execute("VACUUM ANALYZE" if conn.autocommit else "ANALYZE")
