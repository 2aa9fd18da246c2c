"""pg-boss (Node) 12.27, schema version 37: the v12.19+ layout (``job.blocked``, queue counts).

Tables, in the demo schema (pg-boss's ``schema`` option): the ``job_state`` enum, ``version``,
``queue`` with its cached counts, and ``job`` LIST-partitioned by ``name`` with the DEFAULT
partition ``job_common`` and its indexes, as ``plans.ts`` ``create()`` makes them (bam, warning,
queue_stats, job_dependency, schedule, subscription and the functions are left out); queue
``default`` is created as ``createQueue('default')`` does (policy ``standard``, not partitioned,
so its jobs live in ``job_common``). Enqueue: ``insertJobs`` (``send``) of ``created`` jobs with
the queue's defaults. Claim: ``fetchNextJob``: lock due ``created``/``retry`` rows that are not
blocked in (priority desc, created_on, id) order with ``SKIP LOCKED`` and mark them ``active``
with ``started_on``. Finish: ``completeJobs``: ``completed`` with ``completed_on`` (rows stay
until maintenance deletes them).

Running, for the daemon, is pg-boss's own cached ``queue.active_count``, which pg-boss's monitor
refreshes (every 60 s by default) and stamps with ``monitor_on``; the daemon trusts it only while
``monitor_on`` is under 5 minutes old. Nothing else in pg-boss writes it, so after every claim and
every finish (and once at create) the workload runs the monitor's refresh for queue ``default``
itself: pg-boss's ``refreshQueueStats`` (the counts from ``getQueueStats``, and ``monitor_on =
now()``) under the ``queue-stats`` advisory transaction lock that ``cacheQueueStats`` takes, so
that concurrent refreshes are serialized and the last one to commit saw every committed claim
and finish. That is a monitor running after each state change instead of once a minute.

Job ids are uuids; ``Claimed`` carries ints, so a claim returns ``uuid.int`` and finish turns it
back into the uuid.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dynomatic_daemon.demo.workloads.base import Claimed

QUEUE = "default"

DDL = """
CREATE TYPE job_state AS ENUM ('created', 'retry', 'active', 'completed', 'cancelled', 'failed');
CREATE TABLE version (
    version int PRIMARY KEY,
    cron_on timestamp with time zone,
    bam_on timestamp with time zone,
    flow_on timestamp with time zone
);
CREATE TABLE queue (
    name text NOT NULL,
    policy text NOT NULL,
    retry_limit int NOT NULL,
    retry_delay int NOT NULL,
    retry_backoff bool NOT NULL,
    retry_delay_max int,
    expire_seconds int NOT NULL,
    retention_seconds int NOT NULL,
    deletion_seconds int NOT NULL,
    dead_letter text REFERENCES queue (name) CHECK (dead_letter IS DISTINCT FROM name),
    partition bool NOT NULL,
    table_name text NOT NULL,
    deferred_count int NOT NULL DEFAULT 0,
    queued_count int NOT NULL DEFAULT 0,
    ready_count int NOT NULL DEFAULT 0,
    warning_queued int NOT NULL DEFAULT 0,
    active_count int NOT NULL DEFAULT 0,
    failed_count int NOT NULL DEFAULT 0,
    total_count int NOT NULL DEFAULT 0,
    ready_history int[] NOT NULL DEFAULT '{}',
    heartbeat_seconds int,
    notify bool NOT NULL DEFAULT false,
    singletons_active text[],
    monitor_on timestamp with time zone,
    maintain_on timestamp with time zone,
    created_on timestamp with time zone NOT NULL DEFAULT now(),
    updated_on timestamp with time zone NOT NULL DEFAULT now(),
    PRIMARY KEY (name)
);
CREATE TABLE job (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    priority integer NOT NULL DEFAULT(0),
    data jsonb,
    state job_state NOT NULL DEFAULT 'created',
    retry_limit integer NOT NULL DEFAULT 2,
    retry_count integer NOT NULL DEFAULT 0,
    retry_delay integer NOT NULL DEFAULT 0,
    retry_backoff boolean NOT NULL DEFAULT false,
    retry_delay_max integer,
    expire_seconds int NOT NULL DEFAULT 900,
    deletion_seconds int NOT NULL DEFAULT 604800,
    singleton_key text,
    singleton_on timestamp without time zone,
    group_id text,
    group_tier text,
    start_after timestamp with time zone NOT NULL DEFAULT now(),
    created_on timestamp with time zone NOT NULL DEFAULT now(),
    started_on timestamp with time zone,
    completed_on timestamp with time zone,
    keep_until timestamp with time zone NOT NULL DEFAULT now() + interval '1209600',
    output jsonb,
    dead_letter text,
    policy text,
    heartbeat_on timestamp with time zone,
    heartbeat_seconds int,
    blocked boolean NOT NULL DEFAULT false,
    blocking boolean NOT NULL DEFAULT false,
    pending_dependencies int NOT NULL DEFAULT 0,
    source_name text,
    source_id uuid,
    source_created_on timestamp with time zone,
    source_retry_count int
) PARTITION BY LIST (name);
ALTER TABLE job ADD PRIMARY KEY (name, id);
CREATE TABLE job_common (LIKE job INCLUDING GENERATED INCLUDING DEFAULTS);
ALTER TABLE job_common ADD PRIMARY KEY (name, id);
ALTER TABLE job_common ADD CONSTRAINT q_fkey FOREIGN KEY (name)
    REFERENCES queue (name) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE job_common ADD CONSTRAINT dlq_fkey FOREIGN KEY (dead_letter)
    REFERENCES queue (name) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED;
