"""pg-boss (Node): v6-v9 (schema 17-20), v10 (21-24), v11-v12.18 (25-30) and v12.19+ (31-37).

Storage contract
- Schema ``pgboss`` (configurable). Table ``job``: ``name`` is the queue, ``state`` an enum ordered
  created < retry < active < completed < (expired, v9 only) < cancelled < failed. Layouts, told
  apart by the columns of ``job`` and ``queue`` (``detect`` also reports the ``version`` row):
  - v9 and earlier: ``job`` unpartitioned, lowercased camelCase ``startafter``, ``createdon``;
  - v10: snake_case ``start_after``, ``created_on``; ``job`` LIST-partitioned by ``name``, one
    partition per queue; queues listed in table ``queue``;
  - v11-v12.18: queues share the DEFAULT partition ``job_common`` unless created with
    ``partition: true``; ``queue`` carries pg-boss's cached counts (``active_count``, ...);
  - v12.19+: ``job.blocked`` marks jobs waiting for the jobs they depend on.
  The statement is built for the newest layout and returns the layout it saw: a tick whose
  statement names a column that is not there (an older layout; v9 -> v10 renamed every column)
  or sees another layout (12.19 added ``blocked``) reads the catalog, rebuilds and runs again,
  so a migration costs a round trip or two on the tick that meets it, not a restart.
- Ready: what pg-boss's fetch takes: ``state < 'active'`` (created or retry) with ``start_after``
  due, and ``NOT blocked`` where that column exists. Retries whose delay has passed count.
  Worker-side limits (singleton/stately keys, group concurrency, priority filters) are not in the
  database, so such jobs count as ready.
- Running: pg-boss's own ``queue.active_count`` (``state = 'active'``, refreshed by its monitor
  every 60 s by default), reported while its ``monitor_on`` is under 5 minutes old; None when it
  is older (no pg-boss instance supervising) and on v9/v10, which keep no count. Nothing indexes
  ``state = 'active'``, so a live count would read every row the queue keeps, finished ones too.
- Excluded: future ``start_after`` (deferred, or retry backoff), completed, expired (v9),
  cancelled and failed rows.
- Eligible time: ``GREATEST(created_on, start_after)``; a retry moves ``start_after`` on.
- Queues found: v10+ reads table ``queue``; v9 skips through the distinct names of its stock
  ``job_name`` index. pg-boss's own ``__pgboss__*`` queues (maintenance, cron) and v9's
  ``__state__*`` completion queues are reported only when named exactly.

Cost
The ready predicates repeat the partial index ``job_i5 (name, start_after) WHERE state < 'active'
[AND NOT blocked]`` (v9: ``job_fetch (name text_pattern_ops, startafter) WHERE state < 'active'``)
so that the bounded count is an index-only range scan of at most ``cap`` entries and the oldest job
is the range's first entry. ``GREATEST`` then needs only the jobs that start before that first
job's eligible time (none, unless jobs were sent with a past ``startAfter``). Per-queue partitions
are pruned at run time. Discovery reads the small ``queue`` table, or (v9) one index probe per
distinct name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

import psycopg
from psycopg import errors, sql
from pydantic import Field

from dynomatic_daemon.adapters.base import IDENTIFIER, AdapterOptions, fetch, reading, selection
from dynomatic_daemon.models import QueueReading, QueueSelector

# The columns of {schema}.job and .queue that tell the layouts apart, e.g. 'blocked,start_after'.
LAYOUT_SQL = """
SELECT string_agg(a.attname::text, ',' ORDER BY a.attname)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE s.nspname = %(schema)s AND c.relname IN ('job', 'queue') AND NOT a.attisdropped
  AND a.attname IN ('startafter', 'start_after', 'blocked', 'active_count')
