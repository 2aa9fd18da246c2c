"""Helpers the adapter tests share."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from types import ModuleType
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

from dynomatic_daemon.models import QueueSelector, QueueStats

T = TypeVar("T")


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


def rows_taken(conn: psycopg.Connection[Any], table: str, read: Callable[[], T]) -> tuple[int, T]:
    """How many rows of ``table`` and its indexes ``read()`` takes, with the plan a big table
    gets (a test table this small is cheaper to read whole), and what it returned."""
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.SQL(table)))  # no dead index entries
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        before = _rows_read(conn, table)
        result = read()
        return _rows_read(conn, table) - before, result


def _rows_read(conn: psycopg.Connection[Any], table: str) -> int:
    # PostgreSQL's counters for this transaction: they include earlier transactions' not yet
    # reported, so only a difference within one transaction means anything
    row = conn.execute(
        """SELECT sum(pg_stat_get_xact_tuples_returned(oid))::int FROM (
               SELECT %(t)s::regclass::oid AS oid
               UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid = %(t)s::regclass) t""",
        {"t": table},
    ).fetchone()
    assert row is not None
    return int(row[0])


def check_three_queues_read_apart(
    conn: psycopg.Connection[Any], adapter: ModuleType, a: int
) -> None:
    """The end of each "every queue reads only its own rows" test, whose jobs make: queue "a"
    ``a`` ready and one running, its oldest eligible 400 s ago; "b" one ready (50 s) and one
    running; "c" one running and nothing ready. Each is reported once, and a read naming "b"
    and "c" gives what the wildcard read gave them."""
    reader = adapter.Reader(adapter.Options())
    queues = reader.read(conn, [QueueSelector(None)], 100).queues
    assert [q.queue for q in queues] == ["a", "b", "c"]  # each once
    qa, qb, qc = queues
    assert (qa.ready, qa.running) == (a, 1) and 399 <= (qa.oldest_ready_age_seconds or 0) < 410
    assert (qb.ready, qb.running) == (1, 1) and 49 <= (qb.oldest_ready_age_seconds or 0) < 60
    assert qc == QueueStats("c", 0, False, None, None, 1)
    named = reader.read(conn, [QueueSelector(("b", "c"))], 100).queues
    seen = [(q.queue, q.ready, q.running, q.oldest_eligible_at) for q in named]
    assert seen == [(q.queue, q.ready, q.running, q.oldest_eligible_at) for q in (qb, qc)]
