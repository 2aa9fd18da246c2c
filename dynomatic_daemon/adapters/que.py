"""que (Ruby) 1.x and 2.x: DB schema versions 4-7, table ``public.que_jobs``.

Storage contract
- Table ``que_jobs`` in ``public`` (que hard-codes the schema; the option exists for copies).
  Columns read: ``id``, ``queue``, ``priority``, ``run_at``, ``finished_at``, ``expired_at`` and,
  from schema 5 on, ``job_schema_version``; all times are ``timestamptz``.
- Versions. que records its DB schema version as the table's comment (``'4'`` .. ``'7'``).
  Schema 4 (que 1.0-1.2) has no ``job_schema_version``; schema 5 (que 1.3/1.4) adds it with
  DEFAULT 1; schema 6-7 (que 2.x) make it NOT NULL without a default, and 2.x writes 2. Whether
  the column exists is looked up once, on the first read (one extra catalog query); restart the
  daemon after migrating a schema-4 database.
- ``job_schema_version`` option: which jobs the workers being scaled run. que 1.x workers poll
  only version-1 jobs and 2.x workers only version-2 jobs, and during a 1.x -> 2.x upgrade both
  kinds sit in one table (que's documented upgrade runs 1.x and 2.x workers side by side). None
  (the default) infers it on every read from the catalog: 2 once the column is NOT NULL without
  a default or the comment says schema >= 6, else 1 - so migrating to schema 6 while we run is
  followed without a restart. Set it to 1 for the process type that still runs que 1.x workers.
- Ready: ``finished_at IS NULL AND expired_at IS NULL AND run_at <= now()``, the right
  ``job_schema_version``, and the id not advisory-locked - que's own poll predicate. Jobs being
  retried (``error_count > 0``) are ready once their ``run_at`` is due; que runs them again.
- Running: job ids held as advisory locks (``pg_locks``: ``locktype = 'advisory'``,
  ``objsubid = 1`` (one bigint key), granted, this database), which are unfinished rows of
  the queue and version. que's locker takes ``pg_try_advisory_lock(id)`` for each job it
  claims, including those in its in-memory prefetch buffer, so "running" means claimed by a
  worker process and not necessarily executing. Any other advisory-lock user in the database
  whose key equals an unfinished job id would make that job look running.
- Excluded: finished rows (``finished_at``; by default que deletes finished jobs), expired rows
  (``expired_at``: retries exhausted), future rows (scheduled, or a retry in backoff).
- Eligible time is ``run_at``: the insert time by default, else the scheduled or retry time.
  que has no ``created_at``.

Cost
que's ``que_poll_idx`` - ``(job_schema_version, queue, priority, run_at, id)`` on schema 6+,
``(queue, priority, run_at, id)`` on schema 4 (schema 5 has both) - is partial on
``finished_at IS NULL AND expired_at IS NULL``; every predicate below spells that exactly.
Priority precedes ``run_at``, so each queue's distinct priorities are found by skip scan, and
per priority the ready count is an index-only range scan bounded by ``run_at <= now()`` (future
rows are never read) that stops at ``cap``, and the oldest ready job one ``ORDER BY run_at
LIMIT 1`` probe. Locked ids are a small hashed set read once from ``pg_locks`` (a locked row
costs one extra index entry); running jobs are those ids looked up by primary key. Queues are
discovered by a skip scan over the same index. Reading ``pg_locks`` briefly takes the
lock-manager locks; once every few seconds is fine.
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
    reading,
    selection,
    skip_scan,
)
from dynomatic_daemon.models import QueueReading, QueueSelector

# {t}: the table; {version}: "AND j.job_schema_version = (SELECT v FROM ver)" where the column
# exists, else nothing. "j.finished_at IS NULL AND j.expired_at IS NULL" everywhere is the
# partial predicate of que_poll_idx, which lets that index serve each subquery.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now),
-- the job_schema_version the workers poll; inferred from the catalog unless configured
ver AS (
    SELECT COALESCE(%(job_schema_version)s::int, (
        SELECT CASE WHEN d.description ~ '^[0-9]+$' AND d.description::int >= 6 THEN 2
                    WHEN a.attnotnull AND NOT a.atthasdef THEN 2
                    ELSE 1 END
        FROM pg_class c
        JOIN pg_namespace ns ON ns.oid = c.relnamespace
        LEFT JOIN pg_description d
               ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
        LEFT JOIN pg_attribute a
               ON a.attrelid = c.oid AND a.attname = 'job_schema_version' AND NOT a.attisdropped
        WHERE ns.nspname = %(schema)s AND c.relname = %(table)s
    ), 1) AS v
),
-- single-bigint advisory locks of this database: the ids que workers have claimed
locked(id) AS MATERIALIZED (
    SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
),
busy(queue, running) AS MATERIALIZED (
    SELECT j.queue, count(*) FROM locked k JOIN {t} j ON j.id = k.id
    WHERE j.finished_at IS NULL AND j.expired_at IS NULL {version}
    GROUP BY j.queue
),
-- queue names by skip scan over que_poll_idx, only when a selector needs discovery
"""
    + skip_scan("{t} j", "queue", "j.finished_at IS NULL AND j.expired_at IS NULL {version}")
    + """,
names(name) AS (
    SELECT unnest(%(names)s::text[])
    UNION SELECT q FROM found WHERE q IS NOT NULL
),
-- each queue's distinct priorities by skip scan (priority comes before run_at in the index)
prio(name, p) AS (
    SELECT n.name, (SELECT min(j.priority) FROM {t} j
                     WHERE j.queue = n.name {version}
                       AND j.finished_at IS NULL AND j.expired_at IS NULL)
    FROM names n
    UNION ALL
    SELECT prio.name, (SELECT min(j.priority) FROM {t} j
                        WHERE j.queue = prio.name {version} AND j.priority > prio.p
                          AND j.finished_at IS NULL AND j.expired_at IS NULL)
    FROM prio WHERE prio.p IS NOT NULL
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name,
    -- per priority, so that run_at bounds each index range instead of filtering future rows
    (SELECT count(*) FROM (SELECT 1 FROM prio CROSS JOIN LATERAL (
        SELECT 1 FROM {t} j
        WHERE j.queue = n.name {version} AND j.priority = prio.p AND j.run_at <= c.db_now
          AND j.finished_at IS NULL AND j.expired_at IS NULL
          AND j.id NOT IN (SELECT id FROM locked)
        LIMIT %(cap)s) due
      WHERE prio.name = n.name AND prio.p IS NOT NULL
      LIMIT %(cap)s) s) AS ready,
    (SELECT min(first.run_at) FROM prio CROSS JOIN LATERAL (
        SELECT j.run_at FROM {t} j
        WHERE j.queue = n.name {version} AND j.priority = prio.p AND j.run_at <= c.db_now
          AND j.finished_at IS NULL AND j.expired_at IS NULL
          AND j.id NOT IN (SELECT id FROM locked)
        ORDER BY j.run_at LIMIT 1) first
      WHERE prio.name = n.name AND prio.p IS NOT NULL) AS oldest,
    COALESCE((SELECT b.running FROM busy b WHERE b.queue = n.name), 0) AS running
  FROM names n
) x ON true
ORDER BY x.name
"""
)

