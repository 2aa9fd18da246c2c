"""graphile-worker adapter on a real PostgreSQL, for the v0.16+, v0.14/v0.15 and v0.13 layouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from adapter_support import database_now
from psycopg import sql

from dynomatic_daemon.adapters.graphile_worker import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
VERSIONS = ["0_17", "0_15", "0_13"]
HOUR = 3600.0


@dataclass
class Worker:
    conn: psycopg.Connection[Any]
    version: str
    schema: str = "graphile_worker"

    @property
    def legacy(self) -> bool:
        return self.version == "0_13"

    def table(self, name: str) -> sql.Identifier:
        prefix = "_private_" if self.version == "0_17" else ""
        return sql.Identifier(self.schema, prefix + name)

    def add(
        self,
        *,
        task: str = "send_email",
        queue: str | None = None,
        run_in: float = -60,
        created_in: float | None = None,
        locked_ago: float | None = None,
        attempts: int = 0,
        max_attempts: int = 25,
        priority: int = 0,
        count: int = 1,
    ) -> None:
        """Insert jobs as add_jobs / getJobs / failJobs leave them, relative to the DB clock."""
        params = {
            "task": task,
            "queue": queue,
            "run_in": run_in,
            "created": min(run_in, 0) if created_in is None else created_in,
            "locked_ago": locked_ago,
            "attempts": attempts,
            "max_attempts": max_attempts,
            "priority": priority,
            "count": count,
        }
        common = """
            %(priority)s, now() + make_interval(secs => %(run_in)s), %(attempts)s,
            %(max_attempts)s, now() - make_interval(secs => %(locked_ago)s),
            CASE WHEN %(locked_ago)s::float8 IS NOT NULL THEN 'worker-1' END,
            now() + make_interval(secs => %(created)s),
            CASE WHEN %(attempts)s > 0 AND %(locked_ago)s::float8 IS NULL THEN 'boom' END
            FROM generate_series(1, %(count)s)"""
        columns = "priority, run_at, attempts, max_attempts, locked_at, locked_by, created_at,"
        columns += " last_error"
        if self.legacy:
            if queue is not None:  # the job_queues rows its triggers keep
                self.conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (queue_name, job_count) VALUES (%s, %s)"
                        " ON CONFLICT (queue_name) DO UPDATE"
                        " SET job_count = job_queues.job_count + excluded.job_count"
                    ).format(self.table("job_queues")),
                    [queue, count],
                )
            query = "INSERT INTO {jobs} (queue_name, task_identifier, " + columns + ")"
            query += " SELECT %(queue)s, %(task)s, " + common
        else:
            self.conn.execute(
                sql.SQL("INSERT INTO {} (identifier) VALUES (%s) ON CONFLICT DO NOTHING").format(
                    self.table("tasks")
                ),
                [task],
            )
            if queue is not None:
                self.conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (queue_name) VALUES (%s) ON CONFLICT DO NOTHING"
                    ).format(self.table("job_queues")),
                    [queue],
                )
            query = "INSERT INTO {jobs} (job_queue_id, task_id, " + columns + ")"
            query += " SELECT (SELECT id FROM {queues} WHERE queue_name = %(queue)s),"
            query += " (SELECT id FROM {tasks} WHERE identifier = %(task)s), " + common
        composed = sql.SQL(query).format(
            jobs=self.table("jobs"), queues=self.table("job_queues"), tasks=self.table("tasks")
        )
        self.conn.execute(composed, params)

    def lock_queue(self, queue: str, ago: float) -> None:
        """What getJobs does to a named queue when it takes one of its jobs."""
        self.conn.execute(
            sql.SQL(
                "UPDATE {} SET locked_at = now() - make_interval(secs => %s),"
                " locked_by = 'worker-1' WHERE queue_name = %s"
            ).format(self.table("job_queues")),
            [ago, queue],
        )

    def read(
        self, selectors: list[QueueSelector] | None = None, cap: int = 100
    ) -> dict[str, QueueStats]:
        reading = Reader(Options(schema=self.schema)).read(self.conn, selectors or EVERY, cap)
        return {q.queue: q for q in reading.queues}


def load(conn: psycopg.Connection[Any], version: str, schema: str = "graphile_worker") -> None:
    text = (FIXTURES / f"graphile_worker_{version}.sql").read_text()
    if schema != "graphile_worker":
        quoted = sql.Identifier(schema).as_string(conn)
        text = text.replace("graphile_worker.", f"{quoted}.").replace(
            "EXISTS graphile_worker;", f"EXISTS {quoted};"
        )
    conn.execute(text)


@pytest.fixture(params=VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def gw(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Worker:
    load(pg_conn, request.param)
    return Worker(pg_conn, request.param)


def test_empty_tables_report_no_queues_but_the_database_clock(gw: Worker) -> None:
    reading = Reader(Options()).read(gw.conn, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(gw) - reading.db_now).total_seconds() < 60


def test_a_due_job_without_a_named_queue_is_ready_under_its_task(gw: Worker) -> None:
    gw.add(run_in=-120)
    q = gw.read()["send_email"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert q.oldest_ready_age_seconds is not None and 119 <= q.oldest_ready_age_seconds < 130


def test_a_job_in_a_named_queue_is_reported_under_the_queue(gw: Worker) -> None:
    gw.add(queue="serial", run_in=-30)
    found = gw.read()
    assert found["serial"].ready == 1
    assert found.get("send_email", None) is None or found["send_email"].ready == 0


def test_a_scheduled_job_is_not_ready(gw: Worker) -> None:
    gw.add(run_in=+300, created_in=0)
    q = gw.read()["send_email"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_due_retry_is_ready_and_one_in_backoff_is_not(gw: Worker) -> None:
    gw.add(attempts=2, run_in=-20, created_in=-HOUR)
    gw.add(task="later", attempts=2, run_in=+20, created_in=-HOUR)
    found = gw.read()
    assert found["later"].ready == 0
    q = found["send_email"]
    assert q.ready == 1
    assert q.oldest_ready_age_seconds is not None and 19 <= q.oldest_ready_age_seconds < 30


def test_a_locked_job_is_running_not_ready_even_on_its_last_attempt(gw: Worker) -> None:
    gw.add(locked_ago=30, attempts=1)
    gw.add(locked_ago=10, attempts=25, max_attempts=25)
    q = gw.read()["send_email"]
    assert (q.ready, q.running) == (0, 2)


def test_a_permanently_failed_job_is_neither_ready_nor_running(gw: Worker) -> None:
    gw.add(attempts=25, max_attempts=25, run_in=-HOUR)
    q = gw.read([QueueSelector(("send_email",))])["send_email"]
    assert (q.ready, q.running) == (0, 0)


def test_a_lock_older_than_four_hours_is_a_crashed_worker_so_the_job_is_ready(gw: Worker) -> None:
    gw.add(locked_ago=5 * HOUR, attempts=1, run_in=-6 * HOUR)
    gw.add(locked_ago=5 * HOUR, attempts=25, max_attempts=25, run_in=-6 * HOUR)  # no tries left
    gw.add(locked_ago=3 * HOUR, attempts=1, run_in=-6 * HOUR)
    q = gw.read()["send_email"]
    assert (q.ready, q.running) == (1, 1)
    # runnable since the lock went stale, 4 h after it was taken
    assert (
        q.oldest_ready_age_seconds is not None
        and HOUR - 5 <= q.oldest_ready_age_seconds < HOUR + 10
    )


def test_a_named_queue_locked_by_a_live_worker_holds_its_jobs_back(gw: Worker) -> None:
    gw.add(queue="serial", locked_ago=10, attempts=1)
    gw.add(queue="serial", count=3)
    gw.lock_queue("serial", 10)
    q = gw.read()["serial"]
    assert (q.ready, q.oldest_eligible_at, q.running) == (0, None, 1)
    gw.lock_queue("serial", 5 * HOUR)  # the worker holding it died
    assert gw.read()["serial"].ready == 3


def test_a_job_added_with_a_past_run_at_is_eligible_from_when_it_was_added(gw: Worker) -> None:
    gw.add(run_in=-7200, created_in=-60)  # e.g. a cron backfill
    gw.add(run_in=-600)
    q = gw.read()["send_email"]
    assert q.ready == 2
    assert q.oldest_ready_age_seconds is not None and 599 <= q.oldest_ready_age_seconds < 610


def test_oldest_is_found_across_priorities(gw: Worker) -> None:
    gw.add(priority=10, run_in=-900)
    gw.add(priority=0, run_in=-100)
    gw.add(priority=-5, run_in=-300)
    gw.add(queue="serial", priority=3, run_in=-500)
    gw.add(queue="serial", priority=-3, run_in=-50)
    found = gw.read()
    age = found["send_email"].oldest_ready_age_seconds
    assert age is not None and 899 <= age < 910
    age = found["serial"].oldest_ready_age_seconds
    assert age is not None and 499 <= age < 510


def layout_known_reader(gw: Worker) -> Reader:
    """A reader that has read once, so it knows the layout: in a transaction (where now() stands
    still) its retry after an undefined table could not run, the transaction being aborted."""
    reader = Reader(Options(schema=gw.schema))
    reader.read(gw.conn, EVERY, 100)
    return reader


def read_with(reader: Reader, gw: Worker) -> dict[str, QueueStats]:
    return {q.queue: q for q in reader.read(gw.conn, EVERY, 100).queues}


def test_jobs_due_at_this_very_instant_are_ready(gw: Worker) -> None:
    # in one transaction now() does not move, so run_at equals the clock exactly
    reader = layout_known_reader(gw)
    with gw.conn.transaction():
        gw.add(run_in=0)
        gw.add(task="crashed", run_in=0, locked_ago=5 * HOUR, attempts=1)
        found = read_with(reader, gw)
    assert (found["send_email"].ready, found["send_email"].oldest_ready_age_seconds) == (1, 0.0)
    assert (found["crashed"].ready, found["crashed"].running) == (1, 0)


def test_a_lock_taken_exactly_four_hours_ago_is_still_live(gw: Worker) -> None:
    reader = layout_known_reader(gw)
    with gw.conn.transaction():  # now() does not move: the locks are exactly 4 h old
        gw.add(locked_ago=4 * HOUR, attempts=1, run_in=-5 * HOUR)
        gw.add(queue="serial", count=2)
        gw.lock_queue("serial", 4 * HOUR)
        found = read_with(reader, gw)
    assert (found["send_email"].ready, found["send_email"].running) == (0, 1)
    assert found["serial"].ready == 0


def test_only_ready_jobs_of_the_queue_can_be_older_than_the_first_due_one(gw: Worker) -> None:
    # the first job by run_at was added late (eligible 100 s ago); behind it, in its run_at
    # range, and before it, a locked job of the same task and another task's job look older
    gw.add(run_in=-1000, created_in=-100)
    gw.add(run_in=-900, locked_ago=10, attempts=1)
    gw.add(task="other", run_in=-800)
    gw.add(run_in=-3000, locked_ago=10, attempts=1)
    gw.add(task="other", run_in=-2000)
    selected = [QueueSelector(("send_email",))]

    def age() -> float | None:
        return gw.read(selected)["send_email"].oldest_ready_age_seconds

    assert (found := age()) is not None and 99 <= found < 110
    # ready jobs in that range eligible after their run_at count from when they were added;
    # of two such jobs the older one wins
    gw.add(run_in=-600, created_in=-300)
    gw.add(run_in=-500, created_in=-400)
    assert (found := age()) is not None and 399 <= found < 410
    # a job due at the same instant as the first one, but added on time, is older still
    gw.conn.execute(
        sql.SQL(
            "UPDATE {jobs} SET run_at = first.run_at, created_at = first.run_at"
            " FROM (SELECT run_at FROM {jobs} WHERE created_at > run_at"
            " ORDER BY run_at LIMIT 1) first WHERE id = (SELECT max(id) FROM {jobs})"
        ).format(jobs=gw.table("jobs"))
    )
    assert (found := age()) is not None and 999 <= found < 1010


def test_the_oldest_of_waiting_and_crashed_jobs(gw: Worker) -> None:
    gw.add(run_in=-600)
    gw.add(locked_ago=4.5 * HOUR, attempts=1, run_in=-6 * HOUR)  # runnable for 30 minutes
    gw.add(locked_ago=5 * HOUR, attempts=1, run_in=-6 * HOUR)  # runnable for an hour
    q = gw.read()["send_email"]
    assert (q.ready, q.running) == (3, 0)
    assert q.oldest_ready_age_seconds is not None
    assert HOUR - 5 <= q.oldest_ready_age_seconds < HOUR + 10


def test_the_count_stops_at_the_cap(gw: Worker) -> None:
    gw.add(count=40)
    gw.add(count=5, locked_ago=5 * HOUR, attempts=1)  # crashed jobs count towards the same cap
    q = gw.read(cap=31)["send_email"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = gw.read(cap=46)["send_email"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_queues_are_counted_apart_and_named_ones_reported_with_zeros(gw: Worker) -> None:
    gw.add(task="mailers", count=3)
    gw.add(task="critical", count=2)
    gw.add(task="low", run_in=+60, created_in=0)
    gw.add(task="mailers", queue="reports", count=4)
    assert gw.read([QueueSelector(("mailers",))]).keys() == {"mailers"}
    found = {k: v.ready for k, v in gw.read().items()}
    assert found == {"critical": 2, "low": 0, "mailers": 3, "reports": 4}
    assert gw.read([QueueSelector(("mail*",))])["mailers"].ready == 3
    empty = gw.read([QueueSelector(("nothing-here",))])["nothing-here"]
    assert (empty.ready, empty.ready_capped, empty.oldest_eligible_at, empty.running) == (
        0,
        False,
        None,
        0,
    )


def test_a_hand_counted_mix(gw: Worker) -> None:
    gw.add(count=4)  # ready
    gw.add(attempts=1, run_in=-5, count=2)  # retry due -> ready
    gw.add(attempts=1, run_in=+90, count=3)  # retry backoff
    gw.add(run_in=+120, created_in=0, count=3)  # scheduled
    gw.add(attempts=25, count=5)  # permanently failed
    gw.add(locked_ago=20, attempts=1, count=2)  # running
    gw.add(locked_ago=6 * HOUR, attempts=1, count=1)  # crashed -> ready
    gw.add(queue="serial", count=7)  # ready, queue unlocked
    gw.add(queue="serial", task="other", priority=-1, count=1)  # ready
    found = gw.read([QueueSelector(("send_email", "serial"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "send_email": (7, 2),
        "serial": (8, 0),
    }


def test_a_migration_under_a_running_reader_is_followed(pg_conn: psycopg.Connection[Any]) -> None:
    reader = Reader(Options())
    for ready, version in enumerate(["0_13", "0_15", "0_17"], start=1):
        pg_conn.execute("DROP SCHEMA IF EXISTS graphile_worker CASCADE")
        load(pg_conn, version)
        Worker(pg_conn, version).add(count=ready)
        assert reader.read(pg_conn, EVERY, 10).queues[0].ready == ready


def test_schema_task_and_queue_names_are_identifiers_and_values_not_sql(
    pg_conn: psycopg.Connection[Any],
) -> None:
    odd = 'odd"; DROP TABLE x; -- ü'
    for version in VERSIONS:
        load(pg_conn, version, schema=odd)
        gw = Worker(pg_conn, version, schema=odd)
        gw.add(task="t'; DROP TABLE jobs; --", count=2)
        gw.add(task="t", queue="q\"'; --", count=3)
        found = gw.read()
        assert found["t'; DROP TABLE jobs; --"].ready == 2
        assert found["q\"'; --"].ready == 3
        detected = detect(pg_conn, Options(schema=odd))
        assert detected is not None and odd in detected
        pg_conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(odd)))


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0_17", "_private_jobs (v0.16+ layout: _private_jobs; migration 19)"),
        ("0_15", "jobs (v0.14/v0.15 layout: jobs.is_available; migration 14)"),
        ("0_13", "jobs (v0.13 layout: jobs.queue_name; migration 10)"),
    ],
)
def test_detect_names_the_layout_and_migration(
    pg_conn: psycopg.Connection[Any], version: str, expected: str
) -> None:
    load(pg_conn, version)
    assert detect(pg_conn, Options()) == f"table graphile_worker.{expected}"
    assert detect(pg_conn, Options(schema="elsewhere")) is None


def test_detect_finds_nothing_in_an_empty_database_or_next_to_delayed_job(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None
    assert detect(pg_conn, Options(schema="public")) is None


def test_detect_reads_the_configured_schema_only(pg_conn: psycopg.Connection[Any]) -> None:
    # a newer install in another schema must not lend its tables or columns to this one
    load(pg_conn, "0_13")
    load(pg_conn, "0_15", schema="other")
    assert detect(pg_conn, Options()) == (
        "table graphile_worker.jobs (v0.13 layout: jobs.queue_name; migration 10)"
    )


def test_detect_wants_the_migrations_table_too(pg_conn: psycopg.Connection[Any]) -> None:
    load(pg_conn, "0_17")
    pg_conn.execute("DROP TABLE graphile_worker.migrations")
    assert detect(pg_conn, Options()) is None
