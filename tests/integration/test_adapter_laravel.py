"""laravel adapter on a real PostgreSQL: one case per row state, the cap, absurd times,
and jobs pushed and reserved by Laravel's own DatabaseQueue (Debian's Laravel 8.83)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import php_support
import psycopg
import pytest
from adapter_support import check_three_queues_read_apart, database_now, limits_stopped_at

from dynomatic_daemon.adapters import laravel as adapter
from dynomatic_daemon.adapters.laravel import Options, Reader, detect, recommended_indexes
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
EVERY = [QueueSelector(None)]
INT_MAX, INT_MIN = 2**31 - 1, -(2**31)

INSERT = """
INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at)
SELECT %(queue)s, '{}', 0,
       CASE WHEN %(reserved)s::int IS NOT NULL
            THEN floor(extract(epoch FROM now()))::int - %(reserved)s::int END,
       floor(extract(epoch FROM now()))::int + %(run_in)s::int,
       floor(extract(epoch FROM now()))::int
FROM generate_series(1, %(count)s)
"""


@pytest.fixture(params=["stock indexes", "recommended index"])
def jobs(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Any:
    """Laravel's table, read in one pass (stock) or by per-queue probes (recommended index)."""
    pg_conn.execute((SCHEMAS / "laravel.sql").read_text())
    if request.param == "recommended index":
        pg_conn.execute(recommended_indexes(Options())[0])
    return pg_conn


def add(
    conn: psycopg.Connection[Any],
    *,
    queue: str = "default",
    run_in: int = 0,
    reserved_ago: int | None = None,
    count: int = 1,
) -> None:
    """Rows as DatabaseQueue writes them: available ``run_in`` s from now, maybe reserved."""
    params = {"queue": queue, "run_in": run_in, "reserved": reserved_ago, "count": count}
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


def test_empty_table_reports_no_queues_but_the_database_clock(
    jobs: psycopg.Connection[Any],
) -> None:
    reading = Reader(Options()).read(jobs, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(jobs) - reading.db_now).total_seconds() < 60


def test_a_pushed_job_is_ready_and_its_age_counts_from_available_at(
    jobs: psycopg.Connection[Any],
) -> None:
    add(jobs, run_in=-120)
    add(jobs)
    q = read(jobs)["default"]
    assert (q.ready, q.ready_capped, q.running) == (2, False, 0)
    assert 119 <= age(q) < 130


def test_a_delayed_job_is_not_ready(jobs: psycopg.Connection[Any]) -> None:
    add(jobs, run_in=300)
    assert read(jobs)["default"] == QueueStats("default", 0, False, None, None, 0)


def test_a_job_reserved_within_retry_after_is_running(jobs: psycopg.Connection[Any]) -> None:
    add(jobs, run_in=-100, reserved_ago=89)
    add(jobs, run_in=-30)
    q = read(jobs)["default"]
    assert (q.ready, q.running) == (1, 1)
    assert 29 <= age(q) < 40


def test_a_reservation_older_than_retry_after_is_ready_again_from_its_expiry(
    jobs: psycopg.Connection[Any],
) -> None:
    add(jobs, run_in=-3600, reserved_ago=600)  # its worker died 10 minutes ago
    q = read(jobs)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 509 <= age(q) < 520  # takeable again since reserved_at + 90 s, not since 1 h ago
    q = read(jobs, retry_after_seconds=900)["default"]  # a longer retry_after: still running
    assert (q.ready, q.running, q.oldest_ready_age_seconds) == (0, 1, None)


def test_the_count_stops_at_the_cap_across_both_ready_kinds(jobs: psycopg.Connection[Any]) -> None:
    add(jobs, count=40)
    add(jobs, reserved_ago=1000, count=5)
    assert (read(jobs, cap=31)["default"].ready, read(jobs, cap=31)["default"].ready_capped) == (
        31,
        True,
    )
    q = read(jobs, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_queues_are_counted_apart_found_and_filtered(jobs: psycopg.Connection[Any]) -> None:
    add(jobs, queue="emails", count=3)
    add(jobs, queue="reports", run_in=60)
    add(jobs, queue="busy", reserved_ago=5)
    found = read(jobs)
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "busy": (0, 1),
        "emails": (3, 0),
        "reports": (0, 0),
    }
    assert read(jobs, [QueueSelector(("emails",))]).keys() == {"emails"}
    assert read(jobs, [QueueSelector(("e*",))])["emails"].ready == 3
    empty = read(jobs, [QueueSelector(("nothing-here",))])
    assert empty == {"nothing-here": QueueStats("nothing-here", 0, False, None, None, 0)}


