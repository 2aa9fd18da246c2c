"""pgmq 1.5.1 (the tables its pgmq.sql creates; the extension itself is not needed).

Tables: schema ``pgmq`` with the queue registry ``pgmq.meta``, and what ``pgmq.create('default')``
(``create_non_partitioned``) makes: ``pgmq.q_default`` with its ``(vt ASC)`` index, the archive
``pgmq.a_default``, and the ``meta`` row; pgmq's functions are left out and their statements run
directly. Enqueue: ``pgmq.send_batch('default', msgs)``: messages visible at once (``vt`` = the
send time, ``read_ct`` 0). Claim: ``pgmq.read('default', 30, qty)``: lock the oldest visible
messages by ``msg_id`` with ``SKIP LOCKED``, set ``vt`` = now + the 30 s visibility timeout and
bump ``read_ct``, so they are in flight (running) and invisible (not ready). Finish:
``pgmq.delete('default', msg_ids)``.

pgmq's schema is fixed (the daemon's adapter reads ``pgmq.*``, whatever the search_path), so these
tables live outside the demo schema and are not dropped with it: the embedded server is removed
whole, but a run against ``DATABASE_URL`` leaves schema ``pgmq`` behind. For the same reason
``create`` refuses a database that already has ``pgmq.meta``, rather than work (and delete the
messages of) a real pgmq installation or another demo's queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynomatic_daemon.demo.workloads.base import SqlWorkload

DDL = """
DO $$
BEGIN
    IF to_regclass('pgmq.meta') IS NOT NULL THEN
        RAISE EXCEPTION 'this database already has pgmq (table pgmq.meta)'
            USING HINT = 'The pgmq demo uses the fixed schema pgmq: run it on the embedded '
                         'server (no DATABASE_URL) or on a database without pgmq.';
    END IF;
END
$$;
CREATE SCHEMA IF NOT EXISTS pgmq;
CREATE TABLE pgmq.meta (
    queue_name VARCHAR UNIQUE NOT NULL,
    is_partitioned BOOLEAN NOT NULL,
    is_unlogged BOOLEAN NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL
);
CREATE TABLE IF NOT EXISTS pgmq.q_default (
    msg_id BIGINT PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    read_ct INT DEFAULT 0 NOT NULL,
    enqueued_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    vt TIMESTAMP WITH TIME ZONE NOT NULL,
    message JSONB,
    headers JSONB
);
CREATE TABLE IF NOT EXISTS pgmq.a_default (
    msg_id BIGINT PRIMARY KEY,
    read_ct INT DEFAULT 0 NOT NULL,
    enqueued_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    archived_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    vt TIMESTAMP WITH TIME ZONE NOT NULL,
    message JSONB,
    headers JSONB
);
CREATE INDEX IF NOT EXISTS q_default_vt_idx ON pgmq.q_default (vt ASC);
CREATE INDEX IF NOT EXISTS archived_at_idx_default ON pgmq.a_default (archived_at);
INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
VALUES ('default', false, false)
ON CONFLICT DO NOTHING;
"""

# send_batch(queue, msgs) = send_batch(queue, msgs, NULL, clock_timestamp())
ENQUEUE = """
INSERT INTO pgmq.q_default (vt, message, headers)
SELECT clock_timestamp(), '{}'::jsonb, NULL FROM generate_series(1, %(count)s)
"""

# read(queue, vt => 30, qty => limit); the old vt (when the message became visible) is kept
# for the wait
CLAIM = """
WITH cte AS (
    SELECT msg_id, vt AS visible_at
    FROM pgmq.q_default
    WHERE vt <= clock_timestamp()
    ORDER BY msg_id ASC
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE pgmq.q_default m
SET vt = clock_timestamp() + make_interval(secs => 30), read_ct = read_ct + 1
FROM cte
WHERE m.msg_id = cte.msg_id
RETURNING m.msg_id,
          EXTRACT(EPOCH FROM (m.vt - make_interval(secs => 30) - cte.visible_at))::float8
"""

FINISH = "DELETE FROM pgmq.q_default WHERE msg_id = ANY(%(ids)s::bigint[])"


@dataclass(frozen=True)
class PgmqWorkload(SqlWorkload):
    def options(self, schema: str) -> dict[str, str]:
        return {}  # pgmq's schema is fixed: the adapter takes no schema option


WORKLOAD = PgmqWorkload("pgmq", DDL, ENQUEUE, CLAIM, FINISH)
