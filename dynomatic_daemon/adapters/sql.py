"""sql: any queue, through a query you write.

Storage contract
- ``[adapters.sql] query`` is one SELECT (no trailing semicolon) returning one row per queue with
  the columns ``queue`` (text), ``ready`` (integer: jobs runnable now), ``oldest_eligible_at``
  (timestamp: when the oldest of them became runnable, NULL if none) and ``running`` (integer, or
  NULL when unknowable). It runs on the daemon's read-only connection, under statement_timeout.
- Ages are computed here from the database clock. A naive ``timestamp`` column is read as UTC,
  whatever the session TimeZone.
- The first read checks the column names and types once and refuses, naming what it got, when
  they do not fit; ``dynomatic check`` shows that message.
- Counts are only as cheap as your query: bound them (``count(*)`` over a ``LIMIT`` subquery) on
  big tables. A ``ready`` at or above the cap is reported as capped.
- Never auto-detected.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from psycopg import sql
from pydantic import Field

from dynomatic_daemon.adapters.base import AdapterOptions, fetch
from dynomatic_daemon.errors import QueueReadError
from dynomatic_daemon.models import QueueReading, QueueSelector, QueueStats

COLUMNS = ("queue", "ready", "oldest_eligible_at", "running")
INTEGER_TYPES = {"int2", "int4", "int8", "numeric"}
TIME_TYPES = {"timestamp", "timestamptz"}
PROBE = "SELECT * FROM ({query}) AS user_query LIMIT 0"
READ = """
SELECT c.db_now, u.queue::text, u.ready::bigint, {oldest},
       (EXTRACT(EPOCH FROM c.db_now) - EXTRACT(EPOCH FROM {oldest}))::float8, u.running::bigint
FROM (SELECT now() AS db_now) c
LEFT JOIN ({query}) AS u ON true
"""
# a naive timestamp holds UTC: read it so, whatever the session TimeZone
NAIVE_UTC = "(u.oldest_eligible_at AT TIME ZONE 'UTC')"
AWARE = "u.oldest_eligible_at"


class Options(AdapterOptions):
    query: Annotated[str, Field(min_length=1)]


def detect(conn: psycopg.Connection[Any], options: Options) -> str | None:
    return None  # a query of one's own is never guessed


class Reader:
    name = "sql"

    def __init__(self, options: Options) -> None:
        self._text = sql.SQL(options.query.strip().rstrip(";"))
        self._probe = sql.SQL(PROBE).format(query=self._text)
        self._read: sql.Composed | None = None

    def read(
        self, conn: psycopg.Connection[Any], selectors: Sequence[QueueSelector], cap: int
    ) -> QueueReading:
        if self._read is None:
            naive = check_columns(conn, self._probe)["oldest_eligible_at"] == "timestamp"
            oldest = sql.SQL(NAIVE_UTC if naive else AWARE)
            self._read = sql.SQL(READ).format(query=self._text, oldest=oldest)
        rows = fetch(conn, self._read, None)
        wanted = {n for s in selectors for n in s.exact_names}
        found = {row[1]: _stats(row, cap) for row in rows if row[1] is not None}
        for name in wanted - found.keys():
            found[name] = QueueStats(name, 0, False, None, None, 0)
        return QueueReading(self.name, rows[0][0], tuple(found[n] for n in sorted(found)))


def check_columns(conn: psycopg.Connection[Any], probe: sql.Composed) -> dict[str, str]:
    """The column types, or a refusal naming what the query returned when they do not fit."""
    with conn.cursor() as cur:
        cur.execute(probe)
        described = [(d.name, _type_name(conn, d.type_code)) for d in cur.description or ()]
    got = ", ".join(f"{n} {t}" for n, t in described) or "nothing"
    names = [n for n, _ in described]
    types = dict(described)
    problems = [f"missing column {c!r}" for c in COLUMNS if c not in names]
    for column, allowed in (
        ("ready", INTEGER_TYPES),
        ("running", INTEGER_TYPES),
        ("oldest_eligible_at", TIME_TYPES),
    ):
        if column in types and types[column] not in allowed:
            problems.append(f"{column} is {types[column]}, expected one of {sorted(allowed)}")
    if problems:
        raise QueueReadError(
            f"adapters.sql.query must return columns {', '.join(COLUMNS)}: "
            f"{'; '.join(problems)} (it returned: {got})"
        )
    return types


def _type_name(conn: psycopg.Connection[Any], oid: int) -> str:
    info = conn.adapters.types.get(oid)
    return info.name if info is not None else str(oid)


def _stats(row: tuple[Any, ...], cap: int) -> QueueStats:
    _db_now, name, ready, oldest, age, running = row
    count = int(ready or 0)
    return QueueStats(
        queue=str(name),
        ready=min(count, cap),
        ready_capped=count >= cap,
        oldest_eligible_at=_aware(oldest),
        # no age without a time it counts from (a time out of Python's range loads as None)
        oldest_ready_age_seconds=None if oldest is None or age is None else max(0.0, float(age)),
        running=None if running is None else int(running),
    )


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)
