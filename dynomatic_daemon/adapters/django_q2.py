"""django-q2's ORM broker (``Q_CLUSTER = {"orm": ...}``), django-q2 1.4 to 1.11, and django-q.

Storage contract
- Table ``django_q_ormq`` (model ``OrmQ``; name and schema configurable). Columns read: ``key``
  (the cluster's queue name: ``Q_CLUSTER["name"]``, or ``cluster_name``) and ``lock``
  (``timestamptz``), so ``now()`` compares right in any session TimeZone.
- django-q2 1.4.10+ (``lock_style = "until"``, django_q/brokers/orm.py ``ORM.enqueue`` /
  ``ORM.dequeue``): ``lock`` is the time until which no cluster may take the task. Enqueue
  writes ``lock = now``; dequeue takes ``lock < now`` and sets ``lock = now + retry``; a task
  whose cluster died becomes takeable again when that passes.
- django-q2 up to 1.4.9 and django-q 1.x (``lock_style = "since"``): ``lock`` is when the task
  was taken. Enqueue writes ``now - retry``; dequeue takes ``lock < now - retry`` and sets
  ``lock = now``. Both styles are one rule, ``lock < now - shift`` (shift 0, or ``retry``).
- Ready: ``lock < now - shift``, with ``retry`` from ``retry_seconds`` (``Q_CLUSTER["retry"]``,
  default 60; used by the "since" style only).
- Running: ``lock >= now - shift``: taken by a cluster whose claim has not expired.
- Excluded: rows with a NULL ``lock``, which no dequeue takes. Finished and failed tasks are
  deleted from this table (results live in ``django_q_task``).
- Eligible time: ``lock + shift``: the enqueue time, or when an expired claim freed the task.
- Queues are ``key``, found by the single pass, or with the recommended index by a skip scan,
  one probe per name; no cap.

Cost
django-q2 creates no index on this table besides the primary key, so without one the read is
one pass over the table that groups every queue (the cost of a naive ``GROUP BY``; the table
holds only queued and running tasks). ``recommended_indexes`` gives ``(key, lock)``; the reader
notices any valid index leading with those columns in the same statement (see ``index_check``)
and switches to per-queue probes: the ready count and oldest, the running count and the
discovery each become one index range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

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
    table_columns,
)
from dynomatic_daemon.adapters.index_check import LEADING_INDEX_SQL, relation_name
from dynomatic_daemon.models import QueueReading, QueueSelector

# {t} is the table, {indexed} index_check's question for (key, lock); free_before = now - shift:
# a lock older than that is free to take. Two plans, of which a one-time filter runs one: with
# that index, per-queue probes that are index ranges stopping at the cap; without it (django-q2
# creates none), one pass over the table, since every probe would be a scan of its own.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() - make_interval(secs => %(shift)s) AS free_before),
indexed AS ({indexed}),
-- queue names by skip scan over the index
"""
    + skip_scan("{t}", "key", first="(SELECT yes FROM indexed)")
    + """,
names(name) AS (SELECT unnest(%(names)s::text[]) UNION SELECT q FROM found WHERE q IS NOT NULL),
probed AS (
  SELECT n.name,
    (SELECT count(*) FROM (SELECT 1 FROM {t} j
      WHERE j.key = n.name AND j.lock < c.free_before LIMIT %(cap)s) s) AS ready,
    (SELECT j.lock FROM {t} j WHERE j.key = n.name AND j.lock < c.free_before
      ORDER BY j.lock LIMIT 1) AS first_lock,
    (SELECT count(*) FROM {t} j WHERE j.key = n.name AND j.lock >= c.free_before) AS running
  FROM names n CROSS JOIN clock c
  WHERE (SELECT yes FROM indexed)
),
scanned AS (
  SELECT j.key AS name,
         count(*) FILTER (WHERE j.lock < c.free_before) AS ready,
         min(j.lock) FILTER (WHERE j.lock < c.free_before) AS first_lock,
         count(*) FILTER (WHERE j.lock >= c.free_before) AS running
  FROM {t} j CROSS JOIN clock c
  WHERE NOT (SELECT yes FROM indexed) AND (%(discover)s OR j.key = ANY(%(names)s::text[]))
  GROUP BY j.key
),
found_rows AS (
  SELECT name, ready, first_lock, running FROM probed
  UNION ALL
  SELECT name, ready, first_lock, running FROM scanned
  UNION ALL  -- named queues the single pass found no row of
  SELECT n, 0, NULL, 0 FROM unnest(%(names)s::text[]) n
  WHERE NOT (SELECT yes FROM indexed) AND n NOT IN (SELECT name FROM scanned)
)
SELECT c.db_now, x.name, x.ready, o.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM o.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN found_rows x ON true
-- the lock is below free_before, so adding the shift stays below now; -infinity reads as 1970
LEFT JOIN LATERAL (
    SELECT GREATEST(x.first_lock + make_interval(secs => %(shift)s),
                    timestamptz '1970-01-01 00:00:00+00') AS oldest
    WHERE x.first_lock IS NOT NULL
) o ON true
ORDER BY x.name
"""
)

REQUIRED_COLUMNS = ("key", "payload", "lock")

INDEX_SQL = 'CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t} ("key", "lock")'


class Options(AdapterOptions):
    table: IDENTIFIER = "django_q_ormq"
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    # "until": django-q2 1.4.10+; "since": django-q2 <= 1.4.9 and django-q 1.x
    lock_style: Literal["until", "since"] = "until"
    # Q_CLUSTER["retry"]; only the "since" style needs it
    retry_seconds: Annotated[int, Field(ge=1, le=30 * 86400)] = 60


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    if not table_columns(conn, options.schema_name, options.table, REQUIRED_COLUMNS):
        return None
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} (django-q ORM broker: key, payload, lock)"


def recommended_indexes(options: Options) -> tuple[str, ...]:
    """The index every part of the read needs: django-q2 creates none on this table."""
    return (index_statement(INDEX_SQL, options.schema_name, options.table),)


class Reader:
    name = "django_q2"

    def __init__(self, options: Options) -> None:
        self.options = options
        table = qualified(options.schema_name, options.table)
        self._relation = relation_name(table)
        self._query = sql.SQL(READ_SQL).format(t=table, indexed=sql.SQL(LEADING_INDEX_SQL))
        self._shift = options.retry_seconds if options.lock_style == "since" else 0

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
            "shift": self._shift,
            "relation": self._relation,
            "lead0": "key",
            "lead1": "lock",
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
