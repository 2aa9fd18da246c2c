"""graphile-worker (Node): v0.16+ (migrations 16-19), v0.14/v0.15 (11-15) and v0.13 and earlier.

Storage contract
- Schema ``graphile_worker`` (configurable). Layouts, told apart from the catalog (``detect`` also
  reports the newest row of ``migrations``):
  - v0.16+: ``_private_jobs`` (``task_id``, ``job_queue_id``, ``priority``, ``run_at``,
    ``attempts``, ``max_attempts``, ``locked_at``, ``created_at`` and the generated
    ``is_available = locked_at IS NULL AND attempts < max_attempts``), ``_private_job_queues``,
    ``_private_tasks``;
  - v0.14/v0.15: the same tables without the ``_private_`` prefix;
  - v0.13 and earlier: ``jobs`` carrying ``queue_name`` and ``task_identifier`` as text, and
    ``job_queues (queue_name, locked_at)``.
  The statement is built for the newest layout; when it names a table or column that is not
  there (every layout change renames one), the layout is read from the catalog and the
  statement rebuilt and run again, on that tick only.
- Queue name reported: the job's named queue when it has one, else its task identifier. Worker
  pools subscribe to task identifiers, while a named queue runs one job at a time whatever the
  task; a name that is both a named queue and a task identifier reports both sets of jobs.
- Ready: what graphile's getJobs (v0.14+) / get_job (earlier) takes: available (unlocked,
  attempts left), ``run_at`` due, and no named queue or a named queue not locked by a live
  worker. Also ready: jobs locked more than 4 hours ago with attempts left. Their worker died:
  v0.13 re-takes them at once, v0.14+ once a worker's resetLockedAt pass (every 8-10 minutes)
  clears the lock, and a stalled reset must not hide them. Stale queue locks count as open.
- Running: locked within the last 4 hours. Excluded: future ``run_at`` (scheduled, or retry
  backoff), and permanently failed jobs (``attempts >= max_attempts``, unlocked). Finished jobs
  are deleted by graphile. Worker-side filters (forbidden flags, the tasks a pool knows) are not
  in the database, so such jobs count as ready.
- Eligible time: ``GREATEST(created_at, run_at)``; for a crashed lock, no earlier than
  ``locked_at + 4 hours``.

Cost
``jobs_main_index (priority, run_at) INCLUDE (id, task_id, job_queue_id) WHERE is_available``
serves jobs in named queues and ``jobs_no_queue_index`` (the same, ``AND job_queue_id IS NULL``)
the others; the predicates repeat theirs. Both lead with priority, so the distinct priorities are
found by a skip scan and every count or oldest-job probe is an index-only range scan per priority
(``priority = p AND run_at <= now()``): a count stops at ``cap`` entries, a probe at the queue's
first. The queue is only an included column, so a queue with few due jobs walks the due range of
every queue. v0.13's index ``(priority, run_at, id, locked_at) WHERE attempts < max_attempts``
needs heap reads for the queue. Nothing indexes ``locked_at``: the running and crashed counts read
the table once per tick (graphile deletes finished jobs, so that is the backlog plus failed
jobs); on a big table add

    CREATE INDEX CONCURRENTLY jobs_locked_for_dynomatic
        ON graphile_worker._private_jobs (locked_at) WHERE locked_at IS NOT NULL;

which holds only locked rows. Discovering task identifiers on v0.13 also reads the whole table.
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

# Base tables (not the v0.16+ `jobs` view) of the schema that carry a column telling layouts apart.
LAYOUT_SQL = """
SELECT c.relname::text, a.attname::text
FROM pg_class c
JOIN pg_namespace s ON s.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
WHERE s.nspname = %(schema)s AND c.relkind = 'r' AND c.relname IN ('_private_jobs', 'jobs')
  AND a.attname IN ('is_available', 'queue_name')
