"""JobRunr 6-8 on PostgreSQL (its SQL storage's tables, no prefix).

Table: ``sandbox/schemas/jobrunr.sql`` (``jobrunr_jobs`` and friends, from JobRunr's
migrations). Enqueue: ``BackgroundJob.enqueue``: an ``ENQUEUED`` job, ``createdAt =
updatedAt = now`` in UTC. Claim: ``getJobsToProcess``: ``ENQUEUED`` jobs, oldest ``updatedAt``
first, ``FOR UPDATE SKIP LOCKED``, saved as ``PROCESSING`` (``updatedAt = now``, ``version +
1``); a simulated job ends within the 60 s server timeout, so no heartbeat is needed. Finish:
``SUCCEEDED`` (rows stay until JobRunr deletes them, 36 h later by default).

Job ids are UUIDs stored as text: ``claim`` hands them on as their 128-bit integers, and
``finish`` turns them back into text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("jobrunr.sql")

ENQUEUE = """
INSERT INTO jobrunr_jobs (id, version, jobAsJson, jobSignature, state, createdAt, updatedAt)
SELECT gen_random_uuid()::text, 0, '{"jobSignature": "demo.DemoJob.run()"}',
       'demo.DemoJob.run()', 'ENQUEUED', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
FROM generate_series(1, %(count)s)
"""

CLAIM = """
WITH next_jobs AS (
    SELECT j.id, j.updatedAt AS enqueued_at FROM jobrunr_jobs j
    WHERE j.state = 'ENQUEUED'
    ORDER BY j.updatedAt
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE jobrunr_jobs j
SET state = 'PROCESSING', updatedAt = now() AT TIME ZONE 'UTC', version = j.version + 1
FROM next_jobs WHERE j.id = next_jobs.id
RETURNING j.id::uuid, extract(epoch FROM (j.updatedAt - next_jobs.enqueued_at))::float8
"""

FINISH = """
UPDATE jobrunr_jobs
SET state = 'SUCCEEDED', updatedAt = now() AT TIME ZONE 'UTC', version = version + 1
WHERE id = ANY(%(ids)s::text[]) AND state = 'PROCESSING'
"""


@dataclass(frozen=True)
class JobRunrWorkload(SqlWorkload):
    """A ``SqlWorkload`` whose job ids are UUID text, passed around as their integers."""

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
        conn.execute(self.finish_sql, {"ids": [str(uuid.UUID(int=job_id)) for job_id in ids]})


WORKLOAD = JobRunrWorkload("jobrunr", DDL, ENQUEUE, CLAIM, FINISH)
