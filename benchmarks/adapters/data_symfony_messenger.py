"""Benchmark data for the symfony_messenger adapter: ``messenger_messages`` as Symfony 5.4-7.3.8
create it (``symfony_messenger_5_4.sql``, three one-column indexes), set-based.

Rows look as the Doctrine transport leaves them: messages waiting (``available_at`` past,
never delivered), delayed ones (a DelayStamp or a retry's backoff), failed messages parked in
the failure transport's ``failed`` queue (never consumed, so never ready), messages being
handled (``delivered_at`` recent) and a few whose worker died (delivered over an hour ago:
redelivered). Acknowledged messages are deleted. Five skewed queues plus ``failed``.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dynomatic_daemon.adapters.symfony_messenger import Options, recommended_indexes
from dynomatic_daemon.sandbox.schemas import SCHEMAS

SCHEMA_FILE = SCHEMAS / "symfony_messenger_5_4.sql"
OPTIONS: dict[str, object] = {}
CAP = 101
# the never-delivered index: the part the 5.4-7.3.8 indexes leave to a walk
RECOMMENDED_INDEX = recommended_indexes(Options())[0]

QUEUE = """CASE WHEN kind = 'failed' THEN 'failed'
                WHEN b < 0.50 THEN 'default' WHEN b < 0.75 THEN 'mailers'
                WHEN b < 0.90 THEN 'low' WHEN b < 0.98 THEN 'critical' ELSE 'reports' END"""

STATES = {
    "backlog": """CASE WHEN a < 0.88 THEN 'ready' WHEN a < 0.93 THEN 'delayed'
                       WHEN a < 0.98 THEN 'failed' WHEN a < 0.999 THEN 'delivered'
                       ELSE 'stale' END""",
    "sparse": """CASE WHEN a < 0.01 THEN 'ready' WHEN a < 0.86 THEN 'delayed'
                      WHEN a < 0.998 THEN 'failed' WHEN a < 0.9995 THEN 'delivered'
                      ELSE 'stale' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= 50 THEN 'ready'
                         WHEN a < 0.85 THEN 'delayed' WHEN a < 0.998 THEN 'failed'
                         ELSE 'delivered' END""",
}

INSERT = """
INSERT INTO messenger_messages (body, headers, queue_name, created_at, available_at,
                                delivered_at)
SELECT 'O:36:"Symfony\\Component\\Messenger\\Envelope":2:{{}}',
       '{{"type":"App\\\\Message\\\\SendEmail"}}', {queue}, created,
       CASE WHEN kind = 'delayed' THEN now_utc + interval '1 minute' + d * interval '1 day'
            ELSE created END,
       CASE kind WHEN 'delivered' THEN now_utc - d * interval '10 minutes'
                 WHEN 'stale' THEN now_utc - interval '2 hours' - d * interval '1 day' END
FROM (SELECT kind, b, d, date_trunc('second', now() AT TIME ZONE 'UTC') AS now_utc,
             date_trunc('second', now() AT TIME ZONE 'UTC') - d * interval '3 hours' AS created
      FROM (SELECT g, {state} AS kind, b, d
            FROM (SELECT g, random() AS a, random() AS b, random() AS d
                  FROM generate_series(1, %(rows)s) g) draws) states) messages
"""

NAIVE_SQL = """
SELECT queue_name, count(*), min(available_at)
FROM messenger_messages
WHERE (delivered_at IS NULL OR delivered_at < now() AT TIME ZONE 'UTC' - interval '3600 s')
  AND available_at <= now() AT TIME ZONE 'UTC' AND queue_name <> 'failed'
GROUP BY queue_name
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
    conn.execute("VACUUM ANALYZE messenger_messages")
