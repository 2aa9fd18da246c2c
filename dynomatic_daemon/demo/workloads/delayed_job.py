"""delayed_job (delayed_job_active_record 4.1 on PostgreSQL).

Table: the migration generator's ``delayed_jobs`` as Rails 7 renders it (naive UTC timestamps).
Enqueue: ``Delayed::Job.enqueue`` with no queue (NULL, which the daemon reports as ``default``).
Claim: the optimized PostgreSQL ``reserve``: lock the first ready row by (priority, run_at) and
set ``locked_at``/``locked_by``; ``SKIP LOCKED`` is added so that the simulated workers, which
poll far more often than real ones, do not queue up behind each other's row locks.
Finish: a job that succeeds is destroyed.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("delayed_job.sql")

ENQUEUE = """
INSERT INTO delayed_jobs (handler, run_at, created_at, updated_at)
SELECT '--- !ruby/object:DemoJob {}', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC',
       now() AT TIME ZONE 'UTC'
FROM generate_series(1, %(count)s)
"""

CLAIM = """
UPDATE delayed_jobs SET locked_at = now() AT TIME ZONE 'UTC', locked_by = %(worker)s
WHERE id IN (
    SELECT id FROM delayed_jobs
    WHERE (run_at <= now() AT TIME ZONE 'UTC'
           AND (locked_at IS NULL OR locked_at < now() AT TIME ZONE 'UTC' - interval '4 hours')
           OR locked_by = %(worker)s)
      AND failed_at IS NULL
    ORDER BY priority ASC, run_at ASC
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING id, EXTRACT(EPOCH FROM (locked_at - run_at))::float8
"""

FINISH = "DELETE FROM delayed_jobs WHERE id = ANY(%(ids)s)"

WORKLOAD = SqlWorkload("delayed_job", DDL, ENQUEUE, CLAIM, FINISH)