"""

# The ready test for one job is {available} AND run_at due AND ({in_queue} AND k.queue_open OR
# {no_queue}); each half is its own subquery so that it can use its own index. Both indexes lead
# with priority, so every scan below is one range scan per distinct priority, each in a LATERAL
# with a LIMIT or an aggregate so that the planner cannot flatten it into one table-wide scan.
COUNT_SQL = """(SELECT count(*) FROM (SELECT 1 FROM prio CROSS JOIN LATERAL (
        SELECT 1 FROM {jobs} j
        WHERE j.priority = prio.p AND {available} AND {pred} AND j.run_at <= c.db_now
        LIMIT %(cap)s) one LIMIT %(cap)s) s)"""
# Per priority, the first job by run_at bounds the answer; only jobs that run between it and that
# bound can beat it (created_at > run_at: jobs added with a past run_at, e.g. a cron backfill).
# The first job is found from index columns alone (an index-only walk past other queues' jobs);
# only that one row is read from the table, for its created_at.
OLDEST_SQL = """(SELECT min(LEAST(f.eligible, (
        SELECT min(GREATEST(j.created_at, j.run_at)) FROM {jobs} j
        WHERE j.priority = f.p AND {available} AND {pred}
          AND j.run_at >= f.run_at AND j.run_at < f.eligible)))
    FROM (SELECT prio.p, first.run_at, GREATEST(first.run_at,
                 (SELECT created_at FROM {jobs} WHERE id = first.id)) AS eligible
          FROM prio CROSS JOIN LATERAL (
            SELECT j.run_at, j.id FROM {jobs} j
            WHERE j.priority = prio.p AND {available} AND {pred} AND j.run_at <= c.db_now
            ORDER BY j.run_at LIMIT 1) first) f)"""

READ_SQL = """
WITH RECURSIVE
clock AS (SELECT now() AS db_now, now() - interval '4 hours' AS crashed_before),
-- distinct priorities by skip scan over the partial index (predicate repeated to match it);
-- not base.skip_scan, which finds queues on discovery only: these are needed on every read
skip(p) AS (
    (SELECT priority FROM {jobs} j WHERE {indexed} ORDER BY priority LIMIT 1)
    UNION ALL
    SELECT (SELECT priority FROM {jobs} j WHERE {indexed} AND j.priority > skip.p
            ORDER BY priority LIMIT 1)
    FROM skip WHERE skip.p IS NOT NULL
),
-- through arrays, so that the planner expects a few priorities and names, not the 100 and 1000
-- it guesses (which priced the per-name, per-priority probes high enough to pick JIT compilation,
-- ~0.7 s a tick, for a statement that runs in milliseconds)
prio(p) AS (SELECT unnest(ARRAY(SELECT p FROM skip WHERE p IS NOT NULL))),
-- every locked job, in one pass for all queues: nothing indexes locked_at
locked AS MATERIALIZED (
    SELECT {key_columns}, j.run_at, j.locked_at, j.attempts, j.max_attempts,
           GREATEST(j.created_at, j.run_at, j.locked_at + interval '4 hours') AS eligible
    FROM {jobs} j WHERE j.locked_at IS NOT NULL
),
names(name) AS (SELECT DISTINCT unnest(%(names)s::text[] || ARRAY({discovery}))),
keyed AS (
    SELECT n.name, {key_ids},
           -- a named queue locked by a live worker holds its other jobs back (serialisation)
           q.queue_name IS NOT NULL
             AND (q.locked_at IS NULL OR q.locked_at < c.crashed_before) AS queue_open
    FROM names n CROSS JOIN clock c
    LEFT JOIN {job_queues} q ON q.queue_name = n.name
    {task_join}
)
SELECT c.db_now, x.name, x.ready, x.oldest,
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM x.oldest))::float8 AS age, x.running
FROM clock c
-- LEFT JOIN so that the database clock comes back even when there is no queue to report
LEFT JOIN LATERAL (
  SELECT k.name, {count_in_queue} + {count_no_queue} + crashed.n AS ready,
         LEAST({oldest_in_queue}, {oldest_no_queue}, crashed.oldest) AS oldest,
         (SELECT count(*) FROM locked j WHERE ({in_queue} OR {no_queue})
            AND j.locked_at >= c.crashed_before) AS running
  FROM keyed k
  CROSS JOIN LATERAL (
    SELECT count(*) AS n, min(j.eligible) AS oldest FROM locked j
    WHERE ({in_queue} AND k.queue_open OR {no_queue})
      AND j.locked_at < c.crashed_before AND j.attempts < j.max_attempts
      AND j.run_at <= c.db_now
  ) crashed
) x ON true
ORDER BY x.name
"""

# Named queues, and task identifiers: the tasks table (v0.14+) or the jobs themselves (v0.13).
DISCOVER_SQL = """SELECT queue_name FROM (SELECT queue_name FROM {job_queues}
    WHERE %(discover)s ORDER BY queue_name) dq
    UNION SELECT * FROM ({task_names}) dt"""
TASKS_FROM_TABLE = """SELECT identifier FROM {tasks}
    WHERE %(discover)s ORDER BY identifier"""
TASKS_FROM_JOBS = """SELECT DISTINCT task_identifier FROM {jobs}
    WHERE %(discover)s AND queue_name IS NULL"""


@dataclass(frozen=True)
class Layout:
    label: str
    prefix: str  # of the table names
    indexed: str  # the predicate of the library's partial index
    available: str
    in_queue: str
    no_queue: str
    key_columns: str  # of `locked`, so that in_queue / no_queue apply to it as to the table
    key_ids: str
    task_join: str
    task_names: str  # how task identifiers are discovered


V016 = Layout(
    label="v0.16+ layout: _private_jobs",
    prefix="_private_",
    indexed="j.is_available = true",
    available="j.is_available = true",
    in_queue="j.job_queue_id = k.queue_id",
    no_queue="j.job_queue_id IS NULL AND j.task_id = k.task_id",
    key_columns="j.job_queue_id, j.task_id",
    key_ids="q.id AS queue_id, t.id AS task_id",
    task_join="LEFT JOIN {tasks} t ON t.identifier = n.name",
    task_names=TASKS_FROM_TABLE,
)
V014 = replace(V016, label="v0.14/v0.15 layout: jobs.is_available", prefix="")
V013 = Layout(
    label="v0.13 layout: jobs.queue_name",
    prefix="",
    indexed="j.attempts < j.max_attempts",
    available="j.attempts < j.max_attempts AND j.locked_at IS NULL",
    in_queue="j.queue_name = k.name",
    no_queue="j.queue_name IS NULL AND j.task_identifier = k.name",
    key_columns="j.queue_name, j.task_identifier",
    key_ids="NULL::int AS queue_id, NULL::int AS task_id",
    task_join="",
    task_names=TASKS_FROM_JOBS,
)


class Options(AdapterOptions):
    schema_name: Annotated[IDENTIFIER, Field(alias="schema")] = "graphile_worker"


def probe_layout(conn: psycopg.Connection[Any], schema: str) -> Layout | None:
    seen = {(str(t), str(c)) for t, c in conn.execute(LAYOUT_SQL, {"schema": schema}).fetchall()}
    if ("_private_jobs", "is_available") in seen:
        return V016
    if ("jobs", "is_available") in seen:
        return V014
    return V013 if ("jobs", "queue_name") in seen else None


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    layout = probe_layout(conn, options.schema_name)
    found = conn.execute(
        "SELECT to_regclass(format('%%I.migrations', %(schema)s::text)) IS NOT NULL",
        {"schema": options.schema_name},
    ).fetchone()
    if layout is None or not (found and found[0]):
        return None
    newest = sql.SQL("SELECT max(id) FROM {}").format(
        sql.Identifier(options.schema_name, "migrations")
    )
    row = conn.execute(newest).fetchone()
    table = f"{options.schema_name}.{layout.prefix}jobs"
    return f"table {table} ({layout.label}; migration {row[0] if row else None})"


class Reader:
    name = "graphile_worker"

    def __init__(self, options: Options) -> None:
        self.options = options
        self._query = self._build(V016)

    def _build(self, layout: Layout) -> sql.Composed:
        def table(name: str) -> sql.Identifier:
            return sql.Identifier(self.options.schema_name, layout.prefix + name)

        names = {"jobs": table("jobs"), "job_queues": table("job_queues"), "tasks": table("tasks")}
        frag = {
            "indexed": sql.SQL(layout.indexed),
            "available": sql.SQL(layout.available),
            "in_queue": sql.SQL(layout.in_queue),
            "no_queue": sql.SQL(layout.no_queue),
        }
        in_queue = sql.SQL("{} AND k.queue_open").format(frag["in_queue"])

        def part(template: str, pred: sql.Composable) -> sql.Composed:
            return sql.SQL(template).format(**names, available=frag["available"], pred=pred)

        return sql.SQL(READ_SQL).format(
            **names,
            **frag,
            key_columns=sql.SQL(layout.key_columns),
            key_ids=sql.SQL(layout.key_ids),
            task_join=sql.SQL(layout.task_join).format(**names),
            discovery=sql.SQL(DISCOVER_SQL).format(
                **names, task_names=sql.SQL(layout.task_names).format(**names)
            ),
            count_in_queue=part(COUNT_SQL, in_queue),
            count_no_queue=part(COUNT_SQL, frag["no_queue"]),
            oldest_in_queue=part(OLDEST_SQL, in_queue),
            oldest_no_queue=part(OLDEST_SQL, frag["no_queue"]),
        )

    def _use(self, layout: Layout | None) -> None:
        # Unknown or missing tables: the newest layout, whose error then names what is missing.
        self._query = self._build(layout or V016)

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        params = {
            **selection(selectors),
            "cap": cap,
        }
        try:
            rows = self._execute(conn, params)
        except (errors.UndefinedTable, errors.UndefinedColumn):
            # graphile-worker was migrated under us: every layout change renames something
            self._use(probe_layout(conn, self.options.schema_name))
            rows = self._execute(conn, params)
        return reading(self.name, rows, cap)

    def _execute(
        self, conn: psycopg.Connection[Any], params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        return fetch(conn, self._query, params)
