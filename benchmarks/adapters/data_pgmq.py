"""Benchmark data for the pgmq adapter: pgmq 1.5 queue tables ``pgmq.q_<queue>``.

Rows are written the way pgmq writes them: ``send`` leaves ``read_ct = 0`` and ``vt`` = the send
time plus any delay, ``read`` bumps ``read_ct`` and moves ``vt`` a visibility timeout ahead, and a
message whose consumer died is visible again once that timeout has passed. Processed messages
are deleted or moved to ``pgmq.a_<queue>``, so a quiet queue table holds delayed sends and
messages in flight. pgmq has no priorities; the five queues are five tables.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dynomatic_daemon.sandbox.schemas import SCHEMAS

FIXTURES = SCHEMAS
OPTIONS: dict[str, object] = {}
CAP = 101

# Five skewed queues: their share of the rows.
QUEUES = {"default": 0.50, "mailers": 0.25, "low": 0.15, "critical": 0.08, "reports": 0.02}

# kind of message per uniform draw a (and g, the row number, for below_cap's fixed count);
# 'new' and 'timed_out' messages are ready
STATES = {
    "backlog": """CASE WHEN a < 0.88 THEN 'new' WHEN a < 0.90 THEN 'timed_out'
                       WHEN a < 0.98 THEN 'delayed' ELSE 'in_flight' END""",
    "sparse": """CASE WHEN a < 0.008 THEN 'new' WHEN a < 0.010 THEN 'timed_out'
                      WHEN a < 0.97 THEN 'delayed' ELSE 'in_flight' END""",
    "below_cap": """CASE WHEN g %% %(every)s = 0 AND g / %(every)s <= %(due)s THEN 'new'
                         WHEN a < 0.97 THEN 'delayed' ELSE 'in_flight' END""",
}

INSERT = """
INSERT INTO {table} (read_ct, enqueued_at, vt, message)
SELECT CASE kind WHEN 'timed_out' THEN 2 WHEN 'in_flight' THEN 1 ELSE 0 END,
       enqueued_at,
       CASE kind WHEN 'delayed' THEN now() + d * interval '1 day'
                 WHEN 'in_flight' THEN now() + d * interval '30 seconds'
                 WHEN 'timed_out' THEN now() - d * interval '30 seconds'
                 ELSE enqueued_at END,
       '{{"customer_id": 42, "template": "welcome"}}'
FROM (SELECT g, {state} AS kind, d, now() - (1 - e) * interval '3 hours' AS enqueued_at
      FROM (SELECT g, random() AS a, random() AS d, g::float8 / %(rows)s AS e
            FROM generate_series(1, %(rows)s) g) draws) messages
"""

NAIVE_SQL = " UNION ALL ".join(
    f"SELECT '{queue}' AS queue, count(*), min(vt) FROM pgmq.q_{queue} WHERE vt <= now()"
    for queue in QUEUES
)


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute((FIXTURES / "pgmq.sql").read_text())
    template = (FIXTURES / "pgmq_queue.sql").read_text()
    for queue in QUEUES:
        conn.execute(
            sql.SQL(template).format(
                q=sql.Identifier("pgmq", f"q_{queue}"),
                a=sql.Identifier("pgmq", f"a_{queue}"),
                q_vt_idx=sql.Identifier(f"q_{queue}_vt_idx"),
                a_idx=sql.Identifier(f"archived_at_idx_{queue}"),
                queue_name=sql.Literal(queue),
            )
        )


def populate(conn: psycopg.Connection[Any], rows: int, mix: str, seed: int) -> None:
    if mix not in STATES:
        raise ValueError(f"unknown mix {mix!r}; expected one of {sorted(STATES)}")
    conn.execute("SELECT setseed(%s)", ((seed % 1000) / 1000,))
    for queue, share in QUEUES.items():
        count = max(1, round(rows * share))
        table = sql.Identifier("pgmq", f"q_{queue}")
        query = sql.SQL(INSERT).format(table=table, state=sql.SQL(STATES[mix]))
        # below_cap: 50 ready messages in all, shared out like the rows
        due = max(1, round(50 * share))
        conn.execute(query, {"rows": count, "every": max(1, count // due), "due": due})
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
