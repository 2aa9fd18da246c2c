"""django_tasks adapter on a real PostgreSQL: django-tasks 0.8-0.11's and django-tasks-db's
layouts, one case per task state, the cap, the sentinel, and tasks enqueued, claimed and run by
django-tasks-db itself (Django 5.2, from the dev extra)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import django_support
import psycopg
import pytest
from adapter_support import check_three_queues_read_apart, database_now, limits_stopped_at

from dynomatic_daemon.adapters import django_tasks
from dynomatic_daemon.adapters.django_tasks import Options, Reader, detect, recommended_indexes
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
EVERY = [QueueSelector(None)]
LAYOUTS = {"django_tasks_0_8.sql": "SUCCEEDED", "django_tasks_db.sql": "SUCCESSFUL"}
SENTINEL = "9999-01-01 00:00:00+00"

INSERT = """
INSERT INTO django_tasks_database_dbtaskresult
    (id, status, args_kwargs, priority, task_path, queue_name, backend_name, run_after,
     enqueued_at, exception_class_path, traceback, worker_ids)
SELECT gen_random_uuid(), %(status)s, '{"args": [], "kwargs": {}}', %(priority)s, 'app.tasks.t',
       %(queue)s, %(backend)s,
       COALESCE(now() + make_interval(secs => %(run_in)s), %(sentinel)s::timestamptz),
       now() - make_interval(secs => %(enqueued_ago)s), '', '', '[]'
