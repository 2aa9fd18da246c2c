"""Laravel's ``database`` queue driver (illuminate/queue), Laravel 8 to 12.

Storage contract
- Table ``jobs`` (``queue.connections.database.table``; name and schema configurable, None
  follows the search_path as Laravel does). Columns read: ``queue``, ``reserved_at`` and
  ``available_at``: integer Unix seconds (``unsignedInteger``, a PostgreSQL ``integer``), the
  PHP clock's ``time()`` when written. We compare them with ``extract(epoch from now())``, the
  database clock, so the session TimeZone never matters.
- Laravel pops with ``DatabaseQueue::getNextAvailableJob()`` (illuminate/queue
  DatabaseQueue.php): ``queue = ?`` and either ``isAvailable()`` (``reserved_at IS NULL AND
  available_at <= now``) or ``isReservedButExpired()`` (``reserved_at <= now - retry_after``:
  the worker that reserved it died or overran, and another worker takes it again). Reserving
  sets ``reserved_at = now`` and bumps ``attempts``; a finished job is deleted; a released or
  retried job is deleted and inserted again with a new ``available_at``; a job that fails for
  good moves to ``failed_jobs``. So every row is pending, delayed or reserved.
- Ready: ``isAvailable()`` or ``isReservedButExpired()``, with ``retry_after`` from the
  ``retry_after_seconds`` option (Laravel's config default is 90).
- Running: reserved within ``retry_after`` (``reserved_at > now - retry_after``).
- Excluded: delayed rows (``available_at`` in the future: ``later()``, release with a delay).
- Eligible time: ``available_at``; for an expired reservation ``reserved_at + retry_after``,
  when it became takeable again (its first run is not waiting work).
- Queues are the ``queue`` column (``default`` unless dispatched ``onQueue``), found by the
  single pass, or with the recommended index by a skip scan, one probe per name; no cap.
- An absurd integer (``2147483647``) is only a far-future or far-past time: the arithmetic runs
  on ``bigint`` on the clock's side, so no row can overflow the read.

Cost
Laravel ships one index, on ``queue``: per-queue probes would each walk the queue's rows, so
with the stock indexes the read is one pass over the table that groups every queue (the cost of
a naive ``GROUP BY``). ``recommended_indexes`` gives ``(queue, reserved_at, available_at)``;
the reader notices any valid index leading with ``(queue, reserved_at)`` in the same statement
(see ``index_check``) and switches to per-queue probes in which the unreserved due rows, the
expired reservations and the live ones each lie in one index range, stopping at the cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field

from dynomatic_daemon.adapters.base import (
    IDENTIFIER,
    AdapterOptions,
    fetch,
    index_statement,
    qualified,
    reading,
    selection,
    skip_scan,
)
from dynomatic_daemon.adapters.index_check import LEADING_INDEX_SQL, relation_name
from dynomatic_daemon.models import QueueReading, QueueSelector

# {t} is the table, {indexed} index_check's question for (queue, reserved_at). Two plans, of
# which a one-time filter runs one: with that index, per-queue probes, each an index range that
# stops at the cap ("reserved_at IS NULL" and "reserved_at <= ..." are written apart, not as
# Laravel's OR, for that); without it, one pass over the table, since the stock queue index
# makes every probe a walk of the queue's rows and one pass beats one per queue.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, floor(extract(epoch FROM now()))::bigint AS now_s),
indexed AS ({indexed}),
-- queue names by skip scan over an index leading with queue
"""
    + skip_scan("{t}", "queue", first="(SELECT yes FROM indexed)")
    + """,
names(name) AS (SELECT unnest(%(names)s::text[]) UNION SELECT q FROM found WHERE q IS NOT NULL),
probed AS (
  SELECT n.name,
    (SELECT count(*) FROM (SELECT 1 FROM {t} j
      WHERE j.queue = n.name AND j.reserved_at IS NULL AND j.available_at <= c.now_s
      LIMIT %(cap)s) s)
    + (SELECT count(*) FROM (SELECT 1 FROM {t} j
      WHERE j.queue = n.name AND j.reserved_at <= c.now_s - %(retry_after)s
      LIMIT %(cap)s) s) AS ready,
    LEAST(
      -- reserved_at is NULL throughout, but naming it lets the index order serve the sort
      (SELECT to_timestamp(j.available_at) FROM {t} j
        WHERE j.queue = n.name AND j.reserved_at IS NULL AND j.available_at <= c.now_s
        ORDER BY j.reserved_at, j.available_at LIMIT 1),
      (SELECT to_timestamp(j.reserved_at::bigint + %(retry_after)s) FROM {t} j
        WHERE j.queue = n.name AND j.reserved_at <= c.now_s - %(retry_after)s
        ORDER BY j.reserved_at LIMIT 1)
    ) AS oldest,
    (SELECT count(*) FROM {t} j
      WHERE j.queue = n.name AND j.reserved_at > c.now_s - %(retry_after)s) AS running
  FROM names n CROSS JOIN clock c
  WHERE (SELECT yes FROM indexed)
),
scanned AS (
  SELECT j.queue AS name,
         count(*) FILTER (WHERE x.available OR x.expired) AS ready,
         min(CASE WHEN x.available THEN to_timestamp(j.available_at)
                  WHEN x.expired THEN to_timestamp(j.reserved_at::bigint + %(retry_after)s)
             END) AS oldest,
         count(*) FILTER (WHERE j.reserved_at > c.now_s - %(retry_after)s) AS running
  FROM {t} j CROSS JOIN clock c
  CROSS JOIN LATERAL (
    SELECT j.reserved_at IS NULL AND j.available_at <= c.now_s AS available,
           j.reserved_at <= c.now_s - %(retry_after)s AS expired) x
  WHERE NOT (SELECT yes FROM indexed)
    AND (%(discover)s OR j.queue = ANY(%(names)s::text[]))
  GROUP BY j.queue
),
found_rows AS (
  SELECT name, ready, oldest, running FROM probed
  UNION ALL
  SELECT name, ready, oldest, running FROM scanned
  UNION ALL  -- named queues the single pass found no row of
  SELECT n, 0, NULL, 0 FROM unnest(%(names)s::text[]) n
  WHERE NOT (SELECT yes FROM indexed) AND n NOT IN (SELECT name FROM scanned)
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN found_rows x ON true
ORDER BY x.name
"""
)

