"""procrastinate adapter on a real PostgreSQL, with procrastinate's own schema and SQL functions.

Jobs are deferred, fetched, finished, retried and cancelled through procrastinate's own queries
(``procrastinate.sql.queries``), so the rows and events are the ones procrastinate writes.
``travel`` then moves a job's recorded times into the past, as if it had been deferred earlier.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken
from procrastinate.schema import SchemaManager
from procrastinate.sql import queries
from psycopg import sql

from dynomatic_daemon.adapters.procrastinate import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]

DEFER_SQL = """
SELECT unnest(procrastinate_defer_jobs_v1(array_agg(ROW(
    %(queue)s, 'app.tasks.work', %(priority)s, %(lock)s, NULL, '{}'::jsonb,
    now() + make_interval(secs => %(scheduled_in)s)
)::procrastinate_job_to_defer_v1))) FROM generate_series(1, %(count)s)
"""
# Moves a job back in time: its events and its scheduled_at, by the same amount.
TRAVEL_SQL = """
WITH moved AS (
    UPDATE procrastinate_events SET at = at - make_interval(secs => %(secs)s)
    WHERE job_id = ANY(%(ids)s)
)
UPDATE procrastinate_jobs SET scheduled_at = scheduled_at - make_interval(secs => %(secs)s)
WHERE id = ANY(%(ids)s) AND scheduled_at IS NOT NULL
"""


@pytest.fixture
def pc(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute(SchemaManager.get_schema())
    return pg_conn


def defer(
    conn: psycopg.Connection[Any],
    queue: str = "default",
    *,
    priority: int = 0,
    lock: str | None = None,
    scheduled_in: float | None = None,
    ago: float = 0,
    count: int = 1,
) -> list[int]:
    """Defer jobs as ``App.defer`` does, then pretend that happened ``ago`` seconds ago."""
    params = {
        "queue": queue,
        "priority": priority,
        "lock": lock,
        "scheduled_in": scheduled_in,
        "count": count,
    }
    ids = [int(r[0]) for r in conn.execute(DEFER_SQL, params).fetchall()]
    travel(conn, ids, ago)
    return ids


def travel(conn: psycopg.Connection[Any], ids: list[int], secs: float) -> None:
    conn.execute(TRAVEL_SQL, {"ids": ids, "secs": secs})


def fetch(conn: psycopg.Connection[Any], queue: str = "default") -> int | None:
    """What a worker of ``queue`` would take next: the job becomes ``doing``."""
    worker = conn.execute(queries["register_worker"]).fetchone()
    assert worker is not None
    row = conn.execute(queries["fetch_job"], {"queues": [queue], "worker_id": worker[0]})
    job = row.fetchone()
    return None if job is None or job[0] is None else int(job[0])


def would_fetch(conn: psycopg.Connection[Any], queue: str = "default") -> int | None:
    with conn.transaction(force_rollback=True):
        return fetch(conn, queue)


def finish(conn: psycopg.Connection[Any], job: int, status: str) -> None:
    conn.execute(queries["finish_job"], {"job_id": job, "status": status, "delete_job": False})


def retry(conn: psycopg.Connection[Any], job: int, retry_in: float) -> None:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    retry_at = row[0] + timedelta(seconds=retry_in)
    conn.execute(
        queries["retry_job"],
        {
            "job_id": job,
            "retry_at": retry_at,
            "new_priority": None,
            "new_queue_name": None,
            "new_lock": None,
        },
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


def test_empty_tables_report_no_queues_but_the_database_clock(pc: psycopg.Connection[Any]) -> None:
    reading = Reader(Options()).read(pc, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(pc) - reading.db_now).total_seconds() < 60


def test_a_deferred_job_is_ready_and_its_age_comes_from_the_deferred_event(
    pc: psycopg.Connection[Any],
) -> None:
    defer(pc, ago=120)
    q = read(pc)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert 119 <= age(q) < 130


def test_a_job_scheduled_for_later_is_not_ready(pc: psycopg.Connection[Any]) -> None:
    defer(pc, scheduled_in=300)
    q = read(pc)["default"]
    assert (q.ready, q.oldest_eligible_at, q.oldest_ready_age_seconds, q.running) == (
        0,
        None,
        None,
        0,
    )


def test_a_scheduled_job_that_came_due_is_aged_from_its_scheduled_time(
    pc: psycopg.Connection[Any],
) -> None:
    defer(pc, scheduled_in=600, ago=900)  # deferred 15 min ago to run 10 min later
    q = read(pc)["default"]
    assert q.ready == 1
    assert 299 <= age(q) < 310


def test_a_job_scheduled_in_the_past_is_aged_from_its_deferral(
    pc: psycopg.Connection[Any],
) -> None:
    defer(pc, scheduled_in=-3600, ago=60)
    assert 59 <= age(read(pc)["default"]) < 70


def test_a_fetched_job_is_running_not_ready(pc: psycopg.Connection[Any]) -> None:
    job = defer(pc, ago=30)[0]
    assert fetch(pc) == job
    q = read(pc)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 1)


def test_a_retry_in_backoff_is_neither_ready_nor_running(pc: psycopg.Connection[Any]) -> None:
    job = defer(pc, ago=600)[0]
    assert fetch(pc) == job
    retry(pc, job, retry_in=60)
    q = read(pc)["default"]
    assert (q.ready, q.running) == (0, 0)
    assert would_fetch(pc) is None


def test_a_due_retry_is_ready_and_aged_from_its_retry_time(pc: psycopg.Connection[Any]) -> None:
    job = defer(pc, ago=3600)[0]
    assert fetch(pc) == job
    retry(pc, job, retry_in=600)
    travel(pc, [job], 900)  # the retry was decided 15 min ago, for 10 min later
    q = read(pc)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 299 <= age(q) < 310
    assert would_fetch(pc) == job


@pytest.mark.parametrize("failed_first", [False, True])
def test_a_retry_for_a_past_time_is_aged_from_the_retry_itself(
    pc: psycopg.Connection[Any], failed_first: bool
) -> None:
    # a doing job retried (deferred_for_retry), or a failed one retried by hand (retried)
    job = defer(pc, ago=3600)[0]
    assert fetch(pc) == job
    if failed_first:
        finish(pc, job, "failed")
    retry(pc, job, retry_in=-1800)
    travel(pc, [job], 100)
    q = read(pc)["default"]
    assert q.ready == 1
    assert 99 <= age(q) < 110


@pytest.mark.parametrize("status", ["succeeded", "failed", "aborted", "cancelled"])
def test_finished_jobs_are_neither_ready_nor_running(
    pc: psycopg.Connection[Any], status: str
) -> None:
    job = defer(pc, ago=100)[0]
    if status == "cancelled":
        pc.execute(queries["cancel_job"], {"job_id": job, "abort": False, "delete_job": False})
    else:
        assert fetch(pc) == job
        if status == "aborted":
            pc.execute(queries["cancel_job"], {"job_id": job, "abort": True, "delete_job": False})
        finish(pc, job, status)
    assert pc.execute("SELECT status::text FROM procrastinate_jobs").fetchone() == (status,)
    q = read(pc)["default"]  # the queue still has rows, so it is found, with zeros
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_job_whose_lock_is_held_by_a_running_job_is_not_ready(
    pc: psycopg.Connection[Any],
) -> None:
    holder = defer(pc, "other", lock="account-1", ago=50)[0]
    assert fetch(pc, "other") == holder  # locks span queues
    defer(pc, lock="account-1", ago=40)
    defer(pc, lock="account-2", ago=30)
    q = read(pc)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 29 <= age(q) < 40
    assert read(pc)["other"].running == 1


def test_only_the_first_job_of_a_lock_in_fetch_order_is_ready(
    pc: psycopg.Connection[Any],
) -> None:
    first = defer(pc, lock="account-1", ago=300)[0]
    defer(pc, lock="account-1", ago=200, count=3)
    q = read(pc)["default"]
    assert q.ready == 1
    assert 299 <= age(q) < 310
    assert would_fetch(pc) == first


def test_a_higher_priority_job_of_a_lock_goes_first_even_if_deferred_later(
    pc: psycopg.Connection[Any],
) -> None:
    defer(pc, lock="account-1", priority=0, ago=900)
    urgent = defer(pc, lock="account-1", priority=5, ago=60)[0]
    q = read(pc)["default"]
    assert q.ready == 1
    assert 59 <= age(q) < 70  # the blocked older job does not count as waiting
    assert would_fetch(pc) == urgent


def test_a_scheduled_higher_priority_job_of_a_lock_blocks_a_due_one(
    pc: psycopg.Connection[Any],
) -> None:
    # procrastinate_fetch_job_v2 looks at every todo job with the lock, due or not
    defer(pc, lock="account-1", priority=0, ago=900)
    defer(pc, lock="account-1", priority=5, scheduled_in=600)
    assert read(pc)["default"].ready == 0
    assert would_fetch(pc) is None


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    pc: psycopg.Connection[Any],
) -> None:
    defer(pc, "mailers", count=3)
    defer(pc, "critical", count=2)
    defer(pc, "low", scheduled_in=60)
    assert read(pc, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(pc)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}


def test_a_named_queue_with_no_rows_is_reported_with_zeros(pc: psycopg.Connection[Any]) -> None:
    defer(pc, "mailers")
    q = read(pc, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert (q.ready, q.ready_capped, q.oldest_eligible_at, q.running) == (0, False, None, 0)


def test_discovery_finds_every_queue_for_every_queue_and_wildcard_selectors(
    pc: psycopg.Connection[Any],
) -> None:
    defer(pc, "mailers")
    defer(pc, "mail-digest", scheduled_in=60)
    defer(pc, "reports")
    archived = defer(pc, "archive")[0]
    assert fetch(pc, "archive") == archived
    finish(pc, archived, "succeeded")
    assert read(pc).keys() == {"archive", "mail-digest", "mailers", "reports"}
    found = read(pc, [QueueSelector(("mail*",)), QueueSelector(("critical",))])
    assert {"mail-digest", "mailers", "critical"} <= found.keys()
    assert found["mailers"].ready == 1 and found["critical"].ready == 0


def test_the_oldest_is_found_across_priorities(pc: psycopg.Connection[Any]) -> None:
    defer(pc, priority=10, ago=100)
    defer(pc, priority=0, ago=900)
    defer(pc, priority=-5, ago=300)
    assert 899 <= age(read(pc)["default"]) < 910


def test_a_later_immediate_job_can_be_older_than_an_earlier_scheduled_one(
    pc: psycopg.Connection[Any],
) -> None:
    defer(pc, scheduled_in=900, ago=1000)  # lower id, due 100 s ago
    defer(pc, ago=500)  # higher id, waiting for 500 s
    assert 499 <= age(read(pc)["default"]) < 510


@pytest.mark.parametrize(("scheduled_first", "oldest"), [(9, 500), (10, 10)])
def test_the_ten_lowest_ids_of_a_priority_are_the_candidates(
    pc: psycopg.Connection[Any], scheduled_first: int, oldest: int
) -> None:
    # Beyond the candidates the age is a documented lower bound; pinned at its edge: a job
    # waiting 500 s behind 9 scheduled jobs that came due 10 s ago is a candidate, behind 10 it
    # is not, and the age is theirs.
    defer(pc, scheduled_in=2000, ago=2010, count=scheduled_first)
    defer(pc, ago=500)
    q = read(pc)["default"]
    assert q.ready == scheduled_first + 1
    assert oldest - 1 <= age(q) < oldest + 10


def test_a_job_due_this_very_instant_is_ready_and_aged_zero(pc: psycopg.Connection[Any]) -> None:
    # One transaction: now() does not move, so scheduled_at can equal the reader's now(), the
    # instant procrastinate's fetch (scheduled_at <= now()) starts taking the job.
    with pc.transaction():
        defer(pc, scheduled_in=0)
        q = read(pc)["default"]
    assert (q.ready, q.oldest_ready_age_seconds) == (1, 0)


def test_the_count_stops_at_the_cap(pc: psycopg.Connection[Any]) -> None:
    defer(pc, count=25)
    defer(pc, priority=3, count=15)  # priorities add up towards the same cap
    q = read(pc, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(pc, cap=41)["default"]
    assert (q.ready, q.ready_capped) == (40, False)
    q = read(pc, cap=40)["default"]
    assert (q.ready, q.ready_capped) == (40, True)


def test_a_hand_counted_mix(pc: psycopg.Connection[Any]) -> None:
    for queue in ("default", "default", "mailers"):  # running: fetched while alone in the queue
        job = defer(pc, queue)[0]
        assert fetch(pc, queue) == job
    failed = defer(pc)[0]
    assert fetch(pc) == failed
    finish(pc, failed, "failed")
    defer(pc, count=4, ago=60)  # ready
    defer(pc, priority=5, count=2, ago=30)  # ready
    defer(pc, scheduled_in=120, count=3)  # future
    defer(pc, scheduled_in=-10, count=1)  # due
    defer(pc, lock="l", count=3)  # one ready, two behind it
    defer(pc, "mailers", count=7)  # ready
    found = read(pc, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (8, 2),
        "mailers": (7, 1),
    }


def test_schema_and_queue_names_are_identifiers_and_values_not_sql(
    pg_conn: psycopg.Connection[Any],
) -> None:
    schema = 'odd; "schéma" --'
    pg_conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    pg_conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    pg_conn.execute(SchemaManager.get_schema())
    hostile = "q'; DROP TABLE procrastinate_jobs; --"
    defer(pg_conn, hostile, ago=5)
    pg_conn.execute("SET search_path TO public")
    found = read(pg_conn, [QueueSelector((hostile,))], schema=schema)
    assert found[hostile].ready == 1
    assert detect(pg_conn, Options(schema=schema)) is not None
    count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "procrastinate_jobs"))
    assert pg_conn.execute(count).fetchone() == (1,)


def migrate_to(conn: psycopg.Connection[Any], version: str) -> None:
    """procrastinate's migrations, in order, up to and including ``version``."""
    for path in sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql")):
        if path.name[:8] <= version:
            conn.execute(path.read_text())


