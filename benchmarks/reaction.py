"""Reaction time: from a burst of jobs committed to the stand-in receiving the Batch Update, and
from the queue drained to the scale-down (minus the configured delay), for `dynomatic run` as a
process at interval_seconds 1 and 5. Target: p95 <= interval + 0.5 s.

    python -m benchmarks.reaction [--trials 20] [--intervals 1,5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Rig, config_text, rig
from benchmarks.report import print_table, table, update_section

DELAY = 2.0


def patch_after(r: Rig, quantity: int, after: float, timeout: float) -> float:
    def found() -> float | None:
        for p in r.standin.patches():
            if p.at >= after and p.body["updates"][0]["quantity"] == quantity:
                return p.at
        return None

    if not r.standin.wait_for(lambda: found() is not None, timeout=timeout):
        raise RuntimeError(f"no scale to {quantity} within {timeout}s")
    at = found()
    assert at is not None
    return at


def trials(
    r: Rig, interval: float, count: int, rng: random.Random
) -> tuple[list[float], list[float]]:
    config = r.config(config_text(interval, delay=DELAY))
    proc = r.spawn(config, r.workdir / f"reaction-{interval}.log")
    ups, downs = [], []
    try:
        r.standin.wait_for(lambda: len(r.standin.requests) >= 1, timeout=15)
        for _ in range(count):
            time.sleep(rng.uniform(0, interval))  # commit at a random phase of the tick
            r.enqueue(25)
            committed = time.monotonic()
            ups.append(patch_after(r, 10, committed, 10 * interval + 10) - committed)
            time.sleep(rng.uniform(0, interval))
            r.drain()
            drained = time.monotonic()
            downs.append(patch_after(r, 1, drained, 10 * interval + DELAY + 10) - drained - DELAY)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return ups, downs


def summary(values: list[float]) -> tuple[str, str, str]:
    q = statistics.quantiles(values, n=20, method="inclusive")
    return f"{statistics.median(values):.2f}", f"{q[18]:.2f}", f"{max(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reaction", description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--intervals", default="1,5")
    args = parser.parse_args(argv)
    rng = random.Random(11)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, rig(Path(tmp)) as r:
        for interval in (float(x) for x in args.intervals.split(",")):
            ups, downs = trials(r, interval, args.trials, rng)
            target = interval + 0.5
            p95 = float(summary(ups)[1])
            rows.append(
                [
                    f"{interval:g}",
                    "burst -> scale-up",
                    *summary(ups),
                    f"{target:g}",
                    "met" if p95 <= target else "MISSED",
                ]
            )
            rows.append(
                [
                    f"{interval:g}",
                    f"drain -> scale-down, minus the {DELAY:g} s delay",
                    *summary(downs),
                    "-",
                    "-",
                ]
            )
    headers = ["interval s", "from -> to", "p50 s", "p95 s", "max s", "target p95 s", "result"]
    print_table("reaction time", headers, rows)
    update_section(
        "reaction",
        "## Reaction time\n\n"
        f"`python -m benchmarks.reaction`: `dynomatic run` as a process, {args.trials} trials per "
        "interval, each committing 25 ready jobs at a random phase of the tick and timing the "
        "Batch Update's arrival at the loopback stand-in, then deleting them and timing the "
        "scale-down.\n\n" + table(headers, rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
