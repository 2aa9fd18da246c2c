"""History: the cost of a write, the size per type per day, and a 30-day report.

- write: the writer's one statement (3 process types' minute rows and an event) on a real
  PostgreSQL, DB time and round trips per write; and the tick thread's own cost of observing
  (hub, live status, recorder: memory work only). Target: <= 1 ms DB time, one round trip.
- size: a day of per-minute rows for 3 types plus a busy day's events, as PostgreSQL stores them
  (tables and indexes), per type per day, and the bound for 3 types x 30 days; per-tick rows at a
  10 s interval measured the same way, for comparison.
- report: 30 days x 3 types read and rendered as `dynomatic report` does. Target: <= 2 s.

    python -m benchmarks.history_cost [--writes 300] [--days 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr

from benchmarks.common import machine, scratch_database, server
from benchmarks.report import print_table, table, update_section
from dynomatic_daemon.clock import SteppableClock
from dynomatic_daemon.events import Event, Hub, Observation, TickReport
from dynomatic_daemon.history import report
from dynomatic_daemon.history.queries import read_window
from dynomatic_daemon.history.recorder import Recorder
from dynomatic_daemon.history.rows import Batch, Sample
from dynomatic_daemon.history.writer import Writer
from dynomatic_daemon.observe_config import HistorySettings
from dynomatic_daemon.store import connection, migrations
from dynomatic_daemon.web.live import LiveStatus

TYPES = ("worker", "urgent", "low")
EVENTS_PER_TYPE_PER_DAY = 200  # a busy day: api_budget's trace makes ~170 changes a day
NOW = datetime(2026, 3, 1, tzinfo=UTC)


class Counting:
    trips = 0
    seconds = 0.0


class CountingCursor(psycopg.Cursor[Any]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        Counting.trips += 1
        started = time.perf_counter()
        try:
            return super().execute(*args, **kwargs)
        finally:
            Counting.seconds += time.perf_counter() - started


def counting_connect(url: SecretStr, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.Connection.connect(
        **connection.connection_kwargs(url, **kwargs), cursor_factory=CountingCursor
    )


class Quiet:
    def __getattr__(self, _name: str) -> Any:
        return lambda *a, **k: None


def sample(ptype: str, minute: datetime, i: int) -> Sample:
    return Sample(
        "bench",
        minute,
        ptype,
        6,
        i % 400,
        False,
        float(i % 90),
        3,
        2 + i % 8,
        4,
        300.0,
        0,
        "Standard-1X",
    )


def event(ptype: str, at: datetime, i: int) -> Event:
    reason = f"target {i % 10} from jobs_per_dyno=25; up {i % 9} -> {i % 10}"
    return Event(
        "bench", at, "scaled", ptype, i % 9, i % 10, reason, {"request_id": f"req-{i:08d}"}
    )


def write_cost(url: str, writes: int) -> list[list[str]]:
    settings = HistorySettings(enabled=True, url=SecretStr(url))
    clock = SteppableClock(NOW)
    writer = Writer(settings, "bench", clock, Quiet(), connect=counting_connect)
    first = Batch((sample("worker", NOW, 0),))
    writer._write(first)  # connects, migrates, prunes once: not a tick's cost
    dbs, trips = [], []
    for i in range(writes):
        minute = NOW + timedelta(minutes=i + 1)
        batch = Batch(tuple(sample(t, minute, i) for t in TYPES), (event("worker", minute, i),))
        Counting.trips, Counting.seconds = 0, 0.0
        writer._write(batch)
        dbs.append(Counting.seconds * 1000)
        trips.append(Counting.trips)
    writer._close_connection()
    per_tick_db = statistics.median(dbs) / 6  # 10 s ticks: one write a minute (plus events)
    return [
        ["DB time per write (3 minute rows + 1 event), median ms", f"{statistics.median(dbs):.3f}"],
        ["DB time per write, p95 ms", f"{sorted(dbs)[int(0.95 * len(dbs))]:.3f}"],
        ["round trips per write, max", str(max(trips))],
        ["DB time per tick at 10 s, amortized ms", f"{per_tick_db:.3f}"],
        [
            "tick-thread cost of observing (hub, live status, recorder), median us",
            f"{tick_thread_us():.1f}",
        ],
    ]


def tick_thread_us(ticks: int = 20_000) -> float:
    """What the tick itself pays: memory work and a non-blocking put, no database."""

    class Discard:
        def submit(self, batch: Batch) -> None:
            pass

    clock = SteppableClock(NOW)
    live = LiveStatus("bench", clock, 10, 60)
    hub = Hub([live, Recorder(Discard(), "bench", 10)], clock, Quiet())
    obs = tuple(
        Observation(
            t, 40, False, 12.0, 3, 4, 4, 4, "unchanged", None, "stay at 4", None, "Standard-1X", 10
        )
        for t in TYPES
    )
    samples = []
    for _ in range(ticks):
        report_ = TickReport("bench", clock.now(), "leader", obs)
        started = time.perf_counter()
        hub._fan_out(report_, hub._derive(report_))
        samples.append((time.perf_counter() - started) * 1e6)
        clock.advance(10)
    return statistics.median(samples)


def populate(conn: psycopg.Connection[Any], schema: str, days: int, per_tick: bool = False) -> None:
    """``days`` of rows for 3 types (per minute, or per 10 s tick) and a busy day's events each."""
    step = "10 seconds" if per_tick else "1 minute"
    name = sql.Identifier(schema)
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.samples SELECT 'bench', m, t, 6, (random() * 400)::int, false,"
            " (random() * 90)::real, 3, (2 + random() * 8)::int, 4, 300, 0, 'Standard-1X'"
            " FROM generate_series(%s::timestamptz, %s::timestamptz - interval '1 second',"
            " %s::interval) m, unnest(%s::text[]) t"
        ).format(name),
        (NOW - timedelta(days=days), NOW, step, list(TYPES)),
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {}.events (app, at, process_type, kind, current_dynos, desired_dynos,"
            " reason, fields) SELECT 'bench', %s::timestamptz - (random() * %s) * interval '1 day',"
            " t, 'scaled', 3, 4, 'target 4 from jobs_per_dyno=25; up 3 -> 4',"
            " jsonb_build_object('request_id', md5(i::text)) FROM generate_series(1, %s) i,"
            " unnest(%s::text[]) t"
        ).format(name),
        (NOW, days, days * EVENTS_PER_TYPE_PER_DAY, list(TYPES)),
    )
    conn.execute(sql.SQL("VACUUM ANALYZE {}.samples").format(name))
    conn.execute(sql.SQL("VACUUM ANALYZE {}.events").format(name))


