"""Per adapter: tables of 10k, 100k and 1M jobs in three mixes; the median time of our per-tick
read (one round trip, every queue) versus the naive exact ``count(*)``/``min()`` a peer runs.

    python -m benchmarks.adapters [--sizes 10000,100000,1000000] [--only delayed_job,river]

Prints a table and rewrites the "adapters" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import psycopg

from benchmarks.common import machine, scratch_database, server
from benchmarks.report import print_table, table, update_section
from dynomatic_daemon.adapters import catalog
from dynomatic_daemon.models import QueueSelector

MIXES = ("backlog", "sparse", "below_cap")
SESSION = "-c jit=off -c TimeZone=UTC"
RUNS = 7
RESET = """
DO $$ DECLARE s text; BEGIN
  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'
           AND nspname NOT IN ('information_schema') LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
  CREATE SCHEMA public;
END $$;
"""


def median_ms(fn: Callable[[], Any]) -> float:
    fn()  # warm the cache and the plan
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure(conn: psycopg.Connection[Any], data: ModuleType, name: str) -> tuple[float, float]:
    module = catalog.load(name)
    reader = module.Reader(module.Options.model_validate(data.OPTIONS))
    ours = median_ms(lambda: reader.read(conn, [QueueSelector(None)], data.CAP))
    naive = median_ms(lambda: conn.execute(data.NAIVE_SQL).fetchall())
    return ours, naive


def run(url: str, names: list[str], sizes: list[int]) -> list[list[object]]:
    rows: list[list[object]] = []
    for name in names:
        data = importlib.import_module(f"benchmarks.adapters.data_{name}")
        variants = [("", None)]
        if hasattr(data, "RECOMMENDED_INDEX"):
            variants.append((" + recommended index", data.RECOMMENDED_INDEX))
        for size in sizes:
            for mix in MIXES:
                # the daemon's own session settings (JIT off, UTC); not read-only, since the
                # same connection loads the data (que's running jobs are its advisory locks)
                with psycopg.connect(url, autocommit=True, options=SESSION) as conn:
                    conn.execute(RESET)
                    data.create_schema(conn)
                    data.populate(conn, size, mix, seed=7)
                    for label, ddl in variants:
                        if ddl:
                            conn.execute(ddl)
                            conn.execute("ANALYZE")
                        ours, naive = measure(conn, data, name)
                        rows.append(
                            [f"{name}{label}", f"{size:,}", mix, f"{ours:.2f}", f"{naive:.2f}"]
                        )
                        print("  ".join(str(c) for c in rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adapters", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--only", default="")
    args = parser.parse_args(argv)
    available = [
        n for n in catalog.NAMES if importlib.util.find_spec(f"benchmarks.adapters.data_{n}")
    ]
    names = [n for n in args.only.split(",") if n] or available
    sizes = [int(s) for s in args.sizes.split(",")]
    headers = ["adapter", "rows", "mix", "ours, median ms", "naive exact, median ms"]
    with server() as srv, scratch_database(srv) as url:
        facts = machine(url)
        rows = run(url, names, sizes)
    print_table("adapter read vs naive exact query", headers, rows)
    update_section(
        "adapters",
        "## Adapter queries\n\n"
        "`python -m benchmarks.adapters` (`make bench-adapters`). Per adapter and table size, the "
        "median of 7 runs (after one warm-up) of our per-tick read of every queue, one round "
        "trip, against a peer's naive exact per-queue `count(*)`/`min()` of the same predicate "
        "on the same connection, which has the daemon's session settings (JIT off, UTC). "
        "Cap 101. Mixes: backlog (~90% ready), sparse (~1% ready spread through the table), "
        "below_cap (50 ready rows).\n\n"
        f"Machine: {facts['machine']}; Python {facts['python']}; "
        f"PostgreSQL {facts['postgres']}.\n\n" + table(headers, rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
