"""good_job (Ruby, Rails): v3.x and v4.x, read from ``good_jobs`` (and ``good_job_settings``).

Storage contract
- Table ``good_jobs`` in the configured schema (default: the search path), one row per Active
  Job job; unfinished rows have ``finished_at IS NULL``. Rails stores times as naive UTC
  ``timestamp``: we compare with ``now() AT TIME ZONE 'UTC'``, or ``now()`` when the app uses
  ``timestamptz`` columns (the column type is read), so the session TimeZone does not matter.
- Layout, told apart by columns on the first read (cached; looked up again after an
  undefined-table/column error): ``locked_by_id`` exists since v3.29 and ``lock_type`` since v4.15.
  The v4.0-v4.1 tables cannot be told from v4.2's, and need not be: every release since v3.29
  stamps ``locked_by_id`` (with ``performed_at``) when a job is claimed or starts and clears it
  when it ends, whatever the lock strategy.
- v3.29+ ("claims"): ready = unfinished, ``scheduled_at <= now``, ``locked_by_id IS NULL``,
  and not paused (below). Running = unfinished with ``locked_by_id`` set. Unlike good_job's own
  ``queued`` scope we do not require ``performed_at IS NULL``: a row keeps ``performed_at`` when
  its worker died, every dequeue strategy picks it again once its claim is released, so it is
  work waiting for a worker. A claim left by a killed process counts as running until good_job
  releases it (a live good_job process deletes dead process records after 5 minutes).
- Pauses (v4.8+, honoured when ``enable_pauses`` is on, as in the app's good_job config): the
  ``good_job_settings`` row ``'pauses'`` lists ``queues``, ``job_classes`` and ``labels``; their
  jobs are not ready. Absent table or row = nothing paused.
- Before v3.29 ("advisory"): which job runs is known only from session advisory locks on
  ``('x' || substr(md5('good_jobs-' || active_job_id), 1, 16))::bit(64)::bigint``, as good_job
  v3 defines its ``queued`` and ``running`` scopes. Ready = unfinished,
  ``COALESCE(scheduled_at, created_at) <= now`` (v3 left ``scheduled_at`` NULL for immediate
  jobs), key not held. Running = unfinished, ``performed_at`` set, key held. Only locks granted in
  this database with ``objsubid = 1`` (a single-bigint key) count.
- Excluded everywhere: finished rows (succeeded or discarded) and future rows (scheduled jobs,
  retries in backoff).
- Eligible time: ``GREATEST(created_at, COALESCE(scheduled_at, created_at))``; good_job moves
  ``scheduled_at`` on retry and keeps ``created_at``.

Cost
Per queue, the bounded count and the first-ready probe walk the library's partial index
``(queue_name, scheduled_at) WHERE finished_at IS NULL`` (shipped since v1; or v4.15's twin with
``id``) in order and stop after ``cap`` rows; heap visits check the claim and pause columns, and
claimed rows in the due range are skipped (as many as are running). The eligible-time check
reads the range ``[first.scheduled_at, first eligible)``, empty unless that job was enqueued
with a past ``scheduled_at``. Queue discovery is a skip scan over the same index. Running uses
``index_good_jobs_on_locked_by_id`` (partial: claimed rows only), so O(running). At 100k rows,
five queues: 1-3 ms in the backlog, sparse and below-cap mixes. PostgreSQL's JIT (on by default)
compiles this statement on big tables because the per-queue estimates add up; at 100k rows that
added ~35 ms to a 2 ms query, so the daemon's sessions are best run with ``jit = off``.
On the advisory layout the md5 key is computed only for rows those walks visit, against the
lock keys read once from ``pg_locks``. Two parts grow with a queue's backlog there (not with
finished history): running (every unfinished row of the queue is visited) and the oldest
NULL-``scheduled_at`` job (no index orders them by ``created_at`` within a queue); each took
~9 ms per queue of 19k unfinished rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from psycopg import errors, sql
from pydantic import Field

from dynomatic_daemon.adapters.base import (
    IDENTIFIER,
    AdapterOptions,
    fetch,
    qualified,
    reading,
    selection,
    skip_scan,
)
from dynomatic_daemon.errors import QueueReadError
from dynomatic_daemon.models import QueueReading, QueueSelector

# {jobs} is the good_jobs table, {now} the clock in the columns' own type; {per_queue} the
# layout's CTEs and lateral join, which see n (the queue name) and c (the clock).
READ_SQL = (
    """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, {now} AS now_ts),
-- queue names by skip scan over (queue_name, scheduled_at) WHERE finished_at IS NULL
"""
    + skip_scan("{jobs}", "queue_name", "finished_at IS NULL")
    + """,
