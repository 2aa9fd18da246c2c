"""river adapter on a real PostgreSQL: one case per job state, pauses, the cap, versions, detect."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken
from psycopg import sql

from dynomatic_daemon.adapters.river import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
HOSTILE_SCHEMA = 'odd"; DROP TABLE river_job; -- ü'


@pytest.fixture
def river(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute((FIXTURES / "river_7.sql").read_text())
    return pg_conn


@pytest.fixture
def river_v3(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute((FIXTURES / "river_3.sql").read_text())
    return pg_conn


def add(
    conn: psycopg.Connection[Any],
    *,
    queue: str = "default",
    state: str = "available",
    scheduled_in: float = -60,
    priority: int = 1,
    count: int = 1,
    schema: str | None = None,
) -> None:
    """Insert jobs as River does: finalized_at on finished states, times on the database clock."""
    table = sql.Identifier(schema, "river_job") if schema else sql.Identifier("river_job")
    query = sql.SQL(
        """
        INSERT INTO {table} (state, attempt, max_attempts, attempted_at, created_at,
                             finalized_at, scheduled_at, priority, args, kind, queue)
        SELECT %(state)s, %(attempt)s,
               25, CASE WHEN %(attempt)s > 0 THEN now() END,
               LEAST(now(), now() + make_interval(secs => %(scheduled_in)s)),
               CASE WHEN %(finalized)s THEN now() END,
               now() + make_interval(secs => %(scheduled_in)s),
               %(priority)s, '{{"email": "a@example.com"}}', 'send_email', %(queue)s
        FROM generate_series(1, %(count)s)
        """
    ).format(table=table)
    params = {
        "state": state,
        "attempt": 0 if state in {"available", "scheduled", "pending"} else 1,
        "finalized": state in {"completed", "cancelled", "discarded"},
        "scheduled_in": scheduled_in,
        "priority": priority,
        "queue": queue,
        "count": count,
    }
    conn.execute(query, params)


def pause(conn: psycopg.Connection[Any], queue: str, paused: bool = True) -> None:
    """A River client registers its queue in river_queue; QueuePause sets paused_at."""
    conn.execute(
        "INSERT INTO river_queue (name, paused_at, updated_at)"
        " VALUES (%s, CASE WHEN %s THEN now() END, now())",
        (queue, paused),
    )


def read(
    conn: psycopg.Connection[Any],
    selectors: list[QueueSelector] | None = None,
    cap: int = 100,
    **options: Any,
) -> dict[str, QueueStats]:
    reading = Reader(Options.model_validate(options)).read(conn, selectors or EVERY, cap)
    return {q.queue: q for q in reading.queues}


def test_empty_table_reports_no_queues_but_the_database_clock(
    river: psycopg.Connection[Any],
) -> None:
    reading = Reader(Options()).read(river, EVERY, 10)
    assert reading.queues == ()
    assert reading.db_now.tzinfo is not None
    assert 0 <= (database_now(river) - reading.db_now).total_seconds() < 60


def test_a_due_available_job_is_ready(river: psycopg.Connection[Any]) -> None:
    add(river, scheduled_in=-120)
    q = read(river)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert q.oldest_ready_age_seconds is not None
    assert 119 <= q.oldest_ready_age_seconds < 130


def test_a_future_scheduled_job_is_not_ready(river: psycopg.Connection[Any]) -> None:
    add(river, state="scheduled", scheduled_in=+300)
    q = read(river)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_due_scheduled_job_not_yet_promoted_is_ready(river: psycopg.Connection[Any]) -> None:
    add(river, state="scheduled", scheduled_in=-45)
    q = read(river)["default"]
    assert q.ready == 1
    assert q.oldest_ready_age_seconds is not None and 44 <= q.oldest_ready_age_seconds < 55


def test_a_retry_counts_once_its_backoff_is_over(river: psycopg.Connection[Any]) -> None:
    add(river, queue="due", state="retryable", scheduled_in=-5)
    add(river, queue="waiting", state="retryable", scheduled_in=+600)
    found = read(river)
    assert (found["due"].ready, found["waiting"].ready) == (1, 0)
    assert found["waiting"].oldest_ready_age_seconds is None


def test_a_running_job_is_running_not_ready(river: psycopg.Connection[Any]) -> None:
    add(river, state="running", scheduled_in=-30)
    q = read(river)["default"]
    assert (q.ready, q.running) == (0, 1)


@pytest.mark.parametrize("state", ["completed", "cancelled", "discarded"])
def test_finalized_jobs_are_neither_ready_nor_running(
    river: psycopg.Connection[Any], state: str
) -> None:
    add(river, state=state, scheduled_in=-3600)
    assert read(river) == {}  # finalized rows do not even make their queue appear
    q = read(river, [QueueSelector(("default",))])["default"]
    assert (q.ready, q.running) == (0, 0)


def test_a_pending_job_is_not_ready(river: psycopg.Connection[Any]) -> None:
    add(river, state="pending", scheduled_in=-60)
    q = read(river, [QueueSelector(("default",))])["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_paused_queue_has_no_ready_jobs_but_keeps_its_running_ones(
    river: psycopg.Connection[Any],
) -> None:
    for queue in ("paused", "active"):
        add(river, queue=queue, count=3)
        add(river, queue=queue, state="scheduled", scheduled_in=-10)
        add(river, queue=queue, state="running")
    pause(river, "paused")
    pause(river, "active", paused=False)
    add(river, queue="unregistered", count=2)  # no river_queue row: no client ever paused it
    found = read(river)
    assert (found["paused"].ready, found["paused"].running) == (0, 1)
    assert found["paused"].oldest_ready_age_seconds is None
    assert (found["active"].ready, found["active"].running) == (4, 1)
    assert found["unregistered"].ready == 2


def test_before_version_4_there_are_no_pauses_until_river_queue_appears(
    river_v3: psycopg.Connection[Any],
) -> None:
    add(river_v3, queue="mailers", count=2)
    reader = Reader(Options())
    assert {q.queue: q.ready for q in reader.read(river_v3, EVERY, 10).queues} == {"mailers": 2}
    # migration 4 runs under the daemon, then someone pauses the queue
    river_v3.execute(
        "CREATE TABLE river_queue (name text PRIMARY KEY, created_at timestamptz NOT NULL"
        " DEFAULT now(), metadata jsonb NOT NULL DEFAULT '{}', paused_at timestamptz,"
        " updated_at timestamptz NOT NULL)"
    )
    pause(river_v3, "mailers")
    assert {q.queue: q.ready for q in reader.read(river_v3, EVERY, 10).queues} == {"mailers": 0}


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    river: psycopg.Connection[Any],
) -> None:
    add(river, queue="mailers", count=3)
    add(river, queue="critical", count=2)
    add(river, queue="low", state="scheduled", scheduled_in=+60)
    assert read(river, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(river)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}
    nothing = read(river, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert nothing == QueueStats("nothing-here", 0, False, None, None, 0)


def test_wildcards_discover_queues(river: psycopg.Connection[Any]) -> None:
    add(river, queue="mail_low", count=1)
    add(river, queue="mail_high", state="retryable", scheduled_in=-1)
    add(river, queue="reports", state="running")
    add(river, queue="zzz_done", state="completed")
    found = read(river, [QueueSelector(("mail_*",)), QueueSelector(("exact",))])
    # discovery may report more queues than the selector matches: the caller filters
    assert {"mail_low", "mail_high", "exact"} <= found.keys()
    assert "zzz_done" not in found
    assert (found["mail_high"].ready, found["exact"].ready) == (1, 0)
    assert read(river).keys() == {"mail_high", "mail_low", "reports"}


def test_oldest_is_found_across_priorities_and_states(river: psycopg.Connection[Any]) -> None:
    add(river, priority=1, scheduled_in=-100)
    add(river, priority=4, scheduled_in=-900)
    add(river, priority=2, state="retryable", scheduled_in=-1200)
    add(river, priority=3, state="scheduled", scheduled_in=-300)
    q = read(river)["default"]
    assert q.ready == 4
    assert q.oldest_ready_age_seconds is not None and 1199 <= q.oldest_ready_age_seconds < 1210
    assert q.oldest_eligible_at is not None
    expected = database_now(river) - timedelta(seconds=1200)
    assert abs((q.oldest_eligible_at - expected).total_seconds()) < 30


def test_jobs_due_at_this_very_instant_are_ready(river: psycopg.Connection[Any]) -> None:
    with river.transaction():  # now() does not move: scheduled_at equals the clock exactly
        add(river, state="scheduled", scheduled_in=0)
        q = read(river)["default"]
    assert (q.ready, q.oldest_ready_age_seconds) == (1, 0.0)


def test_other_queues_and_states_do_not_age_a_queue(river: psycopg.Connection[Any]) -> None:
    add(river, scheduled_in=-100)
    add(river, queue="other", scheduled_in=-900)
    add(river, state="running", scheduled_in=-800)
    add(river, state="completed", scheduled_in=-700)
    add(river, state="pending", scheduled_in=-600)
    found = read(river)
    assert (found["default"].ready, found["other"].ready) == (1, 1)
    ages = {k: v.oldest_ready_age_seconds for k, v in found.items()}
    assert ages["default"] is not None and 99 <= ages["default"] < 110
    assert ages["other"] is not None and 899 <= ages["other"] < 910


def test_discovery_reads_a_row_per_queue_however_many_jobs_there_are(
    river: psycopg.Connection[Any],
) -> None:
    # 1000 future jobs in two queues: each walk step takes one row, not every job's queue
    for queue in ("alpha", "beta"):
        add(river, queue=queue, state="scheduled", scheduled_in=3600, count=500)
    rows, found = rows_taken(river, "river_job", lambda: read(river, cap=10))
    assert rows < 50
    assert list(found) == ["alpha", "beta"]


def test_the_count_stops_at_the_cap(river: psycopg.Connection[Any]) -> None:
    add(river, count=30)
    add(river, priority=2, count=5)
    add(river, state="scheduled", scheduled_in=-5, count=10)  # due rows share the same cap
    q = read(river, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(river, cap=45)["default"]
    assert (q.ready, q.ready_capped) == (45, True)
    q = read(river, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_a_hand_counted_mix(river: psycopg.Connection[Any]) -> None:
    add(river, queue="default", count=4)  # ready
    add(river, queue="default", priority=3, count=2)  # ready
    add(river, queue="default", state="scheduled", scheduled_in=-2, count=1)  # due: ready
    add(river, queue="default", state="scheduled", scheduled_in=+120, count=3)  # future
    add(river, queue="default", state="retryable", scheduled_in=-30, count=2)  # due: ready
    add(river, queue="default", state="retryable", scheduled_in=+30, count=2)  # backoff
    add(river, queue="default", state="running", count=2)
    add(river, queue="default", state="completed", count=9)
    add(river, queue="default", state="discarded", count=1)
    add(river, queue="default", state="cancelled", count=1)
    add(river, queue="mailers", count=7)  # ready
    add(river, queue="mailers", state="running", count=1)
    add(river, queue="mailers", state="pending", count=4)
    add(river, queue="paused", count=5)  # paused: not ready
    add(river, queue="paused", state="running", count=3)
    pause(river, "paused")
    found = read(river, [QueueSelector(("default", "mailers", "paused"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (9, 2),
        "mailers": (7, 1),
        "paused": (0, 3),
    }


def test_schema_and_queue_names_are_identifiers_and_values_not_sql(
    river: psycopg.Connection[Any],
) -> None:
    river.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(HOSTILE_SCHEMA)))
    river.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(HOSTILE_SCHEMA)))
    river.execute((FIXTURES / "river_7.sql").read_text())
    river.execute("RESET search_path")
    queue = "q'; DROP TABLE river_job; --"
    add(river, queue=queue, count=2, schema=HOSTILE_SCHEMA)
    river.execute(
        sql.SQL(
            "INSERT INTO {} (name, paused_at, updated_at) VALUES ('other', now(), now())"
        ).format(sql.Identifier(HOSTILE_SCHEMA, "river_queue"))
    )
    found = read(river, schema=HOSTILE_SCHEMA)
    assert found.keys() == {queue}
    assert found[queue].ready == 2
    assert read(river, [QueueSelector((queue,))], schema=HOSTILE_SCHEMA)[queue].ready == 2
    assert river.execute("SELECT count(*) FROM public.river_job").fetchone() == (0,)


def test_detect_reports_the_migration_version_and_layout(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None  # empty database
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None
    for version, layout in ((7, "river_queue"), (3, "no river_queue")):
        schema = f"river{version}"
        pg_conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        pg_conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        pg_conn.execute((FIXTURES / f"river_{version}.sql").read_text())
        pg_conn.execute("RESET search_path")
        assert detect(pg_conn, Options(schema=schema)) == (
            f"table {schema}.river_job (migration line main, version {version}; {layout})"
        )
    assert detect(pg_conn, Options()) is None  # the river tables are not in public
    pg_conn.execute("DROP TABLE river7.river_migration")  # apps that run their own migrations
    assert detect(pg_conn, Options(schema="river7")) == (
        "table river7.river_job (no river_migration; river_queue)"
    )


def test_detect_on_the_search_path_and_not_on_other_libraries(
    river: psycopg.Connection[Any],
) -> None:
    assert detect(river, Options()) == (
        "table current schema.river_job (migration line main, version 7; river_queue)"
    )
    river.execute("CREATE SCHEMA ob; SET search_path TO ob")
    river.execute((FIXTURES / "oban_14.sql").read_text())
    river.execute("RESET search_path")
    assert detect(river, Options(schema="ob")) is None


def test_detect_needs_only_the_columns_it_reads(pg_conn: psycopg.Connection[Any]) -> None:
    pg_conn.execute(
        "CREATE TABLE river_job (state text, queue text, kind text, priority smallint,"
        " scheduled_at timestamptz, finalized_at timestamptz)"
    )
    assert detect(pg_conn, Options()) == (
        "table current schema.river_job (no river_migration; no river_queue)"
    )
    # a migration table with no row for the main line yet
    pg_conn.execute("CREATE TABLE river_migration (line text, version bigint)")
    assert detect(pg_conn, Options()) == (
        "table current schema.river_job (migration line main, version None; no river_queue)"
    )
