"""pgmq 1.x (the Postgres extension, or its SQL file installed without it).

Storage contract
- Schema ``pgmq`` (fixed by the extension). Registry ``pgmq.meta(queue_name, is_partitioned,
  is_unlogged, created_at)``; one table per queue, ``pgmq.q_<name>`` named as
  ``pgmq.format_table_name`` does (``lower('q_' || queue_name)``), with ``msg_id``, ``read_ct``,
  ``enqueued_at``, ``vt`` (visibility time) and ``message``. Deleted and archived messages leave it.
- Ready: ``vt <= now()``, which is what ``pgmq.read`` takes: new messages, delayed sends whose
  delay has passed, and read messages whose visibility timeout ran out (their consumer died or
  was too slow; pgmq has no retry limit, so they come back forever).
- Running ("in flight"): ``vt > now() AND read_ct > 0``, read and still invisible. Excluded:
  delayed sends not yet visible (``read_ct = 0``).
- Eligible time: ``vt`` (the send time, or when the delay or visibility timeout ended).
- Queues found: every row of ``pgmq.meta`` (no limit: each is one more part of the statement).

One round trip per tick: the statement names each queue table, so it is built from the queue list,
which the Reader keeps and re-reads from ``pgmq.meta`` at most every 60 seconds (and at once when a
table it names is gone). That refresh is a second round trip on those ticks only; a new queue is
seen within a minute.

Cost
Each queue table has the stock index ``(vt ASC)``: the bounded count is an index-only range scan of
at most ``cap`` entries, the oldest message its first entry. The in-flight count reads every
invisible message (in flight, and delayed sends, which only ``read_ct`` in the table tells apart),
so a queue holding many delayed sends is read whole. The statement has three small subqueries per
queue: about 15 ms per hundred (empty) queues on a 2-core test machine, mostly planning.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors, sql

from dynomatic_daemon.adapters.base import AdapterOptions, fetch, reading
from dynomatic_daemon.models import QueueReading, QueueSelector

SCHEMA = "pgmq"
QUEUE_LIST_TTL_SECONDS = 60.0

# Each queue's table as pgmq.format_table_name names it; NULL when it has none. Discovery is this
# registry, not base.skip_scan: every queue is a table of its own, with no queue column to walk.
QUEUES_SQL = """
SELECT m.queue_name::text, c.relname::text
FROM pgmq.meta m
LEFT JOIN pg_class c ON c.oid = to_regclass(format('pgmq.%I', lower('q_' || m.queue_name)))
ORDER BY m.queue_name
"""

# {queues}: one QUEUE_SQL per queue with a table, joined by UNION ALL.
READ_SQL = """
WITH clock AS (SELECT now() AS db_now)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
    {queues}
    SELECT name, 0 AS ready, NULL::timestamptz AS oldest, 0 AS running
    FROM unnest(%(no_table)s::text[]) AS name
) x ON true
ORDER BY x.name
"""
# vt <= now() and ORDER BY vt are what the (vt ASC) index serves.
QUEUE_SQL = """
    SELECT {name}::text AS name,
           (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE vt <= c.db_now
              LIMIT %(cap)s) s) AS ready,
           (SELECT vt FROM {table} WHERE vt <= c.db_now ORDER BY vt LIMIT 1) AS oldest,
           (SELECT count(*) FROM {table} WHERE vt > c.db_now AND read_ct > 0) AS running
    UNION ALL
"""

DETECT_SQL = """
SELECT (SELECT count(*) FROM information_schema.columns
        WHERE table_schema = 'pgmq' AND table_name = 'meta'
          AND column_name IN ('queue_name', 'is_partitioned', 'is_unlogged')) = 3,
       (SELECT extversion FROM pg_extension WHERE extname = 'pgmq')
"""


class Options(AdapterOptions):
    pass


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    row = conn.execute(DETECT_SQL).fetchone()
    if row is None or not row[0]:
        return None
    count = conn.execute("SELECT count(*) FROM pgmq.meta").fetchone()
    queues = int(count[0]) if count else 0
    installed = f"extension pgmq {row[1]}" if row[1] else "installed without the extension"
    return f"table pgmq.meta ({queues} queues; {installed})"


class Reader:
    name = "pgmq"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._tables: dict[str, str | None] = {}  # queue name -> its table, from pgmq.meta
        self._listed_at: float | None = None

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        now = time.monotonic()
        if self._listed_at is None or now - self._listed_at >= QUEUE_LIST_TTL_SECONDS:
            self._list_queues(conn, now)
        try:
            rows = self._execute(conn, selectors, cap)
        except errors.UndefinedTable:
            self._list_queues(conn, now)  # a queue was dropped since the list was read
            rows = self._execute(conn, selectors, cap)
        return reading(self.name, rows, cap)

    def _list_queues(self, conn: psycopg.Connection[Any], now: float) -> None:
        rows = conn.execute(QUEUES_SQL).fetchall()
        self._tables = {str(name): None if table is None else str(table) for name, table in rows}
        self._listed_at = now

    def _execute(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> list[tuple[Any, ...]]:
        wanted = {n for s in selectors for n in s.exact_names}
        if any(s.needs_discovery for s in selectors):
            wanted.update(self._tables)
        with_table = sorted(n for n in wanted if self._tables.get(n))
        params: dict[str, Any] = {
            "cap": cap,
            "no_table": sorted(wanted.difference(with_table)),
        }
        parts = []
        for i, queue in enumerate(with_table):
            params[f"q{i}"] = queue
            table = sql.Identifier(SCHEMA, str(self._tables[queue]))
            parts.append(sql.SQL(QUEUE_SQL).format(name=sql.Placeholder(f"q{i}"), table=table))
        query = sql.SQL(READ_SQL).format(queues=sql.SQL("").join(parts))
        return fetch(conn, query, params)