names(name) AS (
    SELECT unnest(%(names)s::text[]) UNION SELECT q FROM found WHERE q IS NOT NULL
),
{per_queue}
ORDER BY x.name
"""
)

# Rows of queue n.name due by scheduled_at, walked in the order of the library's partial index
# (queue_name, scheduled_at) WHERE finished_at IS NULL so that the walk stops after cap rows.
# "= ANY(ARRAY[..])" rather than "=" on purpose: it bounds the index scan and is estimated like
# an equality, but unlike "=" it does not make queue_name a constant for ordering. With "=" the
# planner may take ORDER BY from index_good_jobs_on_scheduled_at or v4.18's (scheduled_at,
# queue_name), which also holds finished rows, and walk all queues' rows filtering by queue.
DUE_IN_QUEUE = """d.queue_name = ANY(ARRAY[n.name]) AND d.scheduled_at <= c.now_ts
  AND d.finished_at IS NULL"""
IN_INDEX_ORDER = "ORDER BY d.queue_name, d.scheduled_at"


def _due_probes(ready: str) -> tuple[str, str, str]:
    """For the rows matching ``ready``: the bounded count, the first row by scheduled_at (a
    lateral join ``f``) and, given ``f``, the oldest eligible time."""
    count = f"""(SELECT count(*) FROM (
      SELECT 1 FROM {{jobs}} d WHERE {ready} {IN_INDEX_ORDER} LIMIT %(cap)s) s)"""
    first = f"""LEFT JOIN LATERAL (
    SELECT d.scheduled_at AS s, GREATEST(d.created_at, d.scheduled_at) AS eligible
    FROM {{jobs}} d WHERE {ready} {IN_INDEX_ORDER} LIMIT 1) f ON true"""
    # Eligible time is never below scheduled_at, so only rows scheduled in [f.s, f.eligible)
    # can be older than f; that range is empty unless f was enqueued with a past scheduled_at.
    oldest = f"""LEAST(f.eligible, (SELECT min(GREATEST(d.created_at, d.scheduled_at))
      FROM {{jobs}} d WHERE {ready} AND d.scheduled_at >= f.s AND d.scheduled_at < f.eligible))"""
    return count, first, oldest


CLAIMS_READY = f"""{DUE_IN_QUEUE} AND d.locked_by_id IS NULL AND NOT n.name = ANY(p.queues)
  AND NOT COALESCE(d.job_class = ANY(p.job_classes), false)
  AND NOT COALESCE(d.labels && p.labels, false)"""
CLAIMS_COUNT, CLAIMS_FIRST, CLAIMS_OLDEST = _due_probes(CLAIMS_READY)

CLAIMS_SQL = f"""pauses AS MATERIALIZED ({{pauses}}),
-- claimed rows by index_good_jobs_on_locked_by_id; finished_at is tested in the FILTER, as a
-- WHERE would let the planner AND in a partial index that lists every unfinished row
running AS (
    SELECT queue_name, count(*) FILTER (WHERE finished_at IS NULL) AS n FROM {{jobs}}
    WHERE locked_by_id IS NOT NULL GROUP BY queue_name
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.now_ts) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, {CLAIMS_COUNT} AS ready, {CLAIMS_OLDEST} AS oldest,
         COALESCE(run.n, 0) AS running
  FROM names n CROSS JOIN pauses p
  {CLAIMS_FIRST}
  LEFT JOIN running run ON run.queue_name = n.name
) x ON true"""

PAUSES_SQL = """SELECT
    ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(v -> 'queues') = 'array'
          THEN v -> 'queues' END)) AS queues,
    ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(v -> 'job_classes') = 'array'
          THEN v -> 'job_classes' END)) AS job_classes,
    ARRAY(SELECT jsonb_array_elements_text(CASE WHEN jsonb_typeof(v -> 'labels') = 'array'
          THEN v -> 'labels' END)) AS labels
  FROM (SELECT (SELECT value FROM {settings} WHERE key = 'pauses') AS v) s"""
NO_PAUSES_SQL = "SELECT '{}'::text[] AS queues, '{}'::text[] AS job_classes, '{}'::text[] AS labels"

# The key good_job v3 locks a job under; computed only for rows a bounded scan visits.
LOCK_KEY = "('x' || substr(md5('good_jobs-' || d.active_job_id::text), 1, 16))::bit(64)::bigint"
UNLOCKED = f"{LOCK_KEY} NOT IN (SELECT key FROM locks)"
ADVISORY_COUNT, ADVISORY_FIRST, ADVISORY_OLDEST = _due_probes(f"{DUE_IN_QUEUE} AND {UNLOCKED}")
# v3 immediate jobs (NULL scheduled_at): an equality-bounded range at the end of the queue's
# index range; no index orders them by created_at, so their minimum reads all of them.
IMMEDIATE = f"""d.queue_name = n.name AND d.scheduled_at IS NULL AND d.finished_at IS NULL
  AND d.created_at <= c.now_ts AND {UNLOCKED}"""

ADVISORY_SQL = f"""locks AS MATERIALIZED (
    SELECT (l.classid::bigint << 32) | l.objid::bigint AS key FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.now_ts) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
