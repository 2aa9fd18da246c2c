"""django_q2 adapter on a real PostgreSQL: both lock styles (django-q2 1.4.10+ "until",
earlier django-q2 and django-q "since"), one case per task state, and
tasks queued, taken and acknowledged by django-q2 1.11's own ORM broker (from the dev extra)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import django_support
import psycopg
import pytest
from adapter_support import database_now, limits_stopped_at

from dynomatic_daemon.adapters import django_q2
from dynomatic_daemon.adapters.django_q2 import Options, Reader, detect, recommended_indexes
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
EVERY = [QueueSelector(None)]
RETRY = 60

INSERT = """
INSERT INTO django_q_ormq (key, payload, lock)
SELECT %(key)s, 'signed-package', now() + make_interval(secs => %(lock_in)s)
FROM generate_series(1, %(count)s)
"""


@pytest.fixture(params=["stock indexes", "recommended index"])
def ormq(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Any:
    """The broker's table, read in one pass (stock) or by per-queue probes (the index)."""
    pg_conn.execute((SCHEMAS / "django_q2.sql").read_text())
    if request.param == "recommended index":
        pg_conn.execute(recommended_indexes(Options())[0])
    return pg_conn


def add(
    conn: psycopg.Connection[Any], lock_in: float, *, key: str = "default", count: int = 1
) -> None:
    conn.execute(INSERT, {"key": key, "lock_in": lock_in, "count": count})


# What each style writes, as seconds from now for ``lock``:
UNTIL = {
    "queued": lambda ago: -ago,  # enqueue: lock = now
    "taken": lambda ago: RETRY - ago,  # dequeue: lock = now + retry
}
SINCE = {
    "queued": lambda ago: -ago - RETRY,  # enqueue: lock = now - retry
    "taken": lambda ago: -ago,  # dequeue: lock = now
}
STYLES = {"until": UNTIL, "since": SINCE}


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


def test_empty_table_reports_no_queues_but_the_database_clock(ormq: Any) -> None:
    reading = Reader(Options()).read(ormq, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(ormq) - reading.db_now).total_seconds() < 60


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_queued_task_is_ready_from_its_enqueue_time(ormq: Any, style: str) -> None:
    add(ormq, STYLES[style]["queued"](120))
    add(ormq, STYLES[style]["queued"](1))
    q = read(ormq, lock_style=style)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert 119 <= age(q) < 130


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_task_taken_by_a_live_cluster_is_running(ormq: Any, style: str) -> None:
    add(ormq, STYLES[style]["taken"](10), count=2)
    add(ormq, STYLES[style]["queued"](30))
    q = read(ormq, lock_style=style)["default"]
    assert (q.ready, q.running) == (1, 2)
    assert 29 <= age(q) < 40


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_claim_older_than_retry_is_free_again_from_its_expiry(ormq: Any, style: str) -> None:
    add(ormq, STYLES[style]["taken"](RETRY + 300))  # the cluster died 5 minutes after the hold
    q = read(ormq, lock_style=style)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 299 <= age(q) < 310


def test_the_since_style_follows_the_retry_setting(ormq: Any) -> None:
    add(ormq, -100)  # taken 100 s ago
    assert read(ormq, lock_style="since")["default"].ready == 1  # retry 60: free again
    q = read(ormq, lock_style="since", retry_seconds=120)["default"]
    assert (q.ready, q.running) == (0, 1)


def test_a_null_lock_is_never_taken_so_never_counted(ormq: Any) -> None:
    ormq.execute("INSERT INTO django_q_ormq (key, payload, lock) VALUES ('default', 'p', NULL)")
    assert read(ormq)["default"] == QueueStats("default", 0, False, None, None, 0)


def test_clusters_are_counted_apart_found_and_filtered(ormq: Any) -> None:
    add(ormq, -5, key="emails", count=3)
    add(ormq, 50, key="busy")
    assert {k: (v.ready, v.running) for k, v in read(ormq).items()} == {
        "busy": (0, 1),
        "emails": (3, 0),
    }
    assert read(ormq, [QueueSelector(("e*",))])["emails"].ready == 3
    empty = read(ormq, [QueueSelector(("nothing",))])
    assert empty == {"nothing": QueueStats("nothing", 0, False, None, None, 0)}


def test_infinite_locks_do_not_break_the_read(ormq: Any) -> None:
    ormq.execute(
        "INSERT INTO django_q_ormq (key, payload, lock) VALUES ('default', 'p', '-infinity'),"
        " ('default', 'p', 'infinity')"
    )
    q = read(ormq, lock_style="since")["default"]
    assert (q.ready, q.running) == (1, 1)
    assert q.oldest_eligible_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_the_recommended_index_gives_the_same_answers(ormq: Any) -> None:
    add(ormq, -50, count=3)
    add(ormq, 40, count=2)
    add(ormq, -5, key="emails")
    before = read(ormq)
    ormq.execute(recommended_indexes(Options())[0])
    after = read(ormq)
    assert {k: (v.ready, v.running) for k, v in after.items()} == {
        "default": (3, 2),
        "emails": (1, 0),
    }
    assert {k: (v.ready, v.running) for k, v in before.items()} == {
        "default": (3, 2),
        "emails": (1, 0),
    }
    assert abs(age(after["default"]) - age(before["default"])) < 5


