"""chancy adapter on a real PostgreSQL, on the schema chancy's own migrator installs.

Jobs are pushed with chancy's own INSERT (``Chancy.sync_push_many_ex``); state changes are the
UPDATEs its worker, executor and queue admin run, written out here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken
from chancy import Chancy, Job, Queue
from chancy.migrate import Migrator
from psycopg import sql
from psycopg.rows import dict_row

from dynomatic_daemon.adapters.chancy import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
TEMPLATE = Job(func="app.jobs.send_email")  # what @job() builds once, at import

RUNNING = """UPDATE chancy_jobs SET state = 'running', started_at = now(),
                    claim_id = gen_random_uuid(), taken_by = 'worker-1' WHERE id = ANY(%s)"""
SUCCEEDED = """UPDATE chancy_jobs SET state = 'succeeded', completed_at = now(),
                      attempts = attempts + 1 WHERE id = ANY(%s)"""
FAILED = """UPDATE chancy_jobs SET state = 'failed', completed_at = now(),
                   attempts = attempts + 1 WHERE id = ANY(%s)"""
CANCELLED = """UPDATE chancy_jobs SET state = 'failed', claim_id = NULL, completed_at = now()
               WHERE id = ANY(%s)"""


def migrate(url: str, *, prefix: str = "chancy_", schema: str | None = None, to: int | None = None):
    """Install chancy's core tables with its own (async) migrator."""

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            if schema is not None:
                await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            await Migrator("chancy", "chancy.migrations", prefix=prefix).migrate(conn, to)

    asyncio.run(run())


@pytest.fixture
def ch(pg_conn: psycopg.Connection[Any], db_url: str) -> psycopg.Connection[Any]:
    migrate(db_url)
    # The skip scans' row estimates put the plan over jit_above_cost; compiling it costs far
    # more than running it, which is why the daemon's connections should run with jit=off.
    pg_conn.execute("SET jit = off")
    return pg_conn


def db_now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def push(
    conn: psycopg.Connection[Any],
    *,
    queue: str = "default",
    priority: int = 0,
    count: int = 1,
    ago: float = 60,
    scheduled_in: float | None = None,
    max_attempts: int = 1,
    template: Job | None = None,
    prefix: str = "chancy_",
) -> list[Any]:
    """Push jobs with chancy's own INSERT, as if that happened ``ago`` seconds ago.

    A fresh Job's ``scheduled_at`` is its creation time, so it moves back with ``ago``;
    ``template`` keeps a template's stale one; ``scheduled_in`` sets one relative to now.
    """
    now = db_now(conn)
    job = template or Job(func="app.jobs.work", scheduled_at=now - timedelta(seconds=ago))
    job = job.with_queue(queue).with_priority(priority).with_max_attempts(max_attempts)
    if scheduled_in is not None:
        job = job.with_scheduled_at(now + timedelta(seconds=scheduled_in))
    app = Chancy("postgresql://unused", prefix=prefix, notifications=False, no_default_plugins=True)
    with conn.cursor(row_factory=dict_row) as cur:
        refs = app.sync_push_many_ex(cur, [job.with_kwargs(n=n) for n in range(count)])
    ids = [ref.identifier for ref in refs]
    conn.execute(
        sql.SQL(
            "UPDATE {} SET created_at = created_at - make_interval(secs => %s) WHERE id = ANY(%s)"
        ).format(sql.Identifier(prefix + "jobs")),
        [ago, ids],
    )
    return ids


def declare(conn: psycopg.Connection[Any], queue: Queue) -> None:
    app = Chancy("postgresql://unused", notifications=False, no_default_plugins=True)
    with conn.cursor(row_factory=dict_row) as cur:
        app.sync_declare_ex(cur, queue)


def pause(conn: psycopg.Connection[Any], name: str, resume_in: float | None = None) -> None:
    """Chancy.pause_queue_ex."""
    resume_at = None if resume_in is None else db_now(conn) + timedelta(seconds=resume_in)
    conn.execute(
        "UPDATE chancy_queues SET state = 'paused', resume_at = %s WHERE name = %s",
        [resume_at, name],
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
    ch: psycopg.Connection[Any],
) -> None:
    reading = Reader(Options()).read(ch, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(ch) - reading.db_now).total_seconds() < 60


