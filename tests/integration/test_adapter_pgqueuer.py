"""pgqueuer adapter on a real PostgreSQL, with pgqueuer's own install DDL and queries.

Jobs are enqueued, dequeued, retried, finished and re-queued with the SQL pgqueuer's query
builder renders (run through a psycopg ``RawCursor``, which takes its ``$1`` placeholders), so
the rows are the ones pgqueuer writes. ``travel`` then moves a job's times into the past.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment, QueryQueueBuilder
from pgqueuer.domain.settings import DBSettings
from procrastinate.schema import SchemaManager
from psycopg import sql

from dynomatic_daemon.adapters.pgqueuer import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
QB = QueryQueueBuilder(DBSettings())
HEARTBEAT_TIMEOUT = timedelta(seconds=30)  # pgqueuer's default

TRAVEL_SQL = """
UPDATE pgqueuer SET created = created - make_interval(secs => %(secs)s),
                    updated = updated - make_interval(secs => %(secs)s),
                    heartbeat = heartbeat - make_interval(secs => %(secs)s),
                    execute_after = execute_after - make_interval(secs => %(secs)s)
WHERE id = ANY(%(ids)s)
"""


@pytest.fixture
def pq(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute(QueryBuilderEnvironment(DBSettings()).build_install_query())
    return pg_conn


def raw(conn: psycopg.Connection[Any], query: str, args: list[Any]) -> list[tuple[Any, ...]]:
    with psycopg.RawCursor(conn) as cur:
        cur.execute(query, args)
        return cur.fetchall() if cur.description else []


def enqueue(
    conn: psycopg.Connection[Any],
    entrypoint: str = "default",
    *,
    priority: int = 0,
    delay: float = 0,
    ago: float = 0,
    count: int = 1,
) -> list[int]:
    """``Queries.enqueue``, then pretend it happened ``ago`` seconds ago."""
    args = [
        [priority] * count,
        [entrypoint] * count,
        [b"{}"] * count,
        [timedelta(seconds=delay)] * count,
        [None] * count,
        [None] * count,
    ]
    ids = [int(r[1]) for r in raw(conn, QB.build_enqueue_query(), args)]
    travel(conn, ids, ago)
    return ids


def travel(conn: psycopg.Connection[Any], ids: list[int], secs: float) -> None:
    conn.execute(TRAVEL_SQL, {"ids": ids, "secs": secs})


def dequeue(
    conn: psycopg.Connection[Any], entrypoint: str = "default", batch: int = 1
) -> list[int]:
    """What a worker of ``entrypoint`` takes: its jobs become ``picked``."""
    query = QB.build_dequeue_query(
        batch_size=batch,
        entrypoints=[entrypoint],
        concurrency_limits=[0],
        queue_manager_id=uuid.uuid4(),
        global_concurrency_limit=None,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
    )
    return sorted(int(r[0]) for r in raw(conn, query.sql, list(query.args)))


def would_dequeue(conn: psycopg.Connection[Any], entrypoint: str = "default") -> list[int]:
    with conn.transaction(force_rollback=True):
        return dequeue(conn, entrypoint, batch=1000)


def log_job(conn: psycopg.Connection[Any], job: int, status: str) -> None:
    """A worker's end of a job: deleted and logged, or held with ``on_failure="hold"``."""
    raw(conn, QB.build_log_job_query(), [[job], [status], [None]])


def retry(conn: psycopg.Connection[Any], job: int, delay: float) -> None:
    raw(conn, QB.build_retry_job_query(), [job, timedelta(seconds=delay), None])


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


def test_an_empty_table_reports_no_queues_but_the_database_clock(
    pq: psycopg.Connection[Any],
) -> None:
    reading = Reader(Options()).read(pq, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(pq) - reading.db_now).total_seconds() < 60


def test_a_queued_job_is_ready_and_aged_from_its_creation(pq: psycopg.Connection[Any]) -> None:
    job = enqueue(pq, ago=120)
    q = read(pq)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert 119 <= age(q) < 130
    assert would_dequeue(pq) == job


def test_a_job_to_execute_later_is_not_ready(pq: psycopg.Connection[Any]) -> None:
    enqueue(pq, delay=300)
    q = read(pq)["default"]
    assert (q.ready, q.oldest_eligible_at, q.running) == (0, None, 0)
    assert would_dequeue(pq) == []


def test_a_delayed_job_that_came_due_is_aged_from_its_execute_after(
    pq: psycopg.Connection[Any],
) -> None:
    enqueue(pq, delay=600, ago=900)  # enqueued 15 min ago to run 10 min later
    q = read(pq)["default"]
    assert q.ready == 1
    assert 299 <= age(q) < 310


