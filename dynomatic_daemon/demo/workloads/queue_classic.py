"""queue_classic 4.x.

Table: ``QC::Setup.create``'s ``queue_classic_jobs`` with its two partial indexes (the NOTIFY
trigger is left out: the simulated workers poll). Enqueue: ``QC.enqueue`` on queue ``default``.
Claim: qc's ``lock_job``: the first due unlocked row of the queue, locked with ``locked_at =
now()`` and ``locked_by = pg_backend_pid()``, which is why each simulated worker keeps its own
connection while it works (the daemon counts a job as running while that backend lives).
Finish: a job that succeeds is deleted.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("queue_classic.sql")

ENQUEUE = """
INSERT INTO queue_classic_jobs (q_name, method, args)
SELECT 'default', 'DemoJob.perform', '[]'::jsonb FROM generate_series(1, %(count)s)
"""

CLAIM = """
WITH selected_job AS (
    SELECT id FROM queue_classic_jobs
    WHERE locked_at IS NULL AND q_name = 'default' AND scheduled_at <= now()
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED)
UPDATE queue_classic_jobs SET locked_at = now(), locked_by = pg_backend_pid()
FROM selected_job WHERE queue_classic_jobs.id = selected_job.id
RETURNING queue_classic_jobs.id,
          EXTRACT(EPOCH FROM (queue_classic_jobs.locked_at
                              - queue_classic_jobs.scheduled_at))::float8
"""

FINISH = "DELETE FROM queue_classic_jobs WHERE id = ANY(%(ids)s)"

WORKLOAD = SqlWorkload("queue_classic", DDL, ENQUEUE, CLAIM, FINISH)
