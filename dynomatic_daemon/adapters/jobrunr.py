"""JobRunr (Java) with its SQL storage on PostgreSQL, JobRunr 6.x to 8.x (table migrations
v000-v016; JobRunr cannot run here, so the tests build its tables from those migrations).

Storage contract
- Table ``jobrunr_jobs``, prefixed by JobRunr's ``tablePrefix``: ``"pre_"`` is
  ``table_prefix = "pre_"``, ``"myschema."`` is ``schema = "myschema"`` (both may be set).
  Columns read: ``state``, ``updatedAt``, ``scheduledAt`` (unquoted camelCase, so lower case in
  PostgreSQL): naive ``TIMESTAMP`` written in UTC since JobRunr 6.0 (Dialect.setTimestamp with
  a UTC calendar), compared with ``now() AT TIME ZONE 'UTC'``.
- Workers take ``ENQUEUED`` jobs, oldest ``updatedAt`` first (JobTable.selectJobsToProcess,
  BasicWorkDistributionStrategy), and make them ``PROCESSING``; while a server processes a job
  it touches ``updatedAt`` every poll interval (UpdateJobsInProgressTask). The master server
  enqueues ``SCHEDULED`` jobs whose ``scheduledAt`` comes within a poll interval
  (ProcessScheduledJobsTask, every 15 s by default) and fails ``PROCESSING`` jobs not updated
  for the server timeout, ``pollInterval x 4`` = 60 s (ProcessOrphanedJobsTask); a failed job is
  retried as ``SCHEDULED`` with a backoff.
- Ready: ``ENQUEUED``; ``SCHEDULED`` with ``scheduledAt <= now`` (due, waiting for the master,
  which may be down when nothing runs); and ``PROCESSING`` jobs whose ``updatedAt`` is older
  than ``server_timeout_seconds`` (their server died: they will run again once a master sees
  them, and leaving them out would read a crashed app as idle).
- Running: ``PROCESSING`` updated within the server timeout.
- Excluded: ``SCHEDULED`` not yet due, ``AWAITING`` (JobRunr 8's carbon-aware jobs, waiting for
  the master to pick their time), ``SUCCEEDED``, ``FAILED``, ``DELETED``.
- Eligible time: ``updatedAt`` (when it was enqueued) for ``ENQUEUED``; ``scheduledAt`` for due
  ``SCHEDULED``; ``updatedAt`` + the timeout for an orphan.
- JobRunr (open source) has no queues: everything is reported as the queue ``default``; any
  other queue name reads as empty.

Cost
JobRunr's ``(state, updatedAt)`` index makes the enqueued and processing parts index ranges.
Due scheduled jobs have only the ``scheduledAt`` index, which since JobRunr 8 also holds every
finished job that was once scheduled (the column is kept), so with the stock indexes they are
found by walking the ``SCHEDULED`` rows (every future job) instead. ``recommended_indexes``
gives ``(state, scheduledAt)``; the reader notices any valid index leading with those columns
in the same statement (see ``index_check``) and reads the due ones as one range.
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
    table_columns,
)
from dynomatic_daemon.adapters.index_check import LEADING_INDEX_SQL, relation_name
from dynomatic_daemon.models import QueueReading, QueueSelector

QUEUE = "default"

# {t} is the jobs table. Each part is one range of (state, updatedat), or of scheduledat.
READ_SQL = """
WITH
clock AS (SELECT now() AS db_now, now() AT TIME ZONE 'UTC' AS now_utc,
                 (now() - make_interval(secs => %(timeout)s)) AT TIME ZONE 'UTC' AS dead_before),
