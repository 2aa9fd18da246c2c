"""good_job adapter on a real PostgreSQL: both layouts, one case per job state, the cap.

The v4 layout (sandbox/schemas/good_job.sql) knows claims from ``locked_by_id``; the pre-v3.29
layout (good_job_v3.sql) only from session advisory locks, which these tests take for real on a
second connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from adapter_support import database_now

from dynomatic_daemon.adapters.good_job import Options, Reader, detect
from dynomatic_daemon.errors import QueueReadError
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
PROCESS_ID = "5f0c2a36-5d0e-4d6b-9b4a-2b9c1f0e7a11"
LOCK_KEY_SQL = "('x' || substr(md5('good_jobs-' || %s::text), 1, 16))::bit(64)::bigint"


@pytest.fixture
def gj(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute((FIXTURES / "good_job.sql").read_text())
    return pg_conn


@pytest.fixture
def gj3(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute((FIXTURES / "good_job_v3.sql").read_text())
    return pg_conn


@pytest.fixture
def worker(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A second session, standing in for a good_job v3 worker that holds job locks."""
    conn = psycopg.connect(db_url, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def add(
    conn: psycopg.Connection[Any],
    *,
    queue: str = "default",
    scheduled_in: float | None = -60,
    created_ago: float | None = None,
    performed: bool = False,
    claimed: bool = False,
    finished: bool = False,
    error: str | None = None,
    priority: int = 0,
    job_class: str = "WorkJob",
    labels: list[str] | None = None,
    count: int = 1,
    table: str = "good_jobs",
) -> list[UUID]:
    """Insert jobs as good_job writes them (naive UTC, id = active_job_id); returns their ids.

    ``created_ago`` defaults to the scheduled time for due jobs (an immediate job has
    ``scheduled_at = created_at``) and to now for future ones. ``scheduled_in=None`` is a v3
    immediate job. ``claimed`` stamps ``locked_by_id`` (v3.29+ tables only).
    """
    if created_ago is None:
        created_ago = max(0.0, -(scheduled_in or 0.0))
    claim = ", locked_by_id, locked_at, lock_type" if claimed else ""
    claim_values = ", %(process)s::uuid, now() AT TIME ZONE 'UTC', 0" if claimed else ""
    query = f"""
        INSERT INTO {table} (id, active_job_id, queue_name, priority, serialized_params,
            job_class, labels, scheduled_at, performed_at, finished_at, error, created_at,
            updated_at, executions_count{claim})
        SELECT g.id, g.id, %(queue)s, %(priority)s,
               jsonb_build_object('job_class', %(job_class)s::text, 'job_id', g.id),
               %(job_class)s, %(labels)s::text[],
               g.now_utc + make_interval(secs => %(scheduled_in)s),
               CASE WHEN %(performed)s THEN g.now_utc - interval '1 second' END,
               CASE WHEN %(finished)s THEN g.now_utc END,
               %(error)s,
               g.now_utc - make_interval(secs => %(created_ago)s),
               g.now_utc, CASE WHEN %(performed)s OR %(finished)s THEN 1 ELSE 0 END{claim_values}
        FROM (SELECT gen_random_uuid() AS id, now() AT TIME ZONE 'UTC' AS now_utc
              FROM generate_series(1, %(count)s)) g
        RETURNING id
    """
    params = {
        "queue": queue,
        "priority": priority,
        "job_class": job_class,
        "labels": labels,
        "scheduled_in": scheduled_in,
        "performed": performed,
        "finished": finished,
        "error": error,
        "created_ago": created_ago,
        "count": count,
        "process": PROCESS_ID,
    }
    return [row[0] for row in conn.execute(query, params).fetchall()]


def lock(session: psycopg.Connection[Any], job_ids: list[UUID]) -> None:
    """Take the session advisory lock good_job v3 takes on each job."""
    for job_id in job_ids:
        session.execute(f"SELECT pg_advisory_lock({LOCK_KEY_SQL})", (job_id,))


def pause(conn: psycopg.Connection[Any], **lists: list[str]) -> None:
    conn.execute(
        "INSERT INTO good_job_settings (key, value, created_at, updated_at)"
        " VALUES ('pauses', %s, now(), now())",
        (json.dumps({"queues": [], "job_classes": [], "labels": [], **lists}),),
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


# --- v4 layout --------------------------------------------------------------------------------


def test_empty_table_reports_no_queues_but_the_database_clock(gj: psycopg.Connection[Any]) -> None:
    reading = Reader(Options()).read(gj, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(gj) - reading.db_now).total_seconds() < 60


def test_a_due_unclaimed_job_is_ready(gj: psycopg.Connection[Any]) -> None:
    add(gj, scheduled_in=-120)
    q = read(gj)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert 119 <= age(q) < 130


def test_a_future_job_is_not_ready(gj: psycopg.Connection[Any]) -> None:
    add(gj, scheduled_in=+300)
    q = read(gj)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_retry_is_ready_once_due_and_waits_from_its_retry_time(
    gj: psycopg.Connection[Any],
) -> None:
    # a retried job keeps its row and created_at; scheduled_at moves, the error stays
    add(gj, queue="due", scheduled_in=-30, created_ago=3600, error="RuntimeError: boom")
    add(gj, queue="backoff", scheduled_in=+300, created_ago=3600, error="RuntimeError: boom")
    found = read(gj)
    assert (found["backoff"].ready, found["backoff"].oldest_ready_age_seconds) == (0, None)
    assert found["due"].ready == 1
    assert 29 <= age(found["due"]) < 40  # from the retry time, not from the first enqueue


def test_a_claimed_job_is_running_not_ready(gj: psycopg.Connection[Any]) -> None:
    add(gj, scheduled_in=-30, performed=True, claimed=True)  # performing
    add(gj, scheduled_in=-30, claimed=True)  # claimed by skiplocked/hybrid, not yet started
    q = read(gj)["default"]
    assert (q.ready, q.running, q.oldest_ready_age_seconds) == (0, 2, None)


def test_an_interrupted_job_whose_claim_was_released_is_ready_again(
    gj: psycopg.Connection[Any],
) -> None:
    # performed_at stays when a worker dies; good_job dequeues the row again once unclaimed
    add(gj, scheduled_in=-600, performed=True)
    q = read(gj)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 599 <= age(q) < 610


def test_finished_jobs_are_neither_ready_nor_running(gj: psycopg.Connection[Any]) -> None:
    add(gj, scheduled_in=-60, performed=True, finished=True)  # succeeded
    add(gj, scheduled_in=-60, performed=True, finished=True, error="RuntimeError: x")  # discarded
    # force-discarded while running: finished, the worker has not released its claim yet
    add(gj, scheduled_in=-60, performed=True, claimed=True, finished=True, error="Discarded")
    assert read(gj) == {}  # finished rows do not even make their queue appear
    q = read(gj, [QueueSelector(("default",))])["default"]
    assert (q.ready, q.running, q.oldest_ready_age_seconds) == (0, 0, None)


def test_paused_queues_job_classes_and_labels_are_not_ready(gj: psycopg.Connection[Any]) -> None:
    add(gj, queue="mailers", count=3)
    add(gj, queue="mailers", performed=True, claimed=True)
    add(gj, queue="default", scheduled_in=-50)
    add(gj, queue="default", scheduled_in=-900, job_class="SlowJob")
    add(gj, queue="default", scheduled_in=-800, labels=["bulk", "x"])
    add(gj, queue="default", scheduled_in=-700, labels=["other"])
    pause(gj, queues=["mailers"], job_classes=["SlowJob"], labels=["bulk"])
    found = read(gj)
    assert (found["mailers"].ready, found["mailers"].running) == (0, 1)
    assert found["mailers"].oldest_ready_age_seconds is None
    assert found["default"].ready == 2
    assert 699 <= age(found["default"]) < 710
    # with good_job's enable_pauses off the workers ignore the pauses, and so do we
    found = read(gj, enable_pauses=False)
    assert (found["mailers"].ready, found["default"].ready) == (3, 4)
    assert 899 <= age(found["default"]) < 910


def test_without_a_settings_table_nothing_is_paused(gj: psycopg.Connection[Any]) -> None:
    gj.execute("DROP TABLE good_job_settings")
    add(gj, queue="mailers", count=2)
    assert read(gj)["mailers"].ready == 2


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    gj: psycopg.Connection[Any],
) -> None:
    add(gj, queue="mailers", count=3)
    add(gj, queue="critical", count=2)
    add(gj, queue="low", scheduled_in=+60)
    assert read(gj, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(gj)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}
    # a named queue with no rows is still reported, with zeros
    q = read(gj, [QueueSelector(("nothing-here",))])["nothing-here"]
    assert (q.ready, q.ready_capped, q.oldest_eligible_at, q.running) == (0, False, None, 0)


def test_a_wildcard_selector_discovers_the_queues_present(gj: psycopg.Connection[Any]) -> None:
    add(gj, queue="mail_fast")
    add(gj, queue="mail_slow", count=2)
    add(gj, queue="reports", scheduled_in=+60)
    found = read(gj, [QueueSelector(("mail_*", "named"))])
    assert {k: v.ready for k, v in found.items() if k.startswith("mail_") or k == "named"} == {
        "mail_fast": 1,
        "mail_slow": 2,
        "named": 0,
    }
    assert set(found) >= {"mail_fast", "mail_slow", "named"}


def test_oldest_is_found_across_priorities(gj: psycopg.Connection[Any]) -> None:
    add(gj, priority=10, scheduled_in=-900)
    add(gj, priority=0, scheduled_in=-100)
    add(gj, priority=-10, scheduled_in=-300)
    assert 899 <= age(read(gj)["default"]) < 910


def test_a_job_scheduled_before_it_was_enqueued_waits_from_its_enqueue(
    gj: psycopg.Connection[Any],
) -> None:
    # scheduled_at earliest, but created (hence runnable) only 100 s ago
    add(gj, scheduled_in=-1000, created_ago=100)
    assert 99 <= age(read(gj)["default"]) < 110
    # a later-scheduled job that has waited longer is the oldest
    add(gj, scheduled_in=-500)
    q = read(gj)["default"]
    assert 499 <= age(q) < 510
    assert q.oldest_eligible_at is not None
    expected = database_now(gj) - timedelta(seconds=500)
    assert abs((q.oldest_eligible_at - expected).total_seconds()) < 30


def test_a_job_due_at_this_very_instant_is_ready(gj: psycopg.Connection[Any]) -> None:
    # in one transaction now() does not move, so scheduled_at equals the clock exactly
    with gj.transaction():
        add(gj, scheduled_in=0)
        q = read(gj)["default"]
    assert (q.ready, q.running) == (1, 0)


def test_only_ready_rows_of_the_queue_can_be_older_than_the_first_due_job(
    gj: psycopg.Connection[Any],
) -> None:
    # the first job by scheduled_at was enqueued late (eligible 100 s ago); behind it, in its
    # scheduled range, a claimed job, another queue's job and a finished job all look older
    add(gj, scheduled_in=-1000, created_ago=100)
    add(gj, scheduled_in=-900, claimed=True, performed=True)
    add(gj, queue="other", scheduled_in=-800)
    add(gj, scheduled_in=-700, finished=True, performed=True)
    assert 99 <= age(read(gj, [QueueSelector(("default",))])["default"]) < 110
    # a ready job in that range eligible later than it was scheduled counts from its enqueue;
    # and of two such jobs the older one wins
    add(gj, scheduled_in=-600, created_ago=300)
    add(gj, scheduled_in=-500, created_ago=400)
    assert 399 <= age(read(gj, [QueueSelector(("default",))])["default"]) < 410
    # a job scheduled at the same instant as the first one, but enqueued on time, is older still
    (first,) = gj.execute(
        "SELECT scheduled_at FROM good_jobs WHERE created_at > scheduled_at"
        " ORDER BY scheduled_at LIMIT 1"
    ).fetchone() or (None,)
    gj.execute(
        "INSERT INTO good_jobs (id, active_job_id, queue_name, scheduled_at, created_at,"
        " updated_at) SELECT g, g, 'default', %s, %s, now() FROM gen_random_uuid() g",
        (first, first),
    )
    assert 999 <= age(read(gj, [QueueSelector(("default",))])["default"]) < 1010


def test_the_count_stops_at_the_cap(gj: psycopg.Connection[Any]) -> None:
    add(gj, count=40)
    add(gj, count=5, performed=True)  # interrupted, ready again
    add(gj, count=7, performed=True, claimed=True)  # running rows in the same range
    q = read(gj, cap=31)["default"]
    assert (q.ready, q.ready_capped, q.running) == (31, True, 7)
    q = read(gj, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)
    q = read(gj, cap=45)["default"]
    assert (q.ready, q.ready_capped) == (45, True)


def test_timestamptz_columns_are_compared_with_the_real_clock(gj: psycopg.Connection[Any]) -> None:
    # a Rails app with datetime_type = :timestamptz
    for column in ("scheduled_at", "created_at"):
        gj.execute(
            f"ALTER TABLE good_jobs ALTER COLUMN {column} TYPE timestamptz"
            f" USING {column} AT TIME ZONE 'UTC'"
        )
    gj.execute("SET TIME ZONE 'Pacific/Kiritimati'")
    gj.execute(
        "INSERT INTO good_jobs (queue_name, scheduled_at, created_at, updated_at) VALUES"
        " ('default', now() - interval '600 seconds', now() - interval '600 seconds', now()),"
        " ('later', now() + interval '600 seconds', now(), now())"
    )
    found = read(gj)
    assert (found["default"].ready, found["later"].ready) == (1, 0)
    assert 599 <= age(found["default"]) < 620


def test_a_hand_counted_mix(gj: psycopg.Connection[Any]) -> None:
    add(gj, queue="default", count=4)  # ready
    add(gj, queue="default", scheduled_in=-5, created_ago=600, error="E", count=2)  # retry due
    add(gj, queue="default", scheduled_in=+120, count=3)  # future
    add(gj, queue="default", scheduled_in=+120, created_ago=60, error="E", count=1)  # backoff
    add(gj, queue="default", finished=True, performed=True, count=5)  # succeeded
    add(gj, queue="default", finished=True, error="E", count=2)  # discarded
    add(gj, queue="default", performed=True, claimed=True, count=2)  # running
    add(gj, queue="default", claimed=True, count=1)  # claimed
    add(gj, queue="default", performed=True, count=1)  # interrupted -> ready
    add(gj, queue="mailers", count=7)  # ready
    add(gj, queue="mailers", performed=True, claimed=True, count=1)  # running
    add(gj, queue="mailers", job_class="Paused", count=2)  # paused class
    pause(gj, job_classes=["Paused"])
    found = read(gj, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (7, 3),
        "mailers": (7, 1),
    }


def test_schema_and_queue_names_are_data_not_sql(gj: psycopg.Connection[Any]) -> None:
    schema = 'odd; "schema" é'
    queue = "q'; DROP TABLE good_jobs; -- ✓"
    gj.execute(f'CREATE SCHEMA "{schema.replace(chr(34), chr(34) * 2)}"')
    quoted = '"odd; ""schema"" é"'
    gj.execute(f"SET search_path = {quoted}")
    gj.execute((FIXTURES / "good_job.sql").read_text())
    add(gj, queue=queue, count=2)
    add(gj, queue="paused'q")
    pause(gj, queues=["paused'q"])
    gj.execute("SET search_path = public")
    found = read(gj, schema=schema)
    assert (found[queue].ready, found["paused'q"].ready) == (2, 0)
    alone = read(gj, [QueueSelector((queue,))], schema=schema)[queue]
    assert (alone.ready, alone.oldest_eligible_at) == (2, found[queue].oldest_eligible_at)
    assert gj.execute("SELECT count(*) FROM public.good_jobs").fetchone() == (0,)
    assert detect(gj, Options(schema_name=schema)) == (
        f"table {schema}.good_jobs (v4.15+ layout: locked_by_id, lock_type)"
    )


def test_a_missing_table_is_a_read_error(pg_conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(QueueReadError, match="good_jobs"):
        Reader(Options()).read(pg_conn, EVERY, 10)


def test_the_layout_is_inspected_again_after_a_migration(gj: psycopg.Connection[Any]) -> None:
    reader = Reader(Options())
    add(gj, count=2)
    assert reader.read(gj, EVERY, 10).queues[0].ready == 2
    gj.execute("ALTER TABLE good_jobs DROP COLUMN locked_by_id, DROP COLUMN lock_type")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        reader.read(gj, EVERY, 10)
    assert reader.read(gj, EVERY, 10).queues[0].ready == 2  # now read by advisory locks


def test_detect_tells_the_layouts_apart(pg_conn: psycopg.Connection[Any]) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "good_job.sql").read_text())
    assert detect(pg_conn, Options()) == (
        "table public.good_jobs (v4.15+ layout: locked_by_id, lock_type)"
    )
    pg_conn.execute("ALTER TABLE good_jobs DROP COLUMN lock_type")
    assert detect(pg_conn, Options()) == "table public.good_jobs (v3.29-v4.14 layout: locked_by_id)"
    assert detect(pg_conn, Options(schema_name="elsewhere")) is None