@pytest.mark.parametrize(
    ("version", "layout"),
    [("03.00.00", "3.0 layout"), ("03.03.00", "3.1-3.3 layout"), (None, "3.4+ layout")],
)
def test_detect_tells_the_layouts_apart(
    pg_conn: psycopg.Connection[Any], version: str | None, layout: str
) -> None:
    if version is None:
        pg_conn.execute(SchemaManager.get_schema())
    else:
        migrate_to(pg_conn, version)
    found = detect(pg_conn, Options())
    assert found == f"tables public.procrastinate_jobs and procrastinate_events ({layout})"
    assert detect(pg_conn, Options(schema="elsewhere")) is None


def test_detect_reads_its_own_schemas_layout_next_to_a_newer_install(
    pg_conn: psycopg.Connection[Any],
) -> None:
    # A 3.0 install in its own schema beside a 3.4 one in public: the columns and the event
    # type's labels are looked up in the named schema only.
    pg_conn.execute(SchemaManager.get_schema())
    pg_conn.execute("CREATE SCHEMA old")
    pg_conn.execute("SET search_path TO old")
    migrate_to(pg_conn, "03.00.00")
    pg_conn.execute("SET search_path TO public")
    found = detect(pg_conn, Options(schema="old"))
    assert found == "tables old.procrastinate_jobs and procrastinate_events (3.0 layout)"


