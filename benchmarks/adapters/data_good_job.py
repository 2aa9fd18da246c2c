"""Benchmark data for the good_job adapter: good_job v4.19's tables, filled set-based.

Jobs are spread over five queues of skewed sizes (default 50 %, mailers 25 %, low 15 %,
critical 8 %, reports 2 %) and three priorities (0: 80 %, 10: 15 %, -10: 5 %), enqueued over
about three hours, oldest first. Rows look as good_job v4 writes them: ``id = active_job_id``,
``scheduled_at`` always set (``created_at`` for immediate jobs, later for retries), running rows
claimed by one of eight processes (``locked_by_id``, ``performed_at``), finished rows kept (the
default ``preserve_job_records``), discarded ones with an ``error``. Indexes are dropped for the
load and rebuilt after it, as the same definitions, so 1 M rows load quickly.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dynomatic_daemon.sandbox.schemas import SCHEMAS

CAP = 101
OPTIONS: dict[str, object] = {}
FIXTURE = SCHEMAS / "good_job.sql"

# kind by mix, from r in [0, 1): (ready, future, running, discarded) upper bounds, the rest
# succeeded. below_cap makes exactly 50 jobs ready and the rest by these bounds.
MIXES: dict[str, tuple[float, float, float, float]] = {
    "backlog": (0.90, 0.94, 0.95, 1.00),
    "sparse": (0.01, 0.06, 0.07, 0.09),
    "below_cap": (0.00, 0.05, 0.06, 0.08),
}

JOBS_SQL = """
INSERT INTO good_jobs (id, active_job_id, queue_name, priority, serialized_params, job_class,
    scheduled_at, performed_at, finished_at, error, error_event, created_at, updated_at,
    executions_count, locked_by_id, locked_at, lock_type)
SELECT g.id, g.id, g.queue, g.priority,
       jsonb_build_object('job_class', 'WorkJob', 'job_id', g.id, 'queue_name', g.queue,
                          'priority', g.priority, 'executions', g.retries, 'locale', 'en',
                          'arguments', jsonb_build_array(g.i, repeat('x', 200))),
       'WorkJob',
       CASE WHEN g.kind = 'future' THEN g.now_utc + make_interval(secs => 60 + g.r2 * 86400)
            WHEN g.retries > 0 THEN g.created_at + make_interval(secs => 30 * g.retries)
            ELSE g.created_at END,
       CASE WHEN g.kind IN ('running', 'succeeded', 'discarded')
            THEN g.created_at + interval '2 seconds' END,
       CASE WHEN g.kind IN ('succeeded', 'discarded') THEN g.created_at + interval '5 seconds' END,
       CASE WHEN g.kind = 'discarded' THEN 'RuntimeError: boom' END,
       CASE WHEN g.kind = 'discarded' THEN 1 END,
       g.created_at, g.created_at,
       CASE WHEN g.kind IN ('ready', 'future') THEN g.retries ELSE g.retries + 1 END,
       CASE WHEN g.kind = 'running' THEN (ARRAY[
           '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002',
           '00000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000004',
           '00000000-0000-4000-8000-000000000005', '00000000-0000-4000-8000-000000000006',
           '00000000-0000-4000-8000-000000000007', '00000000-0000-4000-8000-000000000008'
       ]::uuid[])[1 + g.i %% 8] END,
       CASE WHEN g.kind = 'running' THEN g.created_at + interval '2 seconds' END,
       CASE WHEN g.kind = 'running' THEN 0 END
FROM (
    SELECT s.*, k.kind,
           CASE WHEN s.q < 50 THEN 'default' WHEN s.q < 75 THEN 'mailers' WHEN s.q < 90 THEN 'low'
                WHEN s.q < 98 THEN 'critical' ELSE 'reports' END AS queue,
           CASE WHEN s.p < 80 THEN 0 WHEN s.p < 95 THEN 10 ELSE -10 END AS priority,
           CASE WHEN s.r2 < 0.05 THEN 1 + (s.i %% 3) ELSE 0 END AS retries
    FROM (
        SELECT i, gen_random_uuid() AS id, floor(random() * 100) AS q, floor(random() * 100) AS p,
               random() AS r, random() AS r2, now() AT TIME ZONE 'UTC' AS now_utc,
               now() AT TIME ZONE 'UTC'
                 - make_interval(secs => (%(rows)s - i) * 10800.0 / %(rows)s + 60) AS created_at
        FROM generate_series(1, %(rows)s) AS i
    ) s
    CROSS JOIN LATERAL (SELECT CASE
        WHEN %(below_cap)s AND s.i %% GREATEST(%(rows)s / 50, 1) = 0
             AND s.i / GREATEST(%(rows)s / 50, 1) <= 50 THEN 'ready'
        WHEN s.r < %(ready)s THEN 'ready'
        WHEN s.r < %(future)s THEN 'future'
        WHEN s.r < %(running)s THEN 'running'
        WHEN s.r < %(discarded)s THEN 'discarded'
        ELSE 'succeeded' END AS kind) k
) g
"""

INDEXES_SQL = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = current_schema() AND i.tablename = 'good_jobs'
  AND i.indexname <> 'good_jobs_pkey'
"""

# What a peer would run: an exact per-queue count and min over the same ready predicate.
NAIVE_SQL = """
SELECT queue_name, count(*) AS ready,
       min(GREATEST(created_at, COALESCE(scheduled_at, created_at))) AS oldest
FROM good_jobs
WHERE finished_at IS NULL AND locked_by_id IS NULL
  AND scheduled_at <= now() AT TIME ZONE 'UTC'
GROUP BY queue_name
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(FIXTURE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    ready, future, running, discarded = MIXES[mix]
    params = {
        "rows": rows,
        "below_cap": mix == "below_cap",
        "ready": ready,
        "future": future,
        "running": running,
        "discarded": discarded,
    }
    with conn.transaction():
        indexes = conn.execute(INDEXES_SQL).fetchall()
        for name, _definition in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000.0,))
        conn.execute(JOBS_SQL, params)
        for _name, definition in indexes:
            conn.execute(definition)
    conn.execute("VACUUM ANALYZE good_jobs")