def test_detect_reads_the_columns_of_the_configured_table_only(
    pg_conn: psycopg.Connection[Any],
) -> None:
    # a v4 table in another schema must not lend its claim columns to the v3 table here
    pg_conn.execute((FIXTURES / "good_job_v3.sql").read_text())
    pg_conn.execute("CREATE SCHEMA v4")
    pg_conn.execute("SET search_path = v4")
    pg_conn.execute((FIXTURES / "good_job.sql").read_text())
    pg_conn.execute("SET search_path = public")
    assert detect(pg_conn, Options()) == (
        "table public.good_jobs (pre-v3.29 layout: running known from advisory locks)"
    )


def test_detect_finds_the_v3_layout(gj3: psycopg.Connection[Any]) -> None:
    assert detect(gj3, Options()) == (
        "table public.good_jobs (pre-v3.29 layout: running known from advisory locks)"
    )


def test_detect_ignores_a_look_alike_table(pg_conn: psycopg.Connection[Any]) -> None:
    pg_conn.execute("CREATE TABLE good_jobs (id bigint, queue_name text, scheduled_at timestamp)")
    assert detect(pg_conn, Options()) is None


def test_detect_needs_only_the_columns_it_reads(pg_conn: psycopg.Connection[Any]) -> None:
    pg_conn.execute(
        "CREATE TABLE good_jobs (queue_name text, serialized_params jsonb, scheduled_at timestamp,"
        " performed_at timestamp, finished_at timestamp, active_job_id uuid)"
    )
    assert detect(pg_conn, Options()) == (
        "table public.good_jobs (pre-v3.29 layout: running known from advisory locks)"
    )


