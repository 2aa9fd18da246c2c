"""que adapter on a real PostgreSQL: DB schemas 4, 5 and 7, advisory-locked running jobs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken

from dynomatic_daemon.adapters.que import REQUIRED_COLUMNS, Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
# fixture file -> the job_schema_version que of that generation writes (None: no such column)
LAYOUTS = {"que_1_0": None, "que_1_3": 1, "que_2": 2}


@dataclass
class Que:
    conn: psycopg.Connection[Any]
    job_schema_version: int | None

    def add(
        self,
        *,
        queue: str = "default",
        run_in: float = -60,
        priority: int = 100,
        error_count: int = 0,
        finished: bool = False,
        expired: bool = False,
        count: int = 1,
        job_schema_version: int | None = None,
    ) -> list[int]:
        """Insert jobs with the columns que's own enqueue (and later updates) write."""
        version = job_schema_version or self.job_schema_version
        columns = "queue, priority, run_at, job_class, args, data"
        run_at = "now() + make_interval(secs => %(run_in)s)"
        values = f"%(queue)s, %(priority)s, {run_at}, 'Job', '[]', '{{}}'"
        if version is not None:
            columns += ", job_schema_version"
            values += ", %(version)s"
        if version == 2:
            columns += ", kwargs"
            values += ", '{}'"
        rows = self.conn.execute(
            f"""
            INSERT INTO que_jobs ({columns}, error_count, last_error_message,
                                  finished_at, expired_at)
            SELECT {values}, %(errors)s, CASE WHEN %(errors)s > 0 THEN 'RuntimeError' END,
                   CASE WHEN %(finished)s THEN now() END, CASE WHEN %(expired)s THEN now() END
            FROM generate_series(1, %(count)s)
            RETURNING id
            """,
            {
                "queue": queue,
                "priority": priority,
                "run_in": run_in,
                "version": version,
                "errors": error_count,
                "finished": finished,
                "expired": expired,
                "count": count,
            },
        ).fetchall()
        return [int(r[0]) for r in rows]