"""

# v10+: the queue table; v9: a skip scan of job_name (text_pattern_ops, so ~<~ / ~>~ order,
# which base.skip_scan's plain ORDER BY and > would not let that index serve).
DISCOVER_FROM_QUEUE_TABLE = """
found(q) AS (SELECT name FROM {queue} WHERE %(discover)s ORDER BY name)
"""
DISCOVER_BY_SKIP_SCAN = """
found(q) AS (
    (SELECT name FROM {job} WHERE %(discover)s ORDER BY name USING ~<~ LIMIT 1)
    UNION ALL
    SELECT (SELECT name FROM {job} WHERE name ~>~ found.q ORDER BY name USING ~<~ LIMIT 1)
    FROM found WHERE found.q IS NOT NULL
)
"""

# {ready} repeats job_i5's / job_fetch's predicate so that index serves count and oldest.
READ_SQL = """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, ({layout}) AS layout),
{discovery},
-- through an array, so that the planner expects a few names rather than the discovery LIMIT
-- (which can price the per-name counts high enough to pick JIT compilation, ~0.5 s a tick)
names(name) AS (
    SELECT DISTINCT unnest(%(names)s::text[] || ARRAY(
        SELECT q FROM found WHERE q IS NOT NULL
          AND NOT starts_with(q, '__pgboss__') AND NOT starts_with(q, '__state__')))
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age,
       x.running, c.layout
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT n.name, r.ready, o.oldest, r.running
  FROM names n
  CROSS JOIN LATERAL (
    SELECT
      (SELECT count(*) FROM (SELECT 1 FROM {job} j WHERE j.name = n.name AND {ready}
        LIMIT %(cap)s) s) AS ready,
      {running} AS running
  ) r
  LEFT JOIN LATERAL (
    -- the first job by start time bounds the answer; only earlier-starting jobs can beat it
    SELECT LEAST(f.eligible, (
      SELECT min(GREATEST(j.{created}, j.{start})) FROM {job} j
      WHERE j.name = n.name AND {ready} AND j.{start} < f.eligible)) AS oldest
    FROM (SELECT GREATEST(j.{created}, j.{start}) AS eligible FROM {job} j
          WHERE j.name = n.name AND {ready} ORDER BY j.{start} LIMIT 1) f
  ) o ON true
) x ON true
ORDER BY x.name
"""


# pg-boss's own count of active jobs, kept by its monitor (every 60 s by default): nothing indexes
# state = 'active', so a live count would read every row the queue keeps (finished ones too).
CACHED_RUNNING = """(SELECT CASE WHEN cq.name IS NULL THEN 0  -- no such queue, so no jobs
        WHEN cq.monitor_on >= c.db_now - interval '5 minutes' THEN cq.active_count END
    FROM (SELECT) one LEFT JOIN {queue} cq ON cq.name = n.name)"""


@dataclass(frozen=True)
class Layout:
    columns: str  # what LAYOUT_SQL returns for it
    label: str
    start: str
    created: str
    due: str  # pg-boss <= 9 fetched with start_after < now()
    blocked: bool
    discovery: str
    running: str


V9 = Layout(
    columns="startafter",
    label="v9 layout: startafter, job_fetch",
    start="startafter",
    created="createdon",
    due="<",
    blocked=False,
    discovery=DISCOVER_BY_SKIP_SCAN,
    running="NULL::int",
)
V10 = Layout(
    columns="start_after",
    label="v10 layout: partitioned job, queue table",
    start="start_after",
    created="created_on",
    due="<=",
    blocked=False,
    discovery=DISCOVER_FROM_QUEUE_TABLE,
    running="NULL::int",
)
V11 = replace(
    V10,
    columns="active_count,start_after",
    label="v11-v12.18 layout: partitioned job, queue table with counts",
    running=CACHED_RUNNING,
)
V12_19 = replace(
    V11,
    columns="active_count,blocked,start_after",
    label="v12.19+ layout: partitioned job, queue table with counts, blocked",
    blocked=True,
)
LAYOUTS = {layout.columns: layout for layout in (V9, V10, V11, V12_19)}


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER, Field(alias="schema")] = "pgboss"


def probe_layout(conn: psycopg.Connection[Any], schema: str) -> Layout | None:
    row = conn.execute(LAYOUT_SQL, {"schema": schema}).fetchone()
    # string_agg over no columns is NULL, which names no layout
    return LAYOUTS.get(row[0]) if row else None


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    layout = probe_layout(conn, options.schema_name)
    found = conn.execute(
        "SELECT to_regclass(format('%%I.version', %(schema)s::text)) IS NOT NULL",
        {"schema": options.schema_name},
    ).fetchone()
    if layout is None or not (found and found[0]):
        return None
    version_sql = sql.SQL("SELECT max(version) FROM {}").format(
        sql.Identifier(options.schema_name, "version")
    )
    version = conn.execute(version_sql).fetchone()
    number = version[0] if version else None
    return f"table {options.schema_name}.job ({layout.label}; schema version {number})"


class Reader:
    name = "pgboss"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._layout = V12_19
        self._query = self._build(V12_19)

    def _build(self, layout: Layout) -> sql.Composed:
        schema = self.options.schema_name
        ready = sql.SQL("j.state < 'active' {blocked} AND j.{start} {due} c.db_now").format(
            blocked=sql.SQL("AND NOT j.blocked" if layout.blocked else ""),
            start=sql.Identifier(layout.start),
            due=sql.SQL(layout.due),
        )
        job, queue = sql.Identifier(schema, "job"), sql.Identifier(schema, "queue")
        return sql.SQL(READ_SQL).format(
            layout=sql.SQL(LAYOUT_SQL),
            discovery=sql.SQL(layout.discovery).format(job=job, queue=queue),
            job=job,
            ready=ready,
            start=sql.Identifier(layout.start),
            created=sql.Identifier(layout.created),
            running=sql.SQL(layout.running).format(queue=queue),
        )

    def _use(self, layout: Layout | None) -> None:
        # Unknown or missing tables: the newest layout, whose error then names what is missing.
        self._layout = layout or V12_19
        self._query = self._build(self._layout)

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            "schema": self.options.schema_name,
            **selection(selectors),
            "cap": cap,
        }
        try:
            rows = self._execute(conn, params)
        except (errors.UndefinedTable, errors.UndefinedColumn):
            # pg-boss was migrated under us to a layout without the columns we asked for
            self._use(probe_layout(conn, self.options.schema_name))
            rows = self._execute(conn, params)
        seen = rows[0][6]
        if seen != self._layout.columns:
            self._use(LAYOUTS.get(seen))  # a migration that only added columns (12.19: blocked)
            rows = self._execute(conn, params)
        return reading(self.name, rows, cap)

    def _execute(
        self, conn: psycopg.Connection[Any], params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        return fetch(conn, self._query, params)
