"""Symfony Messenger's Doctrine transport, Symfony 7.3.9+ layout.

Table: ``sandbox/schemas/symfony_messenger_7_4.sql`` (``messenger_messages`` with the
composite index). Enqueue: ``Connection::send`` on queue ``default``: ``created_at =
available_at = now`` in UTC, truncated to the second as Doctrine's ``Y-m-d H:i:s`` format does.
Claim: ``Connection::get``'s ``createAvailableMessagesQueryBuilder`` (never delivered, or
delivered more than ``redeliver_timeout``, 3600 s, ago; ``available_at <= now``) oldest
``available_at`` first with ``FOR UPDATE SKIP LOCKED``, then ``delivered_at = now``. Finish:
``ack`` deletes the row.
"""

from __future__ import annotations

from dynomatic_daemon.demo.workloads.base import SqlWorkload
from dynomatic_daemon.sandbox.schemas import schema_sql

DDL = schema_sql("symfony_messenger_7_4.sql")

ENQUEUE = """
INSERT INTO messenger_messages (body, headers, queue_name, created_at, available_at)
SELECT 'O:8:"DemoJob":0:{}', '{"type":"App\\\\Message\\\\DemoJob"}', 'default', t, t
FROM generate_series(1, %(count)s),
     date_trunc('second', now() AT TIME ZONE 'UTC') AS t
"""

CLAIM = """
WITH clock AS (SELECT date_trunc('second', now() AT TIME ZONE 'UTC') AS now_utc),
next_messages AS (
    SELECT m.id FROM messenger_messages m, clock c
    WHERE m.queue_name = 'default'
      AND (m.delivered_at IS NULL OR m.delivered_at < c.now_utc - interval '3600 seconds')
      AND m.available_at <= c.now_utc
    ORDER BY m.available_at
    LIMIT %(limit)s
    FOR UPDATE OF m SKIP LOCKED)
UPDATE messenger_messages SET delivered_at = (SELECT now_utc FROM clock)
FROM next_messages WHERE messenger_messages.id = next_messages.id
RETURNING messenger_messages.id,
          extract(epoch FROM (now() AT TIME ZONE 'UTC' - messenger_messages.available_at))::float8
"""

FINISH = "DELETE FROM messenger_messages WHERE id = ANY(%(ids)s)"

WORKLOAD = SqlWorkload("symfony_messenger", DDL, ENQUEUE, CLAIM, FINISH)
