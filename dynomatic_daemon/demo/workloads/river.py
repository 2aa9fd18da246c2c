"""River (Go), migration line ``main`` version 7.

Tables: ``river_migration`` (so the daemon sees the version), the ``river_job_state`` enum,
``river_job`` with the fetch index River ships, and ``river_queue`` (where pauses live); the
unique-job and GIN indexes are left out. Enqueue: ``InsertMany`` of ``available`` jobs on queue
``default``. Claim: River's ``JobGetAvailable``: lock due ``available`` rows in (priority,
scheduled_at, id) order with ``SKIP LOCKED`` and mark them ``running``. Finish: River's completer
sets ``completed`` and ``finalized_at`` (rows stay until River's cleaner deletes them).
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload

DDL = """
CREATE TABLE river_migration (
    line text NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (line, version)
);
INSERT INTO river_migration (line, version) SELECT 'main', v FROM generate_series(1, 7) AS v;
CREATE TYPE river_job_state AS ENUM (
    'available', 'cancelled', 'completed', 'discarded', 'pending', 'retryable', 'running',
    'scheduled'
);
CREATE TABLE river_job (
    id bigserial PRIMARY KEY,
    state river_job_state NOT NULL DEFAULT 'available',
    attempt smallint NOT NULL DEFAULT 0,
    max_attempts smallint NOT NULL DEFAULT 25,
    attempted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    finalized_at timestamptz,
    scheduled_at timestamptz NOT NULL DEFAULT now(),
    priority smallint NOT NULL DEFAULT 1,
    args jsonb NOT NULL,
    attempted_by text[],
    errors jsonb[],
    kind text NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    queue text NOT NULL DEFAULT 'default',
    tags varchar(255)[] NOT NULL DEFAULT '{}',
    unique_key bytea,
    unique_states bit(8),
    CONSTRAINT finalized_or_finalized_at_null CHECK (
        (finalized_at IS NULL AND state NOT IN ('cancelled', 'completed', 'discarded')) OR
        (finalized_at IS NOT NULL AND state IN ('cancelled', 'completed', 'discarded'))),
    CONSTRAINT priority_in_range CHECK (priority >= 1 AND priority <= 4)
);
CREATE INDEX river_job_prioritized_fetching_index ON river_job
    USING btree (state, queue, priority, scheduled_at, id);
CREATE TABLE river_queue (
    name text PRIMARY KEY NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    paused_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO river_queue (name) VALUES ('default');
"""

ENQUEUE = """
INSERT INTO river_job (args, kind, queue, state)
SELECT '{}'::jsonb, 'demo_job', 'default', 'available' FROM generate_series(1, %(count)s)
"""

CLAIM = """
WITH locked_jobs AS (
    SELECT id FROM river_job
    WHERE state = 'available' AND queue = 'default' AND scheduled_at <= now()
    ORDER BY priority ASC, scheduled_at ASC, id ASC
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE river_job
SET state = 'running', attempt = river_job.attempt + 1, attempted_at = now(),
    attempted_by = array_append(river_job.attempted_by, %(worker)s::text)
FROM locked_jobs WHERE river_job.id = locked_jobs.id
RETURNING river_job.id,
          EXTRACT(EPOCH FROM (river_job.attempted_at - river_job.scheduled_at))::float8
"""

FINISH = """
UPDATE river_job SET state = 'completed', finalized_at = now()
WHERE id = ANY(%(ids)s) AND state = 'running'
"""

WORKLOAD = SqlWorkload("river", DDL, ENQUEUE, CLAIM, FINISH)
