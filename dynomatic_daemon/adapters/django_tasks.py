"""Django's Tasks framework with the database backend: django-tasks-db 0.12+, and the backend
django-tasks 0.8.0-0.11 shipped itself (the same app label and table; layouts in
``sandbox/schemas/django_tasks_*.sql``).

Storage contract
- Table ``django_tasks_database_dbtaskresult`` (name and schema configurable). Columns read:
  ``status``, ``queue_name``, ``backend_name``, ``run_after`` and ``enqueued_at``:
  ``timestamptz``, so ``now()`` compares right in any session TimeZone.
- A worker (``manage.py db_worker``, django_tasks_db/management/commands/db_worker.py) takes
  ``DBTaskResult.objects.ready()`` (django_tasks_db/models.py ``DBTaskResultQuerySet.ready``):
  ``status = 'READY'`` and ``run_after`` either equal to ``get_date_max()`` - the far-future
  sentinel 9999-01-01 00:00 that a task enqueued without ``run_after`` is stored with - or
  ``<= now``, filtered to its ``--backend`` and ``--queue-name``s; claiming sets ``RUNNING``.
  Results end ``SUCCESSFUL`` (0.8-0.11: ``SUCCEEDED``) or ``FAILED`` and stay until pruned.
- Ready: that rule. The sentinel is matched as any ``run_after`` on 9998-12-31 or 9999-01-01
  UTC (a ``USE_TZ = False`` app stores it in its ``TIME_ZONE``); only the ``backend`` option's
  tasks when it is set (None: every backend in the table).
- Running: ``status = 'RUNNING'``. django-tasks does not reclaim the task of a worker that died,
  so such a row reads as running until someone changes it.
- Excluded: ``run_after`` in the future, finished (``SUCCESSFUL``/``SUCCEEDED``/``FAILED``) rows.
- Eligible time: ``enqueued_at`` for a sentinel task, else the later of ``enqueued_at`` and
  ``run_after``. Priority orders the queue but does not change what can run. (Should one queue
  hold sentinels written in two time zones, its oldest is taken among those of the earlier.)
- Queues are ``queue_name`` (``default`` unless a task sets one), found by the single pass
  (queues with ready or running tasks), or with the recommended index by a skip scan (a queue
  whose rows are all finished then reads as empty); no cap.
- The layout before django-tasks 0.8 (status ``NEW``, nullable ``run_after``) is not read and
  not detected.

Cost
The stock indexes are ``queue_name``, ``backend_name`` and the fetch order ``(status, priority
DESC, run_after[, enqueued_at]) WHERE status = 'READY'``; none leads with the queue and the
status together, and finished results stay in the table, so with them the read is one pass
over the table grouping every queue (the cost of a naive ``GROUP BY``). ``recommended_indexes``
gives ``(queue_name, status, run_after, enqueued_at) WHERE status IN ('READY', 'RUNNING')``;
the reader notices any valid index leading with ``(queue_name, status)`` in the same statement
(see ``index_check``) and switches to per-queue probes, each one range of it that stops at the
cap. Finished rows are not in it.
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

# {t} is the table, {backend} empty or the backend filter, {indexed} index_check's question for
# (queue_name, status). Two plans, of which a one-time filter runs one: with that index,
# per-queue probes in which due and sentinel rows are two ranges (written apart, not as the
# library's OR); without it, one pass over the table, since no stock index leads with the queue
# and the status together and every probe would walk the queue's finished results too.
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now),
indexed AS ({indexed}),
-- queue names by skip scan over an index leading with queue_name
"""
    + skip_scan("{t}", "queue_name", first="(SELECT yes FROM indexed)")
    + """,
names(name) AS (SELECT unnest(%(names)s::text[]) UNION SELECT q FROM found WHERE q IS NOT NULL),
probed AS (
  SELECT n.name, r.ready, LEAST(o.due, o.sentinel) AS oldest, run.running
  FROM names n CROSS JOIN clock c
  CROSS JOIN LATERAL (
    SELECT (SELECT count(*) FROM (SELECT 1 FROM {t} j
             WHERE j.queue_name = n.name AND j.status = 'READY' AND j.run_after <= c.db_now
               {backend}
             LIMIT %(cap)s) s)
         + (SELECT count(*) FROM (SELECT 1 FROM {t} j
             WHERE j.queue_name = n.name AND j.status = 'READY'
               AND j.run_after >= {sentinel_from} AND j.run_after < {sentinel_to} {backend}
             LIMIT %(cap)s) s) AS ready
  ) r
  CROSS JOIN LATERAL (
    SELECT
      -- the first due task by run_after bounds the answer; only earlier ones can beat it
      (SELECT LEAST(f.eligible, (
          SELECT min(GREATEST(j.enqueued_at, j.run_after)) FROM {t} j
          WHERE j.queue_name = n.name AND j.status = 'READY' AND j.run_after < f.eligible
            {backend}))
       FROM (SELECT GREATEST(j.enqueued_at, j.run_after) AS eligible FROM {t} j
             WHERE j.queue_name = n.name AND j.status = 'READY' AND j.run_after <= c.db_now
               {backend}
             ORDER BY j.run_after LIMIT 1) f) AS due,
      (SELECT j.enqueued_at FROM {t} j
        WHERE j.queue_name = n.name AND j.status = 'READY'
          AND j.run_after >= {sentinel_from} AND j.run_after < {sentinel_to} {backend}
        ORDER BY j.run_after, j.enqueued_at LIMIT 1) AS sentinel
  ) o
  CROSS JOIN LATERAL (
    SELECT count(*) AS running FROM {t} j
    WHERE j.queue_name = n.name AND j.status = 'RUNNING' {backend}
  ) run
  WHERE (SELECT yes FROM indexed)
),
scanned AS (
  SELECT j.queue_name AS name,
         count(*) FILTER (WHERE x.eligible IS NOT NULL) AS ready,
         min(x.eligible) AS oldest,
         count(*) FILTER (WHERE j.status = 'RUNNING') AS running
  FROM {t} j CROSS JOIN clock c
  CROSS JOIN LATERAL (
    SELECT CASE WHEN j.status <> 'READY' THEN NULL
                WHEN j.run_after >= {sentinel_from} AND j.run_after < {sentinel_to}
                THEN j.enqueued_at
                WHEN j.run_after <= c.db_now THEN GREATEST(j.enqueued_at, j.run_after)
           END AS eligible) x
  WHERE NOT (SELECT yes FROM indexed) AND j.status IN ('READY', 'RUNNING') {backend}
    AND (%(discover)s OR j.queue_name = ANY(%(names)s::text[]))
  GROUP BY j.queue_name
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
-- a -infinity run_after would be run, but cannot be loaded: read it as 1970
LEFT JOIN LATERAL (
    SELECT GREATEST(x.oldest, timestamptz '1970-01-01 00:00:00+00') AS oldest
    WHERE x.oldest IS NOT NULL
) o ON true
ORDER BY x.name
"""
)
BACKEND_FILTER = "AND j.backend_name = %(backend)s"
# get_date_max() is 9999-01-01 00:00 in the app's zone: UTC, or TIME_ZONE without USE_TZ
SENTINEL_FROM = "timestamptz '9998-12-31 00:00:00+00'"
SENTINEL_TO = "timestamptz '9999-01-02 00:00:00+00'"