def test_a_picked_job_with_a_live_heartbeat_is_running(pq: psycopg.Connection[Any]) -> None:
    job = enqueue(pq, ago=60)
    assert dequeue(pq) == job
    q = read(pq)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 1)


def test_a_picked_job_with_an_expired_heartbeat_is_ready_again(
    pq: psycopg.Connection[Any],
) -> None:
    job = enqueue(pq, ago=500)
    assert dequeue(pq) == job
    travel(pq, job, 100)  # its worker's last heartbeat was 100 s ago
    q = read(pq)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 69 <= age(q) < 80  # runnable again since the 30 s timeout ran out
    assert would_dequeue(pq) == job
    # workers running with a longer timeout still count it as theirs
    q = read(pq, heartbeat_timeout_seconds=300)["default"]
    assert (q.ready, q.running) == (0, 1)


def test_a_retry_in_backoff_is_neither_ready_nor_running(pq: psycopg.Connection[Any]) -> None:
    job = enqueue(pq, ago=60)
    assert dequeue(pq) == job
    retry(pq, job[0], delay=60)
    q = read(pq)["default"]
    assert (q.ready, q.running) == (0, 0)
    assert would_dequeue(pq) == []


def test_a_due_retry_is_ready_and_aged_from_its_retry_time(pq: psycopg.Connection[Any]) -> None:
    job = enqueue(pq, ago=3600)
    assert dequeue(pq) == job
    retry(pq, job[0], delay=600)
    travel(pq, job, 900)  # retried 15 min ago with a 10 min delay
    q = read(pq)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 299 <= age(q) < 310
    assert would_dequeue(pq) == job


@pytest.mark.parametrize("status", ["successful", "exception", "canceled"])
def test_finished_jobs_leave_the_table(pq: psycopg.Connection[Any], status: str) -> None:
    job = enqueue(pq)
    assert dequeue(pq) == job
    log_job(pq, job[0], status)
    assert read(pq) == {}
    logged = "SELECT count(*) FROM pgqueuer_log WHERE job_id = %s AND status = %s"
    assert pq.execute(logged, [job[0], status]).fetchone() == (1,)


def test_a_held_failed_job_is_neither_ready_nor_running_until_requeued(
    pq: psycopg.Connection[Any],
) -> None:
    job = enqueue(pq, ago=600)
    assert dequeue(pq) == job
    log_job(pq, job[0], "failed")
    assert read(pq) == {}  # only queued and picked jobs make a queue appear
    q = read(pq, [QueueSelector(("default",))])["default"]
    assert (q.ready, q.running) == (0, 0)
    raw(pq, QB.build_requeue_jobs_query(), [job])
    travel(pq, job, 40)
    q = read(pq)["default"]
    assert q.ready == 1
    assert 39 <= age(q) < 50  # from the re-queue, not the first enqueue


def test_a_job_enqueued_with_a_negative_delay_is_aged_from_its_creation(
    pq: psycopg.Connection[Any],
) -> None:
    enqueue(pq, delay=-3600, ago=50)  # first by execute_after, eligible 50 s ago
    assert 49 <= age(read(pq)["default"]) < 60
    enqueue(pq, ago=200)  # later by execute_after, but waiting longer
    assert 199 <= age(read(pq)["default"]) < 210


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    pq: psycopg.Connection[Any],
) -> None:
    enqueue(pq, "mailers", count=3)
    enqueue(pq, "critical", count=2)
    enqueue(pq, "low", delay=60)
    assert read(pq, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(pq)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}


