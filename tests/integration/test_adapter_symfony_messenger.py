"""symfony_messenger adapter on a real PostgreSQL: both index layouts, one case per row state,
the cap, PHP local times, and messages sent and received by Symfony's own Doctrine transport
(Debian's Symfony 5.4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import php_support
import psycopg
import pytest
from adapter_support import check_three_queues_read_apart, database_now, limits_stopped_at
from pydantic import ValidationError

from dynomatic_daemon.adapters import symfony_messenger
from dynomatic_daemon.adapters.symfony_messenger import (
    Options,
    Reader,
    detect,
    recommended_indexes,
)
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
EVERY = [QueueSelector(None)]
LAYOUTS = ["symfony_messenger_5_4.sql", "symfony_messenger_7_4.sql"]

# times as Symfony 6.3+ writes them: naive UTC, whole seconds
INSERT = """
INSERT INTO messenger_messages (body, headers, queue_name, created_at, available_at,
                                delivered_at)
SELECT 'b', '{}', %(queue)s, t, t + make_interval(secs => %(run_in)s),
       t - make_interval(secs => %(delivered_ago)s)
FROM generate_series(1, %(count)s),
     date_trunc('second', now() AT TIME ZONE %(zone)s) AS t
"""


@pytest.fixture(params=[*LAYOUTS, "symfony_messenger_5_4.sql + recommended indexes"])
def messages(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Any:
    """5.4's layout (one pass), 7.3.9's (probes) and 5.4's with the recommended indexes."""
    layout, _, indexes = str(request.param).partition(" + ")
    pg_conn.execute((SCHEMAS / layout).read_text())
    for statement in recommended_indexes(Options()) if indexes else ():
        pg_conn.execute(statement)
    return pg_conn


def add(
    conn: psycopg.Connection[Any],
    *,
    queue: str = "default",
    run_in: float = 0,
    delivered_ago: float | None = None,
    count: int = 1,
    zone: str = "UTC",
) -> None:
    params = {
        "queue": queue,
        "run_in": run_in,
        "delivered_ago": delivered_ago,
        "count": count,
        "zone": zone,
    }
    conn.execute(INSERT, params)


def read(
    conn: psycopg.Connection[Any],
    selectors: list[QueueSelector] | None = None,
    cap: int = 100,
    **options: Any,
) -> dict[str, QueueStats]:
    reading = Reader(Options.model_validate(options)).read(conn, selectors or EVERY, cap)
    return {q.queue: q for q in reading.queues}


def age(q: QueueStats) -> float:
    assert q.oldest_ready_age_seconds is not None
    return q.oldest_ready_age_seconds


def test_empty_table_reports_no_queues_but_the_database_clock(messages: Any) -> None:
    reading = Reader(Options()).read(messages, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(messages) - reading.db_now).total_seconds() < 60


def test_a_sent_message_is_ready_from_available_at(messages: Any) -> None:
    add(messages, run_in=-120)
    add(messages)
    q = read(messages)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert 119 <= age(q) < 130


def test_a_delayed_message_is_not_ready(messages: Any) -> None:
    add(messages, run_in=300)
    assert read(messages)["default"] == QueueStats("default", 0, False, None, None, 0)


def test_a_message_being_handled_is_running(messages: Any) -> None:
    add(messages, run_in=-100, delivered_ago=3540)  # a minute inside redeliver_timeout
    add(messages, run_in=-30)
    q = read(messages)["default"]
    assert (q.ready, q.running) == (1, 1)
    assert 29 <= age(q) < 40


def test_a_delivery_older_than_redeliver_timeout_is_ready_again(messages: Any) -> None:
    add(messages, run_in=-7200, delivered_ago=3900)  # its worker died 5 minutes after the limit
    q = read(messages)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 299 <= age(q) < 310  # redeliverable since delivered_at + 3600 s
    q = read(messages, redeliver_timeout_seconds=7200)["default"]
    assert (q.ready, q.running) == (0, 1)


