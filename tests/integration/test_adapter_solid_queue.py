"""solid_queue adapter on a real PostgreSQL: one case per execution state, the cap, time zones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from adapter_support import database_now

from dynomatic_daemon.adapters.solid_queue import TABLES, Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
FIXTURE = FIXTURES / "solid_queue.sql"
EVERY = [QueueSelector(None)]

JOB = """
INSERT INTO solid_queue_jobs (queue_name, class_name, arguments, priority, active_job_id,
                              scheduled_at, finished_at, concurrency_key, created_at, updated_at)
SELECT %(queue)s, 'ExampleJob', '{"job_class":"ExampleJob","arguments":[]}', %(priority)s,
       gen_random_uuid()::text, %(scheduled_at)s,
       CASE WHEN %(state)s = 'finished' THEN %(now)s END,
       CASE WHEN %(state)s = 'blocked' THEN 'ExampleJob/account-1' END,
       %(created_at)s, %(created_at)s
FROM generate_series(1, %(count)s)
RETURNING id
"""
EXECUTION = {
    "ready": """INSERT INTO solid_queue_ready_executions (job_id, queue_name, priority, created_at)
                SELECT id, queue_name, priority, %(entered_at)s FROM solid_queue_jobs
                WHERE id = ANY(%(ids)s)""",
    "scheduled": """INSERT INTO solid_queue_scheduled_executions
                      (job_id, queue_name, priority, scheduled_at, created_at)
                    SELECT id, queue_name, priority, scheduled_at, created_at
                    FROM solid_queue_jobs WHERE id = ANY(%(ids)s)""",
    "claimed": """INSERT INTO solid_queue_claimed_executions (job_id, process_id, created_at)
                  SELECT id, 7, %(now)s FROM solid_queue_jobs WHERE id = ANY(%(ids)s)""",
    "failed": """INSERT INTO solid_queue_failed_executions (job_id, error, created_at)
                 SELECT id, '{"exception_class":"RuntimeError"}', %(now)s
                 FROM solid_queue_jobs WHERE id = ANY(%(ids)s)""",
    "blocked": """INSERT INTO solid_queue_blocked_executions
                    (job_id, queue_name, priority, concurrency_key, expires_at, created_at)
                  SELECT id, queue_name, priority, concurrency_key, %(expires_at)s, created_at
                  FROM solid_queue_jobs WHERE id = ANY(%(ids)s)""",
    "finished": None,
}


@pytest.fixture
def sq(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute(FIXTURE.read_text())
    return pg_conn


def utc_now(conn: psycopg.Connection[Any]) -> datetime:
    """The database clock as naive UTC, the way Rails writes datetimes."""
    row = conn.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def add(
    conn: psycopg.Connection[Any],
    state: str = "ready",
    *,
    queue: str = "default",
    priority: int = 0,
    created_ago: float = 60,
    entered_ago: float | None = None,
    scheduled_in: float | None = None,
    expires_in: float = 180,
    count: int = 1,
) -> list[int]:
    """Enqueue jobs as solid_queue does: a job row plus the execution row of its state.

    ``entered_ago`` is when the ready row was made (defaults to the job's creation, as for a job
    enqueued ready); ``scheduled_in`` moves the job's ``scheduled_at`` from its creation time.
    """
    now = utc_now(conn)
    created_at = now - timedelta(seconds=created_ago)
    scheduled_at = created_at if scheduled_in is None else now + timedelta(seconds=scheduled_in)
    entered = created_ago if entered_ago is None else entered_ago
    params = {
        "queue": queue,
        "priority": priority,
        "state": state,
        "now": now,
        "created_at": created_at,
        "scheduled_at": scheduled_at,
        "entered_at": now - timedelta(seconds=entered),
        "expires_at": now + timedelta(seconds=expires_in),
        "count": count,
    }
    with conn.transaction():
        ids = [int(r[0]) for r in conn.execute(JOB, params).fetchall()]
        if (statement := EXECUTION[state]) is not None:
            conn.execute(statement, {**params, "ids": ids})
    return ids


def pause(conn: psycopg.Connection[Any], queue: str) -> None:
    conn.execute(
        "INSERT INTO solid_queue_pauses (queue_name, created_at)"
        " VALUES (%s, now() AT TIME ZONE 'UTC')",
        [queue],
    )


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


def test_empty_tables_report_no_queues_but_the_database_clock(
    sq: psycopg.Connection[Any],
) -> None:
    reading = Reader(Options()).read(sq, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(sq) - reading.db_now).total_seconds() < 60


def test_a_ready_execution_is_ready_and_aged_from_when_it_became_ready(
    sq: psycopg.Connection[Any],
) -> None:
    add(sq, "ready", created_ago=120)
    q = read(sq)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert 119 <= age(q) < 130


def test_a_future_scheduled_job_is_not_ready(sq: psycopg.Connection[Any]) -> None:
    add(sq, "scheduled", scheduled_in=+300)
    q = read(sq)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_due_scheduled_job_not_yet_dispatched_is_ready_from_its_scheduled_time(
    sq: psycopg.Connection[Any],
) -> None:
    # the dispatcher is stalled: the job is still in scheduled_executions 90 s after its time
    add(sq, "scheduled", created_ago=3600, scheduled_in=-90)
    q = read(sq)["default"]
    assert q.ready == 1
    assert 89 <= age(q) < 100


def test_a_claimed_job_is_running_not_ready(sq: psycopg.Connection[Any]) -> None:
    add(sq, "claimed", count=2)
    q = read(sq)["default"]
    assert (q.ready, q.running) == (0, 2)


def test_failed_and_finished_jobs_are_neither_ready_nor_running(
    sq: psycopg.Connection[Any],
) -> None:
    add(sq, "failed", created_ago=3600)
    add(sq, "finished", created_ago=3600)
    q = read(sq)["default"]  # their job rows make the queue known, with zeros
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_blocked_jobs_are_not_ready_even_when_their_block_has_expired(
    sq: psycopg.Connection[Any],
) -> None:
    add(sq, "blocked", expires_in=+120)
    add(sq, "blocked", created_ago=900, expires_in=-600)
    q = read(sq)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_released_blocked_job_is_aged_from_its_release_not_its_enqueue(
    sq: psycopg.Connection[Any],
) -> None:
    # waited an hour for its concurrency semaphore, got its ready row 30 s ago
    add(sq, "ready", created_ago=3600, entered_ago=30)
    assert 29 <= age(read(sq)["default"]) < 40


def test_a_paused_queue_has_nothing_ready_but_still_reports_running(
    sq: psycopg.Connection[Any],
) -> None:
    add(sq, "ready", queue="mailers", count=3)
    add(sq, "scheduled", queue="mailers", scheduled_in=-30)
    add(sq, "claimed", queue="mailers")
    add(sq, "ready", queue="default")
    pause(sq, "mailers")
    found = read(sq)
    assert (found["mailers"].ready, found["mailers"].oldest_ready_age_seconds) == (0, None)
    assert found["mailers"].running == 1
    assert found["default"].ready == 1
    sq.execute("DELETE FROM solid_queue_pauses")  # SolidQueue::Queue#resume
    assert read(sq)["mailers"].ready == 4


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    sq: psycopg.Connection[Any],
) -> None:
    add(sq, "ready", queue="mailers", count=3)
    add(sq, "ready", queue="critical", count=2)
    add(sq, "scheduled", queue="low", scheduled_in=+60)
    assert read(sq, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(sq)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}
    assert read(sq, [QueueSelector(("mail*",))]).keys() >= {"mailers"}
    nothing = read(sq, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert (nothing.ready, nothing.ready_capped, nothing.running) == (0, False, 0)
    assert nothing.oldest_ready_age_seconds is None


def test_oldest_is_found_across_priorities(sq: psycopg.Connection[Any]) -> None:
    add(sq, "ready", priority=10, created_ago=900)
    add(sq, "ready", priority=0, created_ago=100)
    add(sq, "ready", priority=-5, created_ago=300)
    assert 899 <= age(read(sq)["default"]) < 910


def test_the_oldest_ready_row_is_found_behind_rows_that_entered_later(
    sq: psycopg.Connection[Any],
) -> None:
    # lower job ids that reached the ready table later (dispatched scheduled jobs, retries)
    add(sq, "ready", created_ago=7200, entered_ago=20, count=50)
    add(sq, "ready", created_ago=600)
    assert 599 <= age(read(sq)["default"]) < 610


def test_the_oldest_is_looked_for_among_the_first_100_job_ids_of_a_priority(
    sq: psycopg.Connection[Any],
) -> None:
    # the documented bound of the search: 100 lower job ids that entered the ready table later
    # hide an older row behind them; 99 do not
    later = add(sq, "ready", created_ago=7200, entered_ago=20, count=100)
    add(sq, "ready", created_ago=600)
    assert 19 <= age(read(sq)["default"]) < 30
    sq.execute("DELETE FROM solid_queue_ready_executions WHERE job_id = %s", [later[0]])
    assert 599 <= age(read(sq)["default"]) < 610


def test_other_queues_rows_do_not_age_a_queue(sq: psycopg.Connection[Any]) -> None:
    add(sq, "ready", queue="default", created_ago=100)
    add(sq, "ready", queue="other", created_ago=900)
    add(sq, "ready", queue="other", priority=5, created_ago=800)
    found = read(sq)
    assert (found["default"].ready, round(age(found["default"]) / 10)) == (1, 10)
    assert (found["other"].ready, round(age(found["other"]) / 10)) == (2, 90)


def test_a_scheduled_job_due_at_this_very_instant_is_ready(sq: psycopg.Connection[Any]) -> None:
    with sq.transaction():  # now() does not move: scheduled_at equals the clock exactly
        add(sq, "scheduled", scheduled_in=0)
        q = read(sq)["default"]
    assert (q.ready, q.oldest_ready_age_seconds) == (1, 0.0)


def test_the_count_stops_at_the_cap_and_includes_due_scheduled_jobs(
    sq: psycopg.Connection[Any],
) -> None:
    add(sq, "ready", count=40)
    add(sq, "scheduled", scheduled_in=-10, count=5)
    q = read(sq, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(sq, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)
    q = read(sq, cap=45)["default"]
    assert (q.ready, q.ready_capped) == (45, True)


def test_a_hand_counted_mix(sq: psycopg.Connection[Any]) -> None:
    add(sq, "ready", count=4, created_ago=50)
    add(sq, "ready", count=2, priority=5, created_ago=70)
    add(sq, "scheduled", count=3, scheduled_in=+120)  # future
    add(sq, "scheduled", count=2, scheduled_in=-200)  # due, not dispatched
    add(sq, "failed", count=5)
    add(sq, "finished", count=6)
    add(sq, "blocked", count=2, expires_in=-60)
    add(sq, "claimed", count=2)
    add(sq, "ready", queue="mailers", count=7)
    add(sq, "claimed", queue="mailers")
    add(sq, "ready", queue="paused", count=9)
    add(sq, "claimed", queue="paused", count=3)
    pause(sq, "paused")
    found = read(sq, [QueueSelector(("default", "mailers", "paused"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (8, 2),
        "mailers": (7, 1),
        "paused": (0, 3),
    }
    assert 199 <= age(found["default"]) < 210


def test_schema_prefix_and_queue_names_are_identifiers_and_values_not_sql(
    sq: psycopg.Connection[Any],
) -> None:
    schema, prefix = "odd; schema", 'sq"x_'
    sq.execute('CREATE SCHEMA "odd; schema"')
    for table in TABLES:
        like = f"(LIKE solid_queue_{table} INCLUDING ALL)"
        sq.execute(f'CREATE TABLE "odd; schema"."sq""x_{table}" {like}')
    hostile = "q'; DROP TABLE solid_queue_jobs; --ü"
    sq.execute(
        'INSERT INTO "odd; schema"."sq""x_jobs" (id, queue_name, class_name, created_at,'
        " updated_at) VALUES (1, %s, 'J', now(), now())",
        [hostile],
    )
    sq.execute(
        'INSERT INTO "odd; schema"."sq""x_ready_executions" (job_id, queue_name, created_at)'
        " VALUES (1, %s, now() AT TIME ZONE 'UTC')",
        [hostile],
    )
    assert detect(sq, Options(schema=schema, table_prefix=prefix)) is not None
    found = read(sq, schema=schema, table_prefix=prefix)
    assert found[hostile].ready == 1
    named = read(sq, [QueueSelector((hostile,))], schema=schema, table_prefix=prefix)
    assert named[hostile].ready == 1
    assert sq.execute("SELECT count(*) FROM solid_queue_jobs").fetchone() == (0,)


def test_detect_names_the_layout(sq: psycopg.Connection[Any]) -> None:
    found = detect(sq, Options())
    assert found is not None and "solid_queue_" in found and "0.6+" in found
    sq.execute("ALTER TABLE solid_queue_processes DROP COLUMN name")
    found = detect(sq, Options())
    assert found is not None and "0.2-0.5" in found
    assert detect(sq, Options(schema="elsewhere")) is None
    assert detect(sq, Options(table_prefix="other_")) is None


def test_detect_names_where_the_tables_are(sq: psycopg.Connection[Any]) -> None:
    assert detect(sq, Options()) == (
        "tables current schema.solid_queue_* (jobs, ready/scheduled/claimed executions, pauses;"
        " 0.6+ layout)"
    )
    assert detect(sq, Options(schema="public")) == (
        "tables public.solid_queue_* (jobs, ready/scheduled/claimed executions, pauses;"
        " 0.6+ layout)"
    )


def test_detect_finds_nothing_in_an_empty_database_or_next_to_delayed_job(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None
    assert detect(pg_conn, Options(table_prefix="")) is None
    # a lone jobs table is not enough
    pg_conn.execute("CREATE TABLE solid_queue_jobs (id bigserial, queue_name varchar)")
    assert detect(pg_conn, Options()) is None