indexed AS ({indexed}),
-- due scheduled jobs, by an index leading (state, scheduledat) when there is one; else a walk of
-- the SCHEDULED rows through (state, updatedat) ("+ 0" keeps the planner off the scheduledat
-- index, whose range also holds every finished job that was once scheduled)
parts AS MATERIALIZED (
  SELECT
    (SELECT count(*) FROM (SELECT 1 FROM {t} j WHERE j.state = 'ENQUEUED' LIMIT %(cap)s) s)
    + CASE WHEN (SELECT yes FROM indexed)
        THEN (SELECT count(*) FROM (SELECT 1 FROM {t} j
               WHERE j.state = 'SCHEDULED' AND j.scheduledat <= c.now_utc LIMIT %(cap)s) s)
        ELSE (SELECT count(*) FROM (SELECT 1 FROM {t} j
               WHERE j.state = 'SCHEDULED' AND j.scheduledat + interval '0' <= c.now_utc
               LIMIT %(cap)s) s)
      END
    + (SELECT count(*) FROM (SELECT 1 FROM {t} j
        WHERE j.state = 'PROCESSING' AND j.updatedat < c.dead_before LIMIT %(cap)s) s) AS ready,
    LEAST(
      (SELECT j.updatedat FROM {t} j WHERE j.state = 'ENQUEUED' ORDER BY j.updatedat LIMIT 1),
      CASE WHEN (SELECT yes FROM indexed)
        THEN (SELECT j.scheduledat FROM {t} j
               WHERE j.state = 'SCHEDULED' AND j.scheduledat <= c.now_utc
               ORDER BY j.scheduledat LIMIT 1)
        ELSE (SELECT min(j.scheduledat + interval '0') FROM {t} j
               WHERE j.state = 'SCHEDULED' AND j.scheduledat + interval '0' <= c.now_utc)
      END,
      -- updatedat < dead_before, so adding the timeout stays below now: no overflow
      (SELECT j.updatedat + make_interval(secs => %(timeout)s) FROM {t} j
        WHERE j.state = 'PROCESSING' AND j.updatedat < c.dead_before
        ORDER BY j.updatedat LIMIT 1)
    ) AS oldest,
    (SELECT count(*) FROM {t} j
      WHERE j.state = 'PROCESSING' AND j.updatedat >= c.dead_before) AS running
  FROM clock c
),
names(name) AS (
    SELECT unnest(%(names)s::text[]) UNION SELECT %(queue)s::text WHERE %(discover)s
)
SELECT c.db_now, n.name,
       CASE WHEN n.name = %(queue)s THEN p.ready ELSE 0 END,
       o.oldest, (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM o.oldest))::float8 AS age,
       CASE WHEN n.name = %(queue)s THEN p.running ELSE 0 END
FROM clock c CROSS JOIN parts p
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN names n ON true
-- a -infinity or BC time cannot be loaded, and no real job has one: read it as 1970
LEFT JOIN LATERAL (
    SELECT GREATEST(p.oldest, timestamp '1970-01-01') AT TIME ZONE 'UTC' AS oldest
    WHERE n.name = %(queue)s AND p.oldest IS NOT NULL
) o ON true
ORDER BY n.name
"""

REQUIRED_COLUMNS = ("state", "updatedat", "scheduledat", "jobasjson", "jobsignature")

INDEX_SQL = "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t} (state, scheduledat)"


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    # JobRunr's tablePrefix without the schema part: the table is <prefix>jobrunr_jobs
    table_prefix: Annotated[str, Field(max_length=50, pattern=r"^[^.]*$")] = ""
    # pollIntervalInSeconds x serverTimeoutPollIntervalMultiplicand (15 s x 4)
    server_timeout_seconds: Annotated[int, Field(ge=1, le=86400)] = 60

    @property
    def table(self) -> str:
        return f"{self.table_prefix}jobrunr_jobs"


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    if not table_columns(conn, options.schema_name, options.table, REQUIRED_COLUMNS):
        return None
    where = f"{options.schema_name or 'current schema'}.{options.table}"
    return f"table {where} with state, updatedAt, scheduledAt"


def recommended_indexes(options: Options) -> tuple[str, ...]:
    """The index that makes due scheduled jobs one range (the stock ones walk other rows)."""
    return (index_statement(INDEX_SQL, options.schema_name, options.table),)


class Reader:
    name = "jobrunr"

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
            "queue": QUEUE,
            "cap": cap,
            "timeout": self.options.server_timeout_seconds,
            "relation": self._relation,
            "lead0": "state",
            "lead1": "scheduledat",
        }
        rows = fetch(conn, self._query, params)
        return reading(self.name, rows, cap)
