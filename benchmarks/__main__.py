"""`make bench`: every daemon benchmark in turn, each rewriting its section of docs/benchmarks.md.

    python -m benchmarks [--quick]

The adapter query benchmark (tables up to 1M rows per library) takes longer and runs on its own:
`make bench-adapters` / `python -m benchmarks.adapters`.
"""

from __future__ import annotations

import argparse
import sys
import time

from benchmarks import (
    api_budget,
    fleet,
    history_cost,
    history_memory,
    memory,
    reaction,
    simulate,
    startup,
    tick_cost,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer trials, ticks and rows")
    args = parser.parse_args(argv)
    quick = args.quick
    runs = [
        ("start-up", startup.main, ["--trials", "3" if quick else "10"]),
        ("per-tick cost", tick_cost.main, ["--rows", "100000" if quick else "1000000"]),
        ("API budget", api_budget.main, ["--hours", "2" if quick else "24"]),
        ("memory", memory.main, ["--ticks", "1000" if quick else "10000"]),
        ("reaction time", reaction.main, ["--trials", "5" if quick else "20"]),
        ("history", history_cost.main, ["--writes", "100" if quick else "300"]),
        (
            "memory with history and page",
            history_memory.main,
            ["--ticks", "1000" if quick else "10000"],
        ),
        ("scaling quality", simulate.main, ["--seeds", "1" if quick else "3"]),
        ("several apps", fleet.main, ["--quick"] if quick else []),
    ]
    failed = []
    started = time.monotonic()
    for name, fn, argv_ in runs:
        print(f"\n==== {name} ====", flush=True)
        t0 = time.monotonic()
        if fn(argv_) != 0:
            failed.append(name)
        print(f"({name}: {time.monotonic() - t0:.0f} s)", flush=True)
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s; docs/benchmarks.md updated")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