def test_absurd_integers_neither_break_the_read_nor_count_wrongly(
    jobs: psycopg.Connection[Any],
) -> None:
    jobs.execute(
        "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at)"
        " VALUES ('default', '{}', 0, NULL, %(max)s, 0), ('default', '{}', 1, %(max)s, 0, 0),"
        " ('default', '{}', 1, %(min)s, %(min)s, 0), ('other', '{}', 0, NULL, %(min)s, 0)",
        {"max": INT_MAX, "min": INT_MIN},
    )
    add(jobs, queue="other", run_in=-5)
    found = read(jobs)
    # 2038: not yet; a reservation "in 2038": running; a 1901 reservation: long expired
    assert (found["default"].ready, found["default"].running) == (1, 1)
    assert found["other"].ready == 2
    assert found["other"].oldest_eligible_at == datetime.fromtimestamp(INT_MIN, UTC)


def test_schema_table_and_queue_names_are_identifiers_and_values_not_sql(
    jobs: psycopg.Connection[Any],
) -> None:
    jobs.execute('CREATE SCHEMA "odd; ""schema"""')
    jobs.execute('CREATE TABLE "odd; ""schema"""."jobs""x" (LIKE jobs INCLUDING ALL)')
    hostile = "q'; DROP TABLE jobs; --"
    jobs.execute(
        'INSERT INTO "odd; ""schema"""."jobs""x" (queue, payload, attempts, available_at,'
        " created_at) VALUES (%s, '{}', 0, 0, 0)",
        (hostile,),
    )
    options: dict[str, Any] = {"schema": 'odd; "schema"', "table": 'jobs"x'}
    assert read(jobs, [QueueSelector((hostile,))], **options)[hostile].ready == 1
    assert read(jobs, **options).keys() == {hostile}
    assert jobs.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
    (statement,) = recommended_indexes(Options.model_validate(options))
    jobs.execute(statement)  # the suggested index is valid SQL for that odd table
    assert read(jobs, **options)[hostile].ready == 1


def test_the_recommended_index_gives_the_same_answers(jobs: psycopg.Connection[Any]) -> None:
    add(jobs, run_in=-50, count=3)
    add(jobs, run_in=-3000, reserved_ago=700)
    add(jobs, reserved_ago=10, count=2)
    add(jobs, run_in=500)
    before = read(jobs)
    jobs.execute(recommended_indexes(Options())[0])
    after = read(jobs)
    assert {k: (v.ready, v.running) for k, v in after.items()} == {"default": (4, 2)}
    assert {k: (v.ready, v.running) for k, v in before.items()} == {"default": (4, 2)}
    assert abs(age(after["default"]) - age(before["default"])) < 5


def test_detect_finds_laravels_table_and_nothing_else(pg_conn: psycopg.Connection[Any]) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute(
        "CREATE TABLE jobs (id int, queue text, payload text, attempts int,"
        " reserved_at timestamptz, available_at timestamptz, created_at timestamptz)"
    )
    assert detect(pg_conn, Options()) is None  # a "jobs" table of another shape
    pg_conn.execute("DROP TABLE jobs")
    pg_conn.execute((SCHEMAS / "laravel.sql").read_text())
    assert detect(pg_conn, Options()) == (
        "table current schema.jobs with queue, reserved_at, available_at as Unix seconds"
    )
    assert detect(pg_conn, Options.model_validate({"schema": "elsewhere"})) is None


