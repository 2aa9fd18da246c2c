"""The history store on a real PostgreSQL: migrations, the writer, the rollup, least privilege."""

from __future__ import annotations

import secrets
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import structlog
from psycopg import conninfo, sql
from pydantic import SecretStr
from structlog.testing import capture_logs

from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.events import Event, Observation, TickReport
from dynomatic_daemon.guard_config import StoreTarget
from dynomatic_daemon.history.queries import read_window
from dynomatic_daemon.history.recorder import Recorder
from dynomatic_daemon.history.rows import Batch
from dynomatic_daemon.history.writer import Writer
from dynomatic_daemon.observe_config import HistorySettings
from dynomatic_daemon.state.store import SpendRow, StateStore
from dynomatic_daemon.store import migrations

# logs nowhere, whatever another test left structlog configured to
QUIET = structlog.wrap_logger(structlog.ReturnLogger(), processors=[])
pytestmark = pytest.mark.postgres
START = datetime(2026, 1, 5, 12, 0, 5, tzinfo=UTC)


def obs(ptype: str = "worker", ready: int | None = 5, dynos: int = 2, **kw: Any) -> Observation:
    values: dict[str, Any] = {
        "process_type": ptype,
        "ready": ready,
        "ready_capped": False,
        "latency": None if ready is None else float(ready),
        "running": 1,
        "current": dynos,
        "desired": dynos,
        "dynos": dynos,
        "action": "unchanged" if ready is not None else "error",
        "rule": None,
        "reason": "r",
        "request_id": None,
        "size": "Standard-1X",
        "ceiling": 10,
    }
    values.update(kw)
    return Observation(**values)


def settings(url: str, **kw: Any) -> HistorySettings:
    return HistorySettings(enabled=True, url=SecretStr(url), **kw)


def table_count(conn: psycopg.Connection[Any], table: str, schema: str = "dynomatic") -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_migrations_apply_once_in_order_and_are_recorded(pg_conn: psycopg.Connection[Any]) -> None:
    assert migrations.current_version(pg_conn, "dynomatic") == 0
    assert migrations.migrate(pg_conn, "dynomatic") == [m.version for m in migrations.MIGRATIONS]
    assert migrations.migrate(pg_conn, "dynomatic") == []
    assert migrations.current_version(pg_conn, "dynomatic") == migrations.LATEST
    assert table_count(pg_conn, "schema_migrations") == len(migrations.MIGRATIONS)


def test_the_printed_script_builds_the_same_schema(pg_conn: psycopg.Connection[Any]) -> None:
    with pg_conn.transaction():
        pg_conn.execute(migrations.script("printed"))  # type: ignore[arg-type]
    assert migrations.current_version(pg_conn, "printed") == migrations.LATEST
    assert migrations.migrate(pg_conn, "printed") == []  # nothing left to do