def test_a_pending_job_is_ready_and_aged_from_its_push(ch: psycopg.Connection[Any]) -> None:
    push(ch, ago=120)
    q = read(ch)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert 119 <= age(q) < 130


def test_a_template_job_is_aged_from_its_push_not_the_templates_stale_scheduled_at(
    ch: psycopg.Connection[Any],
) -> None:
    stale = TEMPLATE.with_scheduled_at(db_now(ch) - timedelta(hours=3))
    push(ch, template=stale, ago=300)
    push(ch, template=stale, ago=100, count=3)
    q = read(ch)["default"]
    assert q.ready == 4
    assert 299 <= age(q) < 310


def test_a_future_job_is_not_ready(ch: psycopg.Connection[Any]) -> None:
    push(ch, scheduled_in=+300)
    q = read(ch)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_scheduled_job_that_came_due_is_ready_from_its_scheduled_time(
    ch: psycopg.Connection[Any],
) -> None:
    push(ch, ago=3600, scheduled_in=-90)
    q = read(ch)["default"]
    assert q.ready == 1
    assert 89 <= age(q) < 100


def test_retries_count_once_their_backoff_is_over(ch: psycopg.Connection[Any]) -> None:
    due, waiting = push(ch, ago=600, max_attempts=3, count=2)
    # the Retry plugin's update after a failed first attempt: back off to a new scheduled_at
    ch.execute(
        """UPDATE chancy_jobs SET state = 'retrying', attempts = 1, started_at = now() - %s,
                  completed_at = NULL, scheduled_at = now() + %s WHERE id = %s""",
        [timedelta(seconds=200), timedelta(seconds=-45), due],
    )
    ch.execute(
        """UPDATE chancy_jobs SET state = 'retrying', attempts = 1, started_at = now() - %s,
                  completed_at = NULL, scheduled_at = now() + %s WHERE id = %s""",
        [timedelta(seconds=200), timedelta(seconds=+120), waiting],
    )
    q = read(ch)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 44 <= age(q) < 55


def test_a_retry_without_backoff_is_aged_from_its_last_attempt(
    ch: psycopg.Connection[Any],
) -> None:
    (job,) = push(ch, ago=3600, max_attempts=2)
    # the executor alone (no Retry plugin) keeps the old scheduled_at
    ch.execute(
        """UPDATE chancy_jobs SET state = 'retrying', attempts = 1,
                  started_at = now() - interval '30 seconds' WHERE id = %s""",
        [job],
    )
    assert 29 <= age(read(ch)["default"]) < 40


def test_a_job_out_of_attempts_is_not_ready(ch: psycopg.Connection[Any]) -> None:
    (job,) = push(ch, max_attempts=2)
    ch.execute("UPDATE chancy_jobs SET state = 'retrying', attempts = 2 WHERE id = %s", [job])
    assert read(ch)["default"].ready == 0


def test_a_running_job_is_running_not_ready(ch: psycopg.Connection[Any]) -> None:
    ch.execute(RUNNING, [push(ch, count=2)])
    q = read(ch)["default"]
    assert (q.ready, q.running) == (0, 2)


def test_succeeded_failed_and_cancelled_jobs_are_neither(ch: psycopg.Connection[Any]) -> None:
    ch.execute(SUCCEEDED, [push(ch, ago=900)])
    ch.execute(FAILED, [push(ch, ago=900)])
    ch.execute(CANCELLED, [push(ch, ago=900)])
    q = read(ch, [QueueSelector(("default",))])["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_paused_queue_has_nothing_ready_until_its_resume_time(
    ch: psycopg.Connection[Any],
) -> None:
    for name in ("forever", "for_now", "was"):
        declare(ch, Queue(name))
        push(ch, queue=name, count=2)
    ch.execute(RUNNING, [push(ch, queue="forever")])
    pause(ch, "forever")
    pause(ch, "for_now", resume_in=+600)
    pause(ch, "was", resume_in=-5)  # no worker has polled it since: it counts as resumed
    found = read(ch)
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "forever": (0, 1),
        "for_now": (0, 0),
        "was": (2, 0),
    }
    assert found["forever"].oldest_ready_age_seconds is None


def test_jobs_of_an_undeclared_queue_still_count(ch: psycopg.Connection[Any]) -> None:
    push(ch, queue="nobody-declared-me")
    assert read(ch)["nobody-declared-me"].ready == 1