FROM generate_series(1, %(count)s)
"""


@pytest.fixture(
    params=[(layout, index) for layout in sorted(LAYOUTS) for index in (False, True)],
    ids=lambda p: f"{p[0]}{' + recommended index' if p[1] else ''}",
)
def tasks(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Any:
    """Each layout, read in one pass (stock) or by per-queue probes (recommended index)."""
    layout, index = request.param
    pg_conn.execute((SCHEMAS / layout).read_text())
    if index:
        pg_conn.execute(recommended_indexes(Options())[0])
    pg_conn.finished = LAYOUTS[layout]  # type: ignore[attr-defined]
    return pg_conn


def add(
    conn: psycopg.Connection[Any],
    *,
    status: str = "READY",
    queue: str = "default",
    run_in: float | None = None,
    enqueued_ago: float = 0,
    backend: str = "default",
    priority: int = 0,
    count: int = 1,
    sentinel: str = SENTINEL,
) -> None:
    """Rows as the backend writes them; no ``run_in``: enqueued without run_after."""
    params = {
        "status": status,
        "queue": queue,
        "run_in": run_in,
        "enqueued_ago": enqueued_ago,
        "backend": backend,
        "priority": priority,
        "count": count,
        "sentinel": sentinel,
    }
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


def test_empty_table_reports_no_queues_but_the_database_clock(tasks: Any) -> None:
    reading = Reader(Options()).read(tasks, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(tasks) - reading.db_now).total_seconds() < 60


def test_a_task_without_run_after_is_ready_from_enqueued_at(tasks: Any) -> None:
    add(tasks, enqueued_ago=120, priority=-100)
    add(tasks, priority=100)
    q = read(tasks)["default"]
    assert (q.ready, q.running) == (2, 0)
    assert 119 <= age(q) < 130


def test_a_task_whose_run_after_passed_is_ready_from_the_later_of_both_times(tasks: Any) -> None:
    add(tasks, run_in=-60, enqueued_ago=3600)  # scheduled at enqueue for 59 minutes later
    q = read(tasks)["default"]
    assert q.ready == 1 and 59 <= age(q) < 70
    add(tasks, run_in=-7200, enqueued_ago=300)  # enqueued with a run_after already past
    q = read(tasks)["default"]
    assert q.ready == 2 and 299 <= age(q) < 310


def test_a_task_whose_run_after_is_ahead_is_not_ready(tasks: Any) -> None:
    add(tasks, run_in=300)
    assert read(tasks)["default"] == QueueStats("default", 0, False, None, None, 0)


def test_running_and_finished_tasks(tasks: Any) -> None:
    add(tasks, status="RUNNING", count=2)
    add(tasks, status=tasks.finished, enqueued_ago=900)
    add(tasks, status="FAILED", enqueued_ago=900)
    add(tasks, enqueued_ago=30)
    q = read(tasks)["default"]
    assert (q.ready, q.running) == (1, 2)
    assert 29 <= age(q) < 40


def test_the_count_stops_at_the_cap_across_both_ready_kinds(tasks: Any) -> None:
    add(tasks, count=40)
    add(tasks, run_in=-5, count=5)
    q = read(tasks, cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = read(tasks, cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_the_sentinel_written_in_another_time_zone_still_means_now(tasks: Any) -> None:
    # USE_TZ = False with TIME_ZONE = "America/New_York" or "Asia/Tashkent": 9999-01-01 local
    add(tasks, sentinel="9999-01-01 00:00:00-05", enqueued_ago=10)
    add(tasks, queue="east", sentinel="9999-01-01 00:00:00+05", enqueued_ago=5)
    add(tasks, queue="never", sentinel="infinity")  # not the sentinel: no worker takes it
    found = read(tasks)
    assert found["default"].ready == 1 and 9 <= age(found["default"]) < 20
    assert found["east"].ready == 1 and 4 <= age(found["east"]) < 15
    assert found["never"].ready == 0


def test_backend_option_counts_only_that_backends_tasks(tasks: Any) -> None:
    add(tasks, count=2)
    add(tasks, backend="priority", count=3)
    add(tasks, backend="priority", status="RUNNING")
    add(tasks, status="RUNNING", count=2)
    assert (read(tasks)["default"].ready, read(tasks)["default"].running) == (5, 3)
    q = read(tasks, backend="priority")["default"]
    assert (q.ready, q.running) == (3, 1)


def test_queues_are_counted_apart_found_and_filtered(tasks: Any) -> None:
    add(tasks, queue="emails", count=3)
    add(tasks, queue="reports", run_in=60)
    add(tasks, queue="busy", status="RUNNING")
    assert {k: (v.ready, v.running) for k, v in read(tasks).items()} == {
        "busy": (0, 1),
        "emails": (3, 0),
        "reports": (0, 0),
    }
    assert read(tasks, [QueueSelector(("e*",))])["emails"].ready == 3
    empty = read(tasks, [QueueSelector(("nothing",))])
    assert empty == {"nothing": QueueStats("nothing", 0, False, None, None, 0)}


def test_a_minus_infinity_run_after_does_not_break_the_read(tasks: Any) -> None:
    tasks.execute(
        "INSERT INTO django_tasks_database_dbtaskresult (id, status, args_kwargs, priority,"
        " task_path, queue_name, backend_name, run_after, enqueued_at, exception_class_path,"
        " traceback, worker_ids) VALUES (gen_random_uuid(), 'READY', '{}', 0, 't', 'default',"
        " 'default', '-infinity', '-infinity', '', '', '[]')"
    )
    q = read(tasks)["default"]
    assert q.ready == 1 and q.oldest_eligible_at == datetime(1970, 1, 1, tzinfo=UTC)


def test_the_recommended_index_gives_the_same_answers(tasks: Any) -> None:
    add(tasks, enqueued_ago=50, count=3)
    add(tasks, run_in=-30, enqueued_ago=90)
    add(tasks, status="RUNNING", count=2)
    add(tasks, run_in=500)
    add(tasks, status=tasks.finished, count=4)
    before = read(tasks)
    tasks.execute(recommended_indexes(Options())[0])
    after = read(tasks)
    assert {k: (v.ready, v.running) for k, v in after.items()} == {"default": (4, 2)}
    assert {k: (v.ready, v.running) for k, v in before.items()} == {"default": (4, 2)}
    assert abs(age(after["default"]) - age(before["default"])) < 5


def test_detect_tells_the_layouts_apart(tasks: Any) -> None:
    described = detect(tasks, Options())
    assert described is not None
    expected = "django-tasks-db" if tasks.finished == "SUCCESSFUL" else "django-tasks 0.8-0.11"
    assert f"({expected} layout" in described
    assert detect(tasks, Options.model_validate({"schema": "elsewhere"})) is None


def test_detect_ignores_the_pre_0_8_layout(pg_conn: psycopg.Connection[Any]) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((SCHEMAS / "django_tasks_0_8.sql").read_text())
    pg_conn.execute(
        "ALTER TABLE django_tasks_database_dbtaskresult ALTER COLUMN run_after DROP NOT NULL"
    )
    assert detect(pg_conn, Options()) is None


def test_with_the_index_each_ready_count_stops_at_the_cap(
    pg_conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_conn.execute((SCHEMAS / "django_tasks_db.sql").read_text())
    pg_conn.execute(recommended_indexes(Options())[0])
    add(pg_conn, run_in=-60, count=40)
    add(pg_conn, enqueued_ago=60, count=40)
    # run_after passed; sentinel
    assert limits_stopped_at(pg_conn, monkeypatch, django_tasks, 10) == 2


def test_each_queue_reads_only_its_own_tasks_and_the_oldest_by_its_eligible_time(
    tasks: Any,
) -> None:
    # "a": due tasks whose run_after order is not their eligible order (eligible 200, 400, 300
    # and 10 s ago), one without run_after enqueued 100 s ago, and one of each other state
    add(tasks, queue="a", run_in=-600, enqueued_ago=200)
    add(tasks, queue="a", run_in=-400, enqueued_ago=500)  # the oldest of "a"
    add(tasks, queue="a", run_in=-300, enqueued_ago=1000)
    add(tasks, queue="a", run_in=-10, enqueued_ago=900)
    add(tasks, queue="a", enqueued_ago=100)
    add(tasks, queue="a", status="RUNNING", enqueued_ago=5000)
    add(tasks, queue="a", status=tasks.finished, run_in=-9000, enqueued_ago=9000)
    add(tasks, queue="a", run_in=600, enqueued_ago=8000)
    # "b": one task without run_after, one running
    add(tasks, queue="b", enqueued_ago=50)
    add(tasks, queue="b", status="RUNNING", run_in=-7000, enqueued_ago=7000)
    # "c": nothing ready, though its tasks are older than any other queue's
    add(tasks, queue="c", status="RUNNING", run_in=-20000, enqueued_ago=20000)
    add(tasks, queue="c", status="FAILED", enqueued_ago=20000)
    add(tasks, queue="c", run_in=900, enqueued_ago=20000)
    check_three_queues_read_apart(tasks, django_tasks, a=5)


def test_a_task_due_exactly_now_is_ready(tasks: Any) -> None:
    """Inside one transaction now() stands still, so run_after can be exactly now, which the
    worker's ``run_after <= now`` takes."""
    with tasks.transaction():
        add(tasks, run_in=0, enqueued_ago=60)
        q = read(tasks)["default"]
        assert (q.ready, q.oldest_eligible_at) == (1, database_now(tasks))