def test_a_pre_3_4_layout_without_the_retried_event_type_is_read(
    pg_conn: psycopg.Connection[Any],
) -> None:
    migrate_to(pg_conn, "03.03.00")
    pg_conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, queueing_lock,"
        " args, scheduled_at) VALUES ('default', 't', 0, NULL, NULL, '{}', NULL)"
    )
    pg_conn.execute("UPDATE procrastinate_events SET at = at - interval '70 seconds'")
    q = read(pg_conn)["default"]
    assert q.ready == 1
    assert 69 <= age(q) < 80


def test_detect_finds_nothing_in_an_empty_database_or_next_to_delayed_job(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None


def test_the_count_reads_about_cap_rows_however_many_are_due(pc: psycopg.Connection[Any]) -> None:
    # The cap bounds the read's cost, not only the number reported: 1000 due jobs and a cap of
    # 10 must not mean a pass over all of them.
    defer(pc, count=1000)
    rows, found = rows_taken(pc, "procrastinate_jobs", lambda: read(pc, cap=10))
    q = found["default"]
    assert (q.ready, q.ready_capped) == (10, True)
    assert rows < 100


def test_detect_needs_the_events_table(pc: psycopg.Connection[Any]) -> None:
    assert detect(pc, Options()) is not None
    pc.execute("DROP TABLE procrastinate_events")
    assert detect(pc, Options()) is None


def test_detect_takes_tables_of_exactly_the_columns_the_reads_use(
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute(
        "CREATE TABLE procrastinate_jobs (queue_name text, priority int, lock text, status text,"
        " scheduled_at timestamptz); CREATE TABLE procrastinate_events (job_id bigint, type text,"
        " at timestamptz)"
    )
    found = detect(pg_conn, Options())
    assert (
        found
        == "tables public.procrastinate_jobs and procrastinate_events (pre-3.0 layout, unsupported)"
    )
