"""jobrunr adapter on a real PostgreSQL, with JobRunr's tables built from its migrations (JobRunr
is Java and cannot run here): one case per job state, the cap, prefixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, limits_stopped_at

from dynomatic_daemon.adapters import jobrunr as adapter
from dynomatic_daemon.adapters.jobrunr import Options, Reader, detect, recommended_indexes
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
EVERY = [QueueSelector(None)]

# times as JobRunr 6+ writes them: naive UTC
INSERT = """
INSERT INTO {table} (id, version, jobAsJson, jobSignature, state, createdAt, updatedAt,
                     scheduledAt)
SELECT gen_random_uuid()::text, 1, '{{}}', 'com.example.Job.run()', %(state)s,
       now() AT TIME ZONE 'UTC' - interval '1 day',
       now() AT TIME ZONE 'UTC' - make_interval(secs => %(updated_ago)s),
       now() AT TIME ZONE 'UTC' + make_interval(secs => %(scheduled_in)s)
FROM generate_series(1, %(count)s)
"""


@pytest.fixture(params=["stock indexes", "recommended index"])
def jobrunr(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Any:
    """JobRunr's tables, with or without the index that serves due scheduled jobs."""
    pg_conn.execute((SCHEMAS / "jobrunr.sql").read_text())
    if request.param == "recommended index":
        pg_conn.execute(recommended_indexes(Options())[0])
    return pg_conn


def add(
    conn: psycopg.Connection[Any],
    state: str,
    *,
    updated_ago: float = 0,
    scheduled_in: float | None = None,
    count: int = 1,
    table: str = "jobrunr_jobs",
) -> None:
    params = {
        "state": state,
        "updated_ago": updated_ago,
        "scheduled_in": scheduled_in,
        "count": count,
    }
    conn.execute(INSERT.format(table=table), params)


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


def test_an_empty_table_reports_the_one_queue_empty(jobrunr: Any) -> None:
    reading = Reader(Options()).read(jobrunr, EVERY, 10)
    assert reading.queues == (QueueStats("default", 0, False, None, None, 0),)
    assert 0 <= (database_now(jobrunr) - reading.db_now).total_seconds() < 60


def test_an_enqueued_job_is_ready_from_when_it_was_enqueued(jobrunr: Any) -> None:
    add(jobrunr, "ENQUEUED", updated_ago=120)
    add(jobrunr, "ENQUEUED")
    q = read(jobrunr)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert 119 <= age(q) < 130


def test_a_due_scheduled_job_is_ready_and_a_future_one_is_not(jobrunr: Any) -> None:
    add(jobrunr, "SCHEDULED", updated_ago=3600, scheduled_in=600)
    assert read(jobrunr)["default"].ready == 0
    add(jobrunr, "SCHEDULED", updated_ago=3600, scheduled_in=-300)  # the master has not run
    q = read(jobrunr)["default"]
    assert q.ready == 1 and 299 <= age(q) < 310


def test_a_processing_job_with_a_fresh_heartbeat_is_running(jobrunr: Any) -> None:
    add(jobrunr, "PROCESSING", updated_ago=59, count=2)
    add(jobrunr, "ENQUEUED", updated_ago=30)
    q = read(jobrunr)["default"]
    assert (q.ready, q.running) == (1, 2)
    assert 29 <= age(q) < 40


def test_an_orphaned_processing_job_is_ready_from_its_server_timeout(jobrunr: Any) -> None:
    add(jobrunr, "PROCESSING", updated_ago=360)  # its server died 5 minutes after the timeout
    q = read(jobrunr)["default"]
    assert (q.ready, q.running) == (1, 0)
    assert 299 <= age(q) < 310
    q = read(jobrunr, server_timeout_seconds=600)["default"]  # a slower poll interval
    assert (q.ready, q.running) == (0, 1)


def test_a_job_exactly_at_either_boundary(jobrunr: Any) -> None:
    """Inside one transaction now() stands still, so rows sit exactly on each boundary: a job
    scheduled for now is due (``scheduledAt <= now``), and one whose heartbeat is exactly the
    server timeout old is still its server's (orphans are those not updated for longer)."""
    with jobrunr.transaction():
        add(jobrunr, "PROCESSING", updated_ago=60)
        assert read(jobrunr)["default"] == QueueStats("default", 0, False, None, None, 1)
        add(jobrunr, "SCHEDULED", scheduled_in=0)
        now = database_now(jobrunr)
        q = read(jobrunr)["default"]
        assert (q.ready, q.running, q.oldest_eligible_at) == (1, 1, now)
        add(jobrunr, "PROCESSING", updated_ago=60.001)  # a millisecond past the timeout
        q = read(jobrunr)["default"]
        orphaned_at = now - timedelta(seconds=0.001)
        assert (q.ready, q.running, q.oldest_eligible_at) == (2, 1, orphaned_at)