def test_the_count_stops_at_the_cap_across_both_ready_kinds(messages: Any) -> None:
    add(messages, count=40)
    add(messages, delivered_ago=5000, count=5)
    q = read(messages, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(messages, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_the_failure_queue_is_left_out_unless_named(messages: Any) -> None:
    add(messages, queue="failed", run_in=-60, count=4)
    add(messages, queue="async", count=2)
    assert {k: v.ready for k, v in read(messages).items()} == {"async": 2}
    assert read(messages, [QueueSelector(("failed",))])["failed"].ready == 4
    everything = read(messages, failure_queues=[])
    assert {k: v.ready for k, v in everything.items()} == {"async": 2, "failed": 4}


def test_queues_are_counted_apart_found_and_filtered(messages: Any) -> None:
    add(messages, queue="emails", count=3)
    add(messages, queue="reports", run_in=60)
    add(messages, queue="busy", delivered_ago=5)
    assert {k: (v.ready, v.running) for k, v in read(messages).items()} == {
        "busy": (0, 1),
        "emails": (3, 0),
        "reports": (0, 0),
    }
    assert read(messages, [QueueSelector(("e*",))])["emails"].ready == 3
    empty = read(messages, [QueueSelector(("nothing",))])
    assert empty == {"nothing": QueueStats("nothing", 0, False, None, None, 0)}


def test_symfony_5_4_times_in_php_local_time_need_the_time_zone_option(messages: Any) -> None:
    # Symfony < 6.3 writes PHP's date.timezone; New York is 4-5 hours behind UTC
    add(messages, run_in=-60, zone="America/New_York")
    assert read(messages)["default"].ready == 1  # read as UTC: "hours ago"
    assert age(read(messages)["default"]) > 3 * 3600
    q = read(messages, time_zone="America/New_York")["default"]
    assert q.ready == 1 and 59 <= age(q) < 70
    add(messages, queue="later", run_in=600, zone="America/New_York")
    assert read(messages, time_zone="America/New_York")["later"].ready == 0


def test_an_unknown_time_zone_is_refused_at_config_time() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Options.model_validate({"time_zone": "Mars/Olympus"})


def test_infinite_and_ancient_times_do_not_break_the_read(messages: Any) -> None:
    messages.execute(
        "INSERT INTO messenger_messages (body, headers, queue_name, created_at, available_at,"
        " delivered_at) VALUES ('b', '{}', 'default', now(), '-infinity', NULL),"
        " ('b', '{}', 'default', now(), 'infinity', NULL),"
        " ('b', '{}', 'old', now(), '0044-03-15 BC', '-infinity')"
    )
    add(messages, queue="old", run_in=-5)
    found = read(messages)
    assert found["default"].ready == 1  # -infinity is due; infinity never is
    assert found["default"].oldest_eligible_at == datetime(1970, 1, 1, tzinfo=UTC)
    assert found["old"].ready == 2 and found["old"].running == 0


def test_each_recommended_index_gives_the_same_answers(messages: Any) -> None:
    add(messages, run_in=-50, count=3)
    add(messages, run_in=-3000, delivered_ago=4000)
    add(messages, delivered_ago=10, count=2)
    add(messages, run_in=500)
    before = read(messages)
    for statement in recommended_indexes(Options()):
        messages.execute(statement)
        after = read(messages)
        assert {k: (v.ready, v.running) for k, v in after.items()} == {"default": (4, 2)}
        assert abs(age(after["default"]) - age(before["default"])) < 5


@pytest.mark.parametrize("layout", ["symfony_messenger_7_4.sql", "symfony_messenger_5_4.sql"])
def test_with_an_index_each_ready_count_stops_at_the_cap(
    pg_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    pg_conn.execute((SCHEMAS / layout).read_text())
    for statement in recommended_indexes(Options()):
        pg_conn.execute(statement)
    add(pg_conn, run_in=-60, count=40)
    add(pg_conn, run_in=-9000, delivered_ago=5000, count=40)
    # never delivered; redeliverable
    assert limits_stopped_at(pg_conn, monkeypatch, symfony_messenger, 10) == 2


def test_detect_finds_the_table_in_either_layout(messages: Any) -> None:
    assert detect(messages, Options()) == (
        "table current schema.messenger_messages with queue_name, available_at, delivered_at"
    )
    assert detect(messages, Options(table="other")) is None


def test_detect_finds_nothing_in_an_empty_database(pg_conn: psycopg.Connection[Any]) -> None:
    assert detect(pg_conn, Options()) is None


def test_each_recommended_index_holds_only_its_own_rows() -> None:
    assert recommended_indexes(Options()) == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "messenger_messages_dynomatic_ready"'
        ' ON "messenger_messages" (queue_name, available_at) WHERE delivered_at IS NULL',
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "messenger_messages_dynomatic_delivered"'
        ' ON "messenger_messages" (queue_name, delivered_at) WHERE delivered_at IS NOT NULL',
    )


def test_a_delivery_exactly_redeliver_timeout_old_is_ready_again(messages: Any) -> None:
    """Symfony writes whole seconds; inside one transaction now() stands still, so a message
    delivered 3600 s before this second is past the default timeout, one of 3599 s is not."""
    with messages.transaction():
        add(messages, queue="expired", run_in=-7200, delivered_ago=3600)
        add(messages, queue="held", run_in=-7200, delivered_ago=3599)
        found = read(messages)
        seen = {k: (v.ready, v.running) for k, v in found.items()}
        assert seen == {"expired": (1, 0), "held": (0, 1)}


def test_each_queue_reads_only_its_own_rows_of_every_kind(messages: Any) -> None:
    # "a": two never-delivered due messages, two redeliverable ones (eligible 400 and 200 s
    # ago, the oldest of the queue), one being handled and one delayed
    add(messages, queue="a", run_in=-100)
    add(messages, queue="a", run_in=-80)
    add(messages, queue="a", run_in=-5000, delivered_ago=4000)
    add(messages, queue="a", run_in=-6000, delivered_ago=3800)
    add(messages, queue="a", run_in=-9000, delivered_ago=60)
    add(messages, queue="a", run_in=600)
    # "b": one due message, one being handled since long after it was due, one delayed
    add(messages, queue="b", run_in=-50)
    add(messages, queue="b", run_in=-8000, delivered_ago=30)
    add(messages, queue="b", run_in=300)
    # "c": nothing ready, though its messages are older than any other queue's
    add(messages, queue="c", run_in=-20000, delivered_ago=10)
    add(messages, queue="c", run_in=900)
    check_three_queues_read_apart(messages, symfony_messenger, a=4)


# --- with Symfony's own Doctrine transport -----------------------------------------------------


@pytest.fixture
def symfony(db_url: str) -> Any:
    php_support.require("symfony_messenger.php")

    def call(queue: str, command: str, *args: object, php_tz: str = "UTC") -> list[int]:
        out = php_support.run(
            "symfony_messenger.php",
            db_url,
            "messenger_messages",
            queue,
            3600,
            command,
            *args,
            env={"PHP_TZ": php_tz},
        )
        return list(out.get("ids", []))  # type: ignore[call-overload]

    return call


def test_symfonys_own_setup_makes_the_table_of_the_5_4_schema_file(
    symfony: Any, pg_conn: psycopg.Connection[Any]
) -> None:
    columns = """SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', '
                                   ORDER BY column_name) FROM information_schema.columns
                 WHERE table_name = 'messenger_messages'"""
    indexes = """SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes
                 WHERE tablename = 'messenger_messages'"""
    symfony("default", "setup")
    theirs = (pg_conn.execute(columns).fetchone(), pg_conn.execute(indexes).fetchone())
    pg_conn.execute("DROP TABLE messenger_messages CASCADE")
    pg_conn.execute((SCHEMAS / "symfony_messenger_5_4.sql").read_text())
    assert (pg_conn.execute(columns).fetchone(), pg_conn.execute(indexes).fetchone()) == theirs


@pytest.mark.parametrize("layout", LAYOUTS)
def test_messages_symfony_sends_receives_and_acknowledges(
    symfony: Any, pg_conn: psycopg.Connection[Any], layout: str
) -> None:
    pg_conn.execute((SCHEMAS / layout).read_text())
    symfony("default", "send", 5)
    symfony("emails", "send", 2)
    symfony("default", "send", 3, 600_000)  # a DelayStamp of 10 minutes
    assert {k: (v.ready, v.running) for k, v in read(pg_conn).items()} == {
        "default": (5, 0),
        "emails": (2, 0),
    }
    received = symfony("default", "get", 2)
    symfony("default", "finish", 1)  # received, handled, acknowledged: deleted
    q = read(pg_conn)["default"]
    assert (q.ready, q.running) == (2, 2)
    # the receiving worker died an hour ago: Symfony hands the messages out again
    pg_conn.execute(
        "UPDATE messenger_messages SET delivered_at = delivered_at - interval '3601 seconds'"
        " WHERE id = ANY(%s)",
        (received,),
    )
    q = read(pg_conn)["default"]
    assert (q.ready, q.running) == (4, 0)
    assert set(received) <= set(symfony("default", "get", 4))
    assert (read(pg_conn)["default"].ready, read(pg_conn)["default"].running) == (0, 4)


def test_symfony_5_4_writing_php_local_time(symfony: Any, pg_conn: psycopg.Connection[Any]) -> None:
    pg_conn.execute((SCHEMAS / "symfony_messenger_5_4.sql").read_text())
    symfony("default", "send", 2, 120_000, php_tz="Asia/Tokyo")  # due in 2 minutes
    symfony("default", "send", 1, php_tz="Asia/Tokyo")
    q = read(pg_conn, time_zone="Asia/Tokyo")["default"]
    assert (q.ready, q.running) == (1, 0)
    assert age(q) < 5
    symfony("default", "get", 1, php_tz="Asia/Tokyo")
    assert read(pg_conn, time_zone="Asia/Tokyo")["default"].running == 1
