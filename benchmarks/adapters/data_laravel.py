"""Benchmark data for the laravel adapter: Laravel's ``jobs`` table (``laravel.sql``), set-based.

Rows look as ``DatabaseQueue`` leaves them: pending jobs (``available_at`` past), delayed ones
(``later()`` or a release with a delay: ``available_at`` in the future), jobs reserved by a
live worker (``reserved_at`` within ``retry_after``) and a few whose worker died (reserved
longer ago than ``retry_after``: ready again). Laravel deletes finished jobs, so a big table
is a big backlog, or (sparse, below_cap) mostly delayed jobs. Five skewed queues.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.adapters.laravel import Options, recommended_indexes
from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "laravel.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
(RECOMMENDED_INDEX,) = recommended_indexes(Options())

QUEUE = """CASE WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""

# kind of row per uniform draw a (and g, the row number, for below_cap's fixed count)
STATES = {
    "backlog": """CASE WHEN a < 0.90 THEN 'ready' WHEN a < 0.98 THEN 'delayed'
                       WHEN a < 0.999 THEN 'reserved' ELSE 'expired' END""",
    "sparse": """CASE WHEN a < 0.01 THEN 'ready' WHEN a < 0.998 THEN 'delayed'
                      WHEN a < 0.9995 THEN 'reserved' ELSE 'expired' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'ready'
                         WHEN a < 0.998 THEN 'delayed' ELSE 'reserved' END""",
}

INSERT = """
INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at)
SELECT {queue}, '{{"displayName":"App\\\\Jobs\\\\SendEmail","data":{{"n":42}}}}',
       CASE WHEN kind IN ('reserved', 'expired') THEN 1 ELSE 0 END,
       CASE kind WHEN 'reserved' THEN now_s - (d * 60)::int
                 WHEN 'expired' THEN now_s - 600 - (d * 3600)::int END,
       CASE WHEN kind = 'delayed' THEN now_s + 60 + (d * 86400)::int
            ELSE now_s - (d * 10800)::int END,
       now_s - (d * 10800)::int
FROM (SELECT g, {state} AS kind, b, d, floor(extract(epoch FROM now()))::int AS now_s
      FROM (SELECT g, random() AS a, random() AS b, random() AS d
            FROM generate_series(1, %(rows)s) g) draws) jobs
"""

NAIVE_SQL = """
SELECT queue, count(*), min(available_at)
FROM jobs
WHERE (reserved_at IS NULL AND available_at <= extract(epoch FROM now()))
   OR reserved_at <= extract(epoch FROM now()) - 90
GROUP BY queue
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
    conn.execute("VACUUM ANALYZE jobs")
