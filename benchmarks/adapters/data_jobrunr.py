"""Benchmark data for the jobrunr adapter: JobRunr's ``jobrunr_jobs`` (``jobrunr.sql``, its
stock indexes), set-based.

Rows look as JobRunr 8 leaves them: ``ENQUEUED`` jobs (``updatedAt`` = enqueue time),
``SCHEDULED`` ones due (the master not yet run) or in the future, ``PROCESSING`` ones with a
fresh ``updatedAt`` and a few orphans (their server died), and finished ones (``SUCCEEDED``,
``FAILED``, ``DELETED``), kept for 36 hours by default. JobRunr 8 keeps ``scheduledAt`` on a
job that was scheduled once (recurring jobs), so half the finished rows carry one.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.adapters.jobrunr import Options, recommended_indexes
from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "jobrunr.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
(RECOMMENDED_INDEX,) = recommended_indexes(Options())

STATES = {
    "backlog": """CASE WHEN a < 0.86 THEN 'ENQUEUED' WHEN a < 0.88 THEN 'due'
                       WHEN a < 0.93 THEN 'SCHEDULED' WHEN a < 0.94 THEN 'PROCESSING'
                       WHEN a < 0.941 THEN 'orphan' WHEN a < 0.99 THEN 'SUCCEEDED'
                       ELSE 'FAILED' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'ENQUEUED' WHEN a < 0.010 THEN 'due'
                      WHEN a < 0.20 THEN 'SCHEDULED' WHEN a < 0.202 THEN 'PROCESSING'
                      WHEN a < 0.95 THEN 'SUCCEEDED' WHEN a < 0.98 THEN 'FAILED'
                      ELSE 'DELETED' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'ENQUEUED'
                         WHEN a < 0.20 THEN 'SCHEDULED' WHEN a < 0.202 THEN 'PROCESSING'
                         WHEN a < 0.95 THEN 'SUCCEEDED' ELSE 'FAILED' END""",
}

INSERT = """
INSERT INTO jobrunr_jobs (id, version, jobAsJson, jobSignature, state, createdAt, updatedAt,
                          scheduledAt, recurringJobId)
SELECT gen_random_uuid()::text, 3,
       '{{"version":3,"jobSignature":"com.example.Mailer.send(java.lang.Long)","jobHistory":[]}}',
       'com.example.Mailer.send(java.lang.Long)',
       CASE kind WHEN 'due' THEN 'SCHEDULED' WHEN 'orphan' THEN 'PROCESSING' ELSE kind END,
       created,
       CASE kind WHEN 'PROCESSING' THEN now_utc - d * interval '10 seconds'
                 WHEN 'orphan' THEN now_utc - interval '5 minutes' - d * interval '1 hour'
                 ELSE created + interval '1 second' END,
       CASE WHEN kind = 'due' THEN now_utc - d * interval '10 seconds'
            WHEN kind = 'SCHEDULED' THEN now_utc + interval '1 minute' + d * interval '1 day'
            WHEN recurring THEN created END,
       CASE WHEN recurring THEN 'nightly-report' END
FROM (SELECT kind, d, c < 0.5 AS recurring, now() AT TIME ZONE 'UTC' AS now_utc,
             now() AT TIME ZONE 'UTC' - interval '1 minute' - d * interval '30 hours' AS created
      FROM (SELECT g, {state} AS kind, c, d
            FROM (SELECT g, random() AS a, random() AS c, random() AS d
                  FROM generate_series(1, %(rows)s) g) draws) states) jobs
"""

NAIVE_SQL = """
SELECT count(*),
       min(CASE state WHEN 'ENQUEUED' THEN updatedat WHEN 'SCHEDULED' THEN scheduledat
                      ELSE updatedat + interval '60 seconds' END)
FROM jobrunr_jobs
WHERE state = 'ENQUEUED'
   OR (state = 'SCHEDULED' AND scheduledat <= now() AT TIME ZONE 'UTC')
   OR (state = 'PROCESSING' AND updatedat < now() AT TIME ZONE 'UTC' - interval '60 seconds')
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(INSERT.format(state=STATES[mix]), {"rows": rows, "every": max(1, rows // 50)})
    conn.execute("VACUUM ANALYZE jobrunr_jobs")
