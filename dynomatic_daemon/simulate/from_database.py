"""``--from-database``: a trace rebuilt from the jobs a queue library keeps after they finish.

A replay needs each job's arrival (when it became ready), start and end. Libraries that keep
finished jobs with those times, and for how long by default:

- good_job: every job with ``preserve_job_records`` (the default), for 14 days
  (``cleanup_preserved_jobs_before_seconds_ago``; 1 day before v4); ``performed_at`` is the start.
- river: ``completed``/``discarded`` rows until the JobCleaner deletes them: 24 h / 7 days.
- oban: ``completed``/``discarded`` rows until the Pruner plugin deletes them: 60 s by default
  (``max_age``); without the plugin, for ever.
- procrastinate: finished jobs and their ``procrastinate_events`` (deferred, started, succeeded,
  failed), for ever unless the worker deletes them (``delete_jobs``, default never).
- pg-boss: ``completed``/``failed`` jobs: 7 days (``deleteAfterSeconds``, v11+); before v11 moved
  to ``archive`` after 12 h and deleted after 7 days.
- chancy: ``succeeded``/``failed`` jobs until its Pruner (on by default) deletes them after a day.

Not usable: delayed_job, queue_classic and graphile_worker delete a job when it succeeds;
solid_queue (1 day, ``clear_finished_jobs_after``) and que (only jobs that call ``finish``) keep
finished jobs but no start time, so waiting and running cannot be told apart; pgmq keeps no start
time either; pgqueuer's log is not read yet.

Each job's latest run counts: its arrival is when that run became ready (after a retry, the
retry time), its service time its end minus its start. Jobs still waiting or running at the end
of the window are not in the trace. Every read runs on a read-only connection
(``db.connection_kwargs``) with table and schema names from ``[adapters.<name>]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.adapters.base import AdapterOptions, qualified
from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.db import connection_kwargs, redact
from dynomatic_daemon.errors import ConfigError, Problem, QueueReadError
from dynomatic_daemon.simulate.config_source import SimulationConfig
from dynomatic_daemon.simulate.trace import Trace

READ_TIMEOUT_MS = 120_000  # a one-off read of days of jobs; the daemon's 5 s is for ticks
Query = Callable[[Any, psycopg.Connection[Any]], sql.Composed]

# Every query returns (queue, arrival, started, finished) as timestamptz, for runs that became
# ready at or after %(since)s. Naive-UTC columns (Rails, Ecto) are read AT TIME ZONE 'UTC'.
GOOD_JOB = """
SELECT queue_name,
       GREATEST(created_at, COALESCE(scheduled_at, created_at)) AT TIME ZONE 'UTC',
       performed_at AT TIME ZONE 'UTC', finished_at AT TIME ZONE 'UTC'
FROM {table}
WHERE finished_at IS NOT NULL AND performed_at IS NOT NULL
  AND GREATEST(created_at, COALESCE(scheduled_at, created_at)) >= %(since)s AT TIME ZONE 'UTC'
"""
RIVER = """
SELECT queue, scheduled_at, attempted_at, finalized_at
FROM {table}
WHERE state IN ('completed', 'discarded') AND attempted_at IS NOT NULL
  AND scheduled_at >= %(since)s
"""
OBAN = """
SELECT queue, scheduled_at AT TIME ZONE 'UTC', attempted_at AT TIME ZONE 'UTC',
       COALESCE(completed_at, discarded_at) AT TIME ZONE 'UTC'
FROM {table}
WHERE state IN ('completed', 'discarded') AND attempted_at IS NOT NULL
  AND scheduled_at >= %(since)s AT TIME ZONE 'UTC'
"""
# the latest run: the last time it was deferred (or deferred for a retry), started and ended
PROCRASTINATE = """
SELECT j.queue_name, GREATEST(e.deferred, j.scheduled_at), e.started, e.finished
FROM {jobs} j
JOIN LATERAL (
    SELECT max(at) FILTER (WHERE type IN ('deferred', 'deferred_for_retry')) AS deferred,
           max(at) FILTER (WHERE type = 'started') AS started,
           max(at) FILTER (WHERE type IN ('succeeded', 'failed', 'aborted')) AS finished
    FROM {events} WHERE job_id = j.id
) e ON true
WHERE j.status IN ('succeeded', 'failed', 'aborted') AND e.started IS NOT NULL
  AND e.finished IS NOT NULL AND GREATEST(e.deferred, j.scheduled_at) >= %(since)s
"""
PGBOSS = """
SELECT name, GREATEST({created}, {start_after}), {started}, {completed}
FROM {table}
WHERE state IN ('completed', 'failed') AND {started} IS NOT NULL AND {completed} IS NOT NULL
  AND GREATEST({created}, {start_after}) >= %(since)s
"""
CHANCY = """
SELECT queue, GREATEST(created_at, scheduled_at), started_at, completed_at
FROM {table}
WHERE state IN ('succeeded', 'failed') AND started_at IS NOT NULL AND completed_at IS NOT NULL
  AND GREATEST(created_at, scheduled_at) >= %(since)s
