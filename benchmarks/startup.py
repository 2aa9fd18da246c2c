"""Start-up: time from launching `dynomatic run` to its first completed tick (the first
scale_decision line). Target: <= 1.5 s.

    python -m benchmarks.startup [--trials 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import config_text, rig
from benchmarks.report import print_table, table, update_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args(argv)
    times = []
    with tempfile.TemporaryDirectory() as tmp, rig(Path(tmp)) as r:
        config = r.config(config_text(interval=10))
        for i in range(args.trials):
            log = Path(tmp) / f"startup-{i}.log"
            started = time.monotonic()
            proc = r.spawn(config, log)
            try:
                while b'"scale_decision"' not in log.read_bytes():
                    if time.monotonic() - started > 30 or proc.poll() is not None:
                        raise RuntimeError(f"no tick: {log.read_text()}")
                    time.sleep(0.005)
                times.append(time.monotonic() - started)
            finally:
                proc.terminate()
                proc.wait(timeout=15)
    median, worst = statistics.median(times), max(times)
    rows = [
        [
            f"{median:.2f}",
            f"{min(times):.2f}",
            f"{worst:.2f}",
            "1.5",
            "met" if median <= 1.5 else "MISSED",
        ]
    ]
    headers = ["median s", "min s", "max s", "target s", "result"]
    print_table("start-up to first completed tick", headers, rows)
    update_section(
        "startup",
        "## Start-up\n\n"
        f"`python -m benchmarks.startup`: {args.trials} launches of `dynomatic run`, timed to the "
        "first scale_decision line (config load, imports, connections, formation list, first "
        "read).\n\n" + table(headers, rows),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
