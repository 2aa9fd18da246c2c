"""que (Ruby) 2.x, DB schema version 7 (que 2.1-2.4; 2.0's schema 6 is the same table).

Table: ``sandbox/schemas/que_2.sql``, ``que_jobs`` as que's migrations 1-7 leave it, with its
indexes and the version comment (triggers, CHECK constraints, ``que_lockers`` and ``que_values``
are left out: the simulated workers poll). que hard-codes ``public``; here the table is in the demo
schema, which the adapter's ``schema`` option names.
Enqueue: ``insert_job``: queue ``default``, priority 100, ``run_at = now()``,
``job_schema_version = 2``.
Claim: the locker's ``poll_jobs``: walk due, unfinished, unexpired version-2 rows of the queue in
(priority, run_at, id) order, one at a time, taking ``pg_try_advisory_lock(id)`` on the worker's
own connection until ``limit`` locks are held (rows locked by other workers are stepped over;
ids this connection already holds are skipped, as que passes its held locks); then the worker's
``check_job`` in a fresh statement, and any id whose row is gone (deleted by another worker
after this poll's snapshot: advisory locks do not obey MVCC) is unlocked and not returned.
The advisory lock is what makes the job "running" to the daemon, so the connection that claims
must be the one that finishes - as the demo's workers keep theirs.
Finish: a job that succeeds is destroyed (``destroy_job``: the row is deleted), then the locker
releases its locks with ``pg_advisory_unlock``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dynomatic_daemon.demo.workloads.base import Claimed
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("que_2.sql")

ENQUEUE = """
INSERT INTO que_jobs (queue, priority, run_at, job_class, args, kwargs, data, job_schema_version)
SELECT 'default', 100, now(), 'DemoJob', '[]'::jsonb, '{}'::jsonb, '{}'::jsonb, 2
FROM generate_series(1, %(count)s)
"""

# que's poll_jobs with its priorities document reduced to one count of wanted jobs: each step
# takes the lock once (in the select list of a LIMIT 1 subquery, which the planner does not
# flatten) and the walk stops once `taken` reaches the limit or the rows run out.
CLAIM = """
WITH RECURSIVE
held(id) AS MATERIALIZED (
    SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.pid = pg_backend_pid()
),
jobs AS (
    SELECT (j).id, (j).priority, (j).run_at, pg_try_advisory_lock((j).id) AS locked, 0 AS taken
    FROM (
        SELECT j FROM que_jobs AS j
        WHERE queue = 'default' AND job_schema_version = 2
          AND NOT id IN (SELECT id FROM held)
          AND run_at <= now() AND finished_at IS NULL AND expired_at IS NULL
          AND %(limit)s > 0
        ORDER BY priority, run_at, id
        LIMIT 1
    ) AS t1
    UNION ALL (
        SELECT (j).id, (j).priority, (j).run_at, pg_try_advisory_lock((j).id) AS locked, taken
        FROM (
            SELECT jobs.taken + jobs.locked::int AS taken, (
                SELECT j FROM que_jobs AS j
                WHERE queue = 'default' AND job_schema_version = 2
                  AND NOT id IN (SELECT id FROM held)
                  AND run_at <= now() AND finished_at IS NULL AND expired_at IS NULL
                  AND (priority, run_at, id) > (jobs.priority, jobs.run_at, jobs.id)
                ORDER BY priority, run_at, id
                LIMIT 1
            ) AS j
            FROM jobs
            WHERE jobs.id IS NOT NULL AND jobs.taken + jobs.locked::int < %(limit)s
            LIMIT 1
        ) AS t1
    )
)
SELECT id, EXTRACT(EPOCH FROM (now() - run_at))::float8 FROM jobs WHERE locked
"""

# the worker's check_job, for all the ids of one poll at once
CHECK = "SELECT id FROM que_jobs WHERE id = ANY(%(ids)s)"

DESTROY = "DELETE FROM que_jobs WHERE id = ANY(%(ids)s)"

UNLOCK = "SELECT pg_advisory_unlock(v.i) FROM unnest(%(ids)s::bigint[]) AS v(i)"


@dataclass(frozen=True)
class QueWorkload:
    """que's jobs are running while the claiming connection holds their advisory locks, so claim
    and finish are more than one statement each; everything runs on the worker's connection."""

    adapter: str = "que"

    def create(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(DDL)

    def enqueue(self, conn: psycopg.Connection[Any], count: int) -> None:
        conn.execute(ENQUEUE, {"count": count})

    def claim(self, conn: psycopg.Connection[Any], limit: int, worker: str) -> list[Claimed]:
        rows = conn.execute(CLAIM, {"limit": limit}).fetchall()
        claimed = [(int(job_id), max(0.0, float(wait))) for job_id, wait in rows]
        if not claimed:
            return []
        ids = [job_id for job_id, _wait in claimed]
        present = {int(job_id) for (job_id,) in conn.execute(CHECK, {"ids": ids}).fetchall()}
        gone = [job_id for job_id in ids if job_id not in present]
        if gone:  # finished by another worker after our snapshot: let go, as que's locker does
            conn.execute(UNLOCK, {"ids": gone})
        return [c for c in claimed if c[0] in present]

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
        if not ids:
            return
        # two statements, as que's worker and locker do: the delete is committed before the
        # lock is released, so a worker that takes the lock afterwards finds the row gone
        conn.execute(DESTROY, {"ids": list(ids)})
        conn.execute(UNLOCK, {"ids": list(ids)})

    def options(self, schema: str) -> dict[str, str]:
        return {"schema": schema}


WORKLOAD = QueWorkload()
