"""pg-boss adapter on a real PostgreSQL, for the v9, v10, v11 and v12.19+ layouts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from adapter_support import database_now, rows_taken
from psycopg import sql

from dynomatic_daemon.adapters.pgboss import Options, Reader, detect
from dynomatic_daemon.models import QueueSelector, QueueStats
from dynomatic_daemon.sandbox.schemas import SCHEMAS

pytestmark = pytest.mark.postgres
FIXTURES = SCHEMAS
EVERY = [QueueSelector(None)]
VERSIONS = ["9", "10", "11", "12"]


@dataclass
class Boss:
    conn: psycopg.Connection[Any]
    version: str
    schema: str = "pgboss"

    @property
    def v9(self) -> bool:
        return self.version == "9"

    def column(self, snake: str) -> sql.Identifier:
        return sql.Identifier(snake.replace("_", "") if self.v9 else snake)

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    @property
    def counts(self) -> bool:
        """Whether pg-boss keeps cached counts in its queue table (v11+)."""
        return self.version in ("11", "12")

    def ensure_queue(self, name: str) -> None:
        """What create_queue() makes: v11+ a queue row sharing job_common, v10 also a partition."""
        if self.v9:
            return
        if self.counts:
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, policy, retry_limit, retry_delay, retry_backoff,"
                    " expire_seconds, retention_seconds, deletion_seconds, partition, table_name)"
                    " VALUES (%s, 'standard', 2, 0, false, 900, 1209600, 604800, false,"
                    " 'job_common') ON CONFLICT DO NOTHING"
                ).format(self.table("queue")),
                [name],
            )
            return
        partition = "j" + hashlib.sha224(name.encode()).hexdigest()
        created = self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, policy, retry_limit, retry_delay, retry_backoff,"
                " expire_seconds, retention_minutes, partition_name)"
                " VALUES (%s, 'standard', 2, 0, false, 900, 20160, %s)"
                " ON CONFLICT DO NOTHING RETURNING name"
            ).format(self.table("queue")),
            [name, partition],
        ).fetchone()
        if created is None:
            return
        self.conn.execute(
            sql.SQL(
                "CREATE TABLE {p} (LIKE {job} INCLUDING DEFAULTS);"
                " ALTER TABLE {p} ADD PRIMARY KEY (name, id);"
                " CREATE INDEX {i5} ON {p} (name, start_after)"
                "  INCLUDE (priority, created_on, id) WHERE state < 'active';"
                " ALTER TABLE {p} ADD CONSTRAINT cjc CHECK (name = {name});"
                " ALTER TABLE {job} ATTACH PARTITION {p} FOR VALUES IN ({name})"
            ).format(
                p=self.table(partition),
                job=self.table("job"),
                i5=sql.Identifier(partition + "_i5"),
                name=sql.Literal(name),
            )
        )

    def monitor(self, ago: float = 0) -> None:
        """What pg-boss's monitor (cacheQueueStats) writes into the queue table (v11+)."""
        if self.counts:
            self.conn.execute(
                sql.SQL(
                    "UPDATE {queue} q SET monitor_on = now() - make_interval(secs => %s),"
                    " active_count = (SELECT count(*) FROM {job} j"
                    "  WHERE j.name = q.name AND j.state = 'active')"
                ).format(queue=self.table("queue"), job=self.table("job")),
                [ago],
            )

    def running(self, count: int) -> int | None:
        """What the adapter reports for ``count`` active jobs: v9/v10 keep no count."""
        return count if self.counts else None

    def add(
        self,
        *,
        queue: str = "default",
        state: str = "created",
        start_in: float = -60,
        created_in: float | None = None,
        priority: int = 0,
        blocked: bool = False,
        count: int = 1,
    ) -> None:
        """Insert jobs as send / fetch / fail leave them, times relative to the database clock.

        A job is created when it is sent (``created_in``, by default no later than its start).
        """
        self.ensure_queue(queue)
        created = min(start_in, 0) if created_in is None else created_in
        columns = [self.column(c) for c in ("start_after", "created_on", "started_on")]
        extra = [sql.Identifier("blocked")] if self.version == "12" else []
        query = sql.SQL(
            "INSERT INTO {job} (name, priority, state, {columns})"
            " SELECT %(queue)s, %(priority)s, CAST(%(state)s::text AS {job_state}),"
            "  now() + make_interval(secs => %(start_in)s),"
            "  now() + make_interval(secs => %(created)s),"
            "  CASE WHEN %(state)s::text NOT IN ('created', 'retry') THEN now() END"
            "  {values} FROM generate_series(1, %(count)s)"
        ).format(
            job=self.table("job"),
            job_state=self.table("job_state"),
            columns=sql.SQL(", ").join(columns + extra),
            values=sql.SQL(", %(blocked)s" if extra else ""),
        )
        params = {
            "queue": queue,
            "priority": priority,
            "state": state,
            "start_in": start_in,
            "created": created,
            "blocked": blocked,
            "count": count,
        }
        self.conn.execute(query, params)

    def read(
        self, selectors: list[QueueSelector] | None = None, cap: int = 100
    ) -> dict[str, QueueStats]:
        reading = Reader(Options(schema=self.schema)).read(self.conn, selectors or EVERY, cap)
        return {q.queue: q for q in reading.queues}


