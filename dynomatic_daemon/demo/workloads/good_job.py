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
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("good_job.sql")

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
