"""good_job (Ruby, Rails) v4.19 with ``lock_strategy: :skiplocked`` (opt-in since v4.15).

Tables: ``good_jobs`` with every index of good_job's install migration, and
``good_job_settings`` (where pauses live; no row, so nothing is paused), as Rails 7 renders them
(naive UTC ``timestamp``). ``good_job_executions``, ``good_job_processes`` and
``good_job_batches`` are left out: the daemon reads none of them, so the claim does not write
the execution row good_job's ``perform`` adds, and ``locked_by_id`` is a uuid made from the
simulated worker's name rather than a process row's id.
Enqueue: ``GoodJob::Job.enqueue`` of an Active Job on queue ``default``: ``id = active_job_id``,
priority 0, ``created_at = scheduled_at = now``, ``serialized_params`` as Active Job serializes.
Claim: ``perform_with_skip_locked``: the first unfinished, unlocked, due rows in (priority NULLS
LAST, created_at) order are locked ``FOR NO KEY UPDATE SKIP LOCKED`` in a materialized CTE and
stamped ``locked_by_id``/``locked_at``/``lock_type = 1`` (skiplocked); ``perform`` then sets
``performed_at`` and bumps ``executions_count`` - both in the one statement here.
Finish: ``perform``'s end for a job that succeeded: ``finished_at`` set, the lock columns and
``error`` cleared; the row stays (``preserve_job_records`` is on by default in v4).
Job ids are uuids: ``claim`` hands them on as ``UUID.int`` and ``finish`` turns them back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dynomatic_daemon.demo.workloads.base import Claimed, SqlWorkload

DDL = """
CREATE TABLE good_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    queue_name text,
    priority integer,
    serialized_params jsonb,
    scheduled_at timestamp(6) without time zone,
    performed_at timestamp(6) without time zone,
    finished_at timestamp(6) without time zone,
    error text,
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL,
    active_job_id uuid,
    concurrency_key text,
    cron_key text,
    retried_good_job_id uuid,
    cron_at timestamp(6) without time zone,
    batch_id uuid,
    batch_callback_id uuid,
    is_discrete boolean,
    executions_count integer,
    job_class text,
    error_event smallint,
    labels text[],
    locked_by_id uuid,
    locked_at timestamp(6) without time zone,
    lock_type smallint
);

CREATE TABLE good_job_settings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at timestamp(6) without time zone NOT NULL,
    updated_at timestamp(6) without time zone NOT NULL,
    key text,
    value jsonb
);
CREATE UNIQUE INDEX index_good_job_settings_on_key ON good_job_settings (key);

CREATE INDEX index_good_jobs_on_scheduled_at ON good_jobs (scheduled_at)
    WHERE (finished_at IS NULL);
CREATE INDEX index_good_jobs_on_queue_name_and_scheduled_at ON good_jobs (queue_name, scheduled_at)
    WHERE (finished_at IS NULL);
CREATE INDEX index_good_jobs_on_active_job_id_and_created_at
    ON good_jobs (active_job_id, created_at);
CREATE INDEX index_good_jobs_on_concurrency_key_when_unfinished ON good_jobs (concurrency_key)
    WHERE (finished_at IS NULL);
CREATE INDEX index_good_jobs_on_concurrency_key_and_created_at
    ON good_jobs (concurrency_key, created_at);
CREATE INDEX index_good_jobs_on_cron_key_and_created_at_cond ON good_jobs (cron_key, created_at)
    WHERE (cron_key IS NOT NULL);
CREATE UNIQUE INDEX index_good_jobs_on_cron_key_and_cron_at_cond ON good_jobs (cron_key, cron_at)
    WHERE (cron_key IS NOT NULL);