def test_a_named_queue_with_no_rows_is_reported_with_zeros(pq: psycopg.Connection[Any]) -> None:
    enqueue(pq, "mailers")
    q = read(pq, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert (q.ready, q.ready_capped, q.oldest_eligible_at, q.running) == (0, False, None, 0)


def test_discovery_finds_queued_and_picked_entrypoints(pq: psycopg.Connection[Any]) -> None:
    enqueue(pq, "mailers")
    enqueue(pq, "mail-digest", delay=60)
    busy = enqueue(pq, "reports")
    assert dequeue(pq, "reports") == busy
    assert read(pq).keys() == {"mail-digest", "mailers", "reports"}
    found = read(pq, [QueueSelector(("mail*",)), QueueSelector(("critical",))])
    assert {"mail-digest", "mailers", "critical"} <= found.keys()
    assert found["mailers"].ready == 1 and found["critical"].ready == 0
    assert found["reports"].running == 1


def test_the_oldest_is_found_across_priorities(pq: psycopg.Connection[Any]) -> None:
    enqueue(pq, priority=10, ago=100)
    enqueue(pq, priority=0, ago=900)
    enqueue(pq, priority=-5, ago=300)
    assert 899 <= age(read(pq)["default"]) < 910


def test_the_count_stops_at_the_cap(pq: psycopg.Connection[Any]) -> None:
    stale = enqueue(pq, count=3, ago=60)
    assert dequeue(pq, batch=3) == stale
    travel(pq, stale, 60)  # stale picked jobs count towards the same cap
    enqueue(pq, count=37)  # one batch: all share created and execute_after
    q = read(pq, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(pq, cap=41)["default"]
    assert (q.ready, q.ready_capped) == (40, False)
    q = read(pq, cap=40)["default"]
    assert (q.ready, q.ready_capped) == (40, True)


def test_a_hand_counted_mix(pq: psycopg.Connection[Any]) -> None:
    running = enqueue(pq, count=2)
    assert dequeue(pq, batch=2) == running
    failed = enqueue(pq)
    assert dequeue(pq) == failed
    log_job(pq, failed[0], "failed")
    done = enqueue(pq)
    assert dequeue(pq) == done
    log_job(pq, done[0], "successful")
    stale = enqueue(pq, count=1, ago=300)
    assert dequeue(pq) == stale
    travel(pq, stale, 45)  # ready again
    enqueue(pq, count=4, ago=60)  # ready
    enqueue(pq, priority=5, count=2, ago=30)  # ready
    enqueue(pq, delay=120, count=3)  # later
    enqueue(pq, delay=30, ago=40)  # due
    busy = enqueue(pq, "mailers")
    assert dequeue(pq, "mailers") == busy
    enqueue(pq, "mailers", count=7)  # ready
    found = read(pq, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (8, 2),
        "mailers": (7, 1),
    }
    assert len(would_dequeue(pq)) == 8
    assert len(would_dequeue(pq, "mailers")) == 7


def test_prefix_schema_and_table_names_are_identifiers_not_sql(
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute(QueryBuilderEnvironment(DBSettings(prefix="app_")).build_install_query())
    pg_conn.execute(
        "INSERT INTO app_pgqueuer (priority, entrypoint, status) VALUES (0, 'a', 'queued')"
    )
    assert read(pg_conn, prefix="app_")["a"].ready == 1
    assert detect(pg_conn, Options(prefix="app_")) is not None
    assert detect(pg_conn, Options()) is None

    schema, table = 'odd; "schéma" --', 'pg"queuer; DROP TABLE app_pgqueuer'
    pg_conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    pg_conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE app_pgqueuer INCLUDING ALL)").format(
            sql.Identifier(schema, table)
        )
    )
    hostile = "q'; DROP TABLE app_pgqueuer; --"
    pg_conn.execute(
        sql.SQL("INSERT INTO {} (priority, entrypoint, status) VALUES (0, %s, 'queued')").format(
            sql.Identifier(schema, table)
        ),
        [hostile],
    )
    found = read(pg_conn, [QueueSelector((hostile,))], schema=schema, table=table)
    assert found[hostile].ready == 1
    assert detect(pg_conn, Options(schema=schema, table=table)) is not None
    assert pg_conn.execute("SELECT count(*) FROM app_pgqueuer").fetchone() == (1,)


