"""graphile-worker (Node) 0.17, migrations 1-19: the layout since 0.16 (``_private_`` tables).

Tables, in the demo schema (graphile's ``schema`` option): ``migrations`` (so the daemon sees the
version), ``_private_job_queues``, ``_private_tasks`` and ``_private_jobs`` with their generated
``is_available`` columns and the two fetch indexes, and the public ``jobs`` view; functions,
triggers and row level security are left out. Task ``default`` is registered up front, as
``add_job`` does on first use of an identifier. Enqueue: ``add_jobs`` of jobs for task
``default`` with no named queue (the daemon reports such jobs under their task identifier), due
now, 25 attempts, priority 0. Claim: ``getJobs`` (named-queue strategy 2, with the batch dedupe):
lock available due rows of the task in (priority, run_at) order with ``SKIP LOCKED``, set
``locked_at`` / ``locked_by`` and bump ``attempts``. Finish: ``completeJobs``: delete the rows,
and unlock any named queue that the finished job's worker had locked.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload

DDL = """
CREATE TABLE migrations (
    id int PRIMARY KEY,
    ts timestamptz DEFAULT now() NOT NULL,
    breaking boolean NOT NULL DEFAULT false
);
INSERT INTO migrations (id, breaking)
SELECT i, i IN (1, 3, 11, 13, 14, 16, 19) FROM generate_series(1, 19) i;
CREATE TABLE _private_job_queues (
    id int CONSTRAINT job_queues_pkey1 PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    queue_name text NOT NULL CONSTRAINT job_queues_queue_name_key UNIQUE
        CHECK (length(queue_name) <= 128),
    locked_at timestamptz,
    locked_by text,
    is_available boolean GENERATED ALWAYS AS ((locked_at IS NULL)) STORED NOT NULL
);
CREATE TABLE _private_tasks (
    id int CONSTRAINT tasks_pkey PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    identifier text NOT NULL CONSTRAINT tasks_identifier_key UNIQUE
        CHECK (length(identifier) <= 128)
);
CREATE TABLE _private_jobs (
    id bigint CONSTRAINT jobs_pkey1 PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    job_queue_id int NULL,
    task_id int NOT NULL,
    payload json DEFAULT '{}'::json NOT NULL,
    priority smallint DEFAULT 0 NOT NULL,
    run_at timestamptz DEFAULT now() NOT NULL,
    attempts smallint DEFAULT 0 NOT NULL,
    max_attempts smallint DEFAULT 25 NOT NULL CONSTRAINT jobs_max_attempts_check
        CHECK (max_attempts >= 1),
    last_error text,
    created_at timestamptz DEFAULT now() NOT NULL,
    updated_at timestamptz DEFAULT now() NOT NULL,
    key text CONSTRAINT jobs_key_key1 UNIQUE
        CONSTRAINT jobs_key_check CHECK (length(key) > 0 AND length(key) <= 512),
    locked_at timestamptz,
    locked_by text,
    revision integer DEFAULT 0 NOT NULL,
    flags jsonb,
    is_available boolean GENERATED ALWAYS AS (((locked_at IS NULL) AND (attempts < max_attempts)))
        STORED NOT NULL
);
CREATE INDEX jobs_main_index ON _private_jobs
    USING btree (priority, run_at) INCLUDE (id, task_id, job_queue_id)
    WHERE (is_available = true);
CREATE INDEX jobs_no_queue_index ON _private_jobs
    USING btree (priority, run_at) INCLUDE (id, task_id)
    WHERE (is_available = true AND job_queue_id IS NULL);
CREATE VIEW jobs AS (
    SELECT jobs.id, job_queues.queue_name, tasks.identifier AS task_identifier, jobs.priority,
           jobs.run_at, jobs.attempts, jobs.max_attempts, jobs.last_error, jobs.created_at,
           jobs.updated_at, jobs.key, jobs.locked_at, jobs.locked_by, jobs.revision, jobs.flags
    FROM _private_jobs AS jobs
    INNER JOIN _private_tasks AS tasks ON tasks.id = jobs.task_id
    LEFT JOIN _private_job_queues AS job_queues ON job_queues.id = jobs.job_queue_id
);
INSERT INTO _private_tasks (identifier) VALUES ('default');
"""

ENQUEUE = """
INSERT INTO _private_jobs (job_queue_id, task_id, payload, run_at, max_attempts, flags, priority)
SELECT NULL, t.id, '{}'::json, now(), 25::smallint, NULL, 0::smallint
FROM generate_series(1, %(count)s)
JOIN _private_tasks t ON t.identifier = 'default'
"""

# getJobs: graphile resolves the pool's task identifiers to ids first; here, a subquery.
CLAIM = """
WITH j_raw AS (
    SELECT jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
    FROM _private_jobs AS jobs
    WHERE jobs.is_available = true
      AND run_at <= now()
      AND task_id = ANY(ARRAY(SELECT id FROM _private_tasks WHERE identifier = 'default'))
      AND (jobs.job_queue_id IS NULL
           OR jobs.job_queue_id IN (
               SELECT id FROM _private_job_queues AS job_queues
               WHERE job_queues.is_available = true
               FOR UPDATE SKIP LOCKED))
    ORDER BY priority ASC, run_at ASC
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
j AS (
    SELECT DISTINCT ON (job_queue_id, CASE WHEN job_queue_id IS NULL THEN id END)
        job_queue_id, priority, run_at, id
    FROM j_raw
    ORDER BY job_queue_id, CASE WHEN job_queue_id IS NULL THEN id END, priority ASC, run_at ASC
),
q AS (
    UPDATE _private_job_queues AS job_queues
    SET locked_by = %(worker)s::text, locked_at = now()
    FROM j
    WHERE job_queues.id = j.job_queue_id
)
UPDATE _private_jobs AS jobs
SET attempts = jobs.attempts + 1, locked_by = %(worker)s::text, locked_at = now()
FROM j
WHERE jobs.id = j.id
RETURNING jobs.id,
          EXTRACT(EPOCH FROM (jobs.locked_at - GREATEST(jobs.created_at, jobs.run_at)))::float8
"""

# completeJobs: graphile matches the queue's locked_by against its pool id; the job's own
# locked_by is that pool id.
FINISH = """
WITH j AS (
    DELETE FROM _private_jobs AS jobs
    WHERE id = ANY(%(ids)s::bigint[])
    RETURNING *
)
UPDATE _private_job_queues AS job_queues
SET locked_by = NULL, locked_at = NULL
FROM j
WHERE job_queues.id = j.job_queue_id AND job_queues.locked_by = j.locked_by
"""

WORKLOAD = SqlWorkload("graphile_worker", DDL, ENQUEUE, CLAIM, FINISH)
