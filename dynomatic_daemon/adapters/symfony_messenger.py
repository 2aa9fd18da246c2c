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
  a skip scan over the index leading with it, no cap. The failure transport's queue (Symfony's
  recipe stores failed messages with ``queue_name=failed`` in the same table, and no worker
  consumes it) would read as ready forever, so the names in ``failure_queues`` are reported only
  when a process names them exactly.
- Eligible times before 1970 (``-infinity``, BC dates) are read as 1970-01-01, so that such a
  row cannot break the read.

Cost
Two index layouts exist. Up to 7.3.8 Symfony creates one-column indexes on ``queue_name``,
``available_at`` and ``delivered_at``: delivered rows are few, so the redeliverable and running
parts are ranges of the ``delivered_at`` index, but the never-delivered count walks the queue's
rows. From 7.3.9 one ``(queue_name, available_at, delivered_at, id)`` index serves the
never-delivered count and oldest, while the delivered parts walk the queue's due rows.
``recommended_indexes`` gives one partial index for each gap; each holds only its own rows.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field, field_validator

from dynomatic_daemon.adapters.base import IDENTIFIER, AdapterOptions, qualified, reading
from dynomatic_daemon.models import QueueReading, QueueSelector

# {t} is the table. The two ready parts are written apart rather than as Symfony's OR, so that
# each is one range of an index leading with queue_name (or of the delivered_at index).
READ_SQL = """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() AT TIME ZONE %(zone)s AS now_local,
                 (now() - make_interval(secs => %(timeout)s)) AT TIME ZONE %(zone)s AS expired),
-- queue names by skip scan over the index leading with queue_name
found(q) AS (
    (SELECT m.queue_name FROM {t} m WHERE %(discover)s ORDER BY m.queue_name LIMIT 1)
    UNION ALL
    SELECT (SELECT m.queue_name FROM {t} m WHERE m.queue_name > found.q
            ORDER BY m.queue_name LIMIT 1)
    FROM found WHERE found.q IS NOT NULL
),
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL AND q <> ALL(%(hidden)s::text[])
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       EXTRACT(EPOCH FROM (c.db_now - x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, r.ready,
         -- a -infinity or BC time cannot be loaded, and no real message has one
         CASE WHEN o.oldest IS NOT NULL
              THEN GREATEST(o.oldest, timestamp '1970-01-01') AT TIME ZONE %(zone)s
         END AS oldest,
         run.running
  FROM names n
  CROSS JOIN LATERAL (
    SELECT (SELECT count(*) FROM (SELECT 1 FROM {t} m
             WHERE m.queue_name = n.name AND m.delivered_at IS NULL
               AND m.available_at <= c.now_local
             LIMIT %(cap)s) s)
         + (SELECT count(*) FROM (SELECT 1 FROM {t} m
             WHERE m.queue_name = n.name AND m.delivered_at < c.expired
               AND m.available_at <= c.now_local
             LIMIT %(cap)s) s) AS ready
  ) r
  CROSS JOIN LATERAL (
    SELECT LEAST(
      (SELECT m.available_at FROM {t} m
        WHERE m.queue_name = n.name AND m.delivered_at IS NULL AND m.available_at <= c.now_local
        ORDER BY m.available_at LIMIT 1),
      -- delivered_at < expired, so adding the timeout stays below now: no overflow
      (SELECT min(GREATEST(m.available_at,
                           m.delivered_at + make_interval(secs => %(timeout)s))) FROM {t} m
        WHERE m.queue_name = n.name AND m.delivered_at < c.expired
          AND m.available_at <= c.now_local)
    ) AS oldest
  ) o
  CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {t} m
    WHERE m.queue_name = n.name AND m.delivered_at >= c.expired
  ) run
) x ON true
ORDER BY x.name
"""

DETECT_SQL = """
SELECT count(*) FILTER (WHERE column_name IN ('body', 'headers', 'queue_name', 'created_at',
                                             'available_at', 'delivered_at')),
       count(*) FILTER (WHERE column_name = 'delivered_at'
                          AND data_type = 'timestamp without time zone')
FROM information_schema.columns
WHERE table_name = %(table)s AND table_schema = COALESCE(%(schema)s, current_schema())
"""

# never-delivered rows (Symfony <= 7.3.8 has no index serving them); delivered rows (7.3.9+)
INDEX_SQL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {ready} ON {t} (queue_name, available_at)"
    " WHERE delivered_at IS NULL",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {delivered} ON {t} (queue_name, delivered_at)"
    " WHERE delivered_at IS NOT NULL",
)


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
    stem = options.table[:40]
    names = {
        "ready": sql.Identifier(f"{stem}_dynomatic_ready"),
        "delivered": sql.Identifier(f"{stem}_dynomatic_delivered"),
    }
    table = qualified(options.schema_name, options.table)
    return tuple(sql.SQL(s).format(t=table, **names).as_string(None) for s in INDEX_SQL)


class Reader:
    name = "symfony_messenger"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._query = sql.SQL(READ_SQL).format(t=qualified(options.schema_name, options.table))

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            "names": sorted({n for s in selectors for n in s.exact_names}),
            "discover": any(s.needs_discovery for s in selectors),
            "hidden": list(self.options.failure_queues),
            "cap": cap,
            "timeout": self.options.redeliver_timeout_seconds,
            "zone": self.options.time_zone,
        }
        with conn.cursor() as cur:
            cur.execute(self._query, params)
            rows = cur.fetchall()
        return reading(self.name, rows, cap)
