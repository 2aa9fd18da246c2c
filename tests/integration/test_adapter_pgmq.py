"""pgmq adapter on a real PostgreSQL: one table per queue, as pgmq.create() makes them."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from adapter_support import database_now, limits_stopped_at
from psycopg import sql

from dynomatic_daemon.adapters import pgmq
from dynomatic_daemon.adapters.pgmq import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]


def create_queue(conn: psycopg.Connection[Any], name: str) -> str:
    """pgmq.create(name): its two tables, indexes and registry row; returns the queue table."""
    row = conn.execute("SELECT lower('q_' || %s::text), lower('a_' || %s::text)", [name, name])
    q, a = row.fetchone() or ("", "")
    conn.execute(
        sql.SQL((FIXTURES / "pgmq_queue.sql").read_text()).format(
            q=sql.Identifier("pgmq", q),
            a=sql.Identifier("pgmq", a),
            q_vt_idx=sql.Identifier(q + "_vt_idx"),
            a_idx=sql.Identifier("archived_at_idx_" + name),
            queue_name=sql.Literal(name),
        )
    )
    return q


def send(
    conn: psycopg.Connection[Any],
    queue: str = "default",
    *,
    vt_in: float = -60,
    read_ct: int = 0,
    enqueued_in: float | None = None,
    count: int = 1,
) -> None:
    """Messages as pgmq.send (vt = send time + delay) and pgmq.read (vt moved, read_ct + 1) leave
    them; times relative to the database clock. The queue is created on first use."""
    table = conn.execute("SELECT to_regclass(format('pgmq.%%I', lower('q_' || %s::text)))", [queue])
    found = table.fetchone()
    name = create_queue(conn, queue) if found is None or found[0] is None else None
    row = conn.execute("SELECT lower('q_' || %s::text)", [queue]).fetchone()
    name = name or (row[0] if row else "")
    enqueued = min(vt_in, 0) if enqueued_in is None else enqueued_in
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (read_ct, enqueued_at, vt, message)"
            " SELECT %s, now() + make_interval(secs => %s), now() + make_interval(secs => %s),"
            " '{{\"job\": 1}}' FROM generate_series(1, %s)"
        ).format(sql.Identifier("pgmq", name)),
        [read_ct, enqueued, vt_in, count],
    )


def read(
    conn: psycopg.Connection[Any], selectors: list[QueueSelector] | None = None, cap: int = 100
) -> dict[str, QueueStats]:
    reading = Reader(Options()).read(conn, selectors or EVERY, cap)
    return {q.queue: q for q in reading.queues}


@pytest.fixture
def mq(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute((FIXTURES / "pgmq.sql").read_text())
    return pg_conn


def test_no_queues_reports_nothing_but_the_database_clock(mq: psycopg.Connection[Any]) -> None:
    reading = Reader(Options()).read(mq, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(mq) - reading.db_now).total_seconds() < 60


def test_a_visible_message_is_ready(mq: psycopg.Connection[Any]) -> None:
    send(mq, vt_in=-120)
    q = read(mq)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert q.oldest_ready_age_seconds is not None and 119 <= q.oldest_ready_age_seconds < 130


def test_an_empty_queue_is_found_with_zeros(mq: psycopg.Connection[Any]) -> None:
    create_queue(mq, "quiet")
    q = read(mq)["quiet"]
    assert (q.ready, q.ready_capped, q.oldest_eligible_at, q.running) == (0, False, None, 0)


def test_a_delayed_send_is_neither_ready_nor_in_flight(mq: psycopg.Connection[Any]) -> None:
    send(mq, vt_in=+300, enqueued_in=0)
    q = read(mq)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_read_message_is_in_flight_until_its_visibility_timeout(
    mq: psycopg.Connection[Any],
) -> None:
    send(mq, vt_in=+30, read_ct=1, enqueued_in=-10, count=2)
    q = read(mq)["default"]
    assert (q.ready, q.running) == (0, 2)


def test_a_message_whose_visibility_timeout_ran_out_is_ready_again(
    mq: psycopg.Connection[Any],
) -> None:
    send(mq, vt_in=-45, read_ct=3, enqueued_in=-3600)
    q = read(mq)["default"]
    assert (q.ready, q.running) == (1, 0)
    # visible again since its timeout ended, not since it was sent
    assert q.oldest_ready_age_seconds is not None and 44 <= q.oldest_ready_age_seconds < 55


def test_archived_and_deleted_messages_are_gone(mq: psycopg.Connection[Any]) -> None:
    send(mq, count=3)
    mq.execute(
        "WITH moved AS (DELETE FROM pgmq.q_default WHERE msg_id = 1 RETURNING *)"
        " INSERT INTO pgmq.a_default (msg_id, read_ct, enqueued_at, vt, message)"
        " SELECT msg_id, read_ct, enqueued_at, vt, message FROM moved"
    )
    mq.execute("DELETE FROM pgmq.q_default WHERE msg_id = 2")
    assert read(mq)["default"].ready == 1


def test_oldest_is_the_earliest_visibility_time(mq: psycopg.Connection[Any]) -> None:
    send(mq, vt_in=-100)
    send(mq, vt_in=-900)
    send(mq, vt_in=-300, read_ct=1, enqueued_in=-2000)
    age = read(mq)["default"].oldest_ready_age_seconds
    assert age is not None and 899 <= age < 910


def test_the_count_stops_at_the_cap(mq: psycopg.Connection[Any]) -> None:
    send(mq, count=40)
    send(mq, count=5, read_ct=1, vt_in=-1)  # timed-out reads count towards the same cap
    q = read(mq, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(mq, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_queues_are_counted_apart_and_named_ones_reported_with_zeros(
    mq: psycopg.Connection[Any],
) -> None:
    send(mq, "mailers", count=3)
    send(mq, "critical", count=2)
    send(mq, "low", vt_in=+60, enqueued_in=0)
    assert read(mq, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    assert {k: v.ready for k, v in read(mq).items()} == {"critical": 2, "low": 0, "mailers": 3}
    assert read(mq, [QueueSelector(("mail*",))])["mailers"].ready == 3
    empty = read(mq, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert (empty.ready, empty.ready_capped, empty.oldest_eligible_at, empty.running) == (
        0,
        False,
        None,
        0,
    )


def test_a_registered_queue_without_its_table_reads_as_empty(mq: psycopg.Connection[Any]) -> None:
    mq.execute(
        "INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged) VALUES ('ghost',"
        " false, false)"
    )
    send(mq, "real")
    assert {k: v.ready for k, v in read(mq).items()} == {"ghost": 0, "real": 1}


def test_a_hand_counted_mix(mq: psycopg.Connection[Any]) -> None:
    send(mq, "default", count=4)  # ready
    send(mq, "default", vt_in=-5, read_ct=2, enqueued_in=-900, count=2)  # timed out -> ready
    send(mq, "default", vt_in=+30, read_ct=1, enqueued_in=-10, count=3)  # in flight
    send(mq, "default", vt_in=+120, enqueued_in=0, count=3)  # delayed
    send(mq, "mailers", count=7)  # ready
    send(mq, "mailers", vt_in=+5, read_ct=1, enqueued_in=-5, count=1)  # in flight
    found = read(mq, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (6, 3),
        "mailers": (7, 1),
    }


def test_the_queue_list_is_kept_between_ticks_and_refreshed(
    mq: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = Reader(Options())
    send(mq, "first")
    assert [q.queue for q in reader.read(mq, EVERY, 10).queues] == ["first"]
    send(mq, "second")
    # within the refresh interval the statement is built from the list read before
    assert [q.queue for q in reader.read(mq, EVERY, 10).queues] == ["first"]
    monkeypatch.setattr(pgmq, "QUEUE_LIST_TTL_SECONDS", 0.0)
    assert [q.queue for q in reader.read(mq, EVERY, 10).queues] == ["first", "second"]
    monkeypatch.setattr(pgmq, "QUEUE_LIST_TTL_SECONDS", 3600.0)
    # a dropped queue's table is missing from the next statement: the list is read again at once
    mq.execute("DROP TABLE pgmq.q_first; DELETE FROM pgmq.meta WHERE queue_name = 'first'")
    assert [q.queue for q in reader.read(mq, EVERY, 10).queues] == ["second"]


def test_queue_names_are_identifiers_and_values_not_sql(mq: psycopg.Connection[Any]) -> None:
    odd = 'Wé"ird; DROP TABLE pgmq.meta; Ünï'
    send(mq, odd, count=2)
    send(mq, "plain", count=1)
    found = read(mq)
    assert found[odd].ready == 2
    assert found["plain"].ready == 1
    assert read(mq, [QueueSelector((odd,))])[odd].ready == 2
    assert mq.execute("SELECT count(*) FROM pgmq.meta").fetchone() == (2,)


def test_detect_finds_the_registry(mq: psycopg.Connection[Any]) -> None:
    create_queue(mq, "a")
    create_queue(mq, "b")
    assert detect(mq, Options()) == "table pgmq.meta (2 queues; installed without the extension)"


def test_detect_names_the_extensions_version(mq: psycopg.Connection[Any]) -> None:
    # The extension itself is not installed here; its row in pg_extension is what detect reads
    # (a test database, a superuser, and the row rolled back with the transaction).
    create_queue(mq, "a")
    with mq.transaction(force_rollback=True):
        mq.execute(
            "INSERT INTO pg_extension (oid, extname, extowner, extnamespace, extrelocatable,"
            " extversion) SELECT 4000000000, 'pgmq', 10, 'pgmq'::regnamespace, false, '1.5.1'"
        )
        assert detect(mq, Options()) == "table pgmq.meta (1 queues; extension pgmq 1.5.1)"
    assert detect(mq, Options()) == "table pgmq.meta (1 queues; installed without the extension)"


def test_detect_finds_nothing_in_an_empty_database_or_next_to_delayed_job(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None
    pg_conn.execute("CREATE SCHEMA pgmq; CREATE TABLE pgmq.meta (queue_name text)")
    assert detect(pg_conn, Options()) is None


def test_the_boundaries_are_pgmqs_own(mq: psycopg.Connection[Any]) -> None:
    """Inside one transaction now() stands still, so messages can sit exactly on ``vt = now``,
    which pgmq.read takes (``vt <= now``): ready, not in flight."""
    with mq.transaction():
        send(mq, "fresh", vt_in=0, enqueued_in=0)
        send(mq, "again", vt_in=0, read_ct=1, enqueued_in=-30)
        found = read(mq)
    got = {n: (q.ready, q.running, q.oldest_ready_age_seconds) for n, q in found.items()}
    assert got == {"fresh": (1, 0, 0.0), "again": (1, 0, 0.0)}


def test_the_queue_list_is_read_again_after_a_minute(
    mq: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(pgmq.time, "monotonic", lambda: clock[0])
    reader = Reader(Options())
    send(mq, "first")
    assert [q.queue for q in reader.read(mq, EVERY, 10).queues] == ["first"]
    send(mq, "second")
    clock[0] += 59.5
    assert [q.queue for q in reader.read(mq, EVERY, 10).queues] == ["first"]
    clock[0] += 0.5  # exactly a minute
    assert [q.queue for q in reader.read(mq, EVERY, 10).queues] == ["first", "second"]


def test_a_named_queue_and_a_wildcard_together_find_every_queue(
    mq: psycopg.Connection[Any],
) -> None:
    send(mq, "named")
    send(mq, "other", count=2)
    found = read(mq, [QueueSelector(("named",)), QueueSelector(None)])
    assert {k: v.ready for k, v in found.items()} == {"named": 1, "other": 2}


def test_the_ready_count_stops_at_the_cap_in_the_plan(
    mq: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    send(mq, count=40)
    assert limits_stopped_at(mq, monkeypatch, pgmq, 10) == 1
