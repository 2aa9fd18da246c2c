"""chancy (Python), schema version 8 of its migrator (chancy 0.26.0), default ``chancy_`` prefix.

Tables: ``chancy_jobs`` with its unique-key, (queue, state) and fetch indexes, ``chancy_queues``
with queue ``default`` declared as ``Chancy.declare(Queue("default"))`` leaves it, and
``chancy_schema_version`` at 8, so the daemon sees the version; the unlogged leader, workers
and rate-limit tables are left out. Enqueue: ``push_many``'s insert of ``pending`` jobs on queue
``default`` with time-ordered UUID ids like ``chancy_uuid`` (push time in 100 ns ticks, plus the
row's ordinal so that a batch keeps its order) and ``scheduled_at = now()``. Claim: the worker's
``fetch_jobs``: lock due ``pending``/``retrying`` rows with attempts left in (priority DESC,
id) order with ``SKIP LOCKED`` and mark them ``running`` with ``started_at = now()``, a fresh
``claim_id`` and ``taken_by`` = the worker. Finish: the executor's success update, applied as
the worker's outgoing-updates batch does: ``succeeded``, ``completed_at = now()``, ``attempts +
1`` (rows stay until chancy's Pruner deletes them). chancy matches the update on the
``claim_id`` it holds in memory; the simulated worker does not keep it, so it matches on
``state = 'running'``.

Job ids are UUIDs: ``claim`` hands them on as their 128-bit integers (``int(UUID)``), and
``finish`` turns them back into UUIDs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = (
    schema_sql("chancy.sql")
    + """
INSERT INTO chancy_queues (name, state, concurrency, tags, executor, executor_options,
                           polling_interval, rate_limit, rate_limit_window, resume_at,
                           eager_polling)
VALUES ('default', 'active', NULL, ARRAY['.*'], 'chancy.executors.process.ProcessExecutor',
        '{}', 5, NULL, NULL, NULL, false);
"""
)

# chancy_uuid(): 4 zero bits, 56 bits of 100 ns ticks, version 7, variant 0b10, 62 random bits
ENQUEUE = """
INSERT INTO chancy_jobs (id, queue, func, kwargs, limits, meta, priority, max_attempts,
                         scheduled_at, unique_key)
SELECT ('0' || lpad(to_hex((EXTRACT(EPOCH FROM now()) * 1e7)::bigint + g), 14, '0') || '7'
        || to_hex(8 + floor(random() * 4)::int) || substr(md5(random()::text), 1, 15))::uuid,
       'default', 'demo.jobs.work', '{}'::jsonb, '[]'::jsonb, '{}'::jsonb, 0, 1, now(), NULL
FROM generate_series(1, %(count)s) AS g
"""

CLAIM = """
WITH selected_jobs AS (
    SELECT id
    FROM chancy_jobs
    WHERE queue = 'default'
      AND (state = 'pending' OR state = 'retrying')
      AND attempts < max_attempts
      AND (scheduled_at IS NULL OR scheduled_at <= NOW())
    ORDER BY priority DESC, id ASC
    LIMIT %(limit)s
    FOR UPDATE OF chancy_jobs SKIP LOCKED
)
UPDATE chancy_jobs
SET started_at = NOW(),
    state = 'running',
    claim_id = gen_random_uuid(),
    taken_by = %(worker)s
FROM selected_jobs
WHERE chancy_jobs.id = selected_jobs.id
RETURNING chancy_jobs.id,
          EXTRACT(EPOCH FROM (chancy_jobs.started_at - GREATEST(chancy_jobs.created_at,
                                                                chancy_jobs.scheduled_at)))::float8
"""

FINISH = """
UPDATE chancy_jobs
SET state = 'succeeded', completed_at = NOW(), attempts = attempts + 1
WHERE id = ANY(%(ids)s::uuid[]) AND state = 'running'
"""


@dataclass(frozen=True)
class ChancyWorkload(SqlWorkload):
    """A ``SqlWorkload`` whose job ids are UUIDs, passed around as their integers."""

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
        conn.execute(self.finish_sql, {"ids": [uuid.UUID(int=job_id) for job_id in ids]})


WORKLOAD = ChancyWorkload("chancy", DDL, ENQUEUE, CLAIM, FINISH)
