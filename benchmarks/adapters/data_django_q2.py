"""Benchmark data for the django_q2 adapter: django-q2's ``django_q_ormq`` (``django_q2.sql``,
no index besides the primary key), set-based.

Rows look as the ORM broker leaves them (django-q2 1.4.10+ "lock until" style): queued tasks
(``lock`` = their enqueue time, past), tasks a cluster holds (``lock`` = now + retry, future)
and a few whose cluster died (the hold has run out: ready again). The broker deletes a task
when it is done, and has no delayed tasks, so "sparse" and "below_cap" are tables of held
tasks - a stand-in for a table bloated by many busy clusters. Five skewed cluster keys.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.adapters.django_q2 import Options, recommended_indexes
from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "django_q2.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
(RECOMMENDED_INDEX,) = recommended_indexes(Options())

QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""

STATES = {
    "backlog": """CASE WHEN a < 0.90 THEN 'ready' WHEN a < 0.999 THEN 'held'
                       ELSE 'expired' END""",
    "sparse": """CASE WHEN a < 0.01 THEN 'ready' WHEN a < 0.9995 THEN 'held'
                      ELSE 'expired' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'ready'
                         ELSE 'held' END""",
}

INSERT = """
INSERT INTO django_q_ormq (key, payload, lock)
SELECT {queue}, 'gAWVbQAAAAAAAAB9lCiMAmlklIwgZGVtby1zaWduZWQtcGFja2FnZS1wYXlsb2FkLi4ulHUu:1tSig',
       CASE kind WHEN 'held' THEN now() + d * interval '60 seconds'
                 WHEN 'expired' THEN now() - d * interval '1 hour'
                 ELSE now() - d * interval '3 hours' END
FROM (SELECT g, {state} AS kind, b, d
      FROM (SELECT g, random() AS a, random() AS b, random() AS d
            FROM generate_series(1, %(rows)s) g) draws) tasks
"""

NAIVE_SQL = """
SELECT key, count(*), min(lock) FROM django_q_ormq WHERE lock < now() GROUP BY key
"""


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_FILE.read_text())


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    conn.execute(
        INSERT.format(queue=QUEUE, state=STATES[mix]), {"rows": rows, "every": max(1, rows // 50)}
    )
    conn.execute("VACUUM ANALYZE django_q_ormq")
