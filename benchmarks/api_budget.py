"""Heroku API budget: a bursty, seeded 24-hour queue trace replayed through the real tick on an
accelerated clock (10 s per tick), counting the calls the stand-in receives by kind.
Targets: no write in a tick whose formation does not change; reads only every resync_seconds or
after a write; calls per hour far below Heroku's 4,500-token budget.

    python -m benchmarks.api_budget [--hours 24] [--seed 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

import structlog

from benchmarks.harness import API_KEY, rig
from benchmarks.report import print_table, table, update_section
from dynomatic_daemon import config, wiring
from dynomatic_daemon.clock import SteppableClock

INTERVAL = 10
CONFIG = f"""
[heroku]
app = "bench-app"
[daemon]
interval_seconds = {INTERVAL}
[[process]]
type = "worker"
adapter = "delayed_job"
jobs_per_dyno = 25
max_dynos = 10
"""


def trace(ticks: int, rng: random.Random) -> list[int]:
    """Queue depth per tick: a trickle, plus ~20 bursts a day that drain over 5-30 minutes."""
    depth = [rng.randint(0, 3) for _ in range(ticks)]
    for _ in range(max(1, ticks * 20 // 8640)):
        start, size = rng.randrange(ticks), rng.randint(50, 800)
        drain = rng.randint(30, 180)
        for i in range(drain):
            if start + i < ticks:
                depth[start + i] += int(size * (1 - i / drain))
    return depth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_budget", description=__doc__)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    ticks = int(args.hours * 3600 / INTERVAL)
    depth = trace(ticks, random.Random(args.seed))
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    clock = SteppableClock()
    per_hour: Counter[int] = Counter()
    writes_unchanged = changes = current = 0
    with tempfile.TemporaryDirectory() as tmp, rig(Path(tmp)) as r:
        env = {
            "HEROKU_API_KEY": API_KEY,
            "DATABASE_URL": r.url,
            "DYNOMATIC_HEROKU_API_URL": r.standin.url,
        }
        settings = config.load(r.config(CONFIG), env)
        built = wiring.build(settings, structlog.get_logger(), lock=False, clock=clock)
        with built.stack:
            for i, wanted in enumerate(depth):
                if wanted > current:
                    r.enqueue(wanted - current)
                elif wanted < current:
                    r.admin.execute(
                        "DELETE FROM delayed_jobs WHERE id IN (SELECT id FROM"
                        " delayed_jobs LIMIT %s)",
                        (current - wanted,),
                    )
                current = wanted
                before = len(r.standin.requests)
                patches = len(r.standin.patches())
                outcomes = built.ticker.tick()
                scaled = any(o.action == "scaled" for o in outcomes)
                changes += scaled
                writes_unchanged += (len(r.standin.patches()) > patches) and not scaled
                per_hour[int(i * INTERVAL // 3600)] += len(r.standin.requests) - before
                clock.advance(INTERVAL)
        kinds = Counter(req.method for req in r.standin.requests)
    hours = max(args.hours, 1e-9)
    total = sum(kinds.values())
    rows = [
        ["ticks replayed", f"{ticks:,} ({args.hours:g} h at {INTERVAL} s)"],
        ["formation changes", changes],
        ["GET formation (reads)", kinds["GET"]],
        ["PATCH formation (writes)", kinds["PATCH"]],
        ["writes in ticks whose formation did not change (target 0)", writes_unchanged],
        ["API calls per hour, mean", f"{total / hours:.1f}"],
        ["API calls in the busiest hour", max(per_hour.values(), default=0)],
        [
            "share of Heroku's 4,500 tokens/hour, busiest hour",
            f"{100 * max(per_hour.values(), default=0) / 4500:.1f} %",
        ],
    ]
    print_table("Heroku API budget", ["measure", "value"], rows)
    update_section(
        "api_budget",
        "## Heroku API budget\n\n"
        "`python -m benchmarks.api_budget`: a seeded bursty trace (a trickle plus about 20 "
        "bursts of 50-800 jobs a day, each draining over 5-30 minutes) replayed through the real "
        "tick against real PostgreSQL and the stand-in, on an accelerated clock; jobs_per_dyno "
        "25, max 10, scale-down delay 120 s, resync 60 s.\n\n" + table(["measure", "value"], rows),
    )
    return 0 if writes_unchanged == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