def test_a_rollup_of_ticks_lands_as_one_row_per_type_per_minute(db_url: str) -> None:
    clock = SteppableClock(START)
    writer = Writer(settings(db_url), "my-app", clock, QUIET)
    writer.start()
    recorder = Recorder(writer, "my-app", interval_seconds=10)
    for i in range(12):  # 12 ticks of 10 s: 12:00:05 .. 12:01:55, two minutes
        ready = None if i == 3 else i
        report = TickReport("my-app", clock.now(), "leader", (obs(ready=ready, dynos=1 + i // 6),))
        recorder.on_tick(report)
        clock.advance(10)
    recorder.on_event(Event("my-app", clock.now(), "scaled", "worker", 1, 2, "up", {"k": 1}))
    recorder.flush()
    assert writer.close(timeout=10)
    assert (writer.written, writer.dropped, writer.failed) == (3, 0, 0)
    with psycopg.connect(db_url) as conn:
        window = read_window(
            conn,
            "dynomatic",
            "my-app",
            since=START - timedelta(hours=1),
            until=clock.now() + timedelta(minutes=1),
        )
    first, second = window.samples
    assert (first.minute, first.ticks, first.ready_max, first.errors) == (
        START.replace(second=0),
        6,
        5,
        1,
    )
    assert (second.ticks, second.ready_max, second.dynos_max) == (6, 11, 2)
    # dyno time: each tick adds the dynos that ran since the tick before (none before the first)
    assert first.dyno_seconds == 5 * 10 * 1
    assert second.dyno_seconds == 6 * 10 * 2 - 10  # the first of them still ran 1 dyno
    (event,) = window.events
    assert (event.kind, event.current, event.desired, event.fields) == ("scaled", 1, 2, {"k": 1})


def test_a_standby_records_nothing(db_url: str) -> None:
    sent: list[Batch] = []

    class Keep:
        def submit(self, batch: Batch) -> None:
            sent.append(batch)

    recorder = Recorder(Keep(), "my-app", 10)
    recorder.on_tick(TickReport("my-app", START, "standby", ()))
    recorder.flush()
    assert [len(b) for b in sent] == [0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_database_never_blocks_submit_and_every_loss_is_counted() -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    clock = SteppableClock(START)
    with capture_logs() as logs:
        writer = Writer(
            settings(dead, queue_size=10, connect_timeout_seconds=1),
            "my-app",
            clock,
            structlog.get_logger(),
        )
        writer.start()
        started = time.monotonic()
        for i in range(200):
            writer.submit(Batch(events=(Event("my-app", START, "scaled", reason=str(i)),)))
        took = time.monotonic() - started
        writer.close(timeout=5)
    assert took < 0.5, f"submit blocked for {took:.2f}s"
    assert writer.written == 0
    assert writer.dropped + writer.failed + writer._queue.qsize() == 200
    assert writer.dropped >= 150
    names = {e["event"] for e in logs}
    assert {"history_dropped", "history_write_failed"} <= names
    assert not any("postgres@127" in str(e) for e in logs)


def test_a_role_with_only_the_printed_grants_can_record(
    pg_conn: psycopg.Connection[Any], db_url: str
) -> None:
    role = f"dynomatic_hist_{secrets.token_hex(4)}"
    migrations.migrate(pg_conn, "dynomatic")
    pg_conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        pg_conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(pg_conn.info.dbname), sql.Identifier(role)
            )
        )
        pg_conn.execute(migrations.grants("dynomatic", role))  # type: ignore[arg-type]
        as_role = conninfo.make_conninfo(db_url, user=role)
        writer = Writer(settings(as_role), "my-app", SteppableClock(START), QUIET)
        writer.start()
        recorder = Recorder(writer, "my-app", 10)
        recorder.on_tick(TickReport("my-app", START, "leader", (obs(),)))
        recorder.on_event(Event("my-app", START, "held", "worker", reason="budget"))
        recorder.flush()
        assert writer.close(timeout=10)
        assert (writer.written, writer.failed) == (2, 0)
        with psycopg.connect(as_role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE SCHEMA sneaky")
        # the same grants serve the state store: pauses, overrides and spend
        target = StoreTarget(url=SecretStr(as_role), schema_name="dynomatic", create=False)
        store = StateStore(target, "my-app", "dynomatic-state")
        try:
            store.put("pause", "worker", 60, reason="grants", by="test")
            store.add_spend([SpendRow("worker", START.date(), 3600.0, 0.5)])
            assert [g.kind for g in store.active()] == ["pause"]
            assert store.spent(START.date())["worker"].day_dyno_hours == pytest.approx(1.0)
            assert store.remove("pause", None) == ["worker"]
        finally:
            store.close()
    finally:
        pg_conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        pg_conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        pg_conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_rows_past_the_retention_are_pruned(db_url: str) -> None:
    clock = SteppableClock(START)
    writer = Writer(settings(db_url, retention_days=1), "my-app", clock, QUIET)
    old = START - timedelta(days=2)
    writer.start()
    recorder = Recorder(writer, "my-app", 10)
    writer.submit(Batch(events=(Event("my-app", old, "scaled"), Event("other-app", old, "scaled"))))
    writer.close(timeout=10)  # the first write prunes: the old event of this app goes
    with psycopg.connect(db_url) as conn:
        kept = conn.execute("SELECT app FROM dynomatic.events ORDER BY app").fetchall()
    assert kept == [("other-app",)]
    assert recorder is not None