CREATE UNIQUE INDEX job_common_i1 ON job_common (name, COALESCE(singleton_key, ''))
    WHERE state = 'created' AND policy = 'short';
CREATE UNIQUE INDEX job_common_i2 ON job_common (name, COALESCE(singleton_key, ''))
    WHERE state = 'active' AND policy = 'singleton';
CREATE UNIQUE INDEX job_common_i3 ON job_common (name, state, COALESCE(singleton_key, ''))
    WHERE state <= 'active' AND policy = 'stately';
CREATE UNIQUE INDEX job_common_i6 ON job_common (name, COALESCE(singleton_key, ''))
    WHERE state <= 'active' AND policy = 'exclusive';
CREATE UNIQUE INDEX job_common_i8 ON job_common (name, singleton_key)
    WHERE state IN ('active', 'retry', 'failed') AND policy = 'key_strict_fifo';
ALTER TABLE job_common ADD CONSTRAINT job_key_strict_fifo_singleton_key_check
    CHECK (NOT (policy = 'key_strict_fifo' AND singleton_key IS NULL));
CREATE UNIQUE INDEX job_common_i4 ON job_common (name, singleton_on, COALESCE(singleton_key, ''))
    WHERE state <> 'cancelled' AND singleton_on IS NOT NULL;
CREATE INDEX job_common_i5 ON job_common (name, start_after)
    WHERE state < 'active' AND NOT blocked;
CREATE INDEX job_common_i7 ON job_common (name, group_id)
    WHERE state = 'active' AND group_id IS NOT NULL;
CREATE INDEX job_common_i9 ON job_common (name, id) WHERE blocking AND state = 'completed';
ALTER TABLE job ATTACH PARTITION job_common DEFAULT;
INSERT INTO version (version) VALUES (37);
-- createQueue('default'): create_queue() with pg-boss's QUEUE_DEFAULTS
INSERT INTO queue (name, policy, retry_limit, retry_delay, retry_backoff, retry_delay_max,
                   expire_seconds, retention_seconds, deletion_seconds, warning_queued,
                   dead_letter, partition, table_name, heartbeat_seconds, notify)
VALUES ('default', 'standard', 2, 0, false, NULL, 900, 1209600, 604800, 0, NULL, false,
        'job_common', NULL, false);
"""

# insertJobs (send) into the queue's table, every option left to the queue's defaults
ENQUEUE = """
INSERT INTO job_common (id, name, data, priority, start_after, expire_seconds, deletion_seconds,
                        keep_until, retry_limit, retry_delay, retry_backoff, retry_delay_max,
                        policy, dead_letter, heartbeat_seconds, blocked, blocking,
                        pending_dependencies)
SELECT gen_random_uuid(), 'default', '{}'::jsonb, 0, now(), q.expire_seconds, q.deletion_seconds,
       now() + (q.retention_seconds * interval '1s'), q.retry_limit, q.retry_delay,
       COALESCE(q.retry_backoff, false), q.retry_delay_max, q.policy, q.dead_letter,
       q.heartbeat_seconds, false, false, 0