def test_the_sentinel_is_any_time_on_the_last_two_days_of_9998_and_9999(tasks: Any) -> None:
    add(tasks, queue="first", sentinel="9998-12-31 00:00:00+00", enqueued_ago=20)
    add(tasks, queue="before", sentinel="9998-12-30 23:59:59.999999+00")
    add(tasks, queue="after", sentinel="9999-01-02 00:00:00+00")
    found = read(tasks)
    assert found["first"].ready == 1 and 19 <= age(found["first"]) < 30
    assert found["before"] == QueueStats("before", 0, False, None, None, 0)
    assert found["after"] == QueueStats("after", 0, False, None, None, 0)


# --- with django-tasks-db itself ---------------------------------------------------------------


@pytest.fixture
def django_db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    django_support.configure(db_url)
    django_support.migrate("django_tasks_database")
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            yield conn
    finally:
        django_support.close()


def test_the_librarys_own_migrations_make_the_table_our_schema_file_describes(
    django_db: psycopg.Connection[Any],
) -> None:
    columns = """SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', '
                                   ORDER BY column_name) FROM information_schema.columns
                 WHERE table_name = 'django_tasks_database_dbtaskresult'"""
    indexes = """SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes
                 WHERE tablename = 'django_tasks_database_dbtaskresult'"""
    theirs = (django_db.execute(columns).fetchone(), django_db.execute(indexes).fetchone())
    django_db.execute("CREATE SCHEMA ours")
    django_db.execute("SET search_path TO ours")
    django_db.execute((SCHEMAS / "django_tasks_db.sql").read_text())
    ours = (
        django_db.execute(columns.replace("WHERE", "WHERE table_schema = 'ours' AND")).fetchone(),
        django_db.execute(indexes.replace("WHERE", "WHERE schemaname = 'ours' AND")).fetchone(),
    )
    theirs_indexes = str(theirs[1]).replace("public.", "ours.")
    assert (ours[0], str(ours[1])) == (theirs[0], theirs_indexes)


def test_tasks_django_tasks_db_enqueues_claims_and_runs(
    django_db: psycopg.Connection[Any],
) -> None:
    import django_tasks_app  # noqa: PLC0415 - declaring the Task needs the settings
    from django.core.management import call_command  # noqa: PLC0415 - after configure()
    from django.db import transaction  # noqa: PLC0415
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415

    task = django_tasks_app.send_email
    for n in range(4):
        task.enqueue(f"user{n}@example.com")
    task.using(queue_name="emails").enqueue("ops@example.com")
    task.using(run_after=datetime.now(UTC) + timedelta(minutes=10)).enqueue("later@example.com")
    task.using(run_after=datetime.now(UTC) - timedelta(minutes=1)).enqueue("due@example.com")
    found = read(django_db)
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (5, 0),
        "emails": (1, 0),
    }
    # what db_worker does for each task it takes: lock a ready row and claim it
    with transaction.atomic():
        claimed = DBTaskResult.objects.ready().filter(queue_name="default").get_locked()
        assert claimed is not None
        claimed.claim("worker-1")
    assert (read(django_db)["default"].ready, read(django_db)["default"].running) == (4, 1)
    # a worker in batch mode runs every ready task of its queues, then stops
    call_command("db_worker", queue_name="default,emails", batch=True, interval=0, verbosity=0)
    found = read(django_db)
    # default: the claimed task, whose "worker" never finished it; emails holds only a finished
    # task, so the single pass of the stock indexes no longer finds it
    assert {k: (v.ready, v.running) for k, v in found.items()} == {"default": (0, 1)}
    emails = read(django_db, [QueueSelector(("emails",))])["emails"]
    assert (emails.ready, emails.running) == (0, 0)
    statuses = django_db.execute(
        "SELECT status, count(*) FROM django_tasks_database_dbtaskresult GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert statuses == [("READY", 1), ("RUNNING", 1), ("SUCCESSFUL", 5)]