def load(conn: psycopg.Connection[Any], version: str, schema: str = "pgboss") -> None:
    text = (FIXTURES / f"pgboss_{version}.sql").read_text()
    if schema != "pgboss":
        quoted = sql.Identifier(schema).as_string(conn)
        text = text.replace("pgboss.", f"{quoted}.").replace("EXISTS pgboss;", f"EXISTS {quoted};")
    conn.execute(text)


@pytest.fixture(params=VERSIONS, ids=[f"v{v}" for v in VERSIONS])
def boss(request: pytest.FixtureRequest, pg_conn: psycopg.Connection[Any]) -> Boss:
    load(pg_conn, request.param)
    return Boss(pg_conn, request.param)


@pytest.fixture
def boss12(pg_conn: psycopg.Connection[Any]) -> Boss:
    load(pg_conn, "12")
    return Boss(pg_conn, "12")


def test_empty_tables_report_no_queues_but_the_database_clock(boss: Boss) -> None:
    reading = Reader(Options()).read(boss.conn, EVERY, 10)
    assert reading.queues == ()
    assert 0 <= (database_now(boss) - reading.db_now).total_seconds() < 60


def test_a_due_created_job_is_ready(boss: Boss) -> None:
    boss.add(start_in=-120)
    q = boss.read()["default"]
    assert (q.ready, q.ready_capped) == (1, False)
    assert q.oldest_ready_age_seconds is not None and 119 <= q.oldest_ready_age_seconds < 130


def test_a_deferred_job_is_not_ready(boss: Boss) -> None:
    boss.add(start_in=+300, created_in=0)
    q = boss.read()["default"]
    assert (q.ready, q.oldest_eligible_at, q.oldest_ready_age_seconds) == (0, None, None)


def test_a_due_retry_is_ready_from_its_new_start_time(boss: Boss) -> None:
    boss.add(state="retry", start_in=-30, created_in=-3600)
    q = boss.read()["default"]
    assert q.ready == 1
    assert q.oldest_ready_age_seconds is not None and 29 <= q.oldest_ready_age_seconds < 40


def test_a_retry_in_backoff_is_not_ready(boss: Boss) -> None:
    boss.add(state="retry", start_in=+60, created_in=-3600)
    q = boss.read()["default"]
    assert (q.ready, q.oldest_eligible_at, q.oldest_ready_age_seconds) == (0, None, None)


def test_an_active_job_is_running_not_ready(boss: Boss) -> None:
    boss.add(state="active", start_in=-30, count=2)
    boss.monitor()
    q = boss.read()["default"]
    assert (q.ready, q.running) == (0, boss.running(2))


def test_running_comes_from_the_monitor_s_counts_while_they_are_fresh(boss: Boss) -> None:
    boss.add(state="active", count=3)
    assert boss.read()["default"].running is None  # never monitored
    boss.monitor(ago=60)
    assert boss.read()["default"].running == boss.running(3)
    boss.monitor(ago=6 * 60)  # no pg-boss instance supervising any more
    assert boss.read()["default"].running is None