DETECT_SQL = """
SELECT count(*) FILTER (WHERE column_name IN ('queue', 'payload', 'attempts', 'created_at')),
       count(*) FILTER (WHERE column_name IN ('reserved_at', 'available_at')
                          AND data_type IN ('integer', 'bigint'))
FROM information_schema.columns
WHERE table_name = %(table)s AND table_schema = COALESCE(%(schema)s, current_schema())
"""

INDEX_SQL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t} (queue, reserved_at, available_at)"
)


class Options(AdapterOptions):
    table: IDENTIFIER = "jobs"
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    # the connection's retry_after in config/queue.php
    retry_after_seconds: Annotated[int, Field(ge=1, le=30 * 86400)] = 90


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    params = {"table": options.table, "schema": options.schema_name}
    row = conn.execute(DETECT_SQL, params).fetchone()
    if row is None or (int(row[0]), int(row[1])) != (4, 2):
        return None
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} with queue, reserved_at, available_at as Unix seconds"


def recommended_indexes(options: Options) -> tuple[str, ...]:
    """The index that makes every part of the read an index range (Laravel ships none)."""
    return (index_statement(INDEX_SQL, options.schema_name, options.table),)


class Reader:
    name = "laravel"

    def __init__(self, options: Options) -> None:
        self.options = options
        table = qualified(options.schema_name, options.table)
        self._relation = relation_name(table)
        self._query = sql.SQL(READ_SQL).format(t=table, indexed=sql.SQL(LEADING_INDEX_SQL))

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
            "retry_after": self.options.retry_after_seconds,
            "relation": self._relation,
            "lead0": "queue",
            "lead1": "reserved_at",
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
