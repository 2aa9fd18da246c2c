"""Benchmark data for the django_tasks adapter: django-tasks-db's ``dbtaskresult`` table
(``django_tasks_db.sql``, its stock indexes), set-based.

Rows look as the database backend leaves them: ``READY`` tasks enqueued without ``run_after``
(the 9999-01-01 sentinel), ``READY`` tasks whose ``run_after`` has passed or not yet come,
``RUNNING`` ones, and finished results (``SUCCESSFUL``, ``FAILED``), which stay in the table
until ``prune_db_task_results`` deletes them - so a quiet table is mostly finished rows. Five
skewed queues, priorities 0 (80 %), 10 and -10.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.adapters.django_tasks import Options, recommended_indexes
from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "django_tasks_db.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
(RECOMMENDED_INDEX,) = recommended_indexes(Options())

QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""
PRIORITY = "CASE WHEN c < 0.80 THEN 0 WHEN c < 0.95 THEN 10 ELSE -10 END"

STATES = {
    "backlog": """CASE WHEN a < 0.86 THEN 'ready' WHEN a < 0.88 THEN 'due'
                       WHEN a < 0.93 THEN 'future' WHEN a < 0.94 THEN 'running'
                       WHEN a < 0.99 THEN 'successful' ELSE 'failed' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'ready' WHEN a < 0.010 THEN 'due'
                      WHEN a < 0.020 THEN 'future' WHEN a < 0.022 THEN 'running'
                      WHEN a < 0.97 THEN 'successful' ELSE 'failed' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'ready'
                         WHEN a < 0.01 THEN 'future' WHEN a < 0.012 THEN 'running'
                         WHEN a < 0.97 THEN 'successful' ELSE 'failed' END""",
}

INSERT = """
INSERT INTO django_tasks_database_dbtaskresult
    (id, status, args_kwargs, priority, task_path, queue_name, backend_name, run_after,
     enqueued_at, started_at, finished_at, return_value, exception_class_path, traceback,
     worker_ids)
SELECT gen_random_uuid(),
       CASE kind WHEN 'running' THEN 'RUNNING' WHEN 'successful' THEN 'SUCCESSFUL'
                 WHEN 'failed' THEN 'FAILED' ELSE 'READY' END,
       '{{"args": [42], "kwargs": {{"template": "welcome"}}}}', {priority},
       'myapp.tasks.send_email', {queue}, 'default',
       CASE kind WHEN 'due' THEN enqueued + interval '1 minute'
                 WHEN 'future' THEN now() + interval '1 minute' + d * interval '1 day'
                 ELSE timestamptz '9999-01-01 00:00:00+00' END,
       enqueued,
       CASE WHEN kind IN ('running', 'successful', 'failed') THEN enqueued + interval '1 s' END,
       CASE WHEN kind IN ('successful', 'failed') THEN enqueued + interval '3 s' END,
       CASE WHEN kind = 'successful' THEN 'null'::jsonb END,
       CASE WHEN kind = 'failed' THEN 'builtins.ValueError' ELSE '' END,
       CASE WHEN kind = 'failed' THEN 'Traceback (most recent call last): ...' ELSE '' END,
       CASE WHEN kind IN ('running', 'successful', 'failed') THEN '["web.1"]'::jsonb
            ELSE '[]'::jsonb END
FROM (SELECT g, {state} AS kind, b, c, d, now() - interval '2 minutes' - d * interval '3 hours'
                                                 AS enqueued
      FROM (SELECT g, random() AS a, random() AS b, random() AS c, random() AS d
            FROM generate_series(1, %(rows)s) g) draws) tasks
"""

NAIVE_SQL = """
SELECT queue_name, count(*),
       min(CASE WHEN run_after = timestamptz '9999-01-01 00:00:00+00' THEN enqueued_at
                ELSE GREATEST(enqueued_at, run_after) END)
FROM django_tasks_database_dbtaskresult
WHERE status = 'READY'
  AND (run_after = timestamptz '9999-01-01 00:00:00+00' OR run_after <= now())
GROUP BY queue_name
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    query = INSERT.format(queue=QUEUE, priority=PRIORITY, state=STATES[mix])
    conn.execute(query, {"rows": rows, "every": max(1, rows // 50)})
    conn.execute("VACUUM ANALYZE django_tasks_database_dbtaskresult")