def test_at_the_clock_s_very_instant(boss: Boss) -> None:
    reader = Reader(Options())
    reader.read(boss.conn, EVERY, 10)  # learns the layout outside the transaction
    with boss.conn.transaction():  # now() does not move: the times below equal the clock
        boss.add(start_in=0)
        boss.add(state="active")
        boss.monitor(ago=300)  # exactly 5 minutes ago: still fresh
        q = reader.read(boss.conn, EVERY, 10).queues[0]
    # pg-boss <= 9 fetched start_after < now(), v10+ start_after <= now()
    assert q.ready == (0 if boss.v9 else 1)
    assert q.running == boss.running(1)


@pytest.mark.parametrize("state", ["completed", "cancelled", "failed"])
def test_finished_jobs_are_neither_ready_nor_running(boss: Boss, state: str) -> None:
    boss.add(state=state, start_in=-3600)
    boss.monitor()
    q = boss.read([QueueSelector(("default",))])["default"]
    assert (q.ready, q.running) == (0, boss.running(0))


def test_v9_expired_jobs_are_not_ready(pg_conn: psycopg.Connection[Any]) -> None:
    boss = Boss(pg_conn, "9")
    load(pg_conn, "9")
    boss.add(state="expired", start_in=-3600)
    boss.add(state="created", start_in=-60)
    assert boss.read([QueueSelector(("default",))])["default"].ready == 1


def test_v9_discovery_reads_a_row_per_queue_however_many_jobs_there_are(
    pg_conn: psycopg.Connection[Any],
) -> None:
    # v9 has no queue table: the walk of job_name takes one row per name, so 1000 finished jobs
    # in two queues cost a few rows, where reading the names of every job would cost 1000.
    boss = Boss(pg_conn, "9")
    load(pg_conn, "9")
    for queue in ("alpha", "beta"):
        boss.add(queue=queue, state="completed", start_in=-3600, count=500)
    reader = Reader(Options())
    reader.read(pg_conn, EVERY, 10)  # outside the measured transaction: it finds the v9 layout
    rows, reading = rows_taken(pg_conn, "pgboss.job", lambda: reader.read(pg_conn, EVERY, 10))
    assert rows < 50
    assert [q.queue for q in reading.queues] == ["alpha", "beta"]


def test_a_job_blocked_by_its_dependencies_is_not_ready(boss12: Boss) -> None:
    boss12.add(blocked=True, count=3)
    boss12.add(blocked=False)
    assert boss12.read()["default"].ready == 1


def test_a_job_sent_with_a_past_start_is_eligible_from_when_it_was_sent(boss: Boss) -> None:
    boss.add(start_in=-7200, created_in=-60)  # startAfter in the past: runnable once sent
    boss.add(start_in=-600)
    q = boss.read()["default"]
    assert q.ready == 2
    assert q.oldest_ready_age_seconds is not None and 599 <= q.oldest_ready_age_seconds < 610


def test_oldest_is_found_across_priorities(boss: Boss) -> None:
    boss.add(priority=10, start_in=-100)
    boss.add(priority=0, start_in=-900)
    boss.add(priority=-5, start_in=-300)
    age = boss.read()["default"].oldest_ready_age_seconds
    assert age is not None and 899 <= age < 910


def test_only_ready_jobs_of_the_queue_can_be_older_than_the_first_one(boss: Boss) -> None:
    # the first job by start time was sent late (eligible 100 s ago); behind it, jobs of other
    # states and queues with older times
    boss.add(start_in=-1000, created_in=-100)
    boss.add(state="active", start_in=-2000)
    boss.add(state="completed", start_in=-1800)
    boss.add(queue="other", start_in=-1500)
    q = boss.read([QueueSelector(("default",))])["default"]
    assert q.ready == 1
    assert q.oldest_ready_age_seconds is not None and 99 <= q.oldest_ready_age_seconds < 110
    # ready jobs that started before it count from when they were sent; the oldest wins
    boss.add(start_in=-600, created_in=-300)
    boss.add(start_in=-500, created_in=-400)
    reading = Reader(Options()).read(boss.conn, [QueueSelector(("default",))], 10)
    assert len(reading.queues) == 1  # one entry per queue, however many jobs it has
    q = reading.queues[0]
    assert q.oldest_ready_age_seconds is not None and 399 <= q.oldest_ready_age_seconds < 410