CREATE INDEX index_good_jobs_jobs_on_finished_at_only ON good_jobs (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX index_good_jobs_jobs_on_priority_created_at_when_unfinished
    ON good_jobs (priority DESC NULLS LAST, created_at) WHERE finished_at IS NULL;
CREATE INDEX index_good_job_jobs_for_candidate_lookup
    ON good_jobs (priority ASC NULLS LAST, created_at) WHERE finished_at IS NULL;
CREATE INDEX index_good_jobs_on_batch_id ON good_jobs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX index_good_jobs_on_batch_callback_id ON good_jobs (batch_callback_id)
    WHERE batch_callback_id IS NOT NULL;
CREATE INDEX index_good_jobs_on_job_class ON good_jobs (job_class);
CREATE INDEX index_good_jobs_on_labels ON good_jobs USING gin (labels) WHERE (labels IS NOT NULL);
CREATE INDEX index_good_jobs_on_priority_scheduled_at_unfinished_unlocked
    ON good_jobs (priority ASC NULLS LAST, scheduled_at)
    WHERE finished_at IS NULL AND locked_by_id IS NULL;
CREATE INDEX index_good_jobs_on_priority_scheduled_at_unfinished
    ON good_jobs (priority, scheduled_at, id) WHERE finished_at IS NULL;
CREATE INDEX index_good_jobs_on_queue_name_priority_scheduled_at_unfinished
    ON good_jobs (queue_name, scheduled_at, id) WHERE finished_at IS NULL;
CREATE INDEX index_good_jobs_on_locked_by_id ON good_jobs (locked_by_id)
    WHERE locked_by_id IS NOT NULL;
CREATE INDEX index_good_jobs_for_candidate_dequeue_unlocked
    ON good_jobs (priority ASC NULLS LAST, scheduled_at, id)
    WHERE finished_at IS NULL AND locked_by_id IS NULL;
CREATE INDEX index_good_jobs_on_queue_name ON good_jobs (queue_name);
CREATE INDEX index_good_jobs_on_created_at ON good_jobs (created_at);
CREATE INDEX index_good_jobs_on_discarded ON good_jobs (finished_at DESC)
    WHERE finished_at IS NOT NULL AND error IS NOT NULL;
CREATE INDEX index_good_jobs_on_scheduled_at_and_queue_name ON good_jobs (scheduled_at, queue_name);
CREATE INDEX index_good_jobs_on_unfinished_or_errored ON good_jobs (id)
    WHERE finished_at IS NULL OR error IS NOT NULL;
"""

ENQUEUE = """
INSERT INTO good_jobs (id, active_job_id, job_class, queue_name, priority, serialized_params,
                       scheduled_at, created_at, updated_at)
SELECT j.id, j.id, 'DemoJob', 'default', 0,
       jsonb_build_object('job_class', 'DemoJob', 'job_id', j.id, 'provider_job_id', NULL,
                          'queue_name', 'default', 'priority', NULL, 'arguments', '[]'::jsonb,
                          'executions', 0, 'exception_executions', '{}'::jsonb,
                          'locale', 'en', 'timezone', 'UTC',
                          'enqueued_at', to_char(j.now_utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                          'scheduled_at', to_char(j.now_utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
       j.now_utc, j.now_utc, j.now_utc
FROM (SELECT gen_random_uuid() AS id, now() AT TIME ZONE 'UTC' AS now_utc
      FROM generate_series(1, %(count)s)) AS j
"""

CLAIM = """
WITH candidate AS MATERIALIZED (
    SELECT id FROM good_jobs
    WHERE finished_at IS NULL AND locked_by_id IS NULL
      AND scheduled_at <= now() AT TIME ZONE 'UTC'
    ORDER BY priority ASC NULLS LAST, created_at ASC
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED)
UPDATE good_jobs
SET locked_by_id = md5(%(worker)s::text)::uuid, locked_at = now() AT TIME ZONE 'UTC',
    lock_type = 1, performed_at = now() AT TIME ZONE 'UTC',
    executions_count = COALESCE(good_jobs.executions_count, 0) + 1,
    updated_at = now() AT TIME ZONE 'UTC'
FROM candidate WHERE good_jobs.id = candidate.id
RETURNING good_jobs.id,
          EXTRACT(EPOCH FROM (good_jobs.performed_at - good_jobs.scheduled_at))::float8
"""

FINISH = """
UPDATE good_jobs
SET finished_at = now() AT TIME ZONE 'UTC', locked_by_id = NULL, locked_at = NULL,
    lock_type = NULL, error = NULL, error_event = NULL, updated_at = now() AT TIME ZONE 'UTC'
WHERE id = ANY(%(ids)s) AND finished_at IS NULL
"""


@dataclass(frozen=True)
class GoodJobWorkload(SqlWorkload):
    """An ``SqlWorkload`` whose job ids are uuids, passed through ``Claimed`` as integers."""

    def claim(self, conn: psycopg.Connection[Any], limit: int, worker: str) -> list[Claimed]:
        rows = conn.execute(self.claim_sql, {"limit": limit, "worker": worker}).fetchall()
        return [(uuid.UUID(str(job_id)).int, max(0.0, float(wait))) for job_id, wait in rows]

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
        conn.execute(self.finish_sql, {"ids": [uuid.UUID(int=job_id) for job_id in ids]})


WORKLOAD = GoodJobWorkload("good_job", DDL, ENQUEUE, CLAIM, FINISH)
