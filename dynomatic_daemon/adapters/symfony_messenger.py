"""Symfony Messenger's Doctrine transport (symfony/doctrine-messenger), Symfony 5.4 to 7.x.

Storage contract
- Table ``messenger_messages`` (the transport's ``table_name``; name and schema configurable).
  Columns read: ``queue_name``, ``available_at``, ``delivered_at``: naive ``timestamp(0)``.
  Symfony 6.3+ writes them in UTC; 5.4-6.2 in PHP's default time zone (``date.timezone``,
  UTC on Heroku's PHP): the ``time_zone`` option names it. They are compared with the
  database clock in that zone, whatever the session TimeZone.
- Symfony receives with ``Connection::get()`` (Transport/Connection.php) through
  ``createAvailableMessagesQueryBuilder()``: ``queue_name = ?``, ``delivered_at IS NULL OR
  delivered_at < now - redeliver_timeout`` and ``available_at <= now``, oldest
  ``available_at`` first; receiving sets ``delivered_at = now``, ``ack()`` / ``reject()`` delete
  the row (on PostgreSQL), a retry is sent again as a new row with a delayed ``available_at``,
  and 7.2+'s ``keepalive()`` moves ``delivered_at`` on while a long handler runs.
- Ready: that predicate, ``redeliver_timeout`` from the ``redeliver_timeout_seconds`` option
  (Symfony's default 3600): never delivered, or delivered so long ago that its worker is
  presumed dead and Symfony hands it out again.
- Running: delivered within ``redeliver_timeout``.
- Excluded: delayed rows (``available_at`` in the future: a DelayStamp or a retry's backoff).
- Eligible time: ``available_at``; for a redeliverable row the later of that and
  ``delivered_at + redeliver_timeout``.
- Queues are ``queue_name`` (the transport's ``queue_name``, ``default`` unless set), found by
  the single pass, or by a skip scan of an index leading with it; no cap. The failure
  transport's queue (Symfony's recipe stores failed messages with ``queue_name=failed`` in the
  same table, and no worker consumes it) would read as ready forever, so the names in
  ``failure_queues`` are reported only when a process names them exactly.
- Eligible times before 1970 (``-infinity``, BC dates) are read as 1970-01-01, so that such a
  row cannot break the read.

Cost
Two index layouts exist. Up to 7.3.8 Symfony creates one-column indexes on ``queue_name``,
``available_at`` and ``delivered_at``: a per-queue probe of a queue with few ready messages
would walk all of its delayed ones, so the read is one pass over the table grouping every queue
(the cost of a naive ``GROUP BY``). From 7.3.9 one ``(queue_name, available_at, delivered_at,
id)`` index leads with the columns the probes need: the reader notices that (or the recommended
``(queue_name, available_at) WHERE delivered_at IS NULL``, for older layouts) in the same
statement (see ``index_check``) and probes per queue; never-delivered messages are then one
range that stops at the cap, and delivered ones (redeliverable or running, as few as the
workers) a range of the ``delivered_at`` index up to 7.3.8, or of the recommended ``(queue_name,
delivered_at) WHERE delivered_at IS NOT NULL`` from 7.3.9 (without it, a walk of the queue's due
messages). ``recommended_indexes`` gives both partial indexes; each holds only its own rows.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field, field_validator

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

# {t} is the table, {indexed} index_check's question for (queue_name, available_at). Two plans,
# of which a one-time filter runs one: with such an index (7.3.9+'s own, or the recommended
# one), per-queue probes, the two ready parts written apart rather than as Symfony's OR so that
# each is one index range; without it (5.4-7.3.8's one-column indexes), one pass over the table,
# since a probe of a queue with few ready messages walks all of its delayed ones. The probes
# spell the clock out ({now_local}, {expired}: now() is one value in a statement) rather than
# naming clock's columns, so that the planner sees how few rows "delivered before expired"
# selects and takes the delivered_at index, not a scan.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() AT TIME ZONE %(zone)s AS now_local,
                 (now() - make_interval(secs => %(timeout)s)) AT TIME ZONE %(zone)s AS expired),
indexed AS ({indexed}),
-- queue names by skip scan over the index leading with queue_name
"""
    + skip_scan("{t}", "queue_name", first="(SELECT yes FROM indexed)")
    + """,
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL AND q <> ALL(%(hidden)s::text[])
),
probed AS (
  SELECT n.name, r.ready, o.oldest, run.running
  FROM names n
  CROSS JOIN LATERAL (
    SELECT (SELECT count(*) FROM (SELECT 1 FROM {t} m
             WHERE m.queue_name = n.name AND m.delivered_at IS NULL
               AND m.available_at <= {now_local}
             LIMIT %(cap)s) s)
         + (SELECT count(*) FROM (SELECT 1 FROM {t} m
             WHERE m.queue_name = n.name AND m.delivered_at < {expired}
               AND m.available_at <= {now_local}
             LIMIT %(cap)s) s) AS ready
  ) r
  CROSS JOIN LATERAL (
    SELECT LEAST(
      (SELECT m.available_at FROM {t} m
        WHERE m.queue_name = n.name AND m.delivered_at IS NULL AND m.available_at <= {now_local}
        ORDER BY m.available_at LIMIT 1),
      -- delivered_at < expired, so adding the timeout stays below now: no overflow
      (SELECT min(GREATEST(m.available_at,
                           m.delivered_at + make_interval(secs => %(timeout)s))) FROM {t} m
        WHERE m.queue_name = n.name AND m.delivered_at < {expired}
          AND m.available_at <= {now_local})
    ) AS oldest
  ) o
  CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {t} m
    WHERE m.queue_name = n.name AND m.delivered_at >= {expired}
  ) run
  WHERE (SELECT yes FROM indexed)
),
scanned AS (
  SELECT m.queue_name AS name,
         count(*) FILTER (WHERE x.eligible IS NOT NULL) AS ready,
         min(x.eligible) AS oldest,
         count(*) FILTER (WHERE m.delivered_at >= c.expired) AS running
  FROM {t} m CROSS JOIN clock c
  CROSS JOIN LATERAL (
    SELECT CASE WHEN m.available_at > c.now_local THEN NULL
                WHEN m.delivered_at IS NULL THEN m.available_at
                WHEN m.delivered_at < c.expired
                THEN GREATEST(m.available_at, m.delivered_at + make_interval(secs => %(timeout)s))
           END AS eligible) x
  WHERE NOT (SELECT yes FROM indexed)
    AND ((%(discover)s AND m.queue_name <> ALL(%(hidden)s::text[]))
         OR m.queue_name = ANY(%(names)s::text[]))
  GROUP BY m.queue_name
),
found_rows AS (
  SELECT name, ready, oldest, running FROM probed
  UNION ALL
  SELECT name, ready, oldest, running FROM scanned
  UNION ALL  -- named queues the single pass found no row of
  SELECT n, 0, NULL, 0 FROM unnest(%(names)s::text[]) n
  WHERE NOT (SELECT yes FROM indexed) AND n NOT IN (SELECT name FROM scanned)
)
SELECT c.db_now, x.name, x.ready, o.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM o.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN found_rows x ON true
-- a -infinity or BC time cannot be loaded, and no real message has one: read it as 1970
LEFT JOIN LATERAL (
    SELECT GREATEST(x.oldest, timestamp '1970-01-01') AT TIME ZONE %(zone)s AS oldest
    WHERE x.oldest IS NOT NULL
) o ON true
ORDER BY x.name
"""
)