def test_the_count_stops_at_the_cap(boss: Boss) -> None:
    boss.add(count=40)
    boss.add(state="retry", count=5)
    q = boss.read(cap=31)["default"]
    assert (q.ready, q.ready_capped) == (31, True)
    q = boss.read(cap=46)["default"]
    assert (q.ready, q.ready_capped) == (45, False)


def test_queues_are_counted_apart_and_named_ones_reported_with_zeros(boss: Boss) -> None:
    boss.add(queue="mailers", count=3)
    boss.add(queue="critical", count=2)
    boss.add(queue="low", start_in=+60, created_in=0)
    assert boss.read([QueueSelector(("mailers",))]).keys() == {"mailers"}
    assert {k: v.ready for k, v in boss.read().items()} == {"critical": 2, "low": 0, "mailers": 3}
    wild = boss.read([QueueSelector(("mail*",))])
    assert wild["mailers"].ready == 3  # discovery is wide; the caller filters by pattern
    empty = boss.read([QueueSelector(("nothing-here",))])["nothing-here"]
    assert (empty.ready, empty.ready_capped, empty.oldest_eligible_at, empty.running) == (
        0,
        False,
        None,
        boss.running(0),
    )


def test_pgboss_internal_queues_are_found_only_when_named(boss: Boss) -> None:
    boss.add(queue="__pgboss__send-it")
    boss.add(queue="work")
    assert boss.read().keys() == {"work"}
    assert boss.read([QueueSelector(("__pgboss__send-it",))])["__pgboss__send-it"].ready == 1


def test_a_hand_counted_mix(boss: Boss) -> None:
    boss.add(queue="default", count=4)  # ready
    boss.add(queue="default", state="retry", start_in=-5, count=2)  # retry due -> ready
    boss.add(queue="default", state="retry", start_in=+90, count=3)  # retry backoff
    boss.add(queue="default", start_in=+120, created_in=0, count=3)  # deferred
    boss.add(queue="default", state="completed", count=5)
    boss.add(queue="default", state="failed", count=2)
    boss.add(queue="default", state="active", count=2)  # running
    boss.add(queue="mailers", priority=5, count=7)  # ready
    boss.add(queue="mailers", state="active", count=1)  # running
    boss.add(queue="mailers", state="cancelled", count=4)
    boss.monitor()
    found = boss.read([QueueSelector(("default", "mailers"))])
    assert {k: (v.ready, v.running) for k, v in found.items()} == {
        "default": (6, boss.running(2)),
        "mailers": (7, boss.running(1)),
    }


def test_own_partitions_per_queue_are_read_like_the_shared_one(
    pg_conn: psycopg.Connection[Any],
) -> None:
    """v10 gave every queue its own partition; v11+ does so for partition: true queues."""
    load(pg_conn, "12")
    boss = Boss(pg_conn, "12")
    pg_conn.execute(
        "INSERT INTO pgboss.queue (name, policy, retry_limit, retry_delay, retry_backoff,"
        " expire_seconds, retention_seconds, deletion_seconds, partition, table_name)"
        " VALUES ('own', 'standard', 2, 0, false, 900, 1209600, 604800, true, 'jown')"
    )
    pg_conn.execute(
        """
        CREATE TABLE pgboss.jown (LIKE pgboss.job INCLUDING DEFAULTS);
        ALTER TABLE pgboss.jown ADD PRIMARY KEY (name, id);
        CREATE INDEX jown_i5 ON pgboss.jown (name, start_after)
            WHERE state < 'active' AND NOT blocked;
        ALTER TABLE pgboss.jown ADD CONSTRAINT cjc CHECK (name='own');
        ALTER TABLE pgboss.job ATTACH PARTITION pgboss.jown FOR VALUES IN ('own');
        """
    )
    boss.add(queue="own", count=3)
    boss.add(queue="own", state="active")
    boss.add(queue="shared", count=2)
    boss.monitor()
    found = boss.read()
    assert {k: (v.ready, v.running) for k, v in found.items()} == {"own": (3, 1), "shared": (2, 0)}
    assert pg_conn.execute("SELECT count(*) FROM pgboss.jown").fetchone() == (4,)