@pytest.fixture(params=list(LAYOUTS))
def que(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Que:
    pg_conn.execute((FIXTURES / f"{request.param}.sql").read_text())
    return Que(pg_conn, LAYOUTS[request.param])


@pytest.fixture
def que2(pg_conn: psycopg.Connection[Any]) -> Que:
    pg_conn.execute((FIXTURES / "que_2.sql").read_text())
    return Que(pg_conn, 2)


@pytest.fixture
def locker(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A second session holding advisory locks, as a que locker's connection does."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


def lock(locker: psycopg.Connection[Any], ids: list[int]) -> None:
    for job_id in ids:
        locker.execute("SELECT pg_advisory_lock(%s)", (job_id,))


def read(
    conn: psycopg.Connection[Any],
    selectors: list[QueueSelector] | None = None,
    cap: int = 100,
    **options: Any,
) -> dict[str, QueueStats]:
    reading = Reader(Options.model_validate(options)).read(conn, selectors or EVERY, cap)
    return {q.queue: q for q in reading.queues}


def test_empty_table_reports_no_queues_but_the_database_clock(que: Que) -> None:
    reading = Reader(Options()).read(que.conn, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(que) - reading.db_now).total_seconds() < 60


def test_a_due_job_is_ready(que: Que) -> None:
    que.add(run_in=-120)
    q = read(que.conn)["default"]
    assert (q.ready, q.ready_capped, q.running) == (1, False, 0)
    assert q.oldest_ready_age_seconds is not None and 119 <= q.oldest_ready_age_seconds < 130


def test_a_future_job_is_not_ready(que: Que) -> None:
    que.add(run_in=+300)
    q = read(que.conn)["default"]
    assert (q.ready, q.oldest_ready_age_seconds, q.running) == (0, None, 0)


def test_a_retry_is_ready_once_due_and_not_before(que: Que) -> None:
    que.add(queue="due", error_count=3, run_in=-30)
    que.add(queue="waiting", error_count=3, run_in=+90)
    found = read(que.conn)
    assert (found["due"].ready, found["waiting"].ready) == (1, 0)
    assert found["waiting"].oldest_ready_age_seconds is None


def test_finished_and_expired_jobs_are_neither_ready_nor_running(
    que: Que, locker: psycopg.Connection[Any]
) -> None:
    done = que.add(run_in=-3600, finished=True)
    dead = que.add(run_in=-3600, error_count=16, expired=True)
    lock(locker, done + dead)  # even a lock on their ids does not make them running
    assert read(que.conn) == {}  # they do not even make their queue appear


def test_an_advisory_locked_job_is_running_not_ready(
    que: Que, locker: psycopg.Connection[Any]
) -> None:
    old = que.add(run_in=-600)
    que.add(run_in=-60)
    lock(locker, old)
    q = read(que.conn)["default"]
    assert (q.ready, q.running) == (1, 1)
    # the locked job is not the oldest ready one any more
    assert q.oldest_ready_age_seconds is not None and 59 <= q.oldest_ready_age_seconds < 70
    locker.execute("SELECT pg_advisory_unlock_all()")
    q = read(que.conn)["default"]
    assert (q.ready, q.running) == (2, 0)


def test_a_claimed_retry_in_backoff_still_counts_as_running(
    que: Que, locker: psycopg.Connection[Any]
) -> None:
    lock(locker, que.add(error_count=1, run_in=+30))  # the worker is writing its retry
    q = read(que.conn)["default"]
    assert (q.ready, q.running) == (0, 1)


def test_job_ids_beyond_32_bits_are_rebuilt_from_pg_locks(
    que: Que, locker: psycopg.Connection[Any]
) -> None:
    que.conn.execute("SELECT setval('que_jobs_id_seq', (5::bigint << 32) + 7)")
    ids = que.add(count=3)
    assert min(ids) > 2**32
    lock(locker, ids[1:])
    q = read(que.conn)["default"]
    assert (q.ready, q.running) == (1, 2)


def test_other_kinds_of_advisory_lock_are_not_jobs(
    que: Que, locker: psycopg.Connection[Any]
) -> None:
    (job_id,) = que.add()
    locker.execute("SELECT pg_advisory_lock(0, %s)", (job_id,))  # two-int key: objsubid 2
    locker.execute("SELECT pg_advisory_lock(%s)", (job_id + 1000,))  # not a job's id
    q = read(que.conn)["default"]
    assert (q.ready, q.running) == (1, 0)


def test_other_queues_are_counted_apart_and_filtered_by_selector(que: Que) -> None:
    que.add(queue="mailers", count=3)
    que.add(queue="critical", count=2)
    que.add(queue="low", run_in=+60)
    assert read(que.conn, [QueueSelector(("mailers",))]).keys() == {"mailers"}
    everything = read(que.conn)
    assert {k: v.ready for k, v in everything.items()} == {"critical": 2, "low": 0, "mailers": 3}
    wild = read(que.conn, [QueueSelector(("m*",))])
    assert wild["mailers"].ready == 3  # extra queues may come back; the caller filters
    # a named queue with no rows is still reported, with zeros
    empty = read(que.conn, [QueueSelector(("nothing-here",))])
    assert empty == {"nothing-here": QueueStats("nothing-here", 0, False, None, None, 0)}


def test_oldest_is_found_across_priorities(que: Que) -> None:
    que.add(priority=1, run_in=-100)
    que.add(priority=100, run_in=-300)
    que.add(priority=500, run_in=-900)
    que.add(priority=500, run_in=+900)
    q = read(que.conn)["default"]
    assert q.ready == 3
    assert q.oldest_ready_age_seconds is not None and 899 <= q.oldest_ready_age_seconds < 910


def test_the_count_stops_at_the_cap(que: Que) -> None:
    que.add(priority=1, count=20)
    que.add(priority=100, count=25)
    q = read(que.conn, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(que.conn, cap=45)["default"]
    assert (q.ready, q.ready_capped) == (45, True)
    q = read(que.conn, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_a_hand_counted_mix(que: Que, locker: psycopg.Connection[Any]) -> None:
    que.add(count=4)  # ready
    que.add(priority=5, error_count=2, count=2)  # retry, due: ready
    que.add(run_in=+120, count=3)  # scheduled
    que.add(error_count=4, run_in=+500, count=2)  # retry in backoff
    que.add(finished=True, count=5)  # finished
    que.add(error_count=16, expired=True, count=3)  # expired
    lock(locker, que.add(count=2))  # running
    que.add(queue="mailers", count=7)  # ready
    lock(locker, que.add(queue="mailers", count=1))  # running
    found = read(que.conn, [QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (6, 2),
        "mailers": (7, 1),
    }


@pytest.mark.parametrize(
    ("option", "expected"),
    [(None, {"default": (2, 1)}), (2, {"default": (2, 1)}), (1, {"default": (3, 0)})],
)
def test_schema_7_counts_the_job_schema_version_the_workers_run(
    que2: Que, locker: psycopg.Connection[Any], option: int | None, expected: object
) -> None:
    # during que's 1.x -> 2.x upgrade both kinds of job share the table
    que2.add(count=2, job_schema_version=2)
    lock(locker, que2.add(job_schema_version=2))
    que2.add(count=3, job_schema_version=1)
    found = read(que2.conn, job_schema_version=option)
    assert {k: (v.ready, v.running) for k, v in found.items()} == expected


def test_the_version_is_inferred_from_the_column_when_the_comment_is_lost(que2: Que) -> None:
    que2.conn.execute("COMMENT ON TABLE que_jobs IS NULL")  # Rails < 7.0.3 schema dumps
    que2.add(count=2, job_schema_version=2)
    que2.add(count=5, job_schema_version=1)
    assert read(que2.conn)["default"].ready == 2


def test_a_migration_to_schema_6_is_followed_without_a_new_reader(
    pg_conn: psycopg.Connection[Any],
) -> None:
    pg_conn.execute((FIXTURES / "que_1_3.sql").read_text())
    que = Que(pg_conn, 1)
    reader = Reader(Options())
    que.add(count=2)
    assert reader.read(pg_conn, EVERY, 100).queues[0].ready == 2
    # que's migration 6, then 2.x workers enqueue version-2 jobs
    pg_conn.execute(
        """
        ALTER TABLE que_jobs ADD COLUMN kwargs jsonb NOT NULL DEFAULT '{}';
        DROP INDEX que_poll_idx;
        ALTER INDEX que_poll_idx_with_job_schema_version RENAME TO que_poll_idx;
        ALTER TABLE que_jobs ALTER COLUMN job_schema_version DROP DEFAULT;
        ALTER TABLE que_jobs ALTER COLUMN job_schema_version SET NOT NULL;
        COMMENT ON TABLE que_jobs IS '6';
        """
    )
    que.add(count=3, job_schema_version=2)
    assert reader.read(pg_conn, EVERY, 100).queues[0].ready == 3


def test_a_reader_made_before_the_table_exists_learns_its_layout_later(
    pg_conn: psycopg.Connection[Any],
) -> None:
    reader = Reader(Options())
    with pytest.raises(psycopg.errors.UndefinedTable):
        reader.read(pg_conn, EVERY, 100)
    pg_conn.execute((FIXTURES / "que_2.sql").read_text())
    que = Que(pg_conn, 2)
    que.add(count=2)
    que.add(count=4, job_schema_version=1)
    assert reader.read(pg_conn, EVERY, 100).queues[0].ready == 2


def test_schema_and_queue_names_are_identifiers_and_values_not_sql(que2: Que) -> None:
    schema = 'odd; "schema" ñ'
    que2.conn.execute('CREATE SCHEMA "odd; ""schema"" ñ"')
    que2.conn.execute(
        'CREATE TABLE "odd; ""schema"" ñ".que_jobs (LIKE public.que_jobs INCLUDING ALL)'
    )
    que2.conn.execute("""COMMENT ON TABLE "odd; ""schema"" ñ".que_jobs IS '7'""")
    hostile = "q'; DROP TABLE public.que_jobs; --"
    que2.conn.execute(
        'INSERT INTO "odd; ""schema"" ñ".que_jobs (queue, job_class, job_schema_version)'
        " VALUES (%s, 'Job', 2)",
        (hostile,),
    )
    found = read(que2.conn, [QueueSelector((hostile, "x'y"))], schema=schema)
    assert (found[hostile].ready, found["x'y"].ready) == (1, 0)
    assert que2.conn.execute("SELECT count(*) FROM public.que_jobs").fetchone() == (0,)
    description = detect(que2.conn, Options.model_validate({"schema": schema}))
    assert description is not None and "DB schema 7" in description


@pytest.mark.parametrize(
    ("fixture", "expected", "without_comment"),
    [
        ("que_1_0", "DB schema 4: que 1.x", "DB schema 4 by its columns"),
        ("que_1_3", "DB schema 5: que 1.x", "DB schema 5 by its columns"),
        ("que_2", "DB schema 7: que 2.x", "DB schema 6+ by its columns"),
    ],
)
def test_detect_reports_the_db_schema_version(
    pg_conn: psycopg.Connection[Any], fixture: str, expected: str, without_comment: str
) -> None:
    pg_conn.execute((FIXTURES / f"{fixture}.sql").read_text())
    assert detect(pg_conn, Options()) == f"table public.que_jobs ({expected})"
    pg_conn.execute("COMMENT ON TABLE que_jobs IS NULL")
    described = detect(pg_conn, Options())  # told apart by the columns alone
    assert described is not None and without_comment in described
    assert described.endswith(f"{expected[-7:]})")


def test_detect_finds_nothing_in_an_empty_database_or_elsewhere(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    assert detect(pg_conn, Options.model_validate({"schema": "no_such_schema"})) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "que_2.sql").read_text())
    assert detect(pg_conn, Options.model_validate({"schema": "elsewhere"})) is None


MINIMAL_COLUMNS = {
    "id": "bigserial",
    "queue": "text NOT NULL DEFAULT ''",
    "priority": "smallint NOT NULL DEFAULT 100",
    "run_at": "timestamptz NOT NULL DEFAULT now()",
    "job_class": "text NOT NULL DEFAULT 'Job'",
    "error_count": "integer NOT NULL DEFAULT 0",
    "finished_at": "timestamptz",
    "expired_at": "timestamptz",
}


def test_detect_needs_only_the_columns_it_reads(pg_conn: psycopg.Connection[Any]) -> None:
    assert set(MINIMAL_COLUMNS) == set(REQUIRED_COLUMNS)
    for missing in [None, *MINIMAL_COLUMNS]:
        pg_conn.execute("DROP TABLE IF EXISTS que_jobs")
        columns = ", ".join(f"{n} {t}" for n, t in MINIMAL_COLUMNS.items() if n != missing)
        pg_conn.execute(f"CREATE TABLE que_jobs ({columns})")
        described = detect(pg_conn, Options())
        if missing is None:  # exactly the columns it reads: found, and read
            assert (
                described
                == "table public.que_jobs (DB schema 4 by its columns, no version comment: que 1.x)"
            )
            pg_conn.execute("INSERT INTO que_jobs (run_at) VALUES (now() - interval '1 minute')")
            assert read(pg_conn)[""].ready == 1
        else:
            assert described is None, missing


def test_a_job_due_this_very_instant_is_ready_and_aged_zero(que2: Que) -> None:
    # One transaction: now() does not move, so run_at can equal the reader's now(), the instant
    # que's poll (run_at <= now()) starts taking the job.
    with que2.conn.transaction():
        que2.add(run_in=0)
        q = read(que2.conn)["default"]
    assert (q.ready, q.oldest_ready_age_seconds) == (1, 0)


def test_a_schema_6_comment_alone_says_version_2_jobs(que2: Que) -> None:
    # que records its schema in the comment; a default added to the column by hand later does
    # not make the table a schema-5 one again.
    que2.conn.execute("ALTER TABLE que_jobs ALTER COLUMN job_schema_version SET DEFAULT 2")
    que2.conn.execute("COMMENT ON TABLE que_jobs IS '6'")
    que2.add(count=2, job_schema_version=2)
    que2.add(count=5, job_schema_version=1)
    assert read(que2.conn)["default"].ready == 2


def test_a_not_null_column_that_kept_its_default_is_still_schema_5(
    pg_conn: psycopg.Connection[Any],
) -> None:
    # Only que 2.x drops the default: a schema-5 column made NOT NULL by hand, its comment lost
    # in a schema dump, still holds the version-1 jobs its 1.x workers run.
    pg_conn.execute((FIXTURES / "que_1_3.sql").read_text())
    pg_conn.execute("ALTER TABLE que_jobs ALTER COLUMN job_schema_version SET NOT NULL")
    pg_conn.execute("COMMENT ON TABLE que_jobs IS NULL")
    Que(pg_conn, 1).add(count=2)
    assert read(pg_conn)["default"].ready == 2


def test_the_count_reads_about_cap_rows_however_many_are_due(que2: Que) -> None:
    # The cap bounds the read's cost, not only the number reported: 1000 due jobs over 20
    # priorities, and a cap of 10, must mean about 10 jobs read, not 10 of each priority.
    for priority in range(20):
        que2.add(priority=priority, count=50)
    rows, found = rows_taken(que2.conn, "que_jobs", lambda: read(que2.conn, cap=10))
    q = found["default"]
    assert (q.ready, q.ready_capped) == (10, True)
    assert rows < 150


@pytest.mark.parametrize(("fixture", "schema"), [("que_1_0", 4), ("que_1_3", 5)])
def test_a_que_1_table_is_read_as_such_beside_a_que_2_install_in_another_schema(
    pg_conn: psycopg.Connection[Any], fixture: str, schema: int
) -> None:
    # The catalog lookups name the one table: the other install's comment, columns and table
    # must not leak into this one's layout or its inferred job_schema_version.
    pg_conn.execute("CREATE SCHEMA other")
    pg_conn.execute("SET search_path TO other")
    pg_conn.execute((FIXTURES / "que_2.sql").read_text())
    pg_conn.execute("SET search_path TO public")
    pg_conn.execute((FIXTURES / f"{fixture}.sql").read_text())
    Que(pg_conn, LAYOUTS[fixture]).add(count=2)
    assert detect(pg_conn, Options()) == f"table public.que_jobs (DB schema {schema}: que 1.x)"
    assert read(pg_conn)["default"].ready == 2