"""
HAS_COLUMN = """
SELECT EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = %s AND table_name = %s AND column_name = %s)
"""
HAS_TABLE = """
SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s)
"""


def _one_table(template: str, name: Callable[[Any], sql.Identifier]) -> Query:
    return lambda options, _conn: sql.SQL(template).format(table=name(options))


def _procrastinate(options: Any, _conn: psycopg.Connection[Any]) -> sql.Composed:
    schema = options.schema_name
    return sql.SQL(PROCRASTINATE).format(
        jobs=qualified(schema, "procrastinate_jobs"),
        events=qualified(schema, "procrastinate_events"),
    )


def _pgboss(options: Any, conn: psycopg.Connection[Any]) -> sql.Composed:
    """v10+ spell columns snake_case, v9 and earlier run them together; before v11 finished jobs
    move to an ``archive`` table after 12 hours."""
    schema = options.schema_name
    snake = conn.execute(HAS_COLUMN, (schema, "job", "started_on")).fetchone()
    cols: tuple[str, ...] = ("created_on", "start_after", "started_on", "completed_on")
    if not (snake and snake[0]):
        cols = tuple(c.replace("_", "") for c in cols)
    created, start_after, started, completed = (sql.Identifier(c) for c in cols)
    tables = ["job"]
    archive = conn.execute(HAS_TABLE, (schema, "archive")).fetchone()
    if archive and archive[0]:
        tables.append("archive")
    parts = [
        sql.SQL(PGBOSS).format(
            table=sql.Identifier(schema, t),
            created=created,
            start_after=start_after,
            started=started,
            completed=completed,
        )
        for t in tables
    ]
    return sql.SQL(" UNION ALL ").join(parts)


HISTORIES: dict[str, Query] = {
    "good_job": _one_table(GOOD_JOB, lambda o: qualified(o.schema_name, "good_jobs")),
    "river": _one_table(RIVER, lambda o: qualified(o.schema_name, "river_job")),
    "oban": _one_table(OBAN, lambda o: sql.Identifier(o.prefix, "oban_jobs")),
    "procrastinate": _procrastinate,
    "pgboss": _pgboss,
    "chancy": _one_table(CHANCY, lambda o: qualified(o.schema_name, f"{o.prefix}jobs")),
}
SUPPORTED = tuple(HISTORIES)


def read_trace(
    conn: psycopg.Connection[Any], adapters: Sequence[tuple[str, AdapterOptions]], since: float
) -> Trace:
    """The jobs of these libraries that became ready in the last ``since`` seconds."""
    row = conn.execute("SELECT now(), now() - make_interval(secs => %s)", (since,)).fetchone()
    if row is None:
        raise QueueReadError("the database did not answer SELECT now()")
    now, start = row
    jobs: list[tuple[float, float, str]] = []
    for name, options in adapters:
        query = HISTORIES[name](options, conn)
        for queue, arrival, started, finished in conn.execute(query, {"since": start}):
            jobs.append(_job(start, queue, arrival, started, finished))
    return Trace.of(jobs, duration=(now - start).total_seconds(), start=start, name="database")


def _job(
    start: datetime, queue: Any, arrival: datetime, started: datetime, finished: datetime
) -> tuple[float, float, str]:
    service = max(0.0, (finished - started).total_seconds())
    return (arrival - start).total_seconds(), service, str(queue or "default")


def adapters_of(
    conn: psycopg.Connection[Any], wanted: Sequence[tuple[int, str]], options: dict[str, Any]
) -> list[tuple[str, AdapterOptions]]:
    """The library of each ``[[process]]`` (``auto`` found by its tables), with its options."""
    out: dict[str, AdapterOptions] = {}
    for index, name in wanted:
        chosen = name if name != catalog.AUTO else _detect(conn, options, index)
        if chosen not in HISTORIES:
            raise ConfigError([Problem(f"process[{index}].adapter", unsupported(chosen))])
        out[chosen] = catalog.options_model(chosen).model_validate(options.get(chosen, {}))
    return list(out.items())


def _detect(conn: psycopg.Connection[Any], options: dict[str, Any], index: int) -> str:
    found = []
    for name in SUPPORTED:
        parsed = catalog.options_model(name).model_validate(options.get(name, {}))
        if catalog.load(name).detect(conn, parsed):
            found.append(name)
    if len(found) != 1:
        seen = ", ".join(found) or "none of them"
        why = f"--from-database looked for {', '.join(SUPPORTED)} and found {seen}; set adapter"
        raise ConfigError([Problem(f"process[{index}].adapter", why)])
    return found[0]


def unsupported(name: str) -> str:
    return (
        f"{name} keeps no finished jobs with start and end times, so --from-database cannot "
        f"rebuild a trace from it (it can for {', '.join(SUPPORTED)}); export a CSV "
        "(arrival_s,service_s,queue) and use --trace"
    )


def trace_from(config: SimulationConfig, since: float, env: Mapping[str, str]) -> Trace:
    """Connect read-only to ``[database] url_env``'s database and rebuild the trace of the
    libraries the config's ``[[process]]`` entries use."""
    env_name = config.database.url_env
    url = env.get(env_name, "").strip()
    if not url:
        why = "not set; --from-database reads the finished jobs from this database"
        raise ConfigError([Problem(env_name, why)])
    settings = DatabaseSettings(
        url_env=env_name,
        url=SecretStr(url),
        statement_timeout_ms=READ_TIMEOUT_MS,
        connect_timeout_seconds=config.database.connect_timeout_seconds,
    )
    wanted = [(i, p.adapter) for i, p in enumerate(config.process)]
    try:
        with psycopg.connect(**connection_kwargs(settings, "dynomatic-simulate")) as conn:
            return read_trace(conn, adapters_of(conn, wanted, dict(config.adapters)), since)
    except psycopg.Error as exc:
        raise QueueReadError(redact(str(exc).strip(), settings)) from None