VERSION_FILTER = "AND j.job_schema_version = (SELECT v FROM ver)"

REQUIRED_COLUMNS = (
    "id",
    "queue",
    "priority",
    "run_at",
    "job_class",
    "error_count",
    "finished_at",
    "expired_at",
)
DETECT_SQL = """
SELECT obj_description(c.oid, 'pg_class'),
       array_agg(a.attname::text),
       bool_or(a.attname = 'job_schema_version'),
       bool_or(a.attname = 'kwargs')
FROM pg_class c
JOIN pg_namespace ns ON ns.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE ns.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
GROUP BY c.oid
"""

TABLE = "que_jobs"


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER, Field(alias="schema")] = "public"
    job_schema_version: Annotated[int | None, Field(ge=1, le=2)] = None


def _table_facts(conn: psycopg.Connection[Any], options: Options) -> tuple[Any, ...] | None:
    params = {"schema": options.schema_name, "table": TABLE}
    return conn.execute(DETECT_SQL, params).fetchone()


def _has_version_column(conn: psycopg.Connection[Any], options: Options) -> bool | None:
    row = _table_facts(conn, options)
    return None if row is None else bool(row[2])


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    row = _table_facts(conn, options)
    if row is None or not set(REQUIRED_COLUMNS) <= set(row[1]):
        return None
    comment, _, has_version, has_kwargs = row
    if isinstance(comment, str) and comment.strip().isdigit():
        version = int(comment)
        seen = f"DB schema {version}"
    else:  # Rails < 7.0.3 schema dumps drop the comment; the columns still tell
        version = 6 if has_kwargs else 5 if has_version else 4
        seen = f"DB schema {'6+' if version == 6 else version} by its columns, no version comment"
    que = "que 2.x" if version >= 6 else "que 1.x"
    return f"table {options.schema_name}.{TABLE} ({seen}: {que})"


class Reader:
    name = "que"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._queries = {
            has: sql.SQL(READ_SQL).format(
                t=sql.Identifier(options.schema_name, TABLE),
                version=sql.SQL(VERSION_FILTER if has else ""),
            )
            for has in (False, True)
        }
        self._has_version_column: bool | None = None

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            "schema": self.options.schema_name,
            "table": TABLE,
            "job_schema_version": self.options.job_schema_version,
            **selection(selectors),
            "cap": cap,
        }
        if self._has_version_column is None:  # settled once the table is there
            self._has_version_column = _has_version_column(conn, self.options)
        rows = fetch(conn, self._queries[bool(self._has_version_column)], params)
        return reading(self.name, rows, cap)
