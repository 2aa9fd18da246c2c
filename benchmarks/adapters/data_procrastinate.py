"""Benchmark data for the procrastinate adapter: procrastinate's own schema, filled set-based.

Jobs are spread over five queues of skewed sizes (default 50 %, mailers 25 %, low 15 %,
critical 8 %, reports 2 %) and three priorities (0: 80 %, 10: 15 %, -5: 5 %). Ids grow with the
enqueue time, as with procrastinate's sequence; every job has its ``deferred`` event, started
and finished jobs also their ``started`` and terminal events. Half a percent of todo jobs carry
one of 997 ``lock`` values, so some are lock-blocked. procrastinate keeps finished jobs unless the
app deletes them, so "sparse" is mostly ``succeeded`` history.
"""

from __future__ import annotations

from typing import Any

import psycopg
from procrastinate.schema import SchemaManager

CAP = 101
OPTIONS: dict[str, object] = {}

# status by mix, from r in [0, 1): (todo-ready, todo-future, doing, failed) upper bounds,
# the rest succeeded. below_cap makes exactly 50 jobs ready and the rest by these bounds.
MIXES: dict[str, tuple[float, float, float, float]] = {
    "backlog": (0.90, 0.94, 0.95, 1.00),
    "sparse": (0.01, 0.11, 0.12, 0.17),
    "below_cap": (0.00, 0.10, 0.11, 0.16),
}

JOBS_SQL = """
INSERT INTO procrastinate_jobs
    (id, queue_name, task_name, priority, lock, args, status, scheduled_at, attempts, worker_id)
SELECT g.i,
       CASE WHEN g.q < 50 THEN 'default' WHEN g.q < 75 THEN 'mailers' WHEN g.q < 90 THEN 'low'
            WHEN g.q < 98 THEN 'critical' ELSE 'reports' END,
       'app.tasks.work',
       CASE WHEN g.p < 80 THEN 0 WHEN g.p < 95 THEN 10 ELSE -5 END,
       CASE WHEN g.status = 'todo' AND g.r2 > 0.995 THEN 'account-' || (g.i % 997) END,
       jsonb_build_object('n', g.i),
       g.status::procrastinate_job_status,
       CASE WHEN g.kind = 'future' THEN now() + make_interval(secs => 60 + g.r2 * 86400)
            WHEN g.kind = 'ready' AND g.r2 < 0.1 THEN g.deferred_at + make_interval(secs => 30)
            WHEN g.status = 'todo' THEN NULL
            WHEN g.r2 < 0.05 THEN g.deferred_at + make_interval(secs => 60) END,
       CASE WHEN g.status IN ('todo', 'doing') THEN 0 ELSE 1 END,
       NULL
FROM gen g
"""

GEN_SQL = """
CREATE TEMP TABLE gen AS
SELECT s.i, s.q, s.p, s.r2, s.deferred_at, k.kind,
       CASE k.kind WHEN 'ready' THEN 'todo' WHEN 'future' THEN 'todo' ELSE k.kind END AS status
FROM (
    SELECT i, abs(hashint4(i) %% 100) AS q, abs(hashint4(-i) %% 100) AS p,
           random() AS r, random() AS r2,
           -- about 3 h of enqueue history, oldest first
           now() - make_interval(secs => (%(rows)s - i) * 10800.0 / %(rows)s + 1) AS deferred_at
    FROM generate_series(1, %(rows)s) AS i
) s
CROSS JOIN LATERAL (SELECT CASE
    WHEN %(below_cap)s AND s.i %% %(step)s = 0 AND s.i / %(step)s <= 50 THEN 'ready'
    WHEN s.r < %(ready)s THEN 'ready'
    WHEN s.r < %(future)s THEN 'future'
    WHEN s.r < %(doing)s THEN 'doing'
    WHEN s.r < %(failed)s THEN 'failed'
    ELSE 'succeeded' END AS kind) k
"""

EVENTS_SQL = """
INSERT INTO procrastinate_events (job_id, type, at)
SELECT g.i, e.type::procrastinate_job_event_type, e.at
FROM gen g
CROSS JOIN LATERAL (VALUES
    ('deferred', g.deferred_at, true),
    ('scheduled', now(), g.kind = 'future'),
    ('started', g.deferred_at + interval '2 seconds', g.status <> 'todo'),
    (g.status, g.deferred_at + interval '5 seconds', g.status IN ('succeeded', 'failed'))
) AS e(type, at, present)
WHERE e.present
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """procrastinate's own schema, applied where ``search_path`` points (as procrastinate does)."""
    conn.execute(SchemaManager.get_schema())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    ready, future, doing, failed = MIXES[mix]
    with conn.transaction():
        conn.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        conn.execute(
            GEN_SQL,
            {
                "rows": rows,
                "below_cap": mix == "below_cap",
                "step": max(rows // 50, 1),
                "ready": ready,
                "future": future,
                "doing": doing,
                "failed": failed,
            },
        )
        # Bulk load: the notify and event triggers would fire once per row.
        conn.execute("ALTER TABLE procrastinate_jobs DISABLE TRIGGER USER")
        conn.execute(JOBS_SQL)
        conn.execute("ALTER TABLE procrastinate_jobs ENABLE TRIGGER USER")
        conn.execute(EVENTS_SQL)
        conn.execute("SELECT setval('procrastinate_jobs_id_seq', %s)", [rows])
        conn.execute("DROP TABLE gen")
    conn.execute("VACUUM ANALYZE procrastinate_jobs")
    conn.execute("VACUUM ANALYZE procrastinate_events")


# What a peer would run: exact per-queue counts and oldest eligible time, no bound.
NAIVE_SQL = """
SELECT j.queue_name, count(*) AS ready,
       min(GREATEST(j.scheduled_at, (
           SELECT max(e.at) FROM procrastinate_events e
           WHERE e.job_id = j.id AND e.type IN ('deferred', 'deferred_for_retry', 'retried')
       ))) AS oldest
FROM procrastinate_jobs j
WHERE j.status = 'todo'
  AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
  AND NOT EXISTS (
      SELECT 1 FROM procrastinate_jobs o
      WHERE j.lock IS NOT NULL AND o.lock = j.lock
        AND (o.status = 'doing'
             OR (o.status = 'todo'
                 AND (o.priority > j.priority OR (o.priority = j.priority AND o.id < j.id)))))
GROUP BY j.queue_name
"""