def sizes(conn: psycopg.Connection[Any], schema: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT pg_total_relation_size(format('%%I.samples', %s::text)),"
        " pg_total_relation_size(format('%%I.events', %s::text))",
        (schema, schema),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def size_rows(conn: psycopg.Connection[Any]) -> list[list[str]]:
    for schema in ("size_minute", "size_tick"):
        migrations.migrate(conn, schema)
    populate(conn, "size_minute", 2)
    populate(conn, "size_tick", 2, per_tick=True)
    mb = 1024 * 1024
    (s_min, e_min), (s_tick, _) = sizes(conn, "size_minute"), sizes(conn, "size_tick")
    per_type_day = (s_min + e_min) / 2 / len(TYPES)
    tick_per_type_day = (s_tick + e_min) / 2 / len(TYPES)
    return [
        ["per-minute rows, per type per day (tables + indexes), MB", f"{s_min / 2 / 3 / mb:.3f}"],
        [
            f"events ({EVENTS_PER_TYPE_PER_DAY} a day), per type per day, MB",
            f"{e_min / 2 / 3 / mb:.3f}",
        ],
        ["history per type per day, MB", f"{per_type_day / mb:.3f}"],
        ["bound: 3 types x 30 days (default retention 14), MB", f"{per_type_day * 90 / mb:.1f}"],
        [
            "for comparison, per-tick rows at 10 s: 3 types x 30 days, MB",
            f"{tick_per_type_day * 90 / mb:.1f}",
        ],
    ]


def report_rows(conn: psycopg.Connection[Any], url: str, days: int) -> list[list[str]]:
    migrations.migrate(conn, "report_bench")
    populate(conn, "report_bench", days)
    times, reads, size = [], [], 0
    for _ in range(3):
        started = time.perf_counter()
        with connection.connect(
            SecretStr(url), statement_timeout_ms=30_000, connect_timeout_seconds=5
        ) as read:
            window = read_window(
                read, "report_bench", "bench", since=NOW - timedelta(days=days), until=NOW
            )
        reads.append(time.perf_counter() - started)
        page = report.render(window, title="bench")
        times.append(time.perf_counter() - started)
        size = len(page)
    return [
        [
            f"rows read ({days} days x 3 types, + events)",
            f"{len(window.samples):,} + {len(window.events):,}",
        ],
        ["report generation (read + render), median s", f"{statistics.median(times):.2f}"],
        ["of which the read, median s", f"{statistics.median(reads):.2f}"],
        ["report size, KB", f"{size / 1024:.0f}"],
        ["target", "<= 2 s"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history_cost", description=__doc__)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)
    with server() as srv, scratch_database(srv) as url:
        facts = machine(url)
        write = write_cost(url, args.writes)
        with psycopg.connect(url, autocommit=True) as conn:
            size = size_rows(conn)
            rep = report_rows(conn, url, args.days)
    headers = ["measure", "value"]
    for title, rows in (("history write", write), ("history size", size), ("report", rep)):
        print_table(title, headers, rows)
    update_section(
        "history",
        "## History, report and status page\n\n"
        "`python -m benchmarks.history_cost`: the history writer's one statement on a real "
        f"PostgreSQL ({args.writes} writes of 3 minute rows and an event), sizes as PostgreSQL "
        f"stores them (tables and indexes, after VACUUM), and a {args.days}-day report read and "
        "rendered as `dynomatic report` does.\n\n"
        f"Machine: {facts['machine']}; Python {facts['python']}; "
        f"PostgreSQL {facts['postgres']}.\n\n"
        "**Writes** (target: <= 1 ms DB time, one round trip)\n\n"
        + table(headers, write)
        + "\n\n**Size** (one row per type per minute, the choice made; per-tick rows compared)\n\n"
        + table(headers, size)
        + f"\n\n**Report** ({args.days} days)\n\n"
        + table(headers, rep),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
