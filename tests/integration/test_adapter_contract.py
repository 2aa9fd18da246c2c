"""What every queue adapter promises, checked once over all of them (issues 10 and 11).

- Discovery has no silent cap: a wildcard finds the queue past the 500th name and its work.
- The count stops at the cap and says so.
- The session TimeZone does not change counts or ages.
- Ages are measured on the database's own clock: ``db_now - oldest_eligible_at``, and db_now
  lies between two ``now()`` read around the call (never the test machine's clock).
- One row whose time Python cannot hold (``-infinity``, a BC date) does not blind the reader:
  every other queue is still counted.

Each library is a ``Kit``: how to set its tables up and how to add due and future jobs to a
queue, through the per-library test modules' own helpers (which write rows as the library
does). So is each schema version or index layout the adapter reads another way, so that the
per-library modules need no copies of these checks. Library-specific states stay in those
modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg
import pytest
import test_adapter_chancy as chancy_t
import test_adapter_django_q2 as django_q2_t
import test_adapter_django_tasks as django_tasks_t
import test_adapter_good_job as good_job_t
import test_adapter_graphile_worker as graphile_t
import test_adapter_jobrunr as jobrunr_t
import test_adapter_laravel as laravel_t
import test_adapter_oban as oban_t
import test_adapter_pgboss as pgboss_t
import test_adapter_pgmq as pgmq_t
import test_adapter_pgqueuer as pgqueuer_t
import test_adapter_procrastinate as procrastinate_t
import test_adapter_que as que_t
import test_adapter_queue_classic as queue_classic_t
import test_adapter_river as river_t
import test_adapter_solid_queue as solid_queue_t
import test_adapter_symfony_messenger as symfony_t
import test_delayed_job as delayed_job_t
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment
from pgqueuer.domain.settings import DBSettings
from procrastinate.schema import SchemaManager

from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.models import QueueReading, QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
EVERY = [QueueSelector(None)]
Conn = psycopg.Connection[Any]
HOUR = 3600.0


@dataclass(frozen=True)
class Kit:
    adapter: str
    setup: Callable[[Conn, str], None]
    # add ``count`` jobs to ``queue`` that became runnable ``ago`` seconds ago (DB clock)
    due: Callable[[Conn, str, int, float], None]
    # add one job to ``queue`` that is runnable only in an hour
    future: Callable[[Conn, str], None]
    # statement giving every job of queue 'bad' the time %(at)s; None: not storable there
    bad: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    # the queue name a library reports for everything (jobrunr has no queues)
    only_queue: str | None = None
    # add a queue with nothing ready, many times over; None: ``future``
    quiet: Callable[[Conn, str], None] | None = None


def _sql(conn: Conn, text: str) -> None:
    conn.execute(text)


def _sql_params(conn: Conn, text: str, *params: object) -> None:
    conn.execute(text, params)


def _schema(name: str) -> Callable[[Conn, str], None]:
    return lambda conn, _url: _sql(conn, (SCHEMAS / name).read_text())


def _delayed_job_indexed(conn: Conn, _url: str) -> None:
    conn.execute((SCHEMAS / "delayed_job.sql").read_text())
    conn.execute(delayed_job_t.RECOMMENDED_INDEX)


def _chancy(conn: Conn, url: str) -> None:
    chancy_t.migrate(url)
    conn.execute("SET jit = off")


def _indexed(kit: Kit) -> Kit:
    """The kit's layout with the indexes its adapter recommends, which it then reads another
    way (per-queue probes instead of one pass)."""
    module = catalog.load(kit.adapter)
    # not part of AdapterModule: only the adapters that recommend indexes have it
    recommended: Callable[[Any], tuple[str, ...]]
    recommended = module.recommended_indexes  # type: ignore[attr-defined]

    def with_indexes(conn: Conn, url: str) -> None:
        kit.setup(conn, url)
        for statement in recommended(module.Options.model_validate(dict(kit.options))):
            conn.execute(statement)

    return replace(kit, setup=with_indexes)


def _graphile(version: str, bad: str) -> Kit:
    return Kit(
        "graphile_worker",
        lambda conn, _url: graphile_t.load(conn, version),
        lambda c, q, n, ago: graphile_t.Worker(c, version).add(queue=q, run_in=-ago, count=n),
        lambda c, q: graphile_t.Worker(c, version).add(queue=q, run_in=HOUR),
        bad,
    )


def _pgboss(version: str, bad: str) -> Kit:
    return Kit(
        "pgboss",
        lambda conn, _url: pgboss_t.load(conn, version),
        lambda c, q, n, ago: pgboss_t.Boss(c, version).add(queue=q, start_in=-ago, count=n),
        lambda c, q: pgboss_t.Boss(c, version).add(queue=q, state="created", start_in=HOUR),
        "UPDATE pgboss.job SET " + bad + " WHERE name = 'bad'",
    )


def _que(layout: str) -> Kit:
    version = que_t.LAYOUTS[layout]
    return Kit(
        "que",
        _schema(f"{layout}.sql"),
        lambda c, q, n, ago: _ignore(que_t.Que(c, version).add(queue=q, run_in=-ago, count=n)),
        lambda c, q: _ignore(que_t.Que(c, version).add(queue=q, run_in=HOUR)),
        "UPDATE que_jobs SET run_at = %(at)s WHERE queue = 'bad'",
    )


def _pgqueuer(conn: Conn, _url: str) -> None:
    conn.execute(QueryBuilderEnvironment(DBSettings()).build_install_query())


def _procrastinate(conn: Conn, _url: str) -> None:
    conn.execute(SchemaManager.get_schema())


LARAVEL = Kit(
    "laravel",
    _schema("laravel.sql"),
    lambda c, q, n, ago: laravel_t.add(c, queue=q, run_in=-round(ago), count=n),
    lambda c, q: laravel_t.add(c, queue=q, run_in=round(HOUR)),
    None,  # Unix-seconds integers: every value is a representable time
)

SYMFONY_7_4 = Kit(
    "symfony_messenger",
    _schema("symfony_messenger_7_4.sql"),
    lambda c, q, n, ago: symfony_t.add(c, queue=q, run_in=-ago, count=n),
    lambda c, q: symfony_t.add(c, queue=q, run_in=HOUR),
    "UPDATE messenger_messages SET available_at = %(at)s, created_at = %(at)s"
    " WHERE queue_name = 'bad'",
)
# Symfony 5.4 to 7.3.8: one-column indexes, read in one pass unless the recommended ones are added
SYMFONY_5_4 = replace(SYMFONY_7_4, setup=_schema("symfony_messenger_5_4.sql"))

DJANGO_TASKS = Kit(
    "django_tasks",
    _schema("django_tasks_db.sql"),
    lambda c, q, n, ago: django_tasks_t.add(c, queue=q, enqueued_ago=ago, count=n),
    lambda c, q: django_tasks_t.add(c, queue=q, run_in=HOUR),
    "UPDATE django_tasks_database_dbtaskresult SET enqueued_at = %(at)s,"
    " run_after = %(at)s WHERE queue_name = 'bad'",
)
# django-tasks 0.8 (before django-tasks-db): the same table, SUCCEEDED for SUCCESSFUL
DJANGO_TASKS_0_8 = replace(DJANGO_TASKS, setup=_schema("django_tasks_0_8.sql"))

DJANGO_Q2 = Kit(
    "django_q2",
    _schema("django_q2.sql"),
    lambda c, q, n, ago: django_q2_t.add(c, -ago, key=q, count=n),
    lambda c, q: django_q2_t.add(c, HOUR, key=q),
    "UPDATE django_q_ormq SET lock = %(at)s WHERE key = 'bad'",
)

JOBRUNR = Kit(
    "jobrunr",
    _schema("jobrunr.sql"),
    lambda c, _q, n, ago: jobrunr_t.add(c, "ENQUEUED", updated_ago=ago, count=n),
    lambda c, _q: jobrunr_t.add(c, "SCHEDULED", scheduled_in=HOUR),
    None,
    only_queue="default",
)


KITS = [
    Kit(
        "delayed_job",
        _schema("delayed_job.sql"),
        lambda c, q, n, ago: delayed_job_t.add(c, queue=q, run_in=-ago, count=n),
        lambda c, q: delayed_job_t.add(c, queue=q, run_in=HOUR),
        "UPDATE delayed_jobs SET run_at = %(at)s WHERE queue = 'bad'",
    ),
    Kit(
        "delayed_job",
        _delayed_job_indexed,
        lambda c, q, n, ago: delayed_job_t.add(c, queue=q, run_in=-ago, count=n),
        lambda c, q: delayed_job_t.add(c, queue=q, run_in=HOUR),
        "UPDATE delayed_jobs SET run_at = %(at)s WHERE queue = 'bad'",
    ),
    Kit(
        "good_job",
        _schema("good_job.sql"),
        lambda c, q, n, ago: _ignore(good_job_t.add(c, queue=q, scheduled_in=-ago, count=n)),
        lambda c, q: _ignore(good_job_t.add(c, queue=q, scheduled_in=HOUR)),
        "UPDATE good_jobs SET scheduled_at = %(at)s, created_at = %(at)s WHERE queue_name = 'bad'",
    ),
    Kit(  # v3: naive UTC columns, and due jobs are immediate ones (scheduled_at NULL)
        "good_job",
        _schema("good_job_v3.sql"),
        lambda c, q, n, ago: _ignore(
            good_job_t.add(c, queue=q, scheduled_in=None, created_ago=ago, count=n)
        ),
        lambda c, q: _ignore(good_job_t.add(c, queue=q, scheduled_in=HOUR)),
        "UPDATE good_jobs SET scheduled_at = %(at)s, created_at = %(at)s WHERE queue_name = 'bad'",
    ),
    Kit(
        "chancy",
        _chancy,
        lambda c, q, n, ago: _ignore(chancy_t.push(c, queue=q, ago=ago, count=n)),
        lambda c, q: _ignore(chancy_t.push(c, queue=q, ago=0, scheduled_in=HOUR)),
        "UPDATE chancy_jobs SET scheduled_at = %(at)s, created_at = %(at)s WHERE queue = 'bad'",
    ),
    _graphile(
        "0_17",
        "UPDATE graphile_worker._private_jobs SET run_at = %(at)s, created_at = %(at)s"
        " WHERE job_queue_id = (SELECT id FROM graphile_worker._private_job_queues"
        " WHERE queue_name = 'bad')",
    ),
    _graphile(
        "0_15",
        "UPDATE graphile_worker.jobs SET run_at = %(at)s, created_at = %(at)s"
        " WHERE job_queue_id = (SELECT id FROM graphile_worker.job_queues"
        " WHERE queue_name = 'bad')",
    ),
    _graphile(  # v0.13: the queue name is on the job row
        "0_13",
        "UPDATE graphile_worker.jobs SET run_at = %(at)s, created_at = %(at)s"
        " WHERE queue_name = 'bad'",
    ),
    Kit(
        "oban",
        lambda conn, _url: oban_t.load(conn, 14),
        lambda c, q, n, ago: oban_t.add(c, queue=q, scheduled_in=-ago, count=n),
        lambda c, q: oban_t.add(c, queue=q, state="scheduled", scheduled_in=HOUR),
        "UPDATE oban_jobs SET scheduled_at = %(at)s, inserted_at = %(at)s WHERE queue = 'bad'",
    ),
    _pgboss("12", "start_after = %(at)s, created_on = %(at)s"),
    _pgboss("11", "start_after = %(at)s, created_on = %(at)s"),
    _pgboss("10", "start_after = %(at)s, created_on = %(at)s"),
    _pgboss("9", "startafter = %(at)s, createdon = %(at)s"),
    Kit(
        "pgmq",
        _schema("pgmq.sql"),
        lambda c, q, n, ago: pgmq_t.send(c, q, vt_in=-ago, count=n),
        lambda c, q: pgmq_t.send(c, q, vt_in=HOUR, enqueued_in=0),
        "UPDATE pgmq.q_bad SET vt = %(at)s, enqueued_at = %(at)s",
        # registered without its table (pgmq reads it as empty): 600 queues of two tables and
        # an index each would only make this case slow
        quiet=lambda c, q: _sql_params(
            c,
            "INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)"
            " VALUES (%s, false, false)",
            q,
        ),
    ),
    Kit(
        "pgqueuer",
        _pgqueuer,
        lambda c, q, n, ago: _ignore(pgqueuer_t.enqueue(c, q, ago=ago, count=n)),
        lambda c, q: _ignore(pgqueuer_t.enqueue(c, q, delay=HOUR)),
        "UPDATE pgqueuer SET execute_after = %(at)s, created = %(at)s, updated = %(at)s"
        " WHERE entrypoint = 'bad'",
    ),
    Kit(
        "procrastinate",
        _procrastinate,
        lambda c, q, n, ago: _ignore(procrastinate_t.defer(c, q, ago=ago, count=n)),
        lambda c, q: _ignore(procrastinate_t.defer(c, q, scheduled_in=HOUR)),
        "UPDATE procrastinate_events SET at = %(at)s WHERE job_id IN"
        " (SELECT id FROM procrastinate_jobs WHERE queue_name = 'bad')",
    ),
    _que("que_2"),
    _que("que_1_3"),
    _que("que_1_0"),
    Kit(
        "queue_classic",
        _schema("queue_classic.sql"),
        lambda c, q, n, ago: _ignore(queue_classic_t.add(c, queue=q, run_in=-ago, count=n)),
        lambda c, q: _ignore(queue_classic_t.add(c, queue=q, run_in=HOUR)),
        "UPDATE queue_classic_jobs SET scheduled_at = %(at)s, created_at = %(at)s"
        " WHERE q_name = 'bad'",
    ),
    Kit(
        "river",
        _schema("river_7.sql"),
        lambda c, q, n, ago: river_t.add(c, queue=q, scheduled_in=-ago, count=n),
        lambda c, q: river_t.add(c, queue=q, state="scheduled", scheduled_in=HOUR),
        "UPDATE river_job SET scheduled_at = %(at)s, created_at = %(at)s WHERE queue = 'bad'",
    ),
    Kit(
        "solid_queue",
        _schema("solid_queue.sql"),
        lambda c, q, n, ago: _ignore(solid_queue_t.add(c, queue=q, created_ago=ago, count=n)),
        lambda c, q: _ignore(
            solid_queue_t.add(c, "scheduled", queue=q, created_ago=0, scheduled_in=HOUR)
        ),
        "UPDATE solid_queue_ready_executions SET created_at = %(at)s WHERE queue_name = 'bad';"
        " UPDATE solid_queue_jobs SET created_at = %(at)s, scheduled_at = %(at)s"
        " WHERE queue_name = 'bad'",
    ),
    LARAVEL,
    _indexed(LARAVEL),
    SYMFONY_7_4,
    SYMFONY_5_4,
    _indexed(SYMFONY_5_4),
    DJANGO_TASKS,
    _indexed(DJANGO_TASKS),
    DJANGO_TASKS_0_8,
    _indexed(DJANGO_TASKS_0_8),
    DJANGO_Q2,
    _indexed(DJANGO_Q2),
    JOBRUNR,
    _indexed(JOBRUNR),
]
IDS = [
    "delayed_job",
    "delayed_job+index",
    "good_job",
    "good_job_v3",
    "chancy",
    "graphile_worker",
    "graphile_worker_0_15",
    "graphile_worker_0_13",
    "oban",
    "pgboss_12",
    "pgboss_11",
    "pgboss_10",
    "pgboss_9",
    "pgmq",
    "pgqueuer",
    "procrastinate",
    "que",
    "que_1_3",
    "que_1_0",
    "queue_classic",
    "river",
    "solid_queue",
    "laravel",
    "laravel+index",
    "symfony_messenger",
    "symfony_messenger_5_4",
    "symfony_messenger_5_4+index",
    "django_tasks",
    "django_tasks+index",
    "django_tasks_0_8",
    "django_tasks_0_8+index",
    "django_q2",
    "django_q2+index",
    "jobrunr",
    "jobrunr+index",
]
MULTI_QUEUE = [k for k in KITS if k.only_queue is None]
MULTI_IDS = [i for i, k in zip(IDS, KITS, strict=True) if k.only_queue is None]


def _ignore(_value: object) -> None:
    return None


@pytest.fixture
def kit(request: pytest.FixtureRequest, pg_conn: Conn, db_url: str) -> Kit:
    chosen: Kit = request.param
    chosen.setup(pg_conn, db_url)
    return chosen


def read(conn: Conn, kit: Kit, cap: int = 1000) -> QueueReading:
    module = catalog.load(kit.adapter)
    return module.Reader(module.Options.model_validate(dict(kit.options))).read(conn, EVERY, cap)


def by_name(reading: QueueReading) -> dict[str, QueueStats]:
    names = [q.queue for q in reading.queues]
    assert len(names) == len(set(names)), f"a queue reported twice: {names}"
    return {q.queue: q for q in reading.queues}


def db_clock(conn: Conn) -> datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def test_every_adapter_is_in_the_contract() -> None:
    assert {k.adapter for k in KITS} == set(catalog.DETECTABLE)


@pytest.mark.parametrize("kit", MULTI_QUEUE, ids=MULTI_IDS, indirect=True)
def test_discovery_has_no_silent_cap(kit: Kit, pg_conn: Conn) -> None:
    """Issue 10: 600 queues with only future work, then 100 ready jobs in ``zzz``, sorted last.
    A discovery that stopped at 500 names reported ready=0 and the daemon scaled down."""
    quiet = kit.quiet or kit.future
    names = {f"q{i:03d}" for i in range(600)}
    for name in sorted(names):
        quiet(pg_conn, name)
    kit.due(pg_conn, "zzz", 100, 60)
    found = by_name(read(pg_conn, kit))
    assert found["zzz"].ready == 100
    assert names <= found.keys()
    assert {q.ready for n, q in found.items() if n != "zzz"} == {0}


@pytest.mark.parametrize("kit", KITS, ids=IDS, indirect=True)
def test_the_count_stops_at_the_cap_and_says_so(kit: Kit, pg_conn: Conn) -> None:
    queue = kit.only_queue or "default"
    kit.due(pg_conn, queue, 40, 60)
    q = by_name(read(pg_conn, kit, cap=31))[queue]
    assert (q.ready, q.ready_capped) == (31, True)
    q = by_name(read(pg_conn, kit, cap=41))[queue]
    assert (q.ready, q.ready_capped) == (40, False)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "America/St_Johns", "Asia/Kathmandu"])
@pytest.mark.parametrize("kit", KITS, ids=IDS, indirect=True)
def test_the_session_time_zone_changes_nothing(kit: Kit, pg_conn: Conn, zone: str) -> None:
    queue = kit.only_queue or "default"
    kit.due(pg_conn, queue, 2, 600)
    # a library without queues puts it in its one queue, where it must not count either: a clock
    # read in the session zone makes it due east of UTC (jobrunr's copy of this test caught that)
    kit.future(pg_conn, "later")
    pg_conn.execute("SET TIME ZONE 'UTC'")
    in_utc = by_name(read(pg_conn, kit))
    pg_conn.execute(f"SET TIME ZONE '{zone}'")
    elsewhere = by_name(read(pg_conn, kit))
    assert {n: (q.ready, q.running) for n, q in elsewhere.items()} == {
        n: (q.ready, q.running) for n, q in in_utc.items()
    }
    assert elsewhere[queue].ready == 2
    if kit.only_queue is None:
        assert elsewhere["later"].ready == 0
    age = elsewhere[queue].oldest_ready_age_seconds
    assert age is not None and 599 <= age < 620
    assert elsewhere[queue].oldest_eligible_at == in_utc[queue].oldest_eligible_at


@pytest.mark.parametrize("kit", KITS, ids=IDS, indirect=True)
def test_ages_are_measured_on_the_database_clock(kit: Kit, pg_conn: Conn) -> None:
    queue = kit.only_queue or "default"
    kit.due(pg_conn, queue, 1, 300)
    before = db_clock(pg_conn)
    reading = read(pg_conn, kit)
    after = db_clock(pg_conn)
    assert before <= reading.db_now <= after
    q = by_name(reading)[queue]
    assert q.oldest_eligible_at is not None and q.oldest_ready_age_seconds is not None
    measured = (reading.db_now - q.oldest_eligible_at).total_seconds()
    assert abs(measured - q.oldest_ready_age_seconds) < 0.01
    assert 299 <= q.oldest_ready_age_seconds < 320


BAD_TIMES = ["-infinity", "0044-03-15 00:00:00 BC"]


@pytest.mark.parametrize("at", BAD_TIMES)
@pytest.mark.parametrize(
    "kit",
    [k for k in KITS if k.bad is not None],
    ids=[i for i, k in zip(IDS, KITS, strict=True) if k.bad is not None],
    indirect=True,
)
def test_a_row_with_an_unholdable_time_does_not_blind_the_reader(
    kit: Kit, pg_conn: Conn, at: str
) -> None:
    """Issue 10: such a row made every read fail, for every queue. The other queues are counted
    and aged; what the bad row's own queue reports is each library's choice (its module says)."""
    kit.due(pg_conn, "fine", 3, 60)
    kit.due(pg_conn, "bad", 1, 60)
    assert kit.bad is not None
    for statement in kit.bad.split(";"):
        pg_conn.execute(statement, {"at": at})
    found = by_name(read(pg_conn, kit))
    assert found["fine"].ready == 3
    age = found["fine"].oldest_ready_age_seconds
    assert age is not None and 59 <= age < 80
