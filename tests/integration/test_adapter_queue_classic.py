"""queue_classic adapter on a real PostgreSQL: one case per row state, the cap, time zones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, limits_stopped_at

from dynomatic_daemon.adapters import queue_classic
from dynomatic_daemon.adapters.queue_classic import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
DEAD_PID = 0  # what qc's own test of unlock_jobs_of_dead_workers writes


@pytest.fixture
def qc(pg_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pg_conn.execute((FIXTURES / "queue_classic.sql").read_text())
    return pg_conn


@pytest.fixture
def worker(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A second session that locks jobs the way a qc worker does."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


def add(
    conn: psycopg.Connection[Any], *, queue: str = "default", run_in: float = 0, count: int = 1
) -> list[int]:
    """Insert jobs as QC::Queue#enqueue_in does: scheduled_at = now() + the offset."""
    rows = conn.execute(
        """
        INSERT INTO queue_classic_jobs (q_name, method, args, scheduled_at)
        SELECT %(queue)s, 'Kernel.puts', '["hello"]', now() + make_interval(secs => %(run_in)s)
        FROM generate_series(1, %(count)s)
        RETURNING id
        """,
        {"queue": queue, "run_in": run_in, "count": count},
    ).fetchall()
    return [int(r[0]) for r in rows]


def lock(conn: psycopg.Connection[Any], ids: list[int], locked_by: int | None = None) -> None:
    """QC::Queue#lock's update, run on ``conn`` (or naming another backend pid)."""
    conn.execute(
        """
        UPDATE queue_classic_jobs
        SET locked_at = now(), locked_by = COALESCE(%(pid)s, pg_backend_pid())
        WHERE id = ANY(%(ids)s)
        """,
        {"ids": ids, "pid": locked_by},
    )


def read(
    conn: psycopg.Connection[Any],
    selectors: list[QueueSelector] | None = None,
    cap: int = 100,
    **options: Any,
) -> dict[str, QueueStats]:
    reading = Reader(Options.model_validate(options)).read(conn, selectors or EVERY, cap)
    return {q.queue: q for q in reading.queues}


def test_empty_table_reports_no_queues_but_the_database_clock(qc: psycopg.Connection[Any]) -> None:
    reading = Reader(Options()).read(qc, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(qc) - reading.db_now).total_seconds() < 60


def test_an_enqueued_job_is_ready(qc: psycopg.Connection[Any]) -> None:
    qc.execute(
        "INSERT INTO queue_classic_jobs (q_name, method, args) VALUES ('default', 'a.b', '[]')"
    )
    add(qc, run_in=-120)
    q = read(qc)["default"]
    assert (q.ready, q.ready_capped, q.running) == (2, False, 0)
    assert q.oldest_ready_age_seconds is not None and 119 <= q.oldest_ready_age_seconds < 130