NOW_LOCAL = "(now() AT TIME ZONE %(zone)s)"
EXPIRED = "((now() - make_interval(secs => %(timeout)s)) AT TIME ZONE %(zone)s)"

DETECT_SQL = """
SELECT count(*) FILTER (WHERE column_name IN ('body', 'headers', 'queue_name', 'created_at',
                                             'available_at', 'delivered_at')),
       count(*) FILTER (WHERE column_name = 'delivered_at'
                          AND data_type = 'timestamp without time zone')
FROM information_schema.columns
WHERE table_name = %(table)s AND table_schema = COALESCE(%(schema)s, current_schema())
"""

# never-delivered rows (Symfony <= 7.3.8 has no index serving them); delivered rows (7.3.9+)
INDEX_SQL = {
    "ready": "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t} (queue_name, available_at)"
    " WHERE delivered_at IS NULL",
    "delivered": "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t}"
    " (queue_name, delivered_at) WHERE delivered_at IS NOT NULL",
}


class Options(AdapterOptions):
    table: IDENTIFIER = "messenger_messages"
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    redeliver_timeout_seconds: Annotated[int, Field(ge=1, le=30 * 86400)] = 3600
    # the zone Symfony wrote the times in: UTC from 6.3, PHP's date.timezone before
    time_zone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    # failure transports' queues: reported only when a process names them
    failure_queues: tuple[Annotated[str, Field(min_length=1)], ...] = ("failed",)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    params = {"table": options.table, "schema": options.schema_name}
    row = conn.execute(DETECT_SQL, params).fetchone()
    if row is None or (int(row[0]), int(row[1])) != (6, 1):
        return None
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} with queue_name, available_at, delivered_at"


def recommended_indexes(options: Options) -> tuple[str, ...]:
    """Partial indexes for the parts the library's own indexes leave to a walk."""
    return tuple(
        index_statement(template, options.schema_name, options.table, kind)
        for kind, template in INDEX_SQL.items()
    )


class Reader:
    name = "symfony_messenger"

    def __init__(self, options: Options) -> None:
        self.options = options
        table = qualified(options.schema_name, options.table)
        self._relation = relation_name(table)
        self._query = sql.SQL(READ_SQL).format(
            t=table,
            indexed=sql.SQL(LEADING_INDEX_SQL),
            now_local=sql.SQL(NOW_LOCAL),
            expired=sql.SQL(EXPIRED),
        )

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "hidden": list(self.options.failure_queues),
            "cap": cap,
            "timeout": self.options.redeliver_timeout_seconds,
            "zone": self.options.time_zone,
            "relation": self._relation,
            "lead0": "queue_name",
            "lead1": "available_at",
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
