"""Oban (Elixir), Basic engine, migration version 14.

Tables: ``sandbox/schemas/oban_14.sql`` (the ``oban_job_state`` enum, ``oban_jobs`` with Oban's
indexes and the version comment its migrator reads); the demo schema is Oban's ``prefix``.
Enqueue: ``Oban.insert_all`` of ``available`` jobs on queue ``default``.
Claim: the Basic engine's ``fetch_jobs``: lock ``available`` rows in (priority, scheduled_at, id)
order with ``SKIP LOCKED`` and mark them ``executing``. Finish: ``completed`` with
``completed_at`` (rows stay until the Pruner deletes them). Times are naive UTC, as Ecto's.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("oban_14.sql")

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
