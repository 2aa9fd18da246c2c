"""delayed_job adapter on a real PostgreSQL: one case per row state, the cap, and time zones."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken
from psycopg import sql

from dynomatic_daemon.adapters.delayed_job import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURE = SCHEMAS / "delayed_job.sql"
EVERY = [QueueSelector(None)]


RECOMMENDED_INDEX = """
CREATE INDEX index_delayed_jobs_for_dynomatic
    ON delayed_jobs (queue, locked_at, run_at) WHERE failed_at IS NULL
"""


@pytest.fixture(params=["stock indexes", "recommended index"])
def dj(pg_conn: psycopg.Connection[Any], request: pytest.FixtureRequest) -> psycopg.Connection[Any]:
    """Every case runs twice: on the single-pass plan and on the per-queue probes."""
    pg_conn.execute(FIXTURE.read_text())
    if request.param == "recommended index":
        pg_conn.execute(RECOMMENDED_INDEX)
    return pg_conn


def add(
    conn: psycopg.Connection[Any],
    *,
    queue: str | None = "default",
    run_in: float = -60,
    locked_ago: float | None = None,
    failed: bool = False,
    priority: int = 0,
    count: int = 1,
) -> None:
    """Insert jobs as delayed_job does: naive UTC times, relative to the database clock."""
    conn.execute(
        """
        INSERT INTO delayed_jobs (priority, handler, queue, run_at, locked_at, locked_by,
                                  failed_at, created_at, updated_at)
        SELECT %(priority)s, '--- !ruby/object:Job {}', %(queue)s,
               now() AT TIME ZONE 'UTC' + make_interval(secs => %(run_in)s),
               now() AT TIME ZONE 'UTC' - make_interval(secs => %(locked_ago)s),
               CASE WHEN %(locked_ago)s IS NULL THEN NULL ELSE 'host:w pid:1' END,
               CASE WHEN %(failed)s THEN now() AT TIME ZONE 'UTC' END,
               now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
        FROM generate_series(1, %(count)s)
        """,
        {
            "priority": priority,
            "queue": queue,
            "run_in": run_in,
            "locked_ago": locked_ago,
            "failed": failed,
            "count": count,
        },
    )


def read(
    conn: psycopg.Connection[Any],
    selectors: list[QueueSelector] | None = None,
    cap: int = 100,
    **options: Any,
) -> dict[str, QueueStats]:
    adapter = Reader(Options.model_validate(options))
    reading = adapter.read(conn, selectors or EVERY, cap)
    names = [q.queue for q in reading.queues]
    assert len(names) == len(set(names)), f"a queue reported twice: {names}"
    return {q.queue: q for q in reading.queues}


def test_empty_table_reports_no_queues_but_the_database_clock(dj: psycopg.Connection[Any]) -> None:
    reading = Reader(Options()).read(dj, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(dj) - reading.db_now).total_seconds() < 60


def test_a_due_unlocked_job_is_ready(dj: psycopg.Connection[Any]) -> None:
    add(dj, run_in=-120)
    q = read(dj)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert q.oldest_ready_age_seconds is not None
    assert 119 <= q.oldest_ready_age_seconds < 130


def test_a_future_job_is_not_ready(dj: psycopg.Connection[Any]) -> None:
    add(dj, run_in=+300)
    q = read(dj)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_failed_job_is_neither_ready_nor_running(dj: psycopg.Connection[Any]) -> None:
    add(dj, run_in=-3600, failed=True)
    add(dj, run_in=-3600, failed=True, locked_ago=10)
    assert read(dj) == {}  # failed rows do not even make their queue appear


def test_a_freshly_locked_job_is_running_not_ready(dj: psycopg.Connection[Any]) -> None:
    add(dj, run_in=-30, locked_ago=20)
    q = read(dj)["default"]
    assert (q.ready, q.running) == (0, 1)


def test_a_lock_older_than_max_run_time_is_abandoned_so_the_job_is_ready(
    dj: psycopg.Connection[Any],
) -> None:
    add(dj, run_in=-5 * 3600, locked_ago=4 * 3600 + 60)  # default max_run_time is 4 h
    add(dj, run_in=-5 * 3600, locked_ago=3 * 3600)
    q = read(dj)["default"]
    assert (q.ready, q.running) == (1, 1)
    assert q.oldest_ready_age_seconds is not None and q.oldest_ready_age_seconds >= 5 * 3600 - 5
    # a shorter configured max_run_time turns the second lock stale too
    q = read(dj, max_run_time_seconds=2 * 3600)["default"]
    assert (q.ready, q.running) == (2, 0)


def test_null_queue_is_reported_as_default(dj: psycopg.Connection[Any]) -> None:
    add(dj, queue=None, run_in=-50)
    add(dj, queue="default", run_in=-10)
    found = read(dj, [QueueSelector(("default",))])
    assert found["default"].ready == 2
    assert 49 <= (found["default"].oldest_ready_age_seconds or 0) < 60


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    dj: psycopg.Connection[Any],
) -> None:
    add(dj, queue="mailers", count=3)
    add(dj, queue="critical", count=2)
    add(dj, queue="low", run_in=+60)
    assert read(dj, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(dj)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}
    # a named queue with no rows is still reported, with zeros
    assert read(dj, [QueueSelector(("nothing-here",))])["nothing-here"].ready == 0


def test_oldest_is_found_across_priorities(dj: psycopg.Connection[Any]) -> None:
    add(dj, priority=10, run_in=-900)
    add(dj, priority=0, run_in=-100)
    add(dj, priority=-5, run_in=-300)
    age = read(dj)["default"].oldest_ready_age_seconds
    assert age is not None and 899 <= age < 910


def test_the_count_stops_at_the_cap(dj: psycopg.Connection[Any]) -> None:
    add(dj, count=40)
    add(dj, count=5, locked_ago=5 * 3600)  # stale locks count towards the same cap
    q = read(dj, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(dj, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_a_hand_counted_mix(dj: psycopg.Connection[Any]) -> None:
    add(dj, queue="default", count=4)  # ready
    add(dj, queue=None, count=2)  # ready, NULL queue -> default
    add(dj, queue="default", run_in=+120, count=3)  # future
    add(dj, queue="default", failed=True, count=5)  # failed
    add(dj, queue="default", locked_ago=30, count=2)  # running
    add(dj, queue="default", locked_ago=6 * 3600, count=1)  # stale lock -> ready
    add(dj, queue="mailers", count=7)  # ready
    add(dj, queue="mailers", locked_ago=1, count=1)  # running
    found = read(dj, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (7, 2),
        "mailers": (7, 1),
    }


def test_schema_and_table_names_are_identifiers_not_sql(dj: psycopg.Connection[Any]) -> None:
    dj.execute('CREATE SCHEMA "odd; schema"')
    dj.execute('CREATE TABLE "odd; schema"."jobs""x" (LIKE delayed_jobs INCLUDING ALL)')
    # the copy keeps (or lacks) the recommended index, so both plans see hostile names
    dj.execute(
        'INSERT INTO "odd; schema"."jobs""x" (handler, queue, run_at, created_at, updated_at)'
        " VALUES ('h', 'q''; DROP TABLE delayed_jobs; --', now() AT TIME ZONE 'UTC',"
        " now(), now())"
    )
    found = read(dj, schema="odd; schema", table='jobs"x')
    assert found["q'; DROP TABLE delayed_jobs; --"].ready == 1
    assert dj.execute("SELECT count(*) FROM delayed_jobs").fetchone() == (0,)


@pytest.mark.parametrize("column", ["queue", "run_at", "locked_at", "failed_at", "handler"])
def test_detect_needs_every_column_the_reads_use(
    pg_conn: psycopg.Connection[Any], column: str
) -> None:
    pg_conn.execute(FIXTURE.read_text())
    assert detect(pg_conn, Options()) == (
        "table current schema.delayed_jobs with run_at, locked_at, failed_at, handler"
    )
    pg_conn.execute(f"ALTER TABLE delayed_jobs DROP COLUMN {column}")
    # another table of the schema having the column does not make up for it
    pg_conn.execute(f"CREATE TABLE other_jobs ({column} text)")
    assert detect(pg_conn, Options()) is None


def test_detect_takes_a_table_of_exactly_the_columns_the_reads_use(
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute(
        "CREATE TABLE delayed_jobs (queue text, run_at timestamp, locked_at timestamp,"
        " failed_at timestamp, handler text)"
    )
    assert detect(pg_conn, Options()) is not None


def test_a_queue_holding_only_failed_jobs_is_not_discovered(dj: psycopg.Connection[Any]) -> None:
    add(dj, queue="graveyard", failed=True, count=2)
    add(dj, queue=None, failed=True)  # only failed NULL-queue rows: no "default" either
    add(dj, queue="live", count=1)
    assert read(dj).keys() == {"live"}


def test_a_failed_lock_is_not_running(dj: psycopg.Connection[Any]) -> None:
    add(dj, queue="q", locked_ago=10, failed=True)
    add(dj, queue="q", locked_ago=10)
    assert read(dj, [QueueSelector(("q",))])["q"].running == 1


def test_the_oldest_of_unlocked_and_stale_jobs_is_the_older_of_both(
    dj: psycopg.Connection[Any],
) -> None:
    add(dj, queue="q", run_in=-100)  # unlocked
    add(dj, queue="q", run_in=-9 * 3600, locked_ago=5 * 3600)  # stale lock, older
    add(dj, queue="r", run_in=-9 * 3600)  # unlocked, older
    add(dj, queue="r", run_in=-100, locked_ago=5 * 3600)  # stale lock
    found = read(dj)
    for name in ("q", "r"):
        age = found[name].oldest_ready_age_seconds
        assert age is not None and 9 * 3600 - 5 <= age < 9 * 3600 + 60, name


def test_a_named_queue_and_a_wildcard_together_report_each_queue_once(
    dj: psycopg.Connection[Any],
) -> None:
    add(dj, queue="mailers", count=2)
    add(dj, queue="reports", count=1)
    found = read(dj, [QueueSelector(("mailers",)), QueueSelector(None)])
    assert {k: v.ready for k, v in found.items()} == {"mailers": 2, "reports": 1}


def test_the_boundaries_are_delayed_jobs_own(dj: psycopg.Connection[Any]) -> None:
    """Inside one transaction now() stands still, so rows can sit exactly on each boundary:
    delayed_job runs a job whose ``run_at <= now`` and takes a lock over when
    ``locked_at < now - max_run_time`` (so a lock exactly that old is still its worker's)."""
    hours = 3600
    with dj.transaction():
        add(dj, queue="due", run_in=0)  # due exactly now: ready
        add(dj, queue="due_stale", run_in=0, locked_ago=5 * hours)  # same, with a stale lock
        add(dj, queue="edge", run_in=-9 * hours, locked_ago=4 * hours)  # lock exactly 4 h old
        add(dj, queue="edge", run_in=-5 * hours, locked_ago=4 * hours + 1)  # 1 s past: stale
        add(dj, queue="stale", run_in=-3 * hours, locked_ago=5 * hours)
        add(dj, queue="stale", run_in=-2 * hours, locked_ago=5 * hours)
        found = read(dj)
    got = {n: (q.ready, q.running, q.oldest_ready_age_seconds) for n, q in found.items()}
    assert got == {
        "due": (1, 0, 0),
        "due_stale": (1, 0, 0),
        "edge": (1, 1, 5 * hours),
        "stale": (2, 0, 3 * hours),
    }


def _probes_ran(conn: psycopg.Connection[Any]) -> bool:
    """Whether a read takes the per-queue probe plan: its queue discovery (the statement's one
    recursive union) runs, which the single-pass plan skips."""
    params = {
        "schema": None,
        "table": "delayed_jobs",
        "names": [],
        "discover": True,
        "cap": 10,
        "max_run_time": "4 hours",
    }
    explain = sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ")
    rows = conn.execute(explain + Reader(Options())._query, params).fetchall()
    [union] = [r[0] for r in rows if "Recursive Union" in r[0]]
    return "never executed" not in union


@pytest.mark.parametrize(
    ("index", "probes"),
    [
        (None, False),
        ("(queue, locked_at, run_at) WHERE failed_at IS NULL", True),
        ("(queue, locked_at)", True),
        ("(run_at, locked_at)", False),  # locked_at second, but queue does not lead
        ("(queue, run_at)", False),  # queue leads, but locked_at is not second
        ("(locked_at, queue)", False),
    ],
)
def test_only_an_index_leading_with_queue_then_locked_at_switches_to_probes(
    pg_conn: psycopg.Connection[Any], index: str | None, probes: bool
) -> None:
    pg_conn.execute(FIXTURE.read_text())
    if index is not None:
        pg_conn.execute(f"CREATE INDEX for_test ON delayed_jobs {index}")
    add(pg_conn, queue="q")
    assert _probes_ran(pg_conn) is probes


@pytest.mark.parametrize(("locked_ago", "bound"), [(None, 100), (5 * 3600, 600)])
def test_with_the_recommended_index_the_counts_read_about_cap_rows(
    pg_conn: psycopg.Connection[Any], locked_ago: float | None, bound: int
) -> None:
    # 500 due jobs, unlocked or abandoned by a dead worker, and a cap of 10: each count stops at
    # the cap. (The oldest abandoned job is a min() over the abandoned range, read whole: 500.)
    # A table this small is cheaper to read by sequential scans; the plan measured is the index
    # plan a big table gets.
    pg_conn.execute(FIXTURE.read_text())
    pg_conn.execute(RECOMMENDED_INDEX)
    add(pg_conn, count=500, locked_ago=locked_ago)
    rows, found = rows_taken(pg_conn, "delayed_jobs", lambda: read(pg_conn, cap=10))
    q = found["default"]
    assert (q.ready, q.ready_capped) == (10, True)
    assert rows < bound
