"""Benchmark data for the queue_classic adapter: qc 4.0's ``queue_classic_jobs``, set-based.

Rows look as qc leaves them: unlocked jobs due now or scheduled later (``enqueue_in``), jobs
locked by a worker (``locked_at = now()``, ``locked_by`` its backend pid) that are running or
failed (qc keeps a failed job locked), and a few locked by a backend that is gone (a crashed
worker; ``locked_by = 0``, the dead pid qc's own tests use). Live locks name ``conn``'s backend,
so they stay live while that connection is open, as a worker's do. qc deletes finished jobs.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "queue_classic.sql"
OPTIONS: dict[str, object] = {}
CAP = 101

QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""

# state per row from a uniform draw a (and g, the row number, for below_cap's fixed count)
STATES = {
    "backlog": """CASE WHEN a < 0.90 THEN 'ready' WHEN a < 0.95 THEN 'future'
                       WHEN a < 0.96 THEN 'running' WHEN a < 0.999 THEN 'failed'
                       ELSE 'orphaned' END""",
    "sparse": """CASE WHEN a < 0.01 THEN 'ready' WHEN a < 0.86 THEN 'future'
                      WHEN a < 0.862 THEN 'running' WHEN a < 0.999 THEN 'failed'
                      ELSE 'orphaned' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'ready'
                         WHEN a < 0.85 THEN 'future' WHEN a < 0.852 THEN 'running'
                         ELSE 'failed' END""",
}

INSERT = """
INSERT INTO queue_classic_jobs (q_name, method, args, locked_at, locked_by,
                                created_at, scheduled_at)
SELECT {queue}, 'Report.generate', '[1, "monthly"]',
       CASE WHEN state <> 'ready' AND state <> 'future' THEN created END,
       CASE WHEN state = 'orphaned' THEN 0
            WHEN state IN ('running', 'failed') THEN pg_backend_pid() END,
       created,
       CASE WHEN state = 'future' THEN now() + interval '1 hour' + d * interval '1 day'
            ELSE created END
FROM (SELECT state, b, d,
             now() - d * interval '3 hours'
                   - CASE WHEN state = 'failed' THEN interval '1 day' ELSE interval '0' END
                 AS created
      FROM (SELECT g, {state} AS state, b, d
            FROM (SELECT g, random() AS a, random() AS b, random() AS d
                  FROM generate_series(1, %(rows)s) g) draws) states) jobs
"""

NAIVE_SQL = """
SELECT q_name, count(*), min(scheduled_at)
FROM queue_classic_jobs
WHERE scheduled_at <= now()
  AND (locked_at IS NULL OR locked_by NOT IN (SELECT pid FROM pg_stat_activity))
GROUP BY q_name
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    query = INSERT.format(queue=QUEUE, state=STATES[mix])
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(query, {"rows": rows, "every": max(1, rows // 50)})
    conn.execute("VACUUM ANALYZE queue_classic_jobs")
