"""The sql adapter: a user's own query, checked once for its columns, aged on the DB clock."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from dynomatic_daemon.adapters.sql import Options, Reader, detect
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.config import DatabaseSettings
from dynomatic_daemon.db import Database
from dynomatic_daemon.errors import QueueReadError
from dynomatic_daemon.models import QueueSelector

pytestmark = pytest.mark.postgres

GOOD = """
SELECT queue, count(*) FILTER (WHERE state = 'ready') AS ready,
       min(enqueued_at) FILTER (WHERE state = 'ready') AS oldest_eligible_at,
       count(*) FILTER (WHERE state = 'running') AS running
FROM my_jobs WHERE queue LIKE '%' GROUP BY queue;
"""


@pytest.fixture
def jobs(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute(
        "CREATE TABLE my_jobs (queue text, state text, enqueued_at timestamptz);"
        "INSERT INTO my_jobs VALUES ('a', 'ready', now() - interval '90 seconds'),"
        " ('a', 'ready', now()), ('a', 'running', now()), ('b', 'done', now())"
    )
    return pg_conn


def read(conn: psycopg.Connection[Any], query: str, cap: int = 100, names: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    selectors = [QueueSelector(names)] if names else [QueueSelector(None)]
    return {q.queue: q for q in Reader(Options(query=query)).read(conn, selectors, cap).queues}


def test_a_good_query_reports_counts_and_ages(jobs: psycopg.Connection[Any]) -> None:
    found = read(jobs, GOOD)
    assert (found["a"].ready, found["a"].running) == (2, 1)
    assert found["a"].oldest_ready_age_seconds is not None
    assert 89 <= found["a"].oldest_ready_age_seconds < 120
    assert (found["b"].ready, found["b"].oldest_ready_age_seconds) == (0, None)


def test_named_queues_without_rows_report_zeros_and_the_cap_applies(
    jobs: psycopg.Connection[Any],
) -> None:
    found = read(jobs, GOOD, cap=2, names=("a", "zzz"))
    assert (found["a"].ready, found["a"].ready_capped) == (2, True)
    assert (found["zzz"].ready, found["zzz"].running) == (0, 0)


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/New_York"])
def test_naive_timestamps_are_utc_whatever_the_session_zone(
    jobs: psycopg.Connection[Any], zone: str
) -> None:
    jobs.execute(f"SET TIME ZONE '{zone}'")
    query = (
        "SELECT 'q' AS queue, 1 AS ready, (now() AT TIME ZONE 'UTC') - interval '60 s'"
        " AS oldest_eligible_at, NULL::int AS running"
    )
    found = read(jobs, query)
    assert found["q"].running is None
    age = found["q"].oldest_ready_age_seconds
    assert age is not None and 59 <= age < 70


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT queue, count(*) AS ready FROM my_jobs GROUP BY queue",
            "missing column 'oldest_eligible_at'; missing column 'running'",
        ),
        (
            "SELECT queue, 'x' AS ready, now() AS oldest_eligible_at, 0 AS running FROM my_jobs",
            "ready is text",
        ),
        (
            "SELECT queue, 1 AS ready, 'yesterday' AS oldest_eligible_at, 0 AS running"
            " FROM my_jobs",
            "oldest_eligible_at is text",
        ),
    ],
)
def test_a_query_whose_columns_do_not_fit_is_refused_clearly(
    jobs: psycopg.Connection[Any], query: str, message: str
) -> None:
    with pytest.raises(QueueReadError) as info:
        read(jobs, query)
    text = str(info.value)
    assert message in text
    assert "must return columns queue, ready, oldest_eligible_at, running" in text
    assert "it returned:" in text


def test_the_query_runs_read_only_on_the_daemons_connection(
    jobs: psycopg.Connection[Any], db_url: str
) -> None:
    db = Database(DatabaseSettings(url=SecretStr(db_url)), SteppableClock())
    reader = Reader(
        Options(
            query="SELECT 'q' AS queue, 1 AS ready, now() AS oldest_eligible_at,"
            " 0 AS running FROM (DELETE FROM my_jobs RETURNING 1) d"
        )
    )
    with pytest.raises(QueueReadError):
        db.run(lambda conn: reader.read(conn, [QueueSelector(None)], 10))
    db.close()
    assert jobs.execute("SELECT count(*) FROM my_jobs").fetchone() == (4,)


def test_never_detected(jobs: psycopg.Connection[Any]) -> None:
    assert detect(jobs, Options(query=GOOD)) is None
