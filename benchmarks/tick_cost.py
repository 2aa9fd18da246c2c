"""Per-tick cost: one full tick for three process types over a 1M-row job table. Reports wall
time, database time and round trips per tick, and CPU time of the ticking thread.
Target: one round trip per adapter per tick; <= 10 ms of database time.

    python -m benchmarks.tick_cost [--rows 1000000] [--ticks 30]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import structlog

from benchmarks.common import machine, scratch_database, server
from benchmarks.report import print_table, table, update_section
from dynomatic_daemon import adapters, config
from dynomatic_daemon.clock import SystemClock
from dynomatic_daemon.db import Database
from dynomatic_daemon.formation_keeper import FormationKeeper
from dynomatic_daemon.heroku import HerokuClient
from dynomatic_daemon.sandbox.heroku_standin import HerokuStandIn
from dynomatic_daemon.tick import Ticker

API_KEY = "hk-bench-0000"
PROCESSES = """
[[process]]
type = "worker"
adapter = "{adapter}"
queues = ["default", "mailers"]
rules = [ {{ at_least = 0, dynos = 1 }}, {{ at_least = 100, dynos = 10 }} ]
[[process]]
type = "urgent"
adapter = "{adapter}"
queues = ["critical"]
worker_names = ["urgent1", "urgent2"]
rules = [
  {{ at_least = 0, dynos = 0 }}, {{ at_least = 1, dynos = 1 }}, {{ at_least = 50, dynos = 2 }},
]
[[process]]
type = "low"
adapter = "{adapter}"
queues = ["low", "reports"]
jobs_per_dyno = 50
max_dynos = 4
"""
FORMATION = {"web": 1, "worker": 1, "urgent1": 0, "urgent2": 0, "low": 0}


class Counting:
    round_trips = 0
    db_seconds = 0.0


class CountingCursor(psycopg.Cursor[Any]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        Counting.round_trips += 1
        return super().execute(*args, **kwargs)


def counting_connect(**kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.Connection.connect(**kwargs, cursor_factory=CountingCursor)


class TimedDatabase(Database):
    def run(self, fn: Any) -> Any:
        start = time.perf_counter()
        try:
            return super().run(fn)
        finally:
            Counting.db_seconds += time.perf_counter() - start


def ticker(
    url: str, adapter: str, options: dict[str, object], standin: HerokuStandIn, workdir: Path
) -> tuple[Ticker, httpx.Client]:
    path = workdir / "tick.toml"
    opts = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in options.items())
    path.write_text(
        f'[heroku]\napp = "bench-app"\n[adapters.{adapter}]\n{opts}'
        + PROCESSES.format(adapter=adapter)
    )
    env = {"HEROKU_API_KEY": API_KEY, "DATABASE_URL": url, "DYNOMATIC_HEROKU_API_URL": standin.url}
    settings = config.load(path, env)
    clock = SystemClock()
    http = httpx.Client(base_url=standin.url, timeout=5)
    keeper = FormationKeeper(HerokuClient(http, app="bench-app", api_key=API_KEY), clock, 60)
    database = TimedDatabase(settings.database, clock, connect=counting_connect)
    reader = adapters.build(adapter, settings.adapter_options(adapter))
    log = structlog.get_logger()
    return Ticker(settings, {adapter: database}, keeper, {adapter: reader}, clock, log), http


def measure(t: Ticker, ticks: int) -> list[str]:
    for _ in range(3):
        t.tick()  # the first lists the formation and plans the query
    walls, dbs, trips, cpus = [], [], [], []
    for _ in range(ticks):
        Counting.round_trips, Counting.db_seconds = 0, 0.0
        wall, cpu = time.perf_counter(), time.thread_time()
        t.tick()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.thread_time() - cpu) * 1000)
        dbs.append(Counting.db_seconds * 1000)
        trips.append(Counting.round_trips)
    med = statistics.median
    return [f"{med(walls):.2f}", f"{med(dbs):.2f}", f"{max(trips)}", f"{med(cpus):.2f}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tick_cost", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--adapters", default="delayed_job,river")
    args = parser.parse_args(argv)
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # no output in the loop
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp, server() as srv, scratch_database(srv) as url:
        facts = machine(url)
        for name in args.adapters.split(","):
            data = importlib.import_module(f"benchmarks.adapters.data_{name}")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
                data.create_schema(conn)
                data.populate(conn, args.rows, "backlog", seed=7)
                variants = [("stock indexes", None)]
                if hasattr(data, "RECOMMENDED_INDEX"):
                    variants.append(("+ recommended index", data.RECOMMENDED_INDEX))
                for label, ddl in variants:
                    if ddl:
                        conn.execute(ddl)
                        conn.execute("ANALYZE")
                    with HerokuStandIn(app="bench-app", api_key=API_KEY, formation=FORMATION) as s:
                        t, http = ticker(url, name, data.OPTIONS, s, Path(tmp))
                        with http:
                            rows.append([name, label, f"{args.rows:,}", *measure(t, args.ticks)])
                        t.databases[name].close()
                    print("  ".join(rows[-1]), flush=True)
    headers = [
        "adapter",
        "indexes",
        "rows",
        "tick wall ms",
        "tick db ms",
        "round trips",
        "tick CPU ms",
    ]
    print_table("per-tick cost, 3 process types", headers, rows)
    update_section(
        "tick_cost",
        "## Per-tick cost\n\n"
        f"`python -m benchmarks.tick_cost`: one full tick (queue read, policy, formation from "
        f"memory, no write) for 3 process types over a {args.rows:,}-row table in the backlog "
        f"mix; medians of {args.ticks} ticks. Round trips are counted on the connection, database "
        "time is the wall time of the read, CPU is the ticking thread's.\n\n"
        f"Machine: {facts['machine']}; Python {facts['python']}; PostgreSQL "
        f"{facts['postgres']}.\n\n" + table(headers, rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
