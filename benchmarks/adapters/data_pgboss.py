"""Benchmark data for the pgboss adapter: pg-boss 12.27 (schema 37), ``pgboss.job``.

Rows are written the way pg-boss writes them: ``send`` leaves ``created`` with ``start_after`` =
``created_on`` (or a later ``startAfter``), ``fetch`` sets ``active`` and ``started_on``, a failure
with retries left sets ``retry`` and pushes ``start_after`` on, and ``completed`` / ``failed`` /
``cancelled`` rows carry ``completed_on`` (pg-boss keeps them 7 days by default, so they dominate a
quiet table). Every queue has its ``pgboss.queue`` row and shares the default partition
``job_common``, as queues do unless created with ``partition: true``; the row's cached counts are
fresh, as a supervising pg-boss instance keeps them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "pgboss_12.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
QUEUES = ("default", "mailers", "low", "critical", "reports")

# Five skewed queues (50/25/15/8/2 %) and three priorities (80 % at pg-boss's default 0).
QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""
PRIORITY = "CASE WHEN c < 0.80 THEN 0 WHEN c < 0.95 THEN 5 ELSE 10 END"

# kind of row per uniform draw a (and g, the row number, for below_cap's fixed count);
# 'created' and 'retry_due' rows are ready
STATES = {
    "backlog": """CASE WHEN a < 0.86 THEN 'created' WHEN a < 0.90 THEN 'retry_due'
                       WHEN a < 0.94 THEN 'deferred' WHEN a < 0.96 THEN 'retry'
                       WHEN a < 0.98 THEN 'active' ELSE 'failed' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'created' WHEN a < 0.010 THEN 'retry_due'
                      WHEN a < 0.012 THEN 'active' WHEN a < 0.70 THEN 'completed'
                      WHEN a < 0.95 THEN 'deferred' WHEN a < 0.96 THEN 'retry'
                      WHEN a < 0.99 THEN 'failed' ELSE 'cancelled' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'created'
                         WHEN a < 0.002 THEN 'active' WHEN a < 0.70 THEN 'completed'
                         WHEN a < 0.95 THEN 'deferred' WHEN a < 0.96 THEN 'retry'
                         WHEN a < 0.99 THEN 'failed' ELSE 'cancelled' END""",
}

CREATE_QUEUES = """
INSERT INTO pgboss.queue (name, policy, retry_limit, retry_delay, retry_backoff, expire_seconds,
                          retention_seconds, deletion_seconds, partition, table_name)
SELECT unnest(%(queues)s::text[]), 'standard', 2, 0, false, 900, 1209600, 604800, false,
       'job_common'
"""

INSERT = """
INSERT INTO pgboss.job (name, priority, data, state, retry_count, policy, start_after, created_on,
                        started_on, completed_on, output)
SELECT {queue}, {priority}, '{{"customer_id": 42, "template": "welcome"}}',
       CASE kind WHEN 'deferred' THEN 'created' WHEN 'retry_due' THEN 'retry'
                 ELSE kind END::pgboss.job_state,
       CASE WHEN kind IN ('retry', 'retry_due', 'failed') THEN 1 ELSE 0 END,
       'standard',
       CASE kind WHEN 'deferred' THEN now() + d * interval '1 day'
                 WHEN 'retry' THEN now() + d * interval '10 minutes'
                 WHEN 'retry_due' THEN now() - d * interval '30 seconds'
                 ELSE created_on END,
       created_on,
       CASE WHEN kind NOT IN ('created', 'deferred') THEN created_on + interval '1 second' END,
       CASE WHEN kind IN ('completed', 'failed', 'cancelled')
            THEN created_on + interval '2 seconds' END,
       CASE WHEN kind = 'failed' THEN '{{"message": "timeout"}}'::jsonb END
FROM (SELECT g, {state} AS kind, b, c, d,
             CASE WHEN {state} IN ('completed', 'failed', 'cancelled')
                  THEN now() - interval '3 hours' - d * interval '6 days'
                  ELSE now() - (1 - e) * interval '3 hours' END AS created_on
      FROM (SELECT g, random() AS a, random() AS b, random() AS c, random() AS d,
                   g::float8 / %(rows)s AS e
            FROM generate_series(1, %(rows)s) g) draws) jobs
"""

# What pg-boss's monitor (cacheQueueStats, every 60 s) leaves in the queue table.
MONITOR = """
UPDATE pgboss.queue q
SET monitor_on = now(), deferred_count = s.deferred, queued_count = s.queued,
    ready_count = s.queued - s.deferred, active_count = s.active, failed_count = s.failed,
    total_count = s.total
FROM (SELECT name,
             count(*) FILTER (WHERE start_after > now() AND state < 'active') AS deferred,
             count(*) FILTER (WHERE state < 'active') AS queued,
             count(*) FILTER (WHERE state = 'active') AS active,
             count(*) FILTER (WHERE state = 'failed') AS failed, count(*) AS total
      FROM pgboss.job GROUP BY name) s
WHERE q.name = s.name
"""

NAIVE_SQL = """
SELECT name, count(*), min(GREATEST(created_on, start_after))
FROM pgboss.job
WHERE state < 'active' AND NOT blocked AND start_after <= now()
GROUP BY name
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    conn.execute(CREATE_QUEUES, {"queues": list(QUEUES)})
    query = INSERT.format(queue=QUEUE, priority=PRIORITY, state=STATES[mix])
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(query, {"rows": rows, "every": max(1, rows // 50)})
    conn.execute(MONITOR)
    conn.execute("VACUUM ANALYZE pgboss.job")