FROM generate_series(1, %(count)s)
JOIN queue q ON q.name = 'default'
ON CONFLICT DO NOTHING
"""

# fetchNextJob with the defaults (priority, orderByCreatedOn, no singleton or group limits)
CLAIM = """
WITH next AS (
    SELECT j.id FROM job_common j
    WHERE j.name = 'default' AND j.state < 'active' AND NOT j.blocked
      AND j.start_after <= now()
    ORDER BY j.priority desc, j.created_on, j.id
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED)
UPDATE job_common j SET
    state = 'active',
    started_on = now(),
    heartbeat_on = now(),
    retry_count = CASE WHEN started_on IS NOT NULL THEN retry_count + 1 ELSE retry_count END
FROM next
WHERE name = 'default' AND j.id = next.id
RETURNING j.id, EXTRACT(EPOCH FROM (j.started_on - GREATEST(j.created_on, j.start_after)))::float8
"""

# completeJobs (without includeQueued), no output
FINISH = """
UPDATE job_common
SET completed_on = now(), state = 'completed', output = NULL::jsonb, blocked = blocked,
    pending_dependencies = pending_dependencies
WHERE name = 'default' AND id = ANY(%(ids)s::uuid[]) AND state = 'active'
"""

# pg-boss's advisory lock for key 'queue-stats' (what cacheQueueStats runs under); the schema
# part of the key is the demo schema, as pg-boss's is its `schema` option.
STATS_LOCK = """
SELECT pg_advisory_xact_lock(
    ('x' || encode(sha224((current_database() || '.pgboss.' || current_schema()
                           || 'queue-stats')::bytea), 'hex'))::bit(64)::bigint)
"""

# refreshQueueStats('default'): getQueueStats' counts written to the queue row, monitor_on now
REFRESH_STATS = """
WITH stats AS (
    SELECT name, "deferredCount", "queuedCount",
           GREATEST("queuedCount" - "deferredCount", 0) AS "readyCount",
           "activeCount", "failedCount", "totalCount", "singletonsActive"
    FROM (
        SELECT name,
               (count(*) FILTER (WHERE start_after > now() AND state < 'active'))::int
                   AS "deferredCount",
               (count(*) FILTER (WHERE state < 'active'))::int AS "queuedCount",
               (count(*) FILTER (WHERE state = 'active'))::int AS "activeCount",
               (count(*) FILTER (WHERE state = 'failed'))::int AS "failedCount",
               count(*)::int AS "totalCount",
               array_agg(singleton_key) FILTER (
                   WHERE policy IN ('singleton', 'stately') AND state = 'active')
                   AS "singletonsActive"
        FROM job_common
        WHERE name = ANY(ARRAY['default']::text[])
        GROUP BY 1
    ) counted
)
UPDATE queue SET
    deferred_count = COALESCE(stats."deferredCount", 0),
    queued_count = COALESCE(stats."queuedCount", 0),
    ready_count = COALESCE(stats."readyCount", 0),
    active_count = COALESCE(stats."activeCount", 0),
    failed_count = COALESCE(stats."failedCount", 0),
    total_count = COALESCE(stats."totalCount", 0),
    singletons_active = stats."singletonsActive",
    monitor_on = now()
FROM (SELECT q.name FROM unnest(ARRAY['default']::text[]) AS q(name)) q
LEFT JOIN stats ON stats.name = q.name
WHERE queue.name = q.name
"""


@dataclass(frozen=True)
class PgBossWorkload:
    adapter: str = "pgboss"

    def create(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(DDL)
        self._monitor(conn)

    def enqueue(self, conn: psycopg.Connection[Any], count: int) -> None:
        conn.execute(ENQUEUE, {"count": count})

    def claim(self, conn: psycopg.Connection[Any], limit: int, worker: str) -> list[Claimed]:
        rows = conn.execute(CLAIM, {"limit": limit}).fetchall()  # pg-boss records no worker
        if rows:
            self._monitor(conn)
        return [(uuid.UUID(str(job_id)).int, max(0.0, float(wait))) for job_id, wait in rows]

    def finish(self, conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
        conn.execute(FINISH, {"ids": [uuid.UUID(int=job_id) for job_id in ids]})
        self._monitor(conn)

    def options(self, schema: str) -> dict[str, str]:
        return {"schema": schema}

    @staticmethod
    def _monitor(conn: psycopg.Connection[Any]) -> None:
        """pg-boss's monitor pass for queue ``default``, in a transaction of its own."""
        with conn.transaction():
            conn.execute(STATS_LOCK)
            conn.execute(REFRESH_STATS)


WORKLOAD = PgBossWorkload()