def test_a_migration_under_a_running_reader_is_followed(pg_conn: psycopg.Connection[Any]) -> None:
    load(pg_conn, "11")
    reader = Reader(Options())
    boss = Boss(pg_conn, "11")
    boss.add(count=2)
    assert reader.read(pg_conn, EVERY, 10).queues[0].ready == 2
    # pg-boss 12.19 adds `blocked`: the next read must leave blocked jobs out
    pg_conn.execute("ALTER TABLE pgboss.job ADD COLUMN blocked boolean NOT NULL DEFAULT false")
    pg_conn.execute(
        "UPDATE pgboss.job SET blocked = true WHERE id IN (SELECT id FROM pgboss.job LIMIT 1)"
    )
    assert reader.read(pg_conn, EVERY, 10).queues[0].ready == 1
    # and a v9 install replaced by v10+ (every column renamed) under the same reader
    pg_conn.execute("DROP SCHEMA pgboss CASCADE")
    load(pg_conn, "9")
    Boss(pg_conn, "9").add(count=3)
    assert reader.read(pg_conn, EVERY, 10).queues[0].ready == 3


def test_schema_and_queue_names_are_identifiers_and_values_not_sql(
    pg_conn: psycopg.Connection[Any],
) -> None:
    odd = 'odd"; DROP TABLE x; -- ü'
    for version in VERSIONS:
        load(pg_conn, version, schema=odd)
        boss = Boss(pg_conn, version, schema=odd)
        queue = "q'; DROP TABLE pgboss.job; --"
        boss.add(queue=queue, count=2)
        assert boss.read()[queue].ready == 2
        assert "default" not in boss.read()
        detected = detect(pg_conn, Options(schema=odd))
        assert detected is not None and odd in detected
        pg_conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(odd)))


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("9", "v9 layout: startafter, job_fetch; schema version 20"),
        ("10", "v10 layout: partitioned job, queue table; schema version 24"),
        ("11", "v11-v12.18 layout: partitioned job, queue table with counts; schema version 25"),
        (
            "12",
            "v12.19+ layout: partitioned job, queue table with counts, blocked; schema version 37",
        ),
    ],
)
def test_detect_names_the_layout_and_schema_version(
    pg_conn: psycopg.Connection[Any], version: str, expected: str
) -> None:
    load(pg_conn, version)
    assert detect(pg_conn, Options()) == f"table pgboss.job ({expected})"
    assert detect(pg_conn, Options(schema="elsewhere")) is None


def test_detect_finds_nothing_in_an_empty_database_or_next_to_delayed_job(
    pg_conn: psycopg.Connection[Any],
) -> None:
    assert detect(pg_conn, Options()) is None
    pg_conn.execute((FIXTURES / "delayed_job.sql").read_text())
    assert detect(pg_conn, Options()) is None
    assert detect(pg_conn, Options(schema="public")) is None


def test_detect_reads_the_configured_schema_only(pg_conn: psycopg.Connection[Any]) -> None:
    # another install's columns must not mix into this one's layout
    load(pg_conn, "11")
    load(pg_conn, "12", schema="other")
    assert detect(pg_conn, Options()) == (
        "table pgboss.job (v11-v12.18 layout: partitioned job, queue table with counts;"
        " schema version 25)"
    )


def test_detect_reports_the_newest_version_and_needs_the_version_table(
    pg_conn: psycopg.Connection[Any],
) -> None:
    load(pg_conn, "12")
    pg_conn.execute("INSERT INTO pgboss.version (version) VALUES (36)")
    found = detect(pg_conn, Options())
    assert found is not None and found.endswith("; schema version 37)")
    pg_conn.execute("DROP TABLE pgboss.version")
    assert detect(pg_conn, Options()) is None