# --- pre-v3.29 layout: running known only from advisory locks --------------------------------


def test_v3_due_and_immediate_jobs_are_ready(gj3: psycopg.Connection[Any]) -> None:
    add(gj3, scheduled_in=-120)
    add(gj3, scheduled_in=None, created_ago=300)  # v3 left scheduled_at NULL for immediate jobs
    q = read(gj3)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert 299 <= age(q) < 310


def test_v3_jobs_due_at_this_very_instant_are_ready(gj3: psycopg.Connection[Any]) -> None:
    with gj3.transaction():  # now() does not move: both times equal the clock exactly
        add(gj3, scheduled_in=0)
        add(gj3, scheduled_in=None, created_ago=0)
        q = read(gj3)["default"]
    assert (q.ready, q.running) == (2, 0)


def test_v3_a_locked_job_is_running_until_its_lock_goes(
    gj3: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    reader = Reader(Options())
    ids = add(gj3, scheduled_in=-60, performed=True)
    immediate = add(gj3, scheduled_in=None, created_ago=90, performed=True)
    lock(worker, ids + immediate)
    q = reader.read(gj3, EVERY, 10).queues[0]
    assert (q.ready, q.running, q.oldest_ready_age_seconds) == (0, 2, None)
    worker.execute("SELECT pg_advisory_unlock_all()")
    q = reader.read(gj3, EVERY, 10).queues[0]
    assert (q.ready, q.running) == (2, 0)  # its worker died: good_job v3 runs it again
    assert 89 <= age(q) < 100


def test_v3_only_single_key_locks_on_the_job_key_count(
    gj3: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    (job_id,) = add(gj3, performed=True)
    key = worker.execute(f"SELECT {LOCK_KEY_SQL}", (job_id,)).fetchone()
    assert key is not None
    high, low = key[0] >> 32, key[0] & 0xFFFFFFFF
    # the same 64 bits as a two-int key (objsubid 2) is another lock
    worker.execute(
        "SELECT pg_advisory_lock(%s::bit(32)::int, %s::bit(32)::int)",
        (format(high & 0xFFFFFFFF, "032b"), format(low, "032b")),
    )
    worker.execute("SELECT pg_advisory_lock(%s + 1)", (key[0],))  # a neighbouring key
    q = read(gj3)["default"]
    assert (q.ready, q.running) == (1, 0)
    lock(worker, [job_id])
    q = read(gj3)["default"]
    assert (q.ready, q.running) == (0, 1)


def test_v3_future_and_finished_jobs_are_excluded(
    gj3: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    add(gj3, scheduled_in=+300)
    add(gj3, performed=True, finished=True)
    lock(worker, add(gj3, performed=True, finished=True, error="E"))  # lock not yet released
    q = read(gj3, [QueueSelector(("default",))])["default"]
    assert (q.ready, q.running, q.oldest_ready_age_seconds) == (0, 0, None)


def test_v3_the_count_stops_at_the_cap_and_skips_locked_rows(
    gj3: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    lock(worker, add(gj3, scheduled_in=-3600, performed=True, count=6))  # oldest, all running
    add(gj3, count=20)
    add(gj3, scheduled_in=None, created_ago=30, count=20)
    q = read(gj3, cap=15)["default"]
    assert (q.ready, q.ready_capped, q.running) == (15, True, 6)
    q = read(gj3, cap=41)["default"]
    assert (q.ready, q.ready_capped) == (40, False)
    assert 59 <= age(q) < 70  # the locked hour-old jobs are not waiting


def test_v3_oldest_across_priorities_and_null_schedules(gj3: psycopg.Connection[Any]) -> None:
    add(gj3, priority=10, scheduled_in=-200)
    add(gj3, priority=-5, scheduled_in=None, created_ago=700)
    add(gj3, priority=0, scheduled_in=-400)
    assert 699 <= age(read(gj3)["default"]) < 710


def test_v3_the_oldest_of_several_immediate_jobs(gj3: psycopg.Connection[Any]) -> None:
    add(gj3, scheduled_in=-100)
    add(gj3, scheduled_in=None, created_ago=300)
    add(gj3, scheduled_in=None, created_ago=700)
    assert 699 <= age(read(gj3)["default"]) < 710


def test_v3_a_hand_counted_mix(
    gj3: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    add(gj3, queue="default", count=3)  # ready
    add(gj3, queue="default", scheduled_in=None, count=2)  # ready, immediate
    add(gj3, queue="default", scheduled_in=+60, count=4)  # future
    add(gj3, queue="default", performed=True, finished=True, count=3)  # finished
    add(gj3, queue="default", performed=True, count=1)  # interrupted -> ready
    lock(worker, add(gj3, queue="default", performed=True, count=2))  # running
    lock(worker, add(gj3, queue="default", scheduled_in=None, performed=True, count=1))
    add(gj3, queue="mailers", count=5)  # ready
    lock(worker, add(gj3, queue="mailers", performed=True, count=3))  # running
    found = read(gj3, [QueueSelector(("default", "mailers", "empty"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (6, 3),
        "empty": (0, 0),
        "mailers": (5, 3),
    }