def test_the_oldest_is_the_earliest_of_every_kind(jobrunr: Any) -> None:
    add(jobrunr, "ENQUEUED", updated_ago=100)
    add(jobrunr, "ENQUEUED", updated_ago=50)
    add(jobrunr, "SCHEDULED", updated_ago=3600, scheduled_in=-200)
    add(jobrunr, "SCHEDULED", updated_ago=3600, scheduled_in=-600)  # the oldest
    add(jobrunr, "PROCESSING", updated_ago=500)  # orphaned 440 s ago
    add(jobrunr, "PROCESSING", updated_ago=400)
    q = read(jobrunr)["default"]
    assert (q.ready, q.running) == (6, 0) and 599 <= age(q) < 610


def test_finished_awaiting_and_deleted_jobs_are_not_counted(jobrunr: Any) -> None:
    # JobRunr 8 keeps scheduledAt on a job once scheduled (recurring jobs), finished or not
    for state in ("SUCCEEDED", "FAILED", "DELETED", "AWAITING"):
        add(jobrunr, state, updated_ago=900, scheduled_in=-3600, count=2)
    assert read(jobrunr)["default"] == QueueStats("default", 0, False, None, None, 0)


def test_the_count_stops_at_the_cap_across_the_ready_kinds(jobrunr: Any) -> None:
    add(jobrunr, "ENQUEUED", count=30)
    add(jobrunr, "SCHEDULED", scheduled_in=-5, count=10)
    add(jobrunr, "PROCESSING", updated_ago=600, count=5)
    q = read(jobrunr, cap=31)
    assert (q["default"].ready, q["default"].ready_capped) == (31, True)
    q = read(jobrunr, cap=46)
    assert (q["default"].ready, q["default"].ready_capped) == (45, False)


def test_other_queue_names_read_as_empty(jobrunr: Any) -> None:
    add(jobrunr, "ENQUEUED", count=3)
    found = read(jobrunr, [QueueSelector(("default", "mailers"))])
    assert found["default"].ready == 3
    assert found["mailers"] == QueueStats("mailers", 0, False, None, None, 0)
    assert read(jobrunr, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    assert read(jobrunr, [QueueSelector(("def*",))])["default"].ready == 3


def test_table_prefix_and_schema_as_jobrunrs_table_prefix(jobrunr: Any) -> None:
    jobrunr.execute('CREATE SCHEMA "Jobs"')
    jobrunr.execute('CREATE TABLE "Jobs"."my_jobrunr_jobs" (LIKE jobrunr_jobs INCLUDING ALL)')
    add(jobrunr, "ENQUEUED", count=2, table='"Jobs"."my_jobrunr_jobs"')
    add(jobrunr, "ENQUEUED")
    assert read(jobrunr, schema="Jobs", table_prefix="my_")["default"].ready == 2
    options = Options.model_validate({"schema": "Jobs", "table_prefix": "my_"})
    described = detect(jobrunr, options)
    assert described == "table Jobs.my_jobrunr_jobs with state, updatedAt, scheduledAt"
    jobrunr.execute(recommended_indexes(options)[0])
    assert read(jobrunr, schema="Jobs", table_prefix="my_")["default"].ready == 2


def test_a_prefix_naming_a_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="table_prefix"):
        Options.model_validate({"table_prefix": "myschema."})


def test_infinite_times_do_not_break_the_read(jobrunr: Any) -> None:
    jobrunr.execute(
        "INSERT INTO jobrunr_jobs (id, version, jobAsJson, jobSignature, state, createdAt,"
        " updatedAt, scheduledAt) VALUES ('a', 1, '{}', 's', 'SCHEDULED', now(), now(),"
        " '-infinity'), ('b', 1, '{}', 's', 'SCHEDULED', now(), now(), 'infinity'),"
        " ('c', 1, '{}', 's', 'PROCESSING', now(), '-infinity', NULL)"
    )
    q = read(jobrunr)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert q.oldest_eligible_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_the_recommended_index_gives_the_same_answers(jobrunr: Any) -> None:
    add(jobrunr, "ENQUEUED", updated_ago=50, count=3)
    add(jobrunr, "SCHEDULED", scheduled_in=-70)
    add(jobrunr, "SCHEDULED", scheduled_in=70)
    add(jobrunr, "SUCCEEDED", scheduled_in=-7000, count=3)
    add(jobrunr, "PROCESSING", count=2)
    before = read(jobrunr)["default"]
    jobrunr.execute(recommended_indexes(Options())[0])
    after = read(jobrunr)["default"]
    assert (before.ready, before.running) == (after.ready, after.running) == (4, 2)
    assert 69 <= age(after) < 80 and abs(age(after) - age(before)) < 5


def test_detect(pg_conn: psycopg.Connection[Any]) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((SCHEMAS / "jobrunr.sql").read_text())
    assert detect(pg_conn, Options()) == (
        "table current schema.jobrunr_jobs with state, updatedAt, scheduledAt"
    )
    assert detect(pg_conn, Options(table_prefix="other_")) is None


def test_each_ready_count_stops_at_the_cap(jobrunr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    add(jobrunr, "ENQUEUED", count=40)
    add(jobrunr, "SCHEDULED", scheduled_in=-60, count=40)
    add(jobrunr, "PROCESSING", updated_ago=600, count=40)
    assert limits_stopped_at(jobrunr, monkeypatch, adapter, 10) == 3  # enqueued; due; orphaned