def test_a_job_scheduled_for_later_is_not_ready(qc: psycopg.Connection[Any]) -> None:
    add(qc, run_in=+300)
    q = read(qc)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_job_locked_by_a_connected_worker_is_running(
    qc: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    lock(worker, add(qc, run_in=-600))
    add(qc, run_in=-60)
    q = read(qc)["default"]
    assert (q.ready, q.running) == (1, 1)
    assert q.oldest_ready_age_seconds is not None and 59 <= q.oldest_ready_age_seconds < 70


def test_a_failed_job_stays_locked_by_its_live_worker_so_counts_as_running(
    qc: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    # qc's default handle_failure only logs: the row keeps its lock while the worker lives
    failed, current = add(qc, run_in=-3600), add(qc, run_in=-5)
    lock(worker, failed)
    lock(worker, current)
    q = read(qc)["default"]
    assert (q.ready, q.running) == (0, 2)


def test_a_job_locked_by_a_dead_worker_is_ready_again(qc: psycopg.Connection[Any]) -> None:
    lock(qc, add(qc, run_in=-900), locked_by=DEAD_PID)
    add(qc, run_in=-60)
    q = read(qc)["default"]
    assert (q.ready, q.running) == (2, 0)
    # its scheduled_at is the oldest eligible time
    assert q.oldest_ready_age_seconds is not None and 899 <= q.oldest_ready_age_seconds < 910


def test_a_worker_whose_connection_ended_leaves_its_jobs_ready(
    qc: psycopg.Connection[Any], db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as crashed:
        lock(crashed, add(qc, count=2))
        assert read(qc)["default"].running == 2
        pid = crashed.info.backend_pid
        # returns once the backend is gone, so out of pg_stat_activity: no sleep needed
        assert qc.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone() == (True,)
    q = read(qc)["default"]
    assert (q.ready, q.running) == (2, 0)


def test_a_lock_without_locked_by_cannot_be_judged_so_counts_as_running(
    qc: psycopg.Connection[Any],
) -> None:
    (job_id,) = add(qc)
    qc.execute("UPDATE queue_classic_jobs SET locked_at = now() WHERE id = %s", (job_id,))
    q = read(qc)["default"]
    assert (q.ready, q.running) == (0, 1)


def test_other_queues_are_counted_apart_and_filtered_by_selector(
    qc: psycopg.Connection[Any], worker: psycopg.Connection[Any]
) -> None:
    add(qc, queue="mailers", count=3)
    add(qc, queue="critical", count=2)
    add(qc, queue="low", run_in=+60)
    lock(worker, add(qc, queue="busy"))  # a queue with only locked rows is still found
    assert read(qc, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(qc)
    assert {k: (v.ready, v.running) for k, v in everything.items()} == {
        "busy": (0, 1),
        "critical": (2, 0),
        "low": (0, 0),
        "mailers": (3, 0),
    }
    assert read(qc, [QueueSelector(("m*",))])["mailers"].ready == 3
    # a named queue with no rows is still reported, with zeros
    empty = read(qc, [QueueSelector(("nothing-here",))])
    assert empty == {"nothing-here": QueueStats("nothing-here", 0, False, None, None, 0)}


def test_oldest_is_by_scheduled_at_not_by_id(qc: psycopg.Connection[Any]) -> None:
    add(qc, run_in=-100)
    add(qc, run_in=-700)  # enqueue_at a time in the past: a later id, an earlier time
    add(qc, run_in=+900)
    q = read(qc)["default"]
    assert q.ready == 2
    assert q.oldest_ready_age_seconds is not None and 699 <= q.oldest_ready_age_seconds < 710


def test_the_count_stops_at_the_cap(qc: psycopg.Connection[Any]) -> None:
    add(qc, count=40)
    lock(qc, add(qc, count=5), locked_by=DEAD_PID)  # orphans count towards the same cap
    q = read(qc, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(qc, cap=45)["default"]
    assert (q.ready, q.ready_capped) == (45, True)
    q = read(qc, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_a_hand_counted_mix(qc: psycopg.Connection[Any], worker: psycopg.Connection[Any]) -> None:
    add(qc, count=4)  # ready
    add(qc, run_in=+120, count=3)  # scheduled
    lock(worker, add(qc, count=2))  # running
    lock(worker, add(qc, run_in=-7200, count=1))  # failed, kept locked by its live worker
    lock(qc, add(qc, count=2), locked_by=DEAD_PID)  # its worker died: ready again
    add(qc, queue="mailers", count=7)  # ready
    lock(worker, add(qc, queue="mailers", count=1))  # running
    found = read(qc, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (6, 3),
        "mailers": (7, 1),
    }


def test_schema_table_and_queue_names_are_identifiers_and_values_not_sql(
    qc: psycopg.Connection[Any],
) -> None:
    qc.execute('CREATE SCHEMA "odd; ""schema"" ñ"')
    qc.execute('CREATE TABLE "odd; ""schema"" ñ"."jobs""x" (LIKE queue_classic_jobs INCLUDING ALL)')
    hostile = "q'; DROP TABLE queue_classic_jobs; --"
    qc.execute(
        'INSERT INTO "odd; ""schema"" ñ"."jobs""x" (q_name, method, args)'
        " VALUES (%s, 'a', '[]')",
        (hostile,),
    )
    options: dict[str, Any] = {"schema": 'odd; "schema" ñ', "table": 'jobs"x'}
    found = read(qc, [QueueSelector((hostile, "x'y"))], **options)
    assert (found[hostile].ready, found["x'y"].ready) == (1, 0)
    assert read(qc, **options).keys() == {hostile}
    assert qc.execute("SELECT count(*) FROM queue_classic_jobs").fetchone() == (0,)
    description = detect(qc, Options.model_validate(options))
    assert description is not None and 'jobs"x' in description


def test_detect_reports_the_layout(qc: psycopg.Connection[Any]) -> None:
    assert detect(qc, Options()) == (
        "table current schema.queue_classic_jobs"
        " (4.x layout, args jsonb: q_name, scheduled_at, locked_at, locked_by)"
    )
    assert detect(qc, Options.model_validate({"schema": "public"})) is not None
    qc.execute("ALTER TABLE queue_classic_jobs ALTER COLUMN args TYPE json")  # qc 3.1-3.x
    described = detect(qc, Options())
    assert described is not None and "(3.1+ layout" in described


def test_detect_finds_nothing_in_an_empty_database_or_another_librarys_tables(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    pg_conn.execute((FIXTURES / "que_2.sql").read_text())
    assert detect(pg_conn, Options()) is None
    assert detect(pg_conn, Options(table="delayed_jobs")) is None
    assert detect(pg_conn, Options(table="que_jobs")) is None
    pg_conn.execute((FIXTURES / "queue_classic.sql").read_text())
    assert detect(pg_conn, Options.model_validate({"schema": "elsewhere"})) is None


def test_the_boundaries_are_qcs_own(qc: psycopg.Connection[Any]) -> None:
    """Inside one transaction now() stands still: a job scheduled exactly now is one qc's lock
    takes (``scheduled_at <= now()``), whether it was never locked or its worker died."""
    with qc.transaction():
        add(qc, queue="fresh", run_in=0)
        lock(qc, add(qc, queue="orphan", run_in=0), locked_by=DEAD_PID)
        add(qc, queue="orphan", run_in=+1)  # a microsecond would do; one second is clearer
        found = read(qc)
    got = {n: (q.ready, q.running, q.oldest_ready_age_seconds) for n, q in found.items()}
    assert got == {"fresh": (1, 0, 0.0), "orphan": (1, 0, 0.0)}


def test_the_oldest_of_several_orphans_is_the_earliest_scheduled(
    qc: psycopg.Connection[Any],
) -> None:
    lock(qc, add(qc, run_in=-900), locked_by=DEAD_PID)
    lock(qc, add(qc, run_in=-300), locked_by=DEAD_PID)
    q = read(qc)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert q.oldest_ready_age_seconds is not None and 899 <= q.oldest_ready_age_seconds < 910


def test_the_ready_count_stops_at_the_cap_in_the_plan(
    qc: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    add(qc, run_in=-60, count=40)
    assert limits_stopped_at(qc, monkeypatch, queue_classic, 10) == 1