LEFT JOIN LATERAL (
  SELECT n.name,
    {ADVISORY_COUNT} + (SELECT count(*) FROM (
      SELECT 1 FROM {{jobs}} d WHERE {IMMEDIATE} LIMIT %(cap)s) s) AS ready,
    LEAST({ADVISORY_OLDEST}, (SELECT min(d.created_at) FROM {{jobs}} d WHERE {IMMEDIATE}))
      AS oldest,
    -- performed_at is set as a job starts: a cheap filter before the md5 of each row
    (SELECT count(*) FROM {{jobs}} d
      WHERE d.queue_name = n.name AND d.finished_at IS NULL AND d.performed_at IS NOT NULL
        AND EXISTS (SELECT 1 FROM locks) AND {LOCK_KEY} IN (SELECT key FROM locks)) AS running
  FROM names n
  {ADVISORY_FIRST}
) x ON true"""

INSPECT_SQL = """
SELECT (SELECT nspname::text FROM pg_class JOIN pg_namespace ON pg_namespace.oid = relnamespace
         WHERE pg_class.oid = to_regclass(%(jobs)s)),
       ARRAY(SELECT attname::text FROM pg_attribute
             WHERE attrelid = to_regclass(%(jobs)s) AND attnum > 0 AND NOT attisdropped),
       (SELECT atttypid = 'timestamptz'::regtype FROM pg_attribute
         WHERE attrelid = to_regclass(%(jobs)s) AND attname = 'scheduled_at'),
       to_regclass(%(settings)s) IS NOT NULL
"""
GOOD_JOB_COLUMNS = frozenset(
    {
        "queue_name",
        "serialized_params",
        "scheduled_at",
        "performed_at",
        "finished_at",
        "active_job_id",
    }
)


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER | None, Field(alias="schema")] = None
    # good_job's own enable_pauses (default off there): whether workers honour recorded pauses.
    enable_pauses: bool = True


@dataclass(frozen=True, slots=True)
class Layout:
    schema: str
    claims: bool  # locked_by_id exists (v3.29+)
    lock_type: bool  # v4.15+
    aware: bool  # timestamptz columns
    settings: bool  # good_job_settings exists

    def describe(self) -> str:
        if self.lock_type:
            version = "v4.15+ layout: locked_by_id, lock_type"
        elif self.claims:
            version = "v3.29-v4.14 layout: locked_by_id"
        else:
            version = "pre-v3.29 layout: running known from advisory locks"
        return f"table {self.schema}.good_jobs ({version})"


def layout_of(conn: psycopg.Connection[Any], options: Options) -> Layout | None:
    """The good_jobs layout in the configured schema, or None if there is no such table."""
    params = {
        "jobs": _regclass(options, "good_jobs"),
        "settings": _regclass(options, "good_job_settings"),
    }
    row = conn.execute(INSPECT_SQL, params).fetchone()
    # no table: the schema is NULL and the column list empty, which the column check refuses
    if row is None or not set(row[1]) >= GOOD_JOB_COLUMNS:
        return None
    columns = set(row[1])
    return Layout(
        str(row[0]), "locked_by_id" in columns, "lock_type" in columns, bool(row[2]), bool(row[3])
    )


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    layout = layout_of(conn, options)
    return None if layout is None else layout.describe()


class Reader:
    name = "good_job"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._table = self._identifier("good_jobs")
        # Which SQL applies depends on the table's columns, known only on the first read.
        self._query: sql.Composed | None = None

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        query = self._query or self._prepare(conn)
        params = {
            **selection(selectors),
            "cap": cap,
        }
        try:
            rows = fetch(conn, query, params)
        except (errors.UndefinedTable, errors.UndefinedColumn):
            self._query = None  # migrated under us: inspect the table again next time
            raise
        return reading(self.name, rows, cap)

    def _prepare(self, conn: psycopg.Connection[Any]) -> sql.Composed:
        layout = layout_of(conn, self.options)
        if layout is None:
            raise QueueReadError(f"no good_job table {_regclass(self.options, 'good_jobs')}")
        if layout.claims:
            pauses = (
                sql.SQL(PAUSES_SQL).format(settings=self._identifier("good_job_settings"))
                if layout.settings and self.options.enable_pauses
                else sql.SQL(NO_PAUSES_SQL)
            )
            per_queue = sql.SQL(CLAIMS_SQL).format(jobs=self._table, pauses=pauses)
        else:
            per_queue = sql.SQL(ADVISORY_SQL).format(jobs=self._table)
        now = sql.SQL("now()" if layout.aware else "now() AT TIME ZONE 'UTC'")
        self._query = sql.SQL(READ_SQL).format(jobs=self._table, now=now, per_queue=per_queue)
        return self._query

    def _identifier(self, table: str) -> sql.Identifier:
        return qualified(self.options.schema_name, table)


def _regclass(options: Options, table: str) -> str:
    """A name for to_regclass that resolves as the query's identifier does."""
    parts = [options.schema_name, table] if options.schema_name else [table]
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)