def test_declared_queues_and_named_queues_are_reported_with_zeros(
    ch: psycopg.Connection[Any],
) -> None:
    declare(ch, Queue("idle"))
    push(ch, queue="mailers", count=3)
    push(ch, queue="critical", count=2)
    push(ch, queue="low", scheduled_in=+60)
    everything = read(ch)
    assert {k: v.ready for k, v in everything.items()} == {
        "critical": 2,
        "idle": 0,
        "low": 0,
        "mailers": 3,
    }
    assert read(ch, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    assert read(ch, [QueueSelector(("mail*",))]).keys() >= {"mailers"}
    nothing = read(ch, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert (nothing.ready, nothing.ready_capped, nothing.running) == (0, False, 0)
    assert nothing.oldest_ready_age_seconds is None


def test_oldest_is_found_across_priorities_attempts_and_scheduled_times(
    ch: psycopg.Connection[Any],
) -> None:
    stale = TEMPLATE.with_scheduled_at(db_now(ch) - timedelta(hours=5))
    push(ch, template=stale, priority=10, ago=400)
    push(ch, template=stale, priority=0, ago=900)
    push(ch, template=stale, priority=-5, ago=200)
    for n in range(30):  # jobs with their own scheduled_at
        push(ch, priority=n % 3, ago=100 - n)
    (recovered,) = push(ch, ago=50, max_attempts=2)  # Recovery: pending, one attempt used
    ch.execute("UPDATE chancy_jobs SET attempts = 1 WHERE id = %s", [recovered])
    q = read(ch)["default"]
    assert q.ready == 34
    assert 899 <= age(q) < 910


def test_the_count_stops_at_the_cap_across_states(ch: psycopg.Connection[Any]) -> None:
    push(ch, count=40)
    retries = push(ch, count=5, max_attempts=3)
    ch.execute(
        "UPDATE chancy_jobs SET state = 'retrying', attempts = 1 WHERE id = ANY(%s)", [retries]
    )
    q = read(ch, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(ch, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)
    q = read(ch, cap=45)["default"]
    assert (q.ready, q.ready_capped) == (45, True)


def test_a_hand_counted_mix(ch: psycopg.Connection[Any]) -> None:
    for name in ("default", "mailers", "paused"):
        declare(ch, Queue(name))
    push(ch, count=4, ago=50)  # ready
    push(ch, count=2, priority=5, ago=70)  # ready
    push(ch, count=3, scheduled_in=+120)  # future
    push(ch, count=2, ago=500, scheduled_in=-200)  # came due
    ch.execute(FAILED, [push(ch, count=5)])
    ch.execute(SUCCEEDED, [push(ch, count=6)])
    ch.execute(RUNNING, [push(ch, count=2)])
    push(ch, queue="mailers", count=7)
    ch.execute(RUNNING, [push(ch, queue="mailers")])
    push(ch, queue="paused", count=9)
    ch.execute(RUNNING, [push(ch, queue="paused", count=3)])
    pause(ch, "paused")
    found = read(ch, [QueueSelector(("default", "mailers", "paused"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (8, 2),
        "mailers": (7, 1),
        "paused": (0, 3),
    }
    assert 199 <= age(found["default"]) < 210


def test_schema_prefix_and_queue_names_are_identifiers_and_values_not_sql(
    ch: psycopg.Connection[Any], db_url: str
) -> None:
    schema, prefix = "odd; schema", 'ch"x_'
    ch.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    migrate(db_url, prefix=prefix, schema=schema)
    hostile = "q'; DROP TABLE chancy_jobs; --ü"
    ch.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    push(ch, queue=hostile, prefix=prefix)
    ch.execute("RESET search_path")
    assert detect(ch, Options(schema=schema, prefix=prefix)) is not None
    assert read(ch, schema=schema, prefix=prefix)[hostile].ready == 1
    named = read(ch, [QueueSelector((hostile,))], schema=schema, prefix=prefix)
    assert named[hostile].ready == 1
    assert ch.execute("SELECT count(*) FROM chancy_jobs").fetchone() == (0,)


def test_detect_names_the_schema_version(ch: psycopg.Connection[Any]) -> None:
    found = detect(ch, Options())
    assert found is not None and "chancy_jobs" in found and "schema v8" in found
    assert detect(ch, Options(schema="elsewhere")) is None
    assert detect(ch, Options(prefix="other_")) is None


def test_schema_v4_is_read_and_v3_is_not_detected(
    pg_conn: psycopg.Connection[Any], db_url: str
) -> None:
    pg_conn.execute("CREATE SCHEMA v3; CREATE SCHEMA v4")
    migrate(db_url, schema="v3", to=3)
    migrate(db_url, schema="v4", to=4)
    assert detect(pg_conn, Options(schema="v3")) is None
    found = detect(pg_conn, Options(schema="v4"))
    assert found is not None and "schema v4" in found
    pg_conn.execute(
        """INSERT INTO v4.chancy_jobs (id, queue, func, priority, max_attempts, scheduled_at)
           VALUES (gen_random_uuid(), 'default', 'app.jobs.work', 0, 1, now() - interval '60 s')"""
    )
    pg_conn.execute("INSERT INTO v4.chancy_queues (name, state) VALUES ('paused', 'paused')")
    found_queues = read(pg_conn, schema="v4")
    assert {k: v.ready for k, v in found_queues.items()} == {"default": 1, "paused": 0}


def test_detect_finds_nothing_in_an_empty_database_or_next_to_other_libraries(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    pg_conn.execute((FIXTURES / "solid_queue.sql").read_text())
    assert detect(pg_conn, Options()) is None
    assert detect(pg_conn, Options(prefix="")) is None


def test_the_benchmark_fixture_matches_what_the_migrator_installs(
    pg_conn: psycopg.Connection[Any], db_url: str
) -> None:
    pg_conn.execute("CREATE SCHEMA migrated; CREATE SCHEMA written")
    migrate(db_url, schema="migrated")
    pg_conn.execute("SET search_path TO written")
    pg_conn.execute((FIXTURES / "chancy.sql").read_text())

    def shape(schema: str) -> tuple[list[Any], list[Any], list[Any]]:
        columns = pg_conn.execute(
            """SELECT table_name, column_name, data_type, character_maximum_length,
                      is_nullable, column_default
               FROM information_schema.columns
               WHERE table_schema = %s AND table_name IN ('chancy_jobs', 'chancy_queues')
               ORDER BY 1, 2""",
            [schema],
        ).fetchall()
        indexes = pg_conn.execute(
            """SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes
               WHERE schemaname = %s AND tablename IN ('chancy_jobs', 'chancy_queues')
               ORDER BY 1""",
            [f"{schema}.", schema],
        ).fetchall()
        versions = pg_conn.execute(
            sql.SQL("SELECT * FROM {}.chancy_schema_version").format(sql.Identifier(schema))
        ).fetchall()
        return columns, indexes, versions

    assert shape("written") == shape("migrated")


def test_a_job_due_this_very_instant_is_ready_and_aged_zero(ch: psycopg.Connection[Any]) -> None:
    # One transaction: now() does not move, so scheduled_at can equal the reader's now(), the
    # instant chancy's fetch (scheduled_at <= NOW()) starts taking the job.
    with ch.transaction():
        push(ch, ago=60, scheduled_in=0)
        q = read(ch)["default"]
    assert q.ready == 1
    assert age(q) == 0


def test_a_job_due_this_instant_is_the_oldest_behind_a_job_out_of_attempts(
    ch: psycopg.Connection[Any],
) -> None:
    # Both jobs are pending with one attempt used (Recovery), so they share a (state, attempts)
    # pair; the earlier group's only job is out of attempts, so the oldest is the second group.
    with ch.transaction():
        spent = push(ch, ago=600, max_attempts=1)
        due_now = push(ch, ago=60, scheduled_in=0, max_attempts=2)
        ch.execute("UPDATE chancy_jobs SET attempts = 1 WHERE id = ANY(%s)", [spent + due_now])
        q = read(ch)["default"]
    assert q.ready == 1
    assert age(q) == 0


def test_a_job_out_of_attempts_is_not_the_oldest(ch: psycopg.Connection[Any]) -> None:
    (job,) = push(ch, ago=900, max_attempts=2)
    ch.execute("UPDATE chancy_jobs SET state = 'retrying', attempts = 2 WHERE id = %s", [job])
    q = read(ch)["default"]
    assert (q.ready, q.oldest_ready_age_seconds) == (0, None)


def test_the_oldest_is_found_in_a_later_scheduled_at_than_the_first_group(
    ch: psycopg.Connection[Any],
) -> None:
    # The template's group comes first in index order (its scheduled_at is hours old) but was
    # pushed 100 s ago; the job with its own scheduled_at has waited 900 s.
    stale = TEMPLATE.with_scheduled_at(db_now(ch) - timedelta(hours=5))
    push(ch, template=stale, ago=100)
    push(ch, ago=900)
    q = read(ch)["default"]
    assert q.ready == 2
    assert 899 <= age(q) < 910


@pytest.mark.parametrize(("template_priorities", "oldest"), [(19, 900), (20, 100)])
def test_the_walk_for_the_oldest_reads_twenty_groups(
    ch: psycopg.Connection[Any], template_priorities: int, oldest: int
) -> None:
    # MAX_GROUPS bounds the cost of the age: a template's jobs at as many priorities make that
    # many groups ahead of a job with its own, later, scheduled_at. Behind 19 groups it is found;
    # behind 20 it is not, and the answer is the templates' (pushed 100 s ago).
    stale = TEMPLATE.with_scheduled_at(db_now(ch) - timedelta(hours=5))
    for priority in range(template_priorities):
        push(ch, template=stale, priority=priority, ago=100)
    push(ch, ago=900)
    q = read(ch)["default"]
    assert q.ready == template_priorities + 1
    assert oldest - 1 <= age(q) < oldest + 10


def test_within_a_group_the_first_pushed_job_stands_for_the_group(
    ch: psycopg.Connection[Any],
) -> None:
    # One row read per group keeps the age's cost independent of a template's backlog. Its price:
    # two retries of one template that failed out of push order are aged by the first pushed.
    stale = TEMPLATE.with_scheduled_at(db_now(ch) - timedelta(hours=5))
    first, second = push(ch, template=stale, ago=1000, count=2, max_attempts=3)
    for job, failed_ago in ((first, 30), (second, 300)):
        ch.execute(
            """UPDATE chancy_jobs SET state = 'retrying', attempts = 1,
                      started_at = now() - make_interval(secs => %s) WHERE id = %s""",
            [failed_ago, job],
        )
    q = read(ch)["default"]
    assert q.ready == 2
    assert 29 <= age(q) < 40


def test_a_pause_is_still_on_at_its_resume_time(ch: psycopg.Connection[Any]) -> None:
    # chancy's worker resumes a queue once resume_at < now; one transaction holds now() still.
    declare(ch, Queue("paused"))
    push(ch, queue="paused")
    with ch.transaction():
        pause(ch, "paused", resume_in=0)
        q = read(ch)["paused"]
    assert q.ready == 0


def test_the_count_reads_about_cap_rows_however_many_are_due(ch: psycopg.Connection[Any]) -> None:
    # The cap bounds the read's cost, not only the number reported: 1000 due jobs in 20
    # (state, attempts) pairs, and a cap of 10, must mean about 10 jobs read, not 10 a pair.
    for attempts in range(20):
        jobs = push(ch, count=50, max_attempts=attempts + 1)
        ch.execute("UPDATE chancy_jobs SET attempts = %s WHERE id = ANY(%s)", [attempts, jobs])
    rows, found = rows_taken(ch, "chancy_jobs", lambda: read(ch, cap=10))
    q = found["default"]
    assert (q.ready, q.ready_capped) == (10, True)
    assert rows < 150


def test_the_walk_enters_a_later_scheduled_at_at_its_highest_priority(
    ch: psycopg.Connection[Any],
) -> None:
    # After the first group the walk moves to the next scheduled_at in index order, highest
    # priority first; the oldest job there is its priority-5 one (pushed 900 s ago).
    stale = TEMPLATE.with_scheduled_at(db_now(ch) - timedelta(hours=5))
    later = TEMPLATE.with_scheduled_at(db_now(ch) - timedelta(seconds=900))
    push(ch, template=stale, ago=100)
    push(ch, template=later, priority=5, ago=900)
    push(ch, template=later, priority=0, ago=50)
    q = read(ch)["default"]
    assert q.ready == 3
    assert 899 <= age(q) < 910
