"""Laravel's database queue (illuminate/queue), Laravel 8-12.

Table: ``sandbox/schemas/laravel.sql`` (the ``jobs`` table of Laravel's own migration). Enqueue:
``DatabaseQueue::push`` on queue ``default``: ``available_at = created_at = now`` in Unix
seconds, ``attempts = 0``. Claim: ``getNextAvailableJob``'s rule (unreserved and due, or
reserved longer ago than ``retry_after``, 90 s) in id order with ``FOR UPDATE SKIP LOCKED``,
then ``markJobAsReserved``: ``reserved_at = now``, ``attempts + 1``. Finish: a job that
succeeded is deleted. Times are whole seconds, as PHP's ``time()`` writes them.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("laravel.sql")

ENQUEUE = """
INSERT INTO jobs (queue, payload, attempts, available_at, created_at)
SELECT 'default', '{"displayName":"App\\\\Jobs\\\\DemoJob"}', 0,
       floor(extract(epoch FROM now()))::int, floor(extract(epoch FROM now()))::int
FROM generate_series(1, %(count)s)
"""

CLAIM = """
WITH clock AS (SELECT floor(extract(epoch FROM now()))::int AS now_s),
next_jobs AS (
    SELECT j.id FROM jobs j, clock c
    WHERE j.queue = 'default'
      AND ((j.reserved_at IS NULL AND j.available_at <= c.now_s) OR j.reserved_at <= c.now_s - 90)
    ORDER BY j.id
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED)
UPDATE jobs SET reserved_at = (SELECT now_s FROM clock), attempts = jobs.attempts + 1
FROM next_jobs WHERE jobs.id = next_jobs.id
RETURNING jobs.id, extract(epoch FROM now())::float8 - jobs.available_at
"""

FINISH = "DELETE FROM jobs WHERE id = ANY(%(ids)s)"

WORKLOAD = SqlWorkload("laravel", DDL, ENQUEUE, CLAIM, FINISH)
