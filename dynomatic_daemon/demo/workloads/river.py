"""River (Go), migration line ``main`` version 7.

Tables: ``sandbox/schemas/river_7.sql`` (``river_migration`` so the daemon sees the version, the
``river_job_state`` enum, ``river_job`` with River's indexes, ``river_queue`` where pauses live)
and the queue row for ``default``. Enqueue: ``InsertMany`` of ``available`` jobs on queue
``default``. Claim: River's ``JobGetAvailable``: lock due ``available`` rows in (priority,
scheduled_at, id) order with ``SKIP LOCKED`` and mark them ``running``. Finish: River's completer
sets ``completed`` and ``finalized_at`` (rows stay until River's cleaner deletes them).
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("river_7.sql") + "INSERT INTO river_queue (name) VALUES ('default');\n"

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