def test_with_the_index_each_ready_count_stops_at_the_cap(
    pg_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_conn.execute((SCHEMAS / "laravel.sql").read_text())
    pg_conn.execute(recommended_indexes(Options())[0])
    add(pg_conn, run_in=-60, count=40)
    add(pg_conn, run_in=-9000, reserved_ago=5000, count=40)
    # available; expired reservations
    assert limits_stopped_at(pg_conn, monkeypatch, adapter, 10) == 2


def test_each_queue_reads_only_its_own_rows_of_every_kind(jobs: psycopg.Connection[Any]) -> None:
    # "a": two pushed jobs, two expired reservations (takeable again 400 and 200 s ago, the
    # oldest of the queue), one live reservation and one delayed job
    add(jobs, queue="a", run_in=-100)
    add(jobs, queue="a", run_in=-80)
    add(jobs, queue="a", run_in=-5000, reserved_ago=490)
    add(jobs, queue="a", run_in=-6000, reserved_ago=290)
    add(jobs, queue="a", run_in=-9000, reserved_ago=60)
    add(jobs, queue="a", run_in=600)
    # "b": one pushed job, one reserved long after it was due, one delayed
    add(jobs, queue="b", run_in=-50)
    add(jobs, queue="b", run_in=-8000, reserved_ago=30)
    add(jobs, queue="b", run_in=300)
    # "c": nothing ready, though its jobs are older than any other queue's
    add(jobs, queue="c", run_in=-20000, reserved_ago=10)
    add(jobs, queue="c", run_in=900)
    check_three_queues_read_apart(jobs, adapter, a=4)


def test_a_job_due_exactly_now_or_reserved_exactly_retry_after_ago_is_ready(
    jobs: psycopg.Connection[Any],
) -> None:
    """Inside one transaction now() stands still, so rows sit exactly on each boundary: Laravel
    pops ``available_at <= now`` and takes back ``reserved_at <= now - retry_after``."""
    with jobs.transaction():
        add(jobs, queue="due", run_in=0)
        add(jobs, queue="due", run_in=1)
        add(jobs, queue="taken", run_in=-500, reserved_ago=90)
        add(jobs, queue="taken", run_in=-500, reserved_ago=89)  # still its worker's
        found = read(jobs)
        now = database_now(jobs).replace(microsecond=0)
        seen = {k: (v.ready, v.running, v.oldest_eligible_at) for k, v in found.items()}
        assert seen == {"due": (1, 0, now), "taken": (1, 1, now)}


# --- with Laravel's own DatabaseQueue ---------------------------------------------------------


@pytest.fixture
def laravel(db_url: str) -> Any:
    php_support.require("laravel_queue.php")

    def call(command: str, *args: object, retry_after: int = 90) -> list[int]:
        out = php_support.run("laravel_queue.php", db_url, "jobs", retry_after, command, *args)
        return list(out.get("ids", []))  # type: ignore[call-overload]

    return call


def test_laravels_own_migration_makes_the_table_our_schema_file_describes(
    laravel: Any, pg_conn: psycopg.Connection[Any]
) -> None:
    columns = """SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', '
                                   ORDER BY column_name) FROM information_schema.columns
                 WHERE table_name = 'jobs'"""
    indexes = (
        "SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes"
        " WHERE tablename = 'jobs'"
    )
    laravel("schema")
    theirs = (pg_conn.execute(columns).fetchone(), pg_conn.execute(indexes).fetchone())
    pg_conn.execute("DROP TABLE jobs")
    pg_conn.execute((SCHEMAS / "laravel.sql").read_text())
    assert (pg_conn.execute(columns).fetchone(), pg_conn.execute(indexes).fetchone()) == theirs


def test_jobs_laravel_pushes_reserves_releases_and_deletes(
    laravel: Any, pg_conn: psycopg.Connection[Any]
) -> None:
    laravel("schema")
    laravel("push", "default", 5)
    laravel("push", "emails", 2)
    laravel("push", "default", 3, 600)  # later(): delayed 10 minutes
    assert {k: (v.ready, v.running) for k, v in read(pg_conn).items()} == {
        "default": (5, 0),
        "emails": (2, 0),
    }
    reserved = laravel("pop", "default", 2)
    laravel("finish", "default", 1)  # reserved, handled, deleted
    laravel("release", "default", 120)  # reserved, then released with a 2-minute backoff
    q = read(pg_conn)["default"]
    assert (q.ready, q.running) == (1, 2)
    waiting = [
        r[0]
        for r in pg_conn.execute(
            "SELECT id FROM jobs WHERE queue = 'default' AND reserved_at IS NULL"
            " AND available_at <= extract(epoch FROM now())"
        )
    ]
    # the reserving worker died: once retry_after has passed, Laravel's pop takes the job again
    pg_conn.execute(
        "UPDATE jobs SET reserved_at = reserved_at - 91 WHERE id = ANY(%s)", (reserved,)
    )
    q = read(pg_conn)["default"]
    assert (q.ready, q.running) == (3, 0)
    assert sorted(laravel("pop", "default", 3)) == sorted([*reserved, *waiting])
    assert (read(pg_conn)["default"].ready, read(pg_conn)["default"].running) == (0, 3)