def test_detect_the_current_layout_in_a_configured_schema(
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute(QueryBuilderEnvironment(DBSettings(db_schema="jobs")).build_install_query())
    found = detect(pg_conn, Options(schema="jobs"))
    assert found == "table jobs.pgqueuer (1.1+ layout: (entrypoint, execute_after) index)"
    assert detect(pg_conn, Options()) is None  # not in the current schema


def test_detect_and_read_the_1_0_layout(pg_conn: psycopg.Connection[Any]) -> None:
    pg_conn.execute((FIXTURES / "pgqueuer_1.0.sql").read_text())
    found = detect(pg_conn, Options())
    assert found == "table public.pgqueuer (1.0 layout: no (entrypoint, execute_after) index)"
    pg_conn.execute(
        "INSERT INTO pgqueuer (priority, entrypoint, status, created, execute_after)"
        " VALUES (0, 'default', 'queued', now() - interval '90 seconds',"
        " now() - interval '90 seconds')"
    )
    pg_conn.execute(
        "INSERT INTO pgqueuer (priority, entrypoint, status, heartbeat)"
        " VALUES (0, 'default', 'picked', now())"
    )
    q = read(pg_conn)["default"]
    assert (q.ready, q.running) == (1, 1)
    assert 89 <= age(q) < 100


def test_detect_calls_a_layout_without_the_failed_status_unsupported(
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute((FIXTURES / "pgqueuer_1.0.sql").read_text().replace(", 'failed'", ""))
    assert detect(pg_conn, Options()) == "table public.pgqueuer (pre-1.0 layout, unsupported)"


def test_detect_finds_nothing_in_an_empty_database_or_next_to_other_libraries(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    pg_conn.execute(SchemaManager.get_schema())
    assert detect(pg_conn, Options()) is None
    assert detect(pg_conn, Options(table="delayed_jobs")) is None
    assert detect(pg_conn, Options(table="procrastinate_jobs")) is None


def test_a_job_due_this_very_instant_is_not_ready_yet(pq: psycopg.Connection[Any]) -> None:
    # One transaction: now() does not move, so execute_after can equal the reader's now(); the
    # dequeue query takes only execute_after < NOW(), and does not take it either.
    with pq.transaction():
        enqueue(pq)
        q = read(pq)["default"]
        assert would_dequeue(pq) == []
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_heartbeat_exactly_the_timeout_old_is_still_running(
    pq: psycopg.Connection[Any],
) -> None:
    # The dequeue query re-takes a picked job only once heartbeat < NOW() - timeout.
    with pq.transaction():
        job = enqueue(pq, ago=300)
        assert dequeue(pq) == job
        pq.execute(
            "UPDATE pgqueuer SET heartbeat = now() - %s WHERE id = ANY(%s)",
            [HEARTBEAT_TIMEOUT, job],
        )
        q = read(pq)["default"]
        assert would_dequeue(pq) == []
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 1)


def test_the_oldest_is_found_among_jobs_due_at_the_same_instant(
    pq: psycopg.Connection[Any],
) -> None:
    # Two jobs due at one execute_after: the first (enqueued with a negative delay 10 s ago) is
    # eligible since its creation, the second since its execute_after, 100 s ago.
    with pq.transaction():
        enqueue(pq, delay=-90, ago=10)
        enqueue(pq, delay=100, ago=200)
    q = read(pq)["default"]
    assert q.ready == 2
    assert 99 <= age(q) < 110


def test_a_stale_picked_job_older_than_every_queued_one_is_the_oldest(
    pq: psycopg.Connection[Any],
) -> None:
    stale = enqueue(pq, ago=500)
    assert dequeue(pq) == stale
    travel(pq, stale, 100)  # runnable again since the 30 s timeout ran out, 70 s ago
    enqueue(pq, ago=20)
    q = read(pq)["default"]
    assert q.ready == 2
    assert 69 <= age(q) < 80


def test_the_oldest_stale_job_is_the_first_whose_heartbeat_ran_out(
    pq: psycopg.Connection[Any],
) -> None:
    jobs = enqueue(pq, count=2, ago=900)
    assert dequeue(pq, batch=2) == jobs
    travel(pq, jobs[:1], 100)
    travel(pq, jobs[1:], 300)  # its timeout ran out 270 s ago
    q = read(pq)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert 269 <= age(q) < 280


def test_another_queues_job_is_not_taken_for_the_oldest(pq: psycopg.Connection[Any]) -> None:
    # A job enqueued with a negative delay makes the oldest a range of execute_after; a job of
    # another queue in that range is not this queue's.
    enqueue(pq, "a", delay=-3600, ago=50)
    enqueue(pq, "b", ago=300)
    found = read(pq)
    assert 49 <= age(found["a"]) < 60
    assert 299 <= age(found["b"]) < 310


def test_a_layout_without_the_failed_status_is_unsupported_next_to_other_enums(
    pg_conn: psycopg.Connection[Any],
) -> None:
    # procrastinate's job status enum has a 'failed' label too; only pgqueuer's own counts.
    pg_conn.execute((FIXTURES / "pgqueuer_1.0.sql").read_text().replace(", 'failed'", ""))
    pg_conn.execute(SchemaManager.get_schema())
    assert detect(pg_conn, Options()) == "table public.pgqueuer (pre-1.0 layout, unsupported)"


def test_the_count_reads_about_cap_rows_however_many_are_due(pq: psycopg.Connection[Any]) -> None:
    # The cap bounds the read's cost, not only the number reported: 1000 due jobs and a cap of
    # 10 must not mean a pass over all of them.
    enqueue(pq, count=1000, ago=60)
    rows, found = rows_taken(pq, "pgqueuer", lambda: read(pq, cap=10))
    q = found["default"]
    assert (q.ready, q.ready_capped) == (10, True)
    assert rows < 100


def test_detect_takes_a_table_of_exactly_the_columns_the_reads_use(
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute(
        "CREATE TYPE pgqueuer_status AS ENUM ('queued', 'picked', 'failed');"
        " CREATE TABLE pgqueuer (entrypoint text, status pgqueuer_status, created timestamptz,"
        " execute_after timestamptz, heartbeat timestamptz, priority int)"
    )
    assert detect(pg_conn, Options()) == (
        "table public.pgqueuer (1.0 layout: no (entrypoint, execute_after) index)"
    )
