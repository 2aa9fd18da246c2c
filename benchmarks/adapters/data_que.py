"""Benchmark data for the que adapter: que 2.x (DB schema 7) ``public.que_jobs``.

Rows are written the way que 2.x writes them (``job_schema_version = 2``, ``run_at`` default
``now()``, retries with ``error_count > 0`` and a pushed-out ``run_at``, ``expired_at`` once
retries are exhausted, ``finished_at`` for jobs that call ``finish``). Running jobs are session
advisory locks taken on ``conn`` - they last as long as that connection does, as a que locker's
do; at most 100 of them, a realistic number of claimed jobs.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "que_2.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
MAX_LOCKS = 100

# Five skewed queues (50/25/15/8/2 %) and three priorities (80 % at que's default of 100).
QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""
PRIORITY = "CASE WHEN c < 0.80 THEN 100 WHEN c < 0.95 THEN 10 ELSE 200 END"

# state per row from a uniform draw a (and g, the row number, for below_cap's fixed count)
STATES = {
    "backlog": """CASE WHEN a < 0.86 THEN 'ready' WHEN a < 0.90 THEN 'retry_due'
                       WHEN a < 0.95 THEN 'future' WHEN a < 0.985 THEN 'expired'
                       ELSE 'retry_wait' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'ready' WHEN a < 0.011 THEN 'retry_due'
                      WHEN a < 0.35 THEN 'finished' WHEN a < 0.85 THEN 'future'
                      WHEN a < 0.97 THEN 'expired' ELSE 'retry_wait' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= %(due)s THEN 'ready'
                         WHEN a < 0.35 THEN 'finished' WHEN a < 0.85 THEN 'future'
                         WHEN a < 0.97 THEN 'expired' ELSE 'retry_wait' END""",
}

INSERT = """
INSERT INTO que_jobs (queue, priority, run_at, job_class, error_count, last_error_message,
                      finished_at, expired_at, args, kwargs, data, job_schema_version)
SELECT {queue}, {priority},
       CASE WHEN state IN ('future', 'retry_wait')
                 THEN now() + interval '1 hour' + d * interval '1 day'
            WHEN state IN ('finished', 'expired')
                 THEN now() - interval '2 days' - d * interval '5 days'
            ELSE now() - d * interval '3 hours' END,
       'ActiveJob::QueueAdapters::QueAdapter::JobWrapper',
       CASE state WHEN 'expired' THEN 16 WHEN 'retry_due' THEN 3
                  WHEN 'retry_wait' THEN 5 ELSE 0 END,
       CASE WHEN state IN ('expired', 'retry_due', 'retry_wait') THEN 'RuntimeError: boom' END,
       CASE WHEN state = 'finished' THEN now() - interval '1 day' END,
       CASE WHEN state = 'expired' THEN now() - interval '1 day' END,
       '[{{"job_class": "ReportJob", "arguments": [1, 2]}}]', '{{}}', '{{}}', 2
FROM (SELECT g, {state} AS state, b, c, d
      FROM (SELECT g, random() AS a, random() AS b, random() AS c, random() AS d
            FROM generate_series(1, %(rows)s) g) draws) jobs
"""

# A que locker holds pg_try_advisory_lock(id) for each job it claims.
LOCK = """
SELECT count(pg_advisory_lock(id)) FROM (
    SELECT id FROM que_jobs
    WHERE finished_at IS NULL AND expired_at IS NULL AND run_at <= now()
    ORDER BY random() LIMIT %(locks)s) claimed
"""

NAIVE_SQL = """
SELECT queue, count(*), min(run_at)
FROM que_jobs
WHERE finished_at IS NULL AND expired_at IS NULL AND run_at <= now()
  AND job_schema_version = 2
  AND id NOT IN (
    SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 1 AND granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
GROUP BY queue
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    # claimed jobs come out of the due rows: a share of a backlog, a few of a sparse table
    locks = {"backlog": rows // 100, "sparse": rows // 10_000, "below_cap": 10}[mix]
    locks = min(MAX_LOCKS, max(1, locks))
    due = 50 + locks  # below_cap: locks are taken on due rows, leaving exactly 50 ready
    query = INSERT.format(queue=QUEUE, priority=PRIORITY, state=STATES[mix])
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(query, {"rows": rows, "every": max(1, rows // due), "due": due})
    conn.execute(LOCK, {"locks": locks})
    conn.execute("VACUUM ANALYZE que_jobs")
