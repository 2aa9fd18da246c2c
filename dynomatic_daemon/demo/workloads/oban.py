"""Oban (Elixir), Basic engine, migration version 14.

Tables: the ``oban_job_state`` enum and ``oban_jobs`` with its fetch index and the version
comment Oban's migrator reads (the GIN indexes and ``oban_peers`` are left out); the demo schema
is Oban's ``prefix``. Enqueue: ``Oban.insert_all`` of ``available`` jobs on queue ``default``.
Claim: the Basic engine's ``fetch_jobs``: lock ``available`` rows in (priority, scheduled_at, id)
order with ``SKIP LOCKED`` and mark them ``executing``. Finish: ``completed`` with
``completed_at`` (rows stay until the Pruner deletes them). Times are naive UTC, as Ecto's.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload

DDL = """
CREATE TYPE oban_job_state AS ENUM (
    'available', 'suspended', 'scheduled', 'executing', 'retryable', 'completed', 'discarded',
    'cancelled'
);
CREATE TABLE oban_jobs (
    id bigserial PRIMARY KEY,
    state oban_job_state NOT NULL DEFAULT 'available',
    queue text NOT NULL DEFAULT 'default',
    worker text NOT NULL,
    args jsonb NOT NULL DEFAULT '{}',
    errors jsonb[] NOT NULL DEFAULT ARRAY[]::jsonb[],
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 20,
    inserted_at timestamp without time zone NOT NULL DEFAULT timezone('UTC', now()),
    scheduled_at timestamp without time zone NOT NULL DEFAULT timezone('UTC', now()),
    attempted_at timestamp without time zone,
    completed_at timestamp without time zone,
    attempted_by text[],
    discarded_at timestamp without time zone,
    priority integer NOT NULL DEFAULT 0,
    tags text[] DEFAULT ARRAY[]::text[],
    meta jsonb DEFAULT '{}',
    cancelled_at timestamp without time zone,
    CONSTRAINT attempt_range CHECK (attempt BETWEEN 0 AND max_attempts)
);
CREATE INDEX oban_jobs_state_queue_priority_scheduled_at_id_index
    ON oban_jobs (state, queue, priority, scheduled_at, id);
COMMENT ON TABLE oban_jobs IS '14';
"""

ENQUEUE = """
INSERT INTO oban_jobs (state, queue, worker, args)
SELECT 'available', 'default', 'Demo.Worker', '{}'::jsonb FROM generate_series(1, %(count)s)
"""

CLAIM = """
UPDATE oban_jobs
SET state = 'executing', attempted_at = timezone('UTC', now()),
    attempted_by = ARRAY['demo', %(worker)s::text], attempt = attempt + 1
WHERE id IN (
    SELECT id FROM oban_jobs
    WHERE state = 'available' AND queue = 'default'
    ORDER BY priority ASC, scheduled_at ASC, id ASC
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING id, EXTRACT(EPOCH FROM (attempted_at - scheduled_at))::float8
"""

FINISH = """
UPDATE oban_jobs SET state = 'completed', completed_at = timezone('UTC', now())
WHERE id = ANY(%(ids)s) AND state = 'executing'
"""

WORKLOAD = SqlWorkload("oban", DDL, ENQUEUE, CLAIM, FINISH, schema_option="prefix")
