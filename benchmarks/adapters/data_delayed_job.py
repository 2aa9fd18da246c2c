"""Benchmark data for the delayed_job adapter: delayed_job_active_record 4.1 ``delayed_jobs``.

Rows are written the way delayed_job writes them: naive-UTC ``run_at`` (now at enqueue, pushed
out on a retry), ``locked_at``/``locked_by`` while a worker runs the job, ``failed_at`` for jobs
kept after their last attempt (``destroy_failed_jobs = false``); succeeded jobs are deleted, so
a quiet table is mostly future jobs and failures. Failed rows keep an old ``run_at``, the case
that makes a run_at-ordered walk skip them first.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "delayed_job.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
# The one index the adapter's docstring recommends for big tables.
RECOMMENDED_INDEX = """
CREATE INDEX index_delayed_jobs_for_dynomatic
    ON delayed_jobs (queue, locked_at, run_at) WHERE failed_at IS NULL
"""

QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""
PRIORITY = "CASE WHEN c < 0.80 THEN 0 WHEN c < 0.95 THEN 10 ELSE -5 END"
STATES = {
    "backlog": """CASE WHEN a < 0.90 THEN 'ready' WHEN a < 0.95 THEN 'future'
                       WHEN a < 0.96 THEN 'running' ELSE 'failed' END""",
    "sparse": """CASE WHEN a < 0.01 THEN 'ready' WHEN a < 0.97 THEN 'future'
                      WHEN a < 0.98 THEN 'running' ELSE 'failed' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'ready'
                         WHEN a < 0.97 THEN 'future' WHEN a < 0.98 THEN 'running'
                         ELSE 'failed' END""",
}
INSERT = """
INSERT INTO delayed_jobs (priority, attempts, handler, last_error, run_at, locked_at, locked_by,
                          failed_at, queue, created_at, updated_at)
SELECT {priority},
       CASE WHEN state = 'failed' THEN 25 ELSE 0 END,
       '--- !ruby/object:ActiveJob::QueueAdapters::DelayedJobAdapter::JobWrapper
job_data: {{"job_class": "ReportJob", "arguments": [1, 2]}}',
       CASE WHEN state = 'failed' THEN 'RuntimeError: boom' END,
       CASE WHEN state = 'future' THEN utc + interval '1 hour' + d * interval '1 day'
            WHEN state = 'failed' THEN utc - interval '30 days' - d * interval '5 days'
            ELSE utc - d * interval '3 hours' END,
       CASE WHEN state = 'running' THEN utc - d * interval '10 minutes' END,
       CASE WHEN state = 'running' THEN 'host:web.1 pid:4' END,
       CASE WHEN state = 'failed' THEN utc - interval '1 day' END,
       {queue}, utc - interval '3 hours', utc
FROM (SELECT g, {state} AS state, b, c, d, now() AT TIME ZONE 'UTC' AS utc
      FROM (SELECT g, random() AS a, random() AS b, random() AS c, random() AS d
            FROM generate_series(1, %(rows)s) g) draws) jobs
"""
NAIVE_SQL = """
SELECT COALESCE(queue, 'default'), count(*), min(run_at)
FROM delayed_jobs
WHERE failed_at IS NULL AND run_at <= now() AT TIME ZONE 'UTC'
  AND (locked_at IS NULL OR locked_at < now() AT TIME ZONE 'UTC' - interval '4 hours')
GROUP BY 1
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    query = INSERT.format(queue=QUEUE, priority=PRIORITY, state=STATES[mix])
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(query, {"rows": rows, "every": max(1, rows // 50)})
    conn.execute("VACUUM ANALYZE delayed_jobs")
