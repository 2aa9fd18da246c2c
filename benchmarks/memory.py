"""Memory: resident set size of `dynomatic run` over 10,000 ticks at a short interval, sampled
from /proc. Target: <= 60 MB and flat after warm-up.

    python -m benchmarks.memory [--ticks 10000] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import prodvenv
from benchmarks.harness import config_text, rig
from benchmarks.report import print_table, table, update_section

WARM_UP = 0.1  # share of the ticks before RSS counts as steady


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def ticks_done(log: Path) -> int:
    return log.read_bytes().count(b'"scale_decision"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--ticks", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument(
        "--dev-venv", action="store_true", help="run the daemon from this venv, test tools and all"
    )
    args = parser.parse_args(argv)
    python = sys.executable if args.dev_venv else prodvenv.python()
    samples: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as tmp, rig(Path(tmp)) as r:
        r.enqueue(15)  # a steady queue: 5 dynos, decided afresh every tick
        log = Path(tmp) / "memory.log"
        proc = r.spawn(r.config(config_text(args.interval)), log, python)
        started = time.monotonic()
        try:
            while (done := ticks_done(log)) < args.ticks and time.monotonic() - started < 900:
                if proc.poll() is not None:
                    raise RuntimeError(f"dynomatic run exited: {log.read_text()[-2000:]}")
                rss = rss_mb(proc.pid)
                if rss is not None:
                    samples.append((done, rss))
                time.sleep(0.25)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        elapsed = time.monotonic() - started
    steady = [mb for done, mb in samples if done >= args.ticks * WARM_UP]
    first, last = steady[0], steady[-1]
    rows = [
        ["ticks", f"{done:,} in {elapsed:.0f} s"],
        ["peak RSS, MB", f"{max(mb for _, mb in samples):.1f}"],
        ["steady RSS (median after warm-up), MB", f"{statistics.median(steady):.1f}"],
        ["RSS after warm-up -> at the end, MB", f"{first:.1f} -> {last:.1f}"],
        [
            "growth after warm-up, MB per 1,000 ticks",
            f"{(last - first) / max(1, done * (1 - WARM_UP)) * 1000:.3f}",
        ],
        ["target", "<= 60 MB, flat"],
    ]
    print_table("memory of dynomatic run", ["measure", "value"], rows)
    update_section(
        "memory",
        "## Memory\n\n"
        f"`python -m benchmarks.memory`: `dynomatic run` as a process at interval "
        f"{args.interval:g} s for {args.ticks:,} ticks against real PostgreSQL and the stand-in, "
        "RSS from /proc every 0.25 s; warm-up is the first 10 % of ticks. The daemon runs from "
        + (
            "the development venv"
            if args.dev_venv
            else "`.venv-bench`, a venv holding only the runtime dependencies (`pip install .`)"
        )
        + ".\n\n"
        + table(["measure", "value"], rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
