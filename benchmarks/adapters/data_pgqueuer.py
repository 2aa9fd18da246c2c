"""Benchmark data for the pgqueuer adapter: pgqueuer's own install DDL, filled set-based.

Jobs are spread over five entrypoints of skewed sizes (default 50 %, mailers 25 %, low 15 %,
critical 8 %, reports 2 %) and three priorities (0: 80 %, 10: 15 %, -5: 5 %). pgqueuer deletes
finished jobs (they live on in ``pgqueuer_log``), so its table holds queued, picked and - with
``on_failure="hold"`` - failed jobs; "sparse" is mostly jobs scheduled for later and held
failures. A fifth of the picked jobs have a heartbeat older than the timeout (a dead worker's),
except in "below_cap", where they would be ready too.
"""

from __future__ import annotations

from typing import Any

import psycopg
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

CAP = 101
OPTIONS: dict[str, object] = {}

# status by mix, from r in [0, 1): (ready, future, picked) upper bounds, the rest failed.
# below_cap makes exactly 50 jobs ready and the rest by these bounds.
MIXES: dict[str, tuple[float, float, float]] = {
    "backlog": (0.90, 0.94, 0.95),
    "sparse": (0.01, 0.81, 0.82),
    "below_cap": (0.00, 0.80, 0.81),
}

POPULATE_SQL = """
INSERT INTO pgqueuer (id, priority, queue_manager_id, created, updated, heartbeat, execute_after,
                      status, entrypoint, payload, attempts)
SELECT g.i, g.priority,
       CASE WHEN g.kind = 'picked' THEN '00000000-0000-4000-8000-000000000001'::uuid END,
       g.created, g.created, g.heartbeat,
       CASE WHEN g.kind = 'future' THEN now() + make_interval(secs => 60 + g.r2 * 86400)
            WHEN g.r2 < 0.1 THEN g.created + interval '30 seconds'
            ELSE g.created END,
       CASE WHEN g.kind IN ('ready', 'future') THEN 'queued' ELSE g.kind END::pgqueuer_status,
       g.entrypoint, convert_to('{"n": ' || g.i || '}', 'UTF8'),
       CASE WHEN g.kind = 'failed' THEN 1 ELSE 0 END
FROM (
    SELECT s.*, k.kind,
           CASE WHEN k.kind <> 'picked' THEN s.created
                WHEN s.r2 < %(stale)s THEN now() - interval '10 minutes'
                ELSE now() - interval '5 seconds' END AS heartbeat
    FROM (
        SELECT i, random() AS r, random() AS r2,
               CASE WHEN q < 50 THEN 'default' WHEN q < 75 THEN 'mailers' WHEN q < 90 THEN 'low'
                    WHEN q < 98 THEN 'critical' ELSE 'reports' END AS entrypoint,
               CASE WHEN p < 80 THEN 0 WHEN p < 95 THEN 10 ELSE -5 END AS priority,
               -- about 3 h of enqueue history, oldest first
               now() - make_interval(secs => (%(rows)s - i) * 10800.0 / %(rows)s + 1) AS created
        FROM generate_series(1, %(rows)s) AS i,
             LATERAL (SELECT abs(hashint4(i) %% 100) AS q, abs(hashint4(-i) %% 100) AS p) h
    ) s
    CROSS JOIN LATERAL (SELECT CASE
        WHEN %(below_cap)s AND s.i %% %(step)s = 0 AND s.i / %(step)s <= 50 THEN 'ready'
        WHEN s.r < %(ready)s THEN 'ready'
        WHEN s.r < %(future)s THEN 'future'
        WHEN s.r < %(picked)s THEN 'picked'
        ELSE 'failed' END AS kind) k
) g
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    """pgqueuer's own install DDL (``pgq install``), for its default settings."""
    conn.execute(QueryBuilderEnvironment().build_install_query())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    ready, future, picked = MIXES[mix]
    with conn.transaction():
        conn.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])
        conn.execute(
            POPULATE_SQL,
            {
                "rows": rows,
                "below_cap": mix == "below_cap",
                "step": max(rows // 50, 1),
                "ready": ready,
                "future": future,
                "picked": picked,
                "stale": 0.0 if mix == "below_cap" else 0.2,
            },
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('pgqueuer', 'id'), %s)", [rows])
    conn.execute("VACUUM ANALYZE pgqueuer")


# What a peer would run: exact per-entrypoint counts and oldest eligible time, no bound.
NAIVE_SQL = """
SELECT entrypoint, count(*) AS ready,
       min(CASE WHEN status = 'queued' THEN GREATEST(created, execute_after)
                ELSE heartbeat + interval '30 seconds' END) AS oldest
FROM pgqueuer
WHERE (status = 'queued' AND execute_after < now())
   OR (status = 'picked' AND heartbeat < now() - interval '30 seconds' AND execute_after < now())
GROUP BY entrypoint
"""
