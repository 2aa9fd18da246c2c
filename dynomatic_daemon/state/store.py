"""The state store: the ``guardrails`` and ``spend`` tables of the daemon's own schema.

Every time it stores or compares is on the database clock, so ``dynomatic pause`` run on one
machine and the daemon on another agree on when a pause ends. The connection is opened lazily,
migrated like history's, and dropped after any failure; callers decide what a failure means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, LiteralString

import psycopg
from psycopg import sql

from dynomatic_daemon.guard_config import (
    STATE_CONNECT_TIMEOUT_SECONDS,
    STATE_STATEMENT_TIMEOUT_MS,
    StoreTarget,
)
from dynomatic_daemon.store import connection, migrations

EVERY_TYPE = "*"
KINDS = ("pause", "override", "release_hold")

ACTIVE: LiteralString = """
SELECT kind, process_type, since, until, extract(epoch FROM until - now()), quantity, reason,
       created_by
FROM {schema}.guardrails WHERE app = %s AND until > now() ORDER BY kind, process_type"""
PUT: LiteralString = """
INSERT INTO {schema}.guardrails AS g
    (app, kind, process_type, since, until, quantity, reason, created_by)
VALUES (%s, %s, %s, now(), now() + make_interval(secs => %s), %s, %s, %s)
ON CONFLICT (app, kind, process_type) DO UPDATE SET since = EXCLUDED.since,
    until = EXCLUDED.until, quantity = EXCLUDED.quantity, reason = EXCLUDED.reason,
    created_by = EXCLUDED.created_by
RETURNING kind, process_type, since, until, extract(epoch FROM until - now()), quantity, reason,
    created_by"""
REMOVE: LiteralString = """
DELETE FROM {schema}.guardrails
WHERE app = %s AND kind = %s AND (%s::text IS NULL OR process_type = %s) AND until > now()
RETURNING process_type"""
ADD_SPEND: LiteralString = """
INSERT INTO {schema}.spend AS s (app, process_type, day, dyno_seconds, usd)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (app, process_type, day) DO UPDATE
SET dyno_seconds = s.dyno_seconds + EXCLUDED.dyno_seconds, usd = s.usd + EXCLUDED.usd"""
SPEND: LiteralString = """
SELECT process_type,
       coalesce(sum(dyno_seconds) FILTER (WHERE day = %(today)s), 0) / 3600.0,
       coalesce(sum(usd), 0)
FROM {schema}.spend
WHERE app = %(app)s AND day >= date_trunc('month', %(today)s::date)::date AND day <= %(today)s
GROUP BY process_type"""


@dataclass(frozen=True)
class Guard:
    """One guardrail in force; ``process_type`` is ``*`` for every type."""

    kind: str
    process_type: str
    since: datetime
    until: datetime
    seconds_left: float
    quantity: int | None
    reason: str
    created_by: str

    def covers(self, process_type: str) -> bool:
        return self.process_type in (EVERY_TYPE, process_type)


@dataclass(frozen=True)
class SpendRow:
    process_type: str
    day: date
    dyno_seconds: float
    usd: float


@dataclass(frozen=True)
class Spent:
    """So far in the period, per process type: dyno-hours today, US dollars this month."""

    day_dyno_hours: float
    month_usd: float


class StateStore:
    def __init__(self, target: StoreTarget, app: str, application_name: str) -> None:
        self._target, self._app, self._name = target, app, application_name
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def schema(self) -> str:
        return self._target.schema_name

    def describe(self, exc: BaseException) -> str:
        return connection.describe(exc, self._target.url)

    def active(self) -> list[Guard]:
        rows = self._run(ACTIVE, (self._app,))
        return [_guard(r) for r in rows]

    def put(
        self,
        kind: str,
        process_type: str,
        seconds: float,
        *,
        quantity: int | None = None,
        reason: str = "",
        by: str = "",
    ) -> Guard:
        params = (self._app, kind, process_type, seconds, quantity, reason, by)
        return _guard(self._run(PUT, params)[0])

    def remove(self, kind: str, process_type: str | None) -> list[str]:
        rows = self._run(REMOVE, (self._app, kind, process_type, process_type))
        return [str(r[0]) for r in rows]

    def add_spend(self, rows: Sequence[SpendRow]) -> None:
        if not rows:
            return
        conn = self._ready()
        query = _sql(ADD_SPEND, self.schema)
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    query,
                    [(self._app, r.process_type, r.day, r.dyno_seconds, r.usd) for r in rows],
                )
        except BaseException:
            self.close()
            raise

    def spent(self, today: date) -> dict[str, Spent]:
        rows = self._run(SPEND, {"app": self._app, "today": today})
        return {str(r[0]): Spent(float(r[1]), float(r[2])) for r in rows}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self, statement: LiteralString, params: Any) -> list[tuple[Any, ...]]:
        conn = self._ready()
        try:
            with conn.cursor() as cur:
                cur.execute(_sql(statement, self.schema), params)
                return list(cur.fetchall()) if cur.description else []
        except BaseException:
            self.close()  # a broken or timed-out session is not reused
            raise

    def _ready(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        t = self._target
        conn = connection.connect(
            t.url,
            statement_timeout_ms=STATE_STATEMENT_TIMEOUT_MS,
            connect_timeout_seconds=STATE_CONNECT_TIMEOUT_SECONDS,
            application_name=self._name,
        )
        try:
            version = migrations.current_version(conn, t.schema_name)
            if version < migrations.LATEST:
                if not t.create:
                    raise psycopg.errors.UndefinedTable(
                        f"state schema {t.schema_name!r} is at version {version}, needs "
                        f"{migrations.LATEST}: run `dynomatic history init` (or set create = true)"
                    )
                migrations.migrate(conn, t.schema_name)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn


def _sql(statement: LiteralString, schema: str) -> sql.Composed:
    return sql.SQL(statement).format(schema=sql.Identifier(schema))


def _guard(row: tuple[Any, ...]) -> Guard:
    kind, ptype, since, until, left, quantity, reason, by = row
    return Guard(kind, ptype, since, until, max(0.0, float(left)), quantity, reason or "", by or "")
