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

DDL = """
CREATE TABLE solid_queue_jobs (
    id bigserial PRIMARY KEY,
    queue_name character varying NOT NULL,
    class_name character varying NOT NULL,
    arguments text,
    priority integer NOT NULL DEFAULT 0,
    active_job_id character varying,
    scheduled_at timestamp(6) without time zone,
    finished_at timestamp(6) without time zone,
    concurrency_key character varying,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);
CREATE INDEX index_solid_queue_jobs_on_active_job_id ON solid_queue_jobs (active_job_id);
CREATE INDEX index_solid_queue_jobs_on_class_name ON solid_queue_jobs (class_name);
CREATE INDEX index_solid_queue_jobs_on_finished_at ON solid_queue_jobs (finished_at);
CREATE INDEX index_solid_queue_jobs_for_filtering ON solid_queue_jobs (queue_name, finished_at);
CREATE INDEX index_solid_queue_jobs_for_alerting ON solid_queue_jobs (scheduled_at, finished_at);

CREATE TABLE solid_queue_ready_executions (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES solid_queue_jobs (id) ON DELETE CASCADE,
    queue_name character varying NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE UNIQUE INDEX index_solid_queue_ready_executions_on_job_id
    ON solid_queue_ready_executions (job_id);
CREATE INDEX index_solid_queue_poll_all ON solid_queue_ready_executions (priority, job_id);
CREATE INDEX index_solid_queue_poll_by_queue
    ON solid_queue_ready_executions (queue_name, priority, job_id);

CREATE TABLE solid_queue_scheduled_executions (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES solid_queue_jobs (id) ON DELETE CASCADE,
    queue_name character varying NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    scheduled_at timestamp(6) without time zone NOT NULL,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE UNIQUE INDEX index_solid_queue_scheduled_executions_on_job_id
    ON solid_queue_scheduled_executions (job_id);
CREATE INDEX index_solid_queue_dispatch_all
    ON solid_queue_scheduled_executions (scheduled_at, priority, job_id);

CREATE TABLE solid_queue_claimed_executions (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES solid_queue_jobs (id) ON DELETE CASCADE,
    process_id bigint,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE UNIQUE INDEX index_solid_queue_claimed_executions_on_job_id
    ON solid_queue_claimed_executions (job_id);
CREATE INDEX index_solid_queue_claimed_executions_on_process_id_and_job_id
    ON solid_queue_claimed_executions (process_id, job_id);

CREATE TABLE solid_queue_blocked_executions (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES solid_queue_jobs (id) ON DELETE CASCADE,
    queue_name character varying NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    concurrency_key character varying NOT NULL,
    expires_at timestamp(6) without time zone NOT NULL,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE INDEX index_solid_queue_blocked_executions_for_release
    ON solid_queue_blocked_executions (concurrency_key, priority, job_id);
CREATE INDEX index_solid_queue_blocked_executions_for_maintenance
    ON solid_queue_blocked_executions (expires_at, concurrency_key);
CREATE UNIQUE INDEX index_solid_queue_blocked_executions_on_job_id
    ON solid_queue_blocked_executions (job_id);

CREATE TABLE solid_queue_failed_executions (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES solid_queue_jobs (id) ON DELETE CASCADE,
    error text,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE UNIQUE INDEX index_solid_queue_failed_executions_on_job_id
    ON solid_queue_failed_executions (job_id);

CREATE TABLE solid_queue_pauses (
    id bigserial PRIMARY KEY,
    queue_name character varying NOT NULL,
    created_at timestamp(6) without time zone NOT NULL
);
CREATE UNIQUE INDEX index_solid_queue_pauses_on_queue_name ON solid_queue_pauses (queue_name);

CREATE TABLE solid_queue_processes (
    id bigserial PRIMARY KEY,
    kind character varying NOT NULL,
    last_heartbeat_at timestamp(6) without time zone NOT NULL,
    supervisor_id bigint,
    pid integer NOT NULL,
    hostname character varying,
    metadata text,
    created_at timestamp(6) without time zone NOT NULL,
    name character varying NOT NULL
);
CREATE INDEX index_solid_queue_processes_on_last_heartbeat_at
    ON solid_queue_processes (last_heartbeat_at);
CREATE UNIQUE INDEX index_solid_queue_processes_on_name_and_supervisor_id
    ON solid_queue_processes (name, supervisor_id);
CREATE INDEX index_solid_queue_processes_on_supervisor_id ON solid_queue_processes (supervisor_id);

CREATE TABLE solid_queue_semaphores (
    id bigserial PRIMARY KEY,
    key character varying NOT NULL,
    value integer NOT NULL DEFAULT 1,
    expires_at timestamp(6) without time zone NOT NULL,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL
);
CREATE INDEX index_solid_queue_semaphores_on_expires_at ON solid_queue_semaphores (expires_at);
CREATE INDEX index_solid_queue_semaphores_on_key_and_value ON solid_queue_semaphores (key, value);
CREATE UNIQUE INDEX index_solid_queue_semaphores_on_key ON solid_queue_semaphores (key);
"""

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