def test_detect(pg_conn: psycopg.Connection[Any]) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((SCHEMAS / "django_q2.sql").read_text())
    assert detect(pg_conn, Options()) == (
        "table current schema.django_q_ormq (django-q ORM broker: key, payload, lock)"
    )
    assert detect(pg_conn, Options.model_validate({"schema": "elsewhere"})) is None


def test_with_the_index_the_ready_count_stops_at_the_cap(
    pg_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_conn.execute((SCHEMAS / "django_q2.sql").read_text())
    pg_conn.execute(recommended_indexes(Options())[0])
    add(pg_conn, -60, count=40)
    assert limits_stopped_at(pg_conn, monkeypatch, django_q2, 10) == 1


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_lock_exactly_at_the_limit_is_still_held(ormq: Any, style: str) -> None:
    """Inside one transaction now() stands still, so a lock sits exactly on the limit: dequeue
    takes ``lock < now - shift`` only, so such a task is still held (the "until" style's just
    enqueued task waits for the clock to move on)."""
    shift = 0 if style == "until" else RETRY
    with ormq.transaction():
        add(ormq, -shift, key="held")
        add(ormq, -shift - 0.001, key="free")
        found = read(ormq, lock_style=style)
        now = database_now(ormq)
        seen = {k: (v.ready, v.running, v.oldest_eligible_at) for k, v in found.items()}
        free_at = now - timedelta(seconds=0.001)
        assert seen == {"held": (0, 1, None), "free": (1, 0, free_at)}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_queue_reads_only_its_own_tasks(ormq: Any, style: str) -> None:
    write = STYLES[style]
    add(ormq, write["queued"](100), key="a")
    add(ormq, write["queued"](400), key="a")  # the oldest of "a"
    add(ormq, write["queued"](200), key="a")
    add(ormq, write["taken"](5), key="a")
    add(ormq, write["queued"](50), key="b")
    add(ormq, write["taken"](20), key="b")
    add(ormq, write["taken"](1), key="c")  # nothing ready in "c"
    reading = Reader(Options(lock_style=style)).read(ormq, EVERY, 100)
    assert [q.queue for q in reading.queues] == ["a", "b", "c"]  # each once
    a, b, c = reading.queues
    assert (a.ready, a.running) == (3, 1) and 399 <= age(a) < 410
    assert (b.ready, b.running) == (1, 1) and 49 <= age(b) < 60
    assert c == QueueStats("c", 0, False, None, None, 1)
    named = Reader(Options(lock_style=style)).read(ormq, [QueueSelector(("b", "c"))], 100)
    seen = [(q.queue, q.ready, q.running, q.oldest_eligible_at) for q in named.queues]
    assert seen == [(q.queue, q.ready, q.running, q.oldest_eligible_at) for q in (b, c)]


# --- with django-q2's own ORM broker -----------------------------------------------------------


@pytest.fixture
def broker(db_url: str) -> Iterator[Any]:
    django_support.configure(db_url)
    django_support.migrate("django_q")
    from django_q.brokers import get_broker  # noqa: PLC0415 - reads settings on import

    try:
        yield get_broker()
    finally:
        django_support.close()


def test_the_librarys_own_migrations_make_the_table_our_schema_file_describes(
    broker: Any, db_url: str
) -> None:
    columns = """SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', '
                                   ORDER BY column_name) FROM information_schema.columns
                 WHERE table_name = 'django_q_ormq' AND table_schema = %s"""
    with psycopg.connect(db_url, autocommit=True) as conn:
        theirs = conn.execute(columns, ("public",)).fetchone()
        conn.execute("CREATE SCHEMA ours")
        conn.execute("SET search_path TO ours")
        conn.execute((SCHEMAS / "django_q2.sql").read_text())
        assert conn.execute(columns, ("ours",)).fetchone() == theirs


def test_tasks_the_orm_broker_queues_takes_and_acknowledges(broker: Any, db_url: str) -> None:
    from django_q.tasks import async_task  # noqa: PLC0415 - reads settings on import

    for n in range(5):
        async_task("math.copysign", n, -1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert {k: (v.ready, v.running) for k, v in read(conn).items()} == {"default": (5, 0)}
        conn.execute("UPDATE django_q_ormq SET lock = lock - interval '1 second'")  # let time pass
        taken = broker.dequeue()  # a cluster takes what is there (up to Conf.BULK, 1)
        assert len(taken) == 1
        q = read(conn)["default"]
        assert (q.ready, q.running) == (4, 1)
        broker.acknowledge(taken[0][0])  # done: deleted
        assert (read(conn)["default"].ready, read(conn)["default"].running) == (4, 0)
        # a cluster took one and died: once retry (120 s here) has passed, dequeue takes it again
        (dead,) = broker.dequeue()
        conn.execute(
            "UPDATE django_q_ormq SET lock = lock - interval '121 seconds' WHERE id = %s",
            (dead[0],),
        )
        q = read(conn)["default"]
        assert (q.ready, q.running) == (4, 0) and q.oldest_ready_age_seconds is not None
        assert broker.queue_size() == 4 and broker.lock_size() == 0