REQUIRED_COLUMNS = ("status", "queue_name", "backend_name", "enqueued_at", "task_path", "priority")
DETECT_SQL = """
SELECT array_agg(column_name::text),
       bool_or(column_name = 'run_after' AND is_nullable = 'NO'),
       bool_or(column_name = 'status' AND character_maximum_length = 10)
FROM information_schema.columns
WHERE table_name = %(table)s AND table_schema = COALESCE(%(schema)s, current_schema())
"""

INDEX_SQL = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t}"
    " (queue_name, status, run_after, enqueued_at) WHERE status IN ('READY', 'RUNNING')"
)


class Options(AdapterOptions):
    table: IDENTIFIER = "django_tasks_database_dbtaskresult"
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    # the TASKS alias your workers run (db_worker --backend); None: every backend's tasks
    backend: Annotated[str | None, Field(min_length=1, max_length=32)] = None


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    params = {"table": options.table, "schema": options.schema_name}
    row = conn.execute(DETECT_SQL, params).fetchone()
    if row is None or row[0] is None or not set(REQUIRED_COLUMNS) <= set(row[0]) or not row[1]:
        return None  # absent, or the pre-0.8 layout (nullable run_after) this does not read
    layout = "django-tasks-db layout" if row[2] else "django-tasks 0.8-0.11 layout"
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} ({layout}: status, queue_name, run_after)"


def recommended_indexes(options: Options) -> tuple[str, ...]:
    """The index that makes every part of the read one range (no stock index leads with the
    queue and the status together)."""
    return (index_statement(INDEX_SQL, options.schema_name, options.table),)


class Reader:
    name = "django_tasks"

    def __init__(self, options: Options) -> None:
        self.options = options
        backend = sql.SQL(BACKEND_FILTER if options.backend else "")
        table = qualified(options.schema_name, options.table)
        self._relation = relation_name(table)
        self._query = sql.SQL(READ_SQL).format(
            t=table,
            indexed=sql.SQL(LEADING_INDEX_SQL),
            backend=backend,
            sentinel_from=sql.SQL(SENTINEL_FROM),
            sentinel_to=sql.SQL(SENTINEL_TO),
        )

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
            "backend": self.options.backend,
            "relation": self._relation,
            "lead0": "queue_name",
            "lead1": "status",
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
