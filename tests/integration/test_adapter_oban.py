"""oban adapter on a real PostgreSQL: one case per job state, naive UTC times, versions, detect."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken
from psycopg import sql

from dynomatic_daemon.adapters.oban import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
HOSTILE_PREFIX = 'odd"; DROP TABLE oban_jobs; -- ü'
FINISHED_AT = {
    "completed": "completed_at",
    "discarded": "discarded_at",
    "cancelled": "cancelled_at",
}


def load(conn: psycopg.Connection[Any], version: int, prefix: str = "public") -> None:
    """Oban's migrations create everything in the prefix schema (our fixtures use search_path)."""
    if prefix != "public":
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(prefix)))
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(prefix)))
    conn.execute((FIXTURES / f"oban_{version}.sql").read_text())
    conn.execute("RESET search_path")


@pytest.fixture
def oban(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    load(pg_conn, 14)
    return pg_conn


def add(
    conn: psycopg.Connection[Any],
    *,
    queue: str = "default",
    state: str = "available",
    scheduled_in: float = -60,
    inserted_ago: float | None = None,
    priority: int = 0,
    count: int = 1,
    prefix: str = "public",
) -> None:
    """Insert jobs as Oban does: naive UTC times relative to the database clock.

    ``inserted_ago`` defaults to the scheduled time for due jobs (an ``available`` job is inserted
    with ``scheduled_at`` = now) and to now for future ones.
    """
    if inserted_ago is None:
        inserted_ago = max(0.0, -scheduled_in)
    finished_at = FINISHED_AT.get(state)
    query = sql.SQL(
        """
        INSERT INTO {table} (state, queue, worker, args, attempt, inserted_at, scheduled_at,
                             attempted_at, attempted_by, priority {finished_column})
        SELECT %(state)s, %(queue)s, 'MyApp.Workers.Mailer', '{{"id": 1}}', %(attempt)s,
               now() AT TIME ZONE 'UTC' - make_interval(secs => %(inserted_ago)s),
               now() AT TIME ZONE 'UTC' + make_interval(secs => %(scheduled_in)s),
               CASE WHEN %(attempt)s > 0 THEN now() AT TIME ZONE 'UTC' END,
               CASE WHEN %(attempt)s > 0 THEN ARRAY['web.1', 'b3f4c1d2'] END,
               %(priority)s {finished_value}
        FROM generate_series(1, %(count)s)
        """
    ).format(
        table=sql.Identifier(prefix, "oban_jobs"),
        finished_column=sql.SQL(", {}").format(sql.Identifier(finished_at))
        if finished_at
        else sql.SQL(""),
        finished_value=sql.SQL(", now() AT TIME ZONE 'UTC'") if finished_at else sql.SQL(""),
    )
    params = {
        "state": state,
        "queue": queue,
        "attempt": 0 if state in {"available", "scheduled", "suspended"} else 1,
        "inserted_ago": inserted_ago,
        "scheduled_in": scheduled_in,
        "priority": priority,
        "count": count,
    }
    conn.execute(query, params)


def read(
    conn: psycopg.Connection[Any],
    selectors: list[QueueSelector] | None = None,
    cap: int = 100,
    **options: Any,
) -> dict[str, QueueStats]:
    reading = Reader(Options.model_validate(options)).read(conn, selectors or EVERY, cap)
    return {q.queue: q for q in reading.queues}


def test_empty_table_reports_no_queues_but_the_database_clock(
    oban: psycopg.Connection[Any],
) -> None:
    reading = Reader(Options()).read(oban, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(oban) - reading.db_now).total_seconds() < 60


def test_an_available_job_is_ready(oban: psycopg.Connection[Any]) -> None:
    add(oban, scheduled_in=-120)
    q = read(oban)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert q.oldest_ready_age_seconds is not None
    assert 119 <= q.oldest_ready_age_seconds < 130


def test_a_future_scheduled_job_is_not_ready(oban: psycopg.Connection[Any]) -> None:
    add(oban, state="scheduled", scheduled_in=+300)
    q = read(oban)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_due_scheduled_job_not_yet_staged_is_ready_from_its_scheduled_time(
    oban: psycopg.Connection[Any],
) -> None:
    add(oban, state="scheduled", scheduled_in=-45, inserted_ago=3600)
    q = read(oban)["default"]
    assert q.ready == 1
    assert q.oldest_ready_age_seconds is not None and 44 <= q.oldest_ready_age_seconds < 55


def test_a_job_inserted_with_a_past_schedule_is_eligible_from_its_insert(
    oban: psycopg.Connection[Any],
) -> None:
    add(oban, state="scheduled", scheduled_in=-7200, inserted_ago=30)  # GREATEST(inserted, sched)
    q = read(oban)["default"]
    assert q.ready == 1
    assert q.oldest_ready_age_seconds is not None and 29 <= q.oldest_ready_age_seconds < 40


def test_a_retry_counts_once_its_backoff_is_over(oban: psycopg.Connection[Any]) -> None:
    add(oban, queue="due", state="retryable", scheduled_in=-5, inserted_ago=600)
    add(oban, queue="waiting", state="retryable", scheduled_in=+600, inserted_ago=600)
    found = read(oban)
    assert (found["due"].ready, found["waiting"].ready) == (1, 0)
    assert found["due"].oldest_ready_age_seconds is not None
    assert 4 <= found["due"].oldest_ready_age_seconds < 15
    assert found["waiting"].oldest_ready_age_seconds is None


def test_an_executing_job_is_running_not_ready(oban: psycopg.Connection[Any]) -> None:
    add(oban, state="executing", scheduled_in=-30)
    q = read(oban)["default"]
    assert (q.ready, q.running) == (0, 1)


@pytest.mark.parametrize("state", ["completed", "discarded", "cancelled", "suspended"])
def test_finished_and_held_jobs_are_neither_ready_nor_running(
    oban: psycopg.Connection[Any], state: str
) -> None:
    add(oban, state=state, scheduled_in=-3600)
    assert read(oban) == {}  # they do not even make their queue appear
    q = read(oban, [QueueSelector(("default",))])["default"]
    assert (q.ready, q.running) == (0, 0)


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    oban: psycopg.Connection[Any],
) -> None:
    add(oban, queue="mailers", count=3)
    add(oban, queue="critical", count=2)
    add(oban, queue="low", state="scheduled", scheduled_in=+60)
    assert read(oban, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(oban)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}
    nothing = read(oban, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert nothing == QueueStats("nothing-here", 0, False, None, None, 0)


def test_wildcards_discover_queues(oban: psycopg.Connection[Any]) -> None:
    add(oban, queue="mail_low")
    add(oban, queue="mail_high", state="retryable", scheduled_in=-1)
    add(oban, queue="reports", state="executing")
    add(oban, queue="zzz_done", state="completed")
    found = read(oban, [QueueSelector(("mail_*",)), QueueSelector(("exact",))])
    # discovery may report more queues than the selector matches: the caller filters
    assert {"mail_low", "mail_high", "exact"} <= found.keys()
    assert "zzz_done" not in found
    assert (found["mail_high"].ready, found["exact"].ready) == (1, 0)
    assert read(oban).keys() == {"mail_high", "mail_low", "reports"}


def test_oldest_is_found_across_any_priorities_and_states(oban: psycopg.Connection[Any]) -> None:
    add(oban, priority=0, scheduled_in=-100)
    add(oban, priority=9, scheduled_in=-900)
    add(oban, priority=250, state="retryable", scheduled_in=-1200, inserted_ago=5000)  # v12+
    add(oban, priority=3, state="scheduled", scheduled_in=-300, inserted_ago=4000)
    add(oban, priority=3, state="scheduled", scheduled_in=+300)
    q = read(oban)["default"]
    assert q.ready == 4
    assert q.oldest_ready_age_seconds is not None and 1199 <= q.oldest_ready_age_seconds < 1210


def test_every_priority_lane_counts_however_many_a_queue_uses(
    oban: psycopg.Connection[Any],
) -> None:
    # Oban v12 opened priority past 9: 60 priorities make 60 lanes, and the oldest job is in
    # the last (a bound of 50 lanes once hid the ready work of lanes 51 to 60)
    for priority in range(60):
        add(oban, priority=priority, scheduled_in=-60)
    add(oban, priority=59, scheduled_in=-900)
    q = read(oban)["default"]
    assert q.ready == 61
    assert q.oldest_ready_age_seconds is not None and 899 <= q.oldest_ready_age_seconds < 910


def test_jobs_due_at_this_very_instant_are_ready(oban: psycopg.Connection[Any]) -> None:
    with oban.transaction():  # now() does not move: scheduled_at equals the clock exactly
        add(oban, state="scheduled", scheduled_in=0)
        q = read(oban)["default"]
    assert (q.ready, q.oldest_ready_age_seconds) == (1, 0.0)


def test_other_queues_and_states_do_not_age_a_queue(oban: psycopg.Connection[Any]) -> None:
    add(oban, scheduled_in=-100)
    add(oban, queue="other", scheduled_in=-900)
    add(oban, state="executing", scheduled_in=-800)
    add(oban, state="completed", scheduled_in=-700)
    add(oban, state="scheduled", scheduled_in=+600, inserted_ago=1000)
    found = read(oban)
    assert (found["default"].ready, found["other"].ready) == (1, 1)
    ages = {k: v.oldest_ready_age_seconds for k, v in found.items()}
    assert ages["default"] is not None and 99 <= ages["default"] < 110
    assert ages["other"] is not None and 899 <= ages["other"] < 910


def test_the_age_is_that_of_the_head_of_each_lane_in_fetch_order(
    oban: psycopg.Connection[Any],
) -> None:
    # the documented cost bound: one probe per (state, priority) lane, the first by scheduled_at;
    # a job inserted with a past scheduled_at at the head hides an older one behind it (errs young)
    add(oban, state="scheduled", scheduled_in=-1000, inserted_ago=100)
    add(oban, state="scheduled", scheduled_in=-500)
    q = read(oban)["default"]
    assert q.ready == 2
    assert q.oldest_ready_age_seconds is not None and 99 <= q.oldest_ready_age_seconds < 110


def test_discovery_reads_a_row_per_queue_however_many_jobs_there_are(
    oban: psycopg.Connection[Any],
) -> None:
    # 1000 future jobs in two queues: each walk step takes one row, not every job's queue
    for queue in ("alpha", "beta"):
        add(oban, queue=queue, state="scheduled", scheduled_in=3600, count=500)
    rows, _ = rows_taken(oban, "oban_jobs", lambda: Reader(Options()).read(oban, EVERY, 10))
    assert rows < 50


def test_a_named_queue_costs_rows_of_its_own_whatever_the_other_queues_hold(
    oban: psycopg.Connection[Any],
) -> None:
    # each lane walk starts inside this queue, not among every job of the state
    add(oban, queue="other", count=1000)
    add(oban, queue="default", count=3)
    named = [QueueSelector(("default",))]
    rows, found = rows_taken(oban, "oban_jobs", lambda: read(oban, named, cap=10))
    assert rows < 50
    assert found["default"].ready == 3


def test_the_count_stops_at_the_cap(oban: psycopg.Connection[Any]) -> None:
    add(oban, count=30)
    add(oban, priority=2, count=5)
    add(oban, state="scheduled", scheduled_in=-5, count=10)  # unstaged rows share the same cap
    q = read(oban, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(oban, cap=45)["default"]
    assert (q.ready, q.ready_capped) == (45, True)
    q = read(oban, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_a_hand_counted_mix(oban: psycopg.Connection[Any]) -> None:
    add(oban, queue="default", count=4)  # ready
    add(oban, queue="default", priority=3, count=2)  # ready
    add(oban, queue="default", state="scheduled", scheduled_in=-2)  # due, unstaged: ready
    add(oban, queue="default", state="scheduled", scheduled_in=+120, count=3)  # future
    add(oban, queue="default", state="retryable", scheduled_in=-30, count=2)  # due: ready
    add(oban, queue="default", state="retryable", scheduled_in=+30, count=2)  # backoff
    add(oban, queue="default", state="executing", count=2)
    add(oban, queue="default", state="completed", count=9)
    add(oban, queue="default", state="discarded")
    add(oban, queue="default", state="cancelled")
    add(oban, queue="default", state="suspended", count=2)
    add(oban, queue="mailers", count=7)  # ready
    add(oban, queue="mailers", state="executing")
    found = read(oban, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (9, 2),
        "mailers": (7, 1),
    }


def test_prefix_and_queue_names_are_identifiers_and_values_not_sql(
    oban: psycopg.Connection[Any],
) -> None:
    load(oban, 14, prefix=HOSTILE_PREFIX)
    queue = "q'; DROP TABLE oban_jobs; --"
    add(oban, queue=queue, count=2, prefix=HOSTILE_PREFIX)
    found = read(oban, prefix=HOSTILE_PREFIX)
    assert found.keys() == {queue}
    assert found[queue].ready == 2
    assert read(oban, [QueueSelector((queue,))], prefix=HOSTILE_PREFIX)[queue].ready == 2
    assert oban.execute("SELECT count(*) FROM public.oban_jobs").fetchone() == (0,)
    assert detect(oban, Options(prefix=HOSTILE_PREFIX)) == (
        f"table {HOSTILE_PREFIX}.oban_jobs (migration version 14)"
    )


def test_version_8_is_read_the_same_way(pg_conn: psycopg.Connection[Any]) -> None:
    load(pg_conn, 8)
    add(pg_conn, queue="mailers", count=2)
    add(pg_conn, queue="mailers", state="retryable", scheduled_in=-300, inserted_ago=900)
    add(pg_conn, queue="mailers", state="executing")
    q = read(pg_conn)["mailers"]
    assert (q.ready, q.running) == (3, 1)
    assert q.oldest_ready_age_seconds is not None and 299 <= q.oldest_ready_age_seconds < 310


def test_before_version_8_the_read_fails_and_detect_says_why(
    pg_conn: psycopg.Connection[Any],
) -> None:
    load(pg_conn, 7)
    assert detect(pg_conn, Options()) == (
        "table public.oban_jobs (migration version 7: unsupported, needs v8+ from Oban 2.0)"
    )
    with pytest.raises(psycopg.errors.UndefinedColumn, match="priority"):
        Reader(Options()).read(pg_conn, EVERY, 10)


def test_detect_reports_the_migration_version(pg_conn: psycopg.Connection[Any]) -> None:
    assert detect(pg_conn, Options()) is None  # empty database
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    pg_conn.execute((FIXTURES / "river_7.sql").read_text())
    assert detect(pg_conn, Options()) is None
    load(pg_conn, 14, prefix="jobs")
    load(pg_conn, 8, prefix="old")
    assert detect(pg_conn, Options()) is None  # the oban tables are not in public
    assert detect(pg_conn, Options(prefix="jobs")) == "table jobs.oban_jobs (migration version 14)"
    assert detect(pg_conn, Options(prefix="old")) == "table old.oban_jobs (migration version 8)"
    pg_conn.execute("COMMENT ON TABLE jobs.oban_jobs IS NULL")  # tables made by hand
    assert detect(pg_conn, Options(prefix="jobs")) == (
        "table jobs.oban_jobs (no version comment; priority column)"
    )


def test_detect_describes_a_table_without_a_numeric_version_comment(
    pg_conn: psycopg.Connection[Any],
) -> None:
    load(pg_conn, 7)
    # another library's table with a priority column lends it nothing
    pg_conn.execute((FIXTURES / "river_7.sql").read_text())
    assert detect(pg_conn, Options()) == (
        "table public.oban_jobs (migration version 7: unsupported, needs v8+ from Oban 2.0)"
    )
    pg_conn.execute("COMMENT ON TABLE oban_jobs IS NULL")
    assert detect(pg_conn, Options()) == (
        "table public.oban_jobs (no version comment; no priority column: unsupported)"
    )
    pg_conn.execute("COMMENT ON TABLE oban_jobs IS 'made by hand'")
    assert detect(pg_conn, Options()) == (
        "table public.oban_jobs (migration version comment 'made by hand';"
        " no priority column: unsupported)"
    )


def test_detect_needs_only_the_columns_it_reads(pg_conn: psycopg.Connection[Any]) -> None:
    pg_conn.execute(
        "CREATE TABLE oban_jobs (state text, queue text, worker text, args jsonb,"
        " inserted_at timestamp, scheduled_at timestamp)"
    )
    assert detect(pg_conn, Options()) == (
        "table public.oban_jobs (no version comment; no priority column: unsupported)"
    )
    # a recent version comment does not make up for the missing priority column
    pg_conn.execute("COMMENT ON TABLE oban_jobs IS '12'")
    assert detect(pg_conn, Options()) == (
        "table public.oban_jobs (migration version 12: unsupported, needs v8+ from Oban 2.0)"
    )
