"""Memory with everything on: RSS of `dynomatic run` with history recording, the status page
served and read every 2 s (page and /metrics), and the queue changing so events are written.
Target: <= 80 MB.

    python -m benchmarks.history_memory [--ticks 10000] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import prodvenv
from benchmarks.harness import config_text, rig
from benchmarks.memory import WARM_UP, rss_mb, ticks_done
from benchmarks.report import print_table, table, update_section

PASSWORD = "bench-page-pw"
PORT = 18_765


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.history_memory", description=__doc__
    )
    parser.add_argument("--ticks", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.01)
    args = parser.parse_args(argv)
    python = prodvenv.python()
    samples: list[tuple[int, float]] = []
    reads = 0
    with tempfile.TemporaryDirectory() as tmp, rig(Path(tmp)) as r:
        text = config_text(args.interval) + "[history]\nenabled = true\n"
        config = r.config(
            text.replace("[[process]]", '[http]\nhost = "127.0.0.1"\n\n[[process]]', 1)
        )
        log = Path(tmp) / "history_memory.log"
        env_run = r.env() | {"DYNOMATIC_STATUS_PASSWORD": PASSWORD}
        proc = _spawn(config, log, python, env_run)
        started = time.monotonic()
        next_read = started
        try:
            while (done := ticks_done(log)) < args.ticks and time.monotonic() - started < 900:
                if proc.poll() is not None:
                    raise RuntimeError(f"dynomatic run exited: {log.read_text()[-2000:]}")
                listening = b"status_page_listening" in log.read_bytes()
                if listening and time.monotonic() >= next_read:
                    r.drain() if reads % 2 else r.enqueue(25)  # a change, so events are written
                    for path in ("/", "/metrics"):
                        httpx.get(
                            f"http://127.0.0.1:{PORT}{path}",
                            auth=("dynomatic", PASSWORD),
                            timeout=10,
                        )
                    reads, next_read = reads + 1, next_read + 2.0
                rss = rss_mb(proc.pid)
                if rss is not None:
                    samples.append((done, rss))
                time.sleep(0.25)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        elapsed = time.monotonic() - started
        written = log.read_text().count('"scaled"')
    steady = [mb for n, mb in samples if n >= args.ticks * WARM_UP]
    rows = [
        ["ticks", f"{done:,} in {elapsed:.0f} s"],
        ["page + /metrics reads", f"{reads:,}"],
        ["scale changes (each an event written)", f"{written:,}"],
        ["peak RSS, MB", f"{max(mb for _, mb in samples):.1f}"],
        ["steady RSS (median after warm-up), MB", f"{statistics.median(steady):.1f}"],
        ["RSS after warm-up -> at the end, MB", f"{steady[0]:.1f} -> {steady[-1]:.1f}"],
        ["target", "<= 80 MB"],
    ]
    print_table("memory of dynomatic run with history and the page", ["measure", "value"], rows)
    update_section(
        "history_memory",
        "## Memory with history and the status page on\n\n"
        f"`python -m benchmarks.history_memory`: `dynomatic run --http-port` at interval "
        f"{args.interval:g} s for {args.ticks:,} ticks from `.venv-bench` (runtime dependencies "
        "only), history recording to the same PostgreSQL, the page and /metrics read every 2 s "
        "and the queue changed as often, RSS from /proc every 0.25 s.\n\n"
        + table(["measure", "value"], rows),
    )
    return 0


def _spawn(config: Path, log: Path, python: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [str(python), "-m", "dynomatic_daemon", "run", "--config", str(config)]
    return subprocess.Popen(
        [*command, "--log-format", "json", "--http-port", str(PORT)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    sys.exit(main())
