"""solid_queue 1.5 (Rails 7.1+/8), the PostgreSQL tables of its ``queue_schema.rb``.

Tables: jobs, ready/scheduled/claimed/blocked/failed executions, pauses, processes and
semaphores with the library's indexes and foreign keys (the recurring_* tables are left out), as
Rails renders them (naive UTC ``timestamp``).
Enqueue: ``SolidQueue::Job.enqueue`` of an Active Job on queue ``default`` (priority 0,
``scheduled_at = now``): the job row, and, being due, its ready execution
(``ReadyExecution.create_or_find_by!``), in one statement.
Claim: a worker's ``ReadyExecution.claim`` with ``queues: "*"``: ready rows of unpaused queues
in (priority, job_id) order, ``LIMIT``-ed and locked ``FOR UPDATE SKIP LOCKED``, get claimed
executions under the worker's process id (``ClaimedExecution.claiming``) and their ready rows
are deleted, all in one transaction - one statement here. The worker's ``solid_queue_processes``
row (kind ``Worker``, name = the simulated worker's) is registered on its first claim, as a
worker registers when it boots, and its heartbeat refreshed when a minute old.
Finish: ``ClaimedExecution#finished``: the job's ``finished_at`` is touched (the default
``preserve_finished_jobs``) and the claimed execution destroyed.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("solid_queue.sql")

ENQUEUE = """
WITH jobs AS (
    INSERT INTO solid_queue_jobs (queue_name, class_name, arguments, priority, active_job_id,
                                  scheduled_at, created_at, updated_at)
    SELECT 'default', 'DemoJob', j.arguments::text, 0, j.active_job_id, j.now_utc, j.now_utc,
           j.now_utc
    FROM (SELECT a.active_job_id, a.now_utc,
                 jsonb_build_object('job_class', 'DemoJob', 'job_id', a.active_job_id,
                                    'provider_job_id', NULL, 'queue_name', 'default',
                                    'priority', NULL, 'arguments', '[]'::jsonb, 'executions', 0,
                                    'exception_executions', '{}'::jsonb, 'locale', 'en',
                                    'timezone', 'UTC') AS arguments
          FROM (SELECT gen_random_uuid()::text AS active_job_id,
                       now() AT TIME ZONE 'UTC' AS now_utc
                FROM generate_series(1, %(count)s)) AS a) AS j
    RETURNING id, queue_name, priority, created_at
)
INSERT INTO solid_queue_ready_executions (job_id, queue_name, priority, created_at)
SELECT id, queue_name, priority, created_at FROM jobs
"""

CLAIM = """
WITH
heartbeat AS (
    UPDATE solid_queue_processes SET last_heartbeat_at = now() AT TIME ZONE 'UTC'
    WHERE kind = 'Worker' AND name = %(worker)s
      AND last_heartbeat_at < now() AT TIME ZONE 'UTC' - interval '60 seconds'
),
registered AS (
    INSERT INTO solid_queue_processes (kind, last_heartbeat_at, pid, hostname, metadata,
                                       created_at, name)
    SELECT 'Worker', now() AT TIME ZONE 'UTC', pg_backend_pid(), 'dynomatic-demo',
           '{"queues":"*","thread_pool_size":1}', now() AT TIME ZONE 'UTC', %(worker)s
    WHERE NOT EXISTS (SELECT 1 FROM solid_queue_processes
                      WHERE kind = 'Worker' AND name = %(worker)s)
    RETURNING id
),
process(id) AS (
    SELECT id FROM registered
    UNION ALL
    SELECT id FROM solid_queue_processes WHERE kind = 'Worker' AND name = %(worker)s
),
candidates AS MATERIALIZED (
    SELECT r.id, r.job_id FROM solid_queue_ready_executions r
    WHERE NOT EXISTS (SELECT 1 FROM solid_queue_pauses p WHERE p.queue_name = r.queue_name)
    ORDER BY r.priority ASC, r.job_id ASC
    LIMIT %(limit)s
    FOR UPDATE OF r SKIP LOCKED
),
claimed AS (
    INSERT INTO solid_queue_claimed_executions (job_id, process_id, created_at)
    SELECT c.job_id, (SELECT min(id) FROM process), now() AT TIME ZONE 'UTC' FROM candidates c
    RETURNING job_id
)
DELETE FROM solid_queue_ready_executions r
USING claimed c WHERE r.job_id = c.job_id
RETURNING r.job_id, EXTRACT(EPOCH FROM (now() AT TIME ZONE 'UTC' - r.created_at))::float8
"""

FINISH = """
WITH finalized AS (
    DELETE FROM solid_queue_claimed_executions WHERE job_id = ANY(%(ids)s) RETURNING job_id
)
UPDATE solid_queue_jobs SET finished_at = now() AT TIME ZONE 'UTC',
                            updated_at = now() AT TIME ZONE 'UTC'
WHERE id IN (SELECT job_id FROM finalized)
"""

WORKLOAD = SqlWorkload("solid_queue", DDL, ENQUEUE, CLAIM, FINISH)
