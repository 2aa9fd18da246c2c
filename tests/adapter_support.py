"""Helpers the adapter tests share."""

from __future__ import annotations

import re
from datetime import datetime
from types import ModuleType
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dynomatic_daemon.models import QueueSelector


def database_now(holder: Any) -> datetime:
    """``now()`` on the database clock (a later statement than any before it), from a
    connection or a test fixture object that holds one as ``conn``."""
    conn: psycopg.Connection[Any] = getattr(holder, "conn", holder)
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def limits_stopped_at(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch, adapter: ModuleType, cap: int
) -> int:
    """How many Limit steps of one read's plan stopped at ``cap`` rows: EXPLAIN ANALYZE of the
    very statements and parameters ``adapter``'s reader runs through its ``fetch``."""
    plan: list[str] = []
    fetch = adapter.fetch

    def explained(conn: psycopg.Connection[Any], query: sql.Composed, params: Any) -> Any:
        explain = sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ")
        plan.extend(str(row[0]) for row in conn.execute(explain + query, params))
        return fetch(conn, query, params)

    monkeypatch.setattr(adapter, "fetch", explained)
    adapter.Reader(adapter.Options()).read(conn, [QueueSelector(None)], cap)
    # PostgreSQL 18 prints row counts with two decimals: "actual rows=10.00 loops=1"
    stopped = re.compile(rf"Limit \(actual rows={cap}(\.00)? loops=1\)")
    return sum(bool(stopped.search(step)) for step in plan)


def rows_read(conn: psycopg.Connection[Any], table: str) -> int:
    """Rows this session has read from ``table`` and its indexes, by PostgreSQL's counters;
    they include earlier transactions' not yet reported, so take a difference within one."""
    row = conn.execute(
        """SELECT sum(pg_stat_get_xact_tuples_returned(oid))::int FROM (
               SELECT %(t)s::regclass::oid AS oid
               UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = %(t)s::regclass) t""",
        {"t": table},
    ).fetchone()
    assert row is not None
    return int(row[0])
